//! API bearer tokens: `ep_` and 43 base64url characters (32 random
//! bytes), made by `edgeprobe central new-token`. Only the SHA-256 of a
//! token is configured (`[[auth.tokens]] sha256`), so the config file
//! does not hold a secret a client could use; a presented token is
//! hashed and compared with every configured hash in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest;

use super::random_bytes;
use crate::http::secret::constant_time_eq;

/// What every token starts with, so that one found in a log or a repo is
/// recognisable.
pub const TOKEN_PREFIX: &str = "ep_";

/// A configured token: its name (for the logs) and the SHA-256 of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    pub sha256: [u8; 32],
}

/// A fresh random token.
pub fn new_token() -> Result<String, String> {
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

/// The SHA-256 of `token`.
pub fn sha256(token: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token).as_ref());
    out
}

/// Lower-case hex, as `sha256 =` takes it.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits (either case) as 32 bytes.
pub fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// The name of the configured token `presented` is, if any. Every
/// configured hash is compared, whichever matches.
pub fn find<'t>(tokens: &'t [ApiToken], presented: &[u8]) -> Option<&'t str> {
    let digest = sha256(presented);
    tokens.iter().fold(None, |found, t| {
        let matches = constant_time_eq(&t.sha256, &digest);
        found.or(matches.then_some(t.name.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_are_prefixed_random_and_43_characters() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_ne!(a, b);
        let body = a.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert_eq!(body.len(), 43, "{a}");
        assert!(body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn hex_round_trips_and_the_known_digest() {
        // SHA-256("abc"), FIPS 180-2.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(to_hex(&sha256(b"abc")), abc);
        assert_eq!(parse_sha256_hex(abc), Some(sha256(b"abc")));
        assert_eq!(parse_sha256_hex(&abc.to_uppercase()), Some(sha256(b"abc")));
        assert_eq!(parse_sha256_hex(&abc[1..]), None);
        assert_eq!(parse_sha256_hex(&format!("{}zz", &abc[2..])), None);
    }

    #[test]
    fn a_presented_token_is_found_by_its_hash() {
        let tokens = [
            ApiToken {
                name: "grafana".into(),
                sha256: sha256(b"ep_one"),
            },
            ApiToken {
                name: "script".into(),
                sha256: sha256(b"ep_two"),
            },
        ];
        assert_eq!(find(&tokens, b"ep_one"), Some("grafana"));
        assert_eq!(find(&tokens, b"ep_two"), Some("script"));
        assert_eq!(find(&tokens, b"ep_three"), None);
        assert_eq!(find(&[], b"ep_one"), None);
    }
}
