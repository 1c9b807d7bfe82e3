//! Who a request is, from what it presents: the pure decision that every
//! route of central but `/login`, the stylesheet and `/healthz` passes
//! ([`decide`]), and where a browser that is not signed in is sent
//! ([`login_location`], [`safe_next`]). The HTTP glue that reads the
//! headers is `central::signin`.

use std::net::IpAddr;

use super::cookie;
use super::settings::AuthSettings;
use super::token;
use crate::http::query::encode_query_value;

/// What a request presents, as read from its headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The connection's address (the client, or a proxy in front of it).
    pub peer: Option<IpAddr>,
    /// The `edgeprobe_session` cookie's value.
    pub session: Option<&'a str>,
    /// The token of `Authorization: Bearer TOKEN`.
    pub bearer: Option<&'a [u8]>,
    /// The value of the configured `proxy_user_header`.
    pub proxy_user: Option<&'a str>,
}

/// Whether, and as whom, a request is let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Sign-in is off (no users, tokens or proxy header configured):
    /// everyone who reaches central is let in.
    Open,
    /// A valid session cookie of this configured user.
    User(String),
    /// The bearer token of this name.
    Token(String),
    /// The user a trusted proxy named in `proxy_user_header`.
    Proxy(String),
    Deny(Refusal),
}

/// Why a request was not let in; the message says what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No cookie, token or proxy user.
    NoCredentials,
    /// A bearer token that is not configured.
    WrongToken,
    /// A cookie that is tampered, expired, from another key, or of a user
    /// no longer configured.
    BadSession,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::NoCredentials => {
                "sign in at /login, or send `Authorization: Bearer TOKEN` with a token \
                 from `edgeprobe central new-token`"
            }
            Refusal::WrongToken => "the bearer token is not one this central knows",
            Refusal::BadSession => "the session is not valid (expired or changed); sign in again",
        }
    }
}

impl Admit {
    /// The name of who was let in, `None` when sign-in is off or refused.
    pub fn name(&self) -> Option<&str> {
        match self {
            Admit::User(n) | Admit::Token(n) | Admit::Proxy(n) => Some(n),
            Admit::Open | Admit::Deny(_) => None,
        }
    }

    pub fn is_admitted(&self) -> bool {
        !matches!(self, Admit::Deny(_))
    }
}

/// The longest user name believed from a proxy header.
const MAX_PROXY_USER: usize = 256;

/// Decide who `creds` is at `now` (Unix seconds). In order: sign-in off;
/// a proxy user header from a trusted proxy; a bearer token (a wrong one
/// is refused, whatever else is sent); a session cookie of a configured
/// user. A proxy header from any other peer is ignored.
pub fn decide(creds: &Credentials<'_>, settings: &AuthSettings, now: u64) -> Admit {
    if !settings.signs_in() {
        return Admit::Open;
    }
    let from_proxy = creds.peer.is_some_and(|ip| settings.is_trusted_proxy(ip));
    if settings.proxy_user_header.is_some() && from_proxy {
        if let Some(user) = creds
            .proxy_user
            .map(str::trim)
            .filter(|u| usable_proxy_user(u))
        {
            return Admit::Proxy(user.to_string());
        }
    }
    if let Some(presented) = creds.bearer {
        return match token::find(&settings.tokens, presented) {
            Some(name) => Admit::Token(name.to_string()),
            None => Admit::Deny(Refusal::WrongToken),
        };
    }
    if let (Some(value), Some(key)) = (creds.session, &settings.cookie_key) {
        return match cookie::verify(key, value, now) {
            Ok(user) if settings.has_user(user) => Admit::User(user.to_string()),
            _ => Admit::Deny(Refusal::BadSession),
        };
    }
    if creds.session.is_some() {
        return Admit::Deny(Refusal::BadSession);
    }
    Admit::Deny(Refusal::NoCredentials)
}

fn usable_proxy_user(user: &str) -> bool {
    !user.is_empty() && user.len() <= MAX_PROXY_USER && !user.chars().any(char::is_control)
}

/// `next` when it is a path on this server to go back to after signing
/// in: one leading `/`, no `//` or `\` anywhere (a browser reads
/// `//host` and `/\host` as another site), only printable ASCII (as a
/// request's path and query are; nothing that could split a header).
/// Anything else is `/`.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.contains("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/",
    }
}

/// Where a page request without a session is sent:
/// `/login?next=<path and query>` (just `/login` for `/`).
pub fn login_location(path_and_query: &str) -> String {
    let next = safe_next(Some(path_and_query));
    if next == "/" {
        "/login".to_string()
    } else {
        format!("/login?next={}", encode_query_value(next))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::central::auth::cookie::{sign, CookieKey};
    use crate::central::auth::settings::{ProxyRange, User};
    use crate::central::auth::token::{sha256, ApiToken};

    const NOW: u64 = 1_795_651_111;
    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn settings() -> AuthSettings {
        AuthSettings {
            cookie_key: Some(CookieKey::new(KEY)),
            session: Duration::from_secs(3600),
            trusted_proxies: vec![ProxyRange::parse("127.0.0.1").expect("ip")],
            proxy_user_header: Some(hyper::header::HeaderName::from_static("x-forwarded-user")),
            users: vec![User {
                name: "alice".into(),
                password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            }],
            tokens: vec![ApiToken {
                name: "grafana".into(),
                sha256: sha256(b"ep_good"),
            }],
            decoy_hash: None,
        }
    }

    fn from(peer: &str) -> Credentials<'static> {
        Credentials {
            peer: Some(peer.parse().expect("ip")),
            ..Credentials::default()
        }
    }

    #[test]
    fn without_sign_in_everyone_is_let_in() {
        let open = AuthSettings::default();
        assert_eq!(decide(&from("127.0.0.1"), &open, NOW), Admit::Open);
        assert!(Admit::Open.is_admitted() && Admit::Open.name().is_none());
    }

    #[test]
    fn sessions_tokens_and_proxy_users() {
        let s = settings();
        let good = sign(&CookieKey::new(KEY), "alice", NOW + 60);
        let expired = sign(&CookieKey::new(KEY), "alice", NOW);
        let removed = sign(&CookieKey::new(KEY), "mallory", NOW + 60);
        let other_key = sign(&CookieKey::new(&[1; 32]), "alice", NOW + 60);
        let peer = from("127.0.0.2");
        let cases = [
            (peer, Admit::Deny(Refusal::NoCredentials)),
            (
                Credentials {
                    session: Some(&good),
                    ..peer
                },
                Admit::User("alice".into()),
            ),
            (
                Credentials {
                    session: Some(&expired),
                    ..peer
                },
                Admit::Deny(Refusal::BadSession),
            ),
            (
                Credentials {
                    session: Some(&removed),
                    ..peer
                },
                Admit::Deny(Refusal::BadSession),
            ),
            (
                Credentials {
                    session: Some(&other_key),
                    ..peer
                },
                Admit::Deny(Refusal::BadSession),
            ),
            (
                Credentials {
                    session: Some("junk"),
                    ..peer
                },
                Admit::Deny(Refusal::BadSession),
            ),
            (
                Credentials {
                    bearer: Some(b"ep_good"),
                    ..peer
                },
                Admit::Token("grafana".into()),
            ),
            (
                Credentials {
                    bearer: Some(b"ep_bad"),
                    ..peer
                },
                Admit::Deny(Refusal::WrongToken),
            ),
            (
                Credentials {
                    bearer: Some(b"ep_bad"),
                    session: Some(&good),
                    ..peer
                },
                Admit::Deny(Refusal::WrongToken),
            ),
            // The header from a peer that is not a trusted proxy is ignored.
            (
                Credentials {
                    proxy_user: Some("bob"),
                    ..peer
                },
                Admit::Deny(Refusal::NoCredentials),
            ),
            (
                Credentials {
                    proxy_user: Some("bob"),
                    ..from("127.0.0.1")
                },
                Admit::Proxy("bob".into()),
            ),
            (
                Credentials {
                    proxy_user: Some("bob"),
                    ..from("::ffff:127.0.0.1")
                },
                Admit::Proxy("bob".into()),
            ),
            (
                Credentials {
                    proxy_user: Some(" "),
                    session: Some(&good),
                    ..from("127.0.0.1")
                },
                Admit::User("alice".into()),
            ),
            (
                Credentials {
                    proxy_user: Some("a\nb"),
                    ..from("127.0.0.1")
                },
                Admit::Deny(Refusal::NoCredentials),
            ),
        ];
        for (creds, want) in cases {
            assert_eq!(decide(&creds, &s, NOW), want, "{creds:?}");
        }
    }

    #[test]
    fn the_proxy_header_counts_only_when_configured() {
        let s = AuthSettings {
            proxy_user_header: None,
            ..settings()
        };
        let creds = Credentials {
            proxy_user: Some("bob"),
            ..from("127.0.0.1")
        };
        assert_eq!(decide(&creds, &s, NOW), Admit::Deny(Refusal::NoCredentials));
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        for (next, want) in [
            (Some("/boards/closet-1?x=1"), "/boards/closet-1?x=1"),
            (Some("/"), "/"),
            (None, "/"),
            (Some(""), "/"),
            (Some("//elsewhere/"), "/"),
            (Some("/\\elsewhere"), "/"),
            (Some("/a//b"), "/"),
            (Some("https://elsewhere/"), "/"),
            (Some("javascript:alert(1)"), "/"),
            (Some("boards"), "/"),
            (Some("/a\r\nSet-Cookie: x"), "/"),
            (Some("/a b"), "/"),
            (Some("/é"), "/"),
        ] {
            assert_eq!(safe_next(next), want, "{next:?}");
        }
        assert_eq!(login_location("/"), "/login");
        assert_eq!(
            login_location("/availability?window=7d"),
            "/login?next=%2Favailability%3Fwindow%3D7d"
        );
        assert_eq!(login_location("//x"), "/login");
    }
}
