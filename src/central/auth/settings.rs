//! The `--config` file of `edgeprobe central` and its `[auth]` table:
//! who may sign in, the cookie key, the session lifetime, the reverse
//! proxies that are believed. Read into [`CentralFile`] (unknown keys
//! are refused by name), then checked into [`AuthSettings`]; every error
//! names its key and says what to do.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::header::HeaderName;
use serde::Deserialize;

use super::cookie::CookieKey;
use super::password::{check_stored_hash, decoy_like};
use super::token::{parse_sha256_hex, ApiToken};
use crate::config::parse_duration;

/// How long a session lasts without `session`.
pub const DEFAULT_SESSION: Duration = Duration::from_secs(12 * 3600);

/// Bounds on `session`.
const MIN_SESSION: Duration = Duration::from_secs(60);
const MAX_SESSION: Duration = Duration::from_secs(366 * 86_400);

/// The fewest bytes a cookie key file may hold.
pub const MIN_COOKIE_KEY_BYTES: usize = 32;

/// The longest user or token name.
const MAX_NAME_CHARS: usize = 64;

/// The file as written. Only `[auth]` for now; other tables of central
/// go beside it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralFile {
    #[serde(default)]
    pub auth: Option<AuthSection>,
}

/// `[auth]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    pub cookie_key_file: Option<PathBuf>,
    pub session: Option<String>,
    pub trusted_proxies: Vec<String>,
    pub proxy_user_header: Option<String>,
    pub users: Vec<UserEntry>,
    pub tokens: Vec<TokenEntry>,
}

/// `[[auth.users]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    pub password_hash: String,
}

/// `[[auth.tokens]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub sha256: String,
}

/// A user who signs in with a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// An argon2 PHC string, checked at start.
    pub password_hash: String,
}

/// An address, or a CIDR range of them, in `trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRange {
    pub network: IpAddr,
    pub prefix: u8,
}

impl ProxyRange {
    /// `127.0.0.1`, `::1`, `127.0.0.0/8`.
    pub fn parse(text: &str) -> Option<ProxyRange> {
        let (ip, prefix) = match text.trim().split_once('/') {
            None => (text.trim(), None),
            Some((ip, prefix)) => (ip, Some(prefix)),
        };
        let network: IpAddr = ip.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse().ok().filter(|p| *p <= max)?,
        };
        Some(ProxyRange { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // A v4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` bits of `a` and `b` are the same.
fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (whole, rest) = (usize::from(prefix / 8), prefix % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

/// `[auth]`, checked. [`AuthSettings::default`] is "no sign-in": no
/// users, tokens or proxy user header (central then listens on loopback
/// only, or anywhere with `--no-auth`).
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// What sessions are signed with; there whenever users are.
    pub cookie_key: Option<CookieKey>,
    pub session: Duration,
    pub trusted_proxies: Vec<ProxyRange>,
    /// Believed only from [`AuthSettings::is_trusted_proxy`] peers.
    pub proxy_user_header: Option<HeaderName>,
    pub users: Vec<User>,
    pub tokens: Vec<ApiToken>,
    /// What a password for an unknown name is checked against: a hash
    /// of a random password with the first user's parameters.
    pub decoy_hash: Option<String>,
}

/// A setting that cannot be used: its key, and what happened and what
/// to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn error(key: impl Into<String>, message: impl Into<String>) -> SettingsError {
    SettingsError {
        key: key.into(),
        message: message.into(),
    }
}

impl AuthSettings {
    /// Whether anyone must sign in: some user, token or proxy user
    /// header is configured.
    pub fn signs_in(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty() || self.proxy_user_header.is_some()
    }

    /// Whether a connection from `ip` comes from a reverse proxy listed
    /// in `trusted_proxies`, whose headers (the user header, and what it
    /// says about the original request) are believed.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|r| r.contains(ip))
    }

    /// The password hash of user `name`.
    pub fn password_hash(&self, name: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.name == name)
            .map(|u| u.password_hash.as_str())
    }

    /// Whether `name` is a configured user.
    pub fn has_user(&self, name: &str) -> bool {
        self.users.iter().any(|u| u.name == name)
    }

    /// Check `[auth]` as written; relative paths are from `base_dir`
    /// (the config file's directory).
    pub fn resolve(section: AuthSection, base_dir: &Path) -> Result<AuthSettings, SettingsError> {
        let session = match &section.session {
            None => DEFAULT_SESSION,
            Some(text) => session_lifetime(text)?,
        };
        let trusted_proxies = section
            .trusted_proxies
            .iter()
            .map(|p| {
                ProxyRange::parse(p).ok_or_else(|| {
                    error(
                        "[auth] trusted_proxies",
                        format!(
                            "{p:?} is not an IP address or CIDR range; write the proxy's \
                             address as it connects to central, e.g. \"127.0.0.1\" or \"127.0.0.0/8\""
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let proxy_user_header = match &section.proxy_user_header {
            None => None,
            Some(h) => Some(proxy_header(h, trusted_proxies.is_empty())?),
        };
        let users = users(section.users)?;
        let tokens = tokens(section.tokens)?;
        let cookie_key = match (&section.cookie_key_file, users.is_empty()) {
            (Some(path), _) => Some(read_cookie_key(&base_dir.join(path))?),
            (None, true) => None,
            (None, false) => {
                return Err(error(
                    "[auth] cookie_key_file",
                    "missing, and [[auth.users]] sign in with a cookie signed by it; make one \
                     with `head -c 32 /dev/urandom > /etc/edgeprobe/central-cookie.key` and \
                     name it here (the same file on every replica)",
                ))
            }
        };
        let decoy_hash = match users.first() {
            None => None,
            Some(first) => Some(
                decoy_like(&first.password_hash)
                    .map_err(|e| error("[[auth.users]] password_hash", e))?,
            ),
        };
        Ok(AuthSettings {
            cookie_key,
            session,
            trusted_proxies,
            proxy_user_header,
            users,
            tokens,
            decoy_hash,
        })
    }
}

fn session_lifetime(text: &str) -> Result<Duration, SettingsError> {
    let key = "[auth] session";
    let d = parse_duration(text).map_err(|e| error(key, e))?;
    if d < MIN_SESSION || d > MAX_SESSION {
        return Err(error(
            key,
            format!("{text:?} is out of range; write between 1m and 366d, e.g. \"12h\""),
        ));
    }
    Ok(d)
}

fn proxy_header(name: &str, no_proxies: bool) -> Result<HeaderName, SettingsError> {
    let key = "[auth] proxy_user_header";
    let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        error(
            key,
            format!("{name:?} is not a header name; write e.g. \"X-Forwarded-User\""),
        )
    })?;
    if no_proxies {
        return Err(error(
            key,
            "is set but [auth] trusted_proxies is empty, so no request could carry it; \
             list the proxy's address in trusted_proxies (e.g. [\"127.0.0.1\"])",
        ));
    }
    Ok(header)
}

/// A user or token name: it shows in logs and, for a user, in the cookie.
fn check_name(key: &str, name: &str, seen: &[&str]) -> Result<(), SettingsError> {
    let fits = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if !fits {
        return Err(error(
            key,
            format!(
                "{name:?} cannot be used; write 1 to {MAX_NAME_CHARS} letters, digits or . _ @ -"
            ),
        ));
    }
    if seen.contains(&name) {
        return Err(error(
            key,
            format!("{name:?} is listed twice; keep one entry per name"),
        ));
    }
    Ok(())
}

fn users(entries: Vec<UserEntry>) -> Result<Vec<User>, SettingsError> {
    let mut users: Vec<User> = Vec::with_capacity(entries.len());
    for e in entries {
        let seen: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        check_name("[[auth.users]] name", &e.name, &seen)?;
        check_stored_hash(e.password_hash.trim())
            .map_err(|why| error(format!("[[auth.users]] password_hash of {:?}", e.name), why))?;
        users.push(User {
            name: e.name,
            password_hash: e.password_hash.trim().to_string(),
        });
    }
    Ok(users)
}

fn tokens(entries: Vec<TokenEntry>) -> Result<Vec<ApiToken>, SettingsError> {
    let mut tokens: Vec<ApiToken> = Vec::with_capacity(entries.len());
    for e in entries {
        let seen: Vec<&str> = tokens.iter().map(|t| t.name.as_str()).collect();
        check_name("[[auth.tokens]] name", &e.name, &seen)?;
        let sha256 = parse_sha256_hex(e.sha256.trim()).ok_or_else(|| {
            let what = if e.sha256.trim().starts_with(super::token::TOKEN_PREFIX) {
                "is a token, not its hash; keep the token with the client and write \
                 the sha256 line that `edgeprobe central new-token` printed"
            } else {
                "is not 64 hex digits; write the sha256 line that \
                 `edgeprobe central new-token` printed"
            };
            error(format!("[[auth.tokens]] sha256 of {:?}", e.name), what)
        })?;
        tokens.push(ApiToken {
            name: e.name,
            sha256,
        });
    }
    Ok(tokens)
}

fn read_cookie_key(path: &Path) -> Result<CookieKey, SettingsError> {
    let key = "[auth] cookie_key_file";
    let shown = path.display();
    let make = format!("head -c 32 /dev/urandom > {shown}");
    let bytes = std::fs::read(path).map_err(|e| {
        error(
            key,
            format!(
                "cannot read {shown}: {e}; make it with `{make}` (the same file on every replica)"
            ),
        )
    })?;
    if bytes.len() < MIN_COOKIE_KEY_BYTES {
        return Err(error(
            key,
            format!(
                "{shown} holds {} bytes; write at least {MIN_COOKIE_KEY_BYTES} random bytes: {make}",
                bytes.len()
            ),
        ));
    }
    Ok(CookieKey::new(&bytes))
}

/// Read `--config FILE`: its `[auth]` checked, or the default (no
/// sign-in) when the file has none. Errors start with the file's name.
pub fn read_file(path: &Path) -> Result<AuthSettings, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let file: CentralFile = toml::from_str(&text)
        .map_err(|e| format!("{shown}: {}", e.to_string().trim_end().replace('\n', " ")))?;
    let Some(section) = file.auth else {
        return Ok(AuthSettings::default());
    };
    let base = path.parent().unwrap_or(Path::new("."));
    AuthSettings::resolve(section, base).map_err(|e| format!("{shown}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::central::auth::password::hash_password;

    fn section(toml_text: &str) -> AuthSection {
        let file: CentralFile = toml::from_str(toml_text).expect("toml");
        file.auth.expect("[auth]")
    }

    fn resolve_in(dir: &Path, toml_text: &str) -> Result<AuthSettings, SettingsError> {
        AuthSettings::resolve(section(toml_text), dir)
    }

    fn key_file(dir: &Path, bytes: usize) -> PathBuf {
        let path = dir.join("cookie.key");
        std::fs::write(&path, vec![7u8; bytes]).expect("write key");
        path
    }

    #[test]
    fn proxy_ranges_parse_and_contain() {
        let one = ProxyRange::parse("127.0.0.1").expect("ip");
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            one.contains("::ffff:127.0.0.1".parse().unwrap()),
            "v4-mapped"
        );
        let net = ProxyRange::parse("127.0.0.0/23").expect("cidr");
        assert!(net.contains("127.0.1.255".parse().unwrap()));
        assert!(!net.contains("127.0.2.0".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let v6 = ProxyRange::parse("::1/128").expect("v6");
        assert!(v6.contains("::1".parse().unwrap()));
        assert!(ProxyRange::parse("127.0.0.0/0")
            .expect("all")
            .contains("127.9.9.9".parse().unwrap()));
        for bad in ["", "localhost", "127.0.0.1/33", "::1/129", "127.0.0.1/x"] {
            assert_eq!(ProxyRange::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_full_auth_table_resolves() {
        let dir = tempfile::tempdir().expect("tempdir");
        key_file(dir.path(), 32);
        let hash = hash_password("a long enough password").expect("hash");
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let s = resolve_in(
            dir.path(),
            &format!(
                r#"[auth]
                cookie_key_file = "cookie.key"
                session = "30m"
                trusted_proxies = ["127.0.0.1", "::1"]
                proxy_user_header = "X-Forwarded-User"
                [[auth.users]]
                name = "alice"
                password_hash = "{hash}"
                [[auth.tokens]]
                name = "grafana"
                sha256 = "{sha}""#
            ),
        )
        .expect("resolves");
        assert!(s.signs_in() && s.cookie_key.is_some() && s.decoy_hash.is_some());
        assert_eq!(s.session, Duration::from_secs(1800));
        assert!(s.is_trusted_proxy("127.0.0.1".parse().unwrap()));
        assert!(!s.is_trusted_proxy("127.0.0.2".parse().unwrap()));
        assert_eq!(
            s.proxy_user_header.as_ref().map(|h| h.as_str()),
            Some("x-forwarded-user")
        );
        assert_eq!(s.password_hash("alice"), Some(hash.as_str()));
        assert_eq!(s.tokens[0].name, "grafana");
        assert!(!AuthSettings::default().signs_in());
    }

    #[test]
    fn tokens_alone_need_no_cookie_key_and_the_session_has_a_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = resolve_in(
            dir.path(),
            &format!(
                "[auth]\n[[auth.tokens]]\nname = \"t\"\nsha256 = \"{}\"",
                "0".repeat(64)
            ),
        )
        .expect("resolves");
        assert!(s.signs_in() && s.cookie_key.is_none());
        assert_eq!(s.session, DEFAULT_SESSION);
    }

    #[test]
    fn every_error_names_its_key_and_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hash = hash_password("a long enough password").expect("hash");
        let user = format!("[[auth.users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n");
        let short_key = key_file(dir.path(), 5);
        let cases = [
            (
                format!("[auth]\ncookie_key_file = {:?}\n{user}", short_key),
                "[auth] cookie_key_file",
                format!(
                    "{} holds 5 bytes; write at least 32 random bytes: head -c 32 /dev/urandom > {}",
                    short_key.display(),
                    short_key.display()
                ),
            ),
            (
                format!("[auth]\n{user}"),
                "[auth] cookie_key_file",
                "missing".to_string(),
            ),
            (
                "[auth]\ncookie_key_file = \"absent.key\"\n".to_string(),
                "[auth] cookie_key_file",
                "cannot read".to_string(),
            ),
            ("[auth]\nsession = \"12 hours\"".into(), "[auth] session", "not a duration".into()),
            ("[auth]\nsession = \"10s\"".into(), "[auth] session", "between 1m and 366d".into()),
            (
                "[auth]\ntrusted_proxies = [\"proxy.local\"]".into(),
                "[auth] trusted_proxies",
                "not an IP address".into(),
            ),
            (
                "[auth]\nproxy_user_header = \"X-Forwarded-User\"".into(),
                "[auth] proxy_user_header",
                "trusted_proxies is empty".into(),
            ),
            (
                "[auth]\ntrusted_proxies = [\"127.0.0.1\"]\nproxy_user_header = \"X User\"".into(),
                "[auth] proxy_user_header",
                "not a header name".into(),
            ),
            (
                "[[auth.users]]\nname = \"al ice\"\npassword_hash = \"x\"".into(),
                "[[auth.users]] name",
                "letters, digits".into(),
            ),
            (
                format!("[auth]\n{user}{user}"),
                "[[auth.users]] name",
                "listed twice".into(),
            ),
            (
                "[[auth.users]]\nname = \"bob\"\npassword_hash = \"hunter2\"".into(),
                "[[auth.users]] password_hash of \"bob\"",
                "hash-password".into(),
            ),
            (
                "[[auth.tokens]]\nname = \"t\"\nsha256 = \"ep_abc\"".into(),
                "[[auth.tokens]] sha256 of \"t\"",
                "is a token, not its hash".into(),
            ),
            (
                "[[auth.tokens]]\nname = \"t\"\nsha256 = \"abc\"".into(),
                "[[auth.tokens]] sha256 of \"t\"",
                "64 hex digits".into(),
            ),
        ];
        for (text, key, says) in cases {
            let e = resolve_in(dir.path(), &text).expect_err(&text);
            assert_eq!(e.key, key, "{text}");
            assert!(e.message.contains(&says), "{text}\n{e}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (text, key) in [
            ("[auth]\nsesion = \"1h\"", "sesion"),
            (
                "[auth]\n[[auth.users]]\nname = \"a\"\npassword = \"x\"",
                "password",
            ),
            ("[server]\nbase = \"/\"", "server"),
        ] {
            let path = dir.path().join("central.toml");
            std::fs::write(&path, text).expect("write");
            let e = read_file(&path).expect_err(text);
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
            assert!(e.starts_with(&path.display().to_string()), "{e}");
        }
        let path = dir.path().join("empty.toml");
        std::fs::write(&path, "").expect("write");
        assert!(!read_file(&path).expect("no [auth]").signs_in());
    }
}
