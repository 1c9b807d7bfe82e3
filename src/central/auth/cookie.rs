//! The session cookie: `edgeprobe_session=<user>.<expiry>.<mac>`, where
//! `expiry` is the end of the session in Unix seconds and `mac` the
//! HMAC-SHA256 (base64url, no padding) of both under the key file's
//! bytes. Nothing about a session is kept in the process: any replica
//! with the same key file accepts the cookie, and a changed key file
//! signs everyone out.
//!
//! Pure: keys, values and `now` in, values or why not out.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;

/// The cookie's name.
pub const COOKIE_NAME: &str = "edgeprobe_session";

/// What the MAC covers before the user and expiry, so that a MAC made
/// with the same key for something else is never a valid session (and a
/// later format can change the label).
const MAC_LABEL: &[u8] = b"edgeprobe_session v1\n";

/// The key sessions are signed with: the bytes of `cookie_key_file`.
#[derive(Clone)]
pub struct CookieKey(hmac::Key);

impl CookieKey {
    pub fn new(bytes: &[u8]) -> CookieKey {
        CookieKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

/// Why a cookie is no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Not `<user>.<expiry>.<mac>`.
    Malformed,
    /// The MAC does not match: changed, or signed with another key.
    BadSignature,
    /// Signed by us, but its time is up.
    Expired,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionError::Malformed => "the session cookie is not one central makes",
            SessionError::BadSignature => "the session cookie's signature does not match",
            SessionError::Expired => "the session has expired",
        })
    }
}

fn mac_input(user: &str, expires: u64) -> Vec<u8> {
    let mut input = MAC_LABEL.to_vec();
    input.extend_from_slice(format!("{user}.{expires}").as_bytes());
    input
}

/// The cookie value for `user` until `expires` (Unix seconds).
pub fn sign(key: &CookieKey, user: &str, expires: u64) -> String {
    let tag = hmac::sign(&key.0, &mac_input(user, expires));
    format!("{user}.{expires}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// The user of a cookie value signed with `key` and still valid at `now`
/// (Unix seconds). The MAC is checked in constant time before the expiry
/// is looked at.
pub fn verify<'v>(key: &CookieKey, value: &'v str, now: u64) -> Result<&'v str, SessionError> {
    // From the right: neither the MAC nor the expiry has a dot, a user
    // name may.
    let mut parts = value.rsplitn(3, '.');
    let (Some(mac), Some(expires), Some(user)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SessionError::Malformed);
    };
    if user.is_empty() || expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SessionError::Malformed);
    }
    let expires: u64 = expires.parse().map_err(|_| SessionError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| SessionError::Malformed)?;
    hmac::verify(&key.0, &mac_input(user, expires), &tag)
        .map_err(|_| SessionError::BadSignature)?;
    if now >= expires {
        return Err(SessionError::Expired);
    }
    Ok(user)
}

/// The value of cookie `name` in the `Cookie` header values, if any.
pub fn find<'h>(cookie_headers: impl IntoIterator<Item = &'h str>, name: &str) -> Option<&'h str> {
    cookie_headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// The `Set-Cookie` value that starts a session lasting `lifetime`.
pub fn set_cookie(value: &str, lifetime: Duration, secure: bool, path: &str) -> String {
    format!(
        "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={}{}",
        lifetime.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_cookie(secure: bool, path: &str) -> String {
    set_cookie("", Duration::ZERO, secure, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_795_651_111;

    #[test]
    fn a_signed_cookie_verifies_until_it_expires() {
        let key = CookieKey::new(KEY);
        let value = sign(&key, "alice", NOW + 60);
        let (user, rest) = value.split_once('.').expect("dots");
        assert_eq!(user, "alice");
        assert!(rest.starts_with(&format!("{}.", NOW + 60)), "{value}");
        assert_eq!(value.rsplit('.').next().map(str::len), Some(43), "{value}");
        assert_eq!(verify(&key, &value, NOW), Ok("alice"));
        assert_eq!(verify(&key, &value, NOW + 59), Ok("alice"));
        assert_eq!(verify(&key, &value, NOW + 60), Err(SessionError::Expired));
        let dotted = sign(&key, "a.b", NOW + 60);
        assert_eq!(verify(&key, &dotted, NOW), Ok("a.b"));
    }

    #[test]
    fn any_changed_byte_or_another_key_is_refused() {
        let key = CookieKey::new(KEY);
        let value = sign(&key, "alice", NOW + 60);
        let other = CookieKey::new(b"another key of thirty-two bytes!");
        assert_eq!(verify(&other, &value, NOW), Err(SessionError::BadSignature));
        for i in 0..value.len() {
            let mut bytes = value.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).expect("ascii");
            assert!(verify(&key, &changed, NOW).is_err(), "byte {i}: {changed}");
        }
        // A later expiry under the old MAC.
        let (_, mac) = value.rsplit_once('.').expect("mac");
        let extended = format!("alice.{}.{mac}", NOW + 3600);
        assert_eq!(
            verify(&key, &extended, NOW),
            Err(SessionError::BadSignature)
        );
    }

    #[test]
    fn malformed_values_are_no_session() {
        let key = CookieKey::new(KEY);
        for value in [
            "",
            "alice",
            "alice.123",
            ".123.abc",
            "alice..abc",
            "alice.12x.abc",
            "alice.1.%%%",
        ] {
            assert_eq!(
                verify(&key, value, NOW),
                Err(SessionError::Malformed),
                "{value:?}"
            );
        }
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let headers = ["theme=dark; edgeprobe_session=a.1.x", "other=1"];
        assert_eq!(find(headers, COOKIE_NAME), Some("a.1.x"));
        assert_eq!(find(["edgeprobe_session_x=1"], COOKIE_NAME), None);
        assert_eq!(
            find(["edgeprobe_session=\"a.1.x\""], COOKIE_NAME),
            Some("a.1.x")
        );
    }

    #[test]
    fn cookie_attributes() {
        assert_eq!(
            set_cookie("v", Duration::from_secs(43_200), false, "/"),
            "edgeprobe_session=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"
        );
        assert!(
            set_cookie("v", Duration::from_secs(1), false, "/edgeprobe/")
                .contains("; Path=/edgeprobe/;")
        );
        assert!(set_cookie("v", Duration::from_secs(1), true, "/").ends_with("; Secure"));
        assert_eq!(
            clear_cookie(false, "/"),
            "edgeprobe_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
    }
}
