//! The pure parts of the admin endpoints: checking the bearer token and
//! naming an uploaded sheet.

use crate::http::secret::{bearer_token, constant_time_eq};

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer ...` header.
    Missing,
    /// A bearer token that is not the configured one.
    Wrong,
}

/// Check `Authorization: Bearer TOKEN` against the configured token,
/// with [`constant_time_eq`]: the token's length leaks, which is
/// acceptable for a long random token (and hiding it would need hashing
/// both sides, for little gain on a LAN).
pub fn check_bearer(authorization: Option<&[u8]>, token: &str) -> Result<(), AuthError> {
    let presented = authorization
        .and_then(bearer_token)
        .ok_or(AuthError::Missing)?;
    if constant_time_eq(presented, token.as_bytes()) {
        Ok(())
    } else {
        Err(AuthError::Wrong)
    }
}

/// The longest file name passed on to the monitor.
const MAX_FILE_NAME: usize = 200;

/// The uploaded sheet's file name: the `filename` query parameter, else
/// the `Content-Disposition` header's `filename`. Only the last path
/// component is kept and control and text-direction characters are
/// dropped (a right-to-left override would show `xslx.exe` as
/// `exe.xlsx`): the name picks the format by its extension and shows in
/// messages, nothing more.
pub fn upload_file_name(
    query_filename: Option<&str>,
    content_disposition: Option<&str>,
) -> Option<String> {
    let raw = query_filename
        .map(str::to_string)
        .or_else(|| content_disposition.and_then(disposition_file_name))?;
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !changes_direction(*c))
        .take(MAX_FILE_NAME)
        .collect();
    let clean = clean.trim().to_string();
    (!clean.is_empty() && clean != "." && clean != "..").then_some(clean)
}

/// The invisible characters that reorder the text around them: the
/// marks, embeddings, overrides and isolates of the Unicode bidirectional
/// algorithm.
fn changes_direction(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `filename*=UTF-8''...` (RFC 6266, preferred) or `filename="..."`.
fn disposition_file_name(header: &str) -> Option<String> {
    let mut plain = None;
    for param in header.split(';').map(str::trim) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name == "filename*" {
            let encoded = value.split_once("''").map_or(value, |(_, v)| v);
            if let Some(v) = crate::http::query::percent_decode(encoded, false) {
                return Some(v);
            }
        } else if name == "filename" {
            let v = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            plain = Some(v.replace("\\\"", "\"").replace("\\\\", "\\"));
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_checks() {
        let cases = [
            (None, Err(AuthError::Missing)),
            (Some("Basic czNjcmV0"), Err(AuthError::Missing)),
            (Some("Bearer"), Err(AuthError::Missing)),
            (Some("Bearer s3cre"), Err(AuthError::Wrong)),
            (Some("Bearer S3cret"), Err(AuthError::Wrong)),
            (Some("Bearer s3cret"), Ok(())),
            (Some("bearer  s3cret "), Ok(())),
        ];
        for (header, want) in cases {
            assert_eq!(
                check_bearer(header.map(str::as_bytes), "s3cret"),
                want,
                "{header:?}"
            );
        }
    }

    #[test]
    fn file_names() {
        let named = [
            (Some("targets.xlsx"), None, "targets.xlsx"),
            (Some("../../etc/x.csv"), None, "x.csv"),
            (Some("C:\\Users\\me\\t.ods"), None, "t.ods"),
            (Some("a\nb\u{7}.csv"), None, "ab.csv"),
            (Some("invoice\u{202e}xslx.exe"), None, "invoicexslx.exe"),
            (Some("\u{2067}t\u{2069}\u{200f}.csv"), None, "t.csv"),
            (
                None,
                Some("attachment; filename=\"site a.xlsx\""),
                "site a.xlsx",
            ),
            (
                None,
                Some("attachment; filename=\"x.xls\"; filename*=UTF-8''B%C3%BCro.xlsx"),
                "Büro.xlsx",
            ),
        ];
        for (query, disposition, want) in named {
            assert_eq!(
                upload_file_name(query, disposition).as_deref(),
                Some(want),
                "{query:?} {disposition:?}"
            );
        }
        assert_eq!(
            upload_file_name(Some("q.csv"), Some("attachment; filename=h.csv")).as_deref(),
            Some("q.csv"),
            "the query parameter wins"
        );
        for query in [None, Some(""), Some("dir/"), Some("..")] {
            assert_eq!(upload_file_name(query, None), None, "{query:?}");
        }
    }
}
