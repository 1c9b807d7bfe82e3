//! Secrets: a type that keeps them out of debug output, a comparison that
//! takes the same time wherever the first difference is, and the token of
//! an `Authorization: Bearer TOKEN` header. Both dashboards use them (the
//! board's admin token, central's API tokens), and the alert channels.

use std::hint::black_box;

/// A secret (a token, a password, a URI with credentials): its `Debug`
/// shows `(hidden)`, so no log line or panic message prints it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(hidden)")
    }
}

/// Equal contents, comparing every byte (xor-fold) whatever the first
/// difference, so response time does not tell an attacker how much of a
/// guess was right. Unequal lengths return at once: compare values of a
/// fixed length (digests) where the length must not leak.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // black_box keeps the optimiser from turning the fold into an early
    // exit.
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| black_box(acc | (x ^ y)));
    diff == 0
}

/// The token of an `Authorization` header value `Bearer TOKEN`, spaces
/// around it trimmed; `None` for another scheme or no token. The scheme
/// is case-insensitive (RFC 9110 §11.1); the token is not.
pub fn bearer_token(authorization: &[u8]) -> Option<&[u8]> {
    let i = authorization.iter().position(|&b| b == b' ')?;
    let (scheme, token) = (&authorization[..i], trim_spaces(&authorization[i + 1..]));
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

fn trim_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_contents() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"\x00", b"\x80"));
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        for (header, want) in [
            ("Bearer s3cret", Some("s3cret")),
            ("bearer  s3cret ", Some("s3cret")),
            ("BEARER ep_x", Some("ep_x")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Basic czNjcmV0", None),
            ("Bearers x", None),
        ] {
            assert_eq!(
                bearer_token(header.as_bytes()),
                want.map(str::as_bytes),
                "{header:?}"
            );
        }
    }
}
