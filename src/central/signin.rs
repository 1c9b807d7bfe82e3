//! The HTTP edge of sign-in: reading a request's credentials for the
//! [`gate`], answering those it refuses (pages: 303 to
//! `/login?next=…`; `/api/`: 401 JSON with `WWW-Authenticate: Bearer`),
//! and `/login` and `/logout`.
//!
//! `POST /login` checks the password with argon2 off the async workers,
//! at most [`LOGIN_CHECKS_AT_ONCE`] at a time (more get 429 with
//! `Retry-After`); a failure is answered after [`FAILED_LOGIN_DELAY`]
//! with a message that does not say whether the name exists, counted in
//! [`CentralState::failed_logins`], and logged with the client's address.
//! Success sets the signed session cookie ([`cookie`]) and sends
//! the browser back to where it was going, if that is a local path.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};

use super::auth::gate::{self, login_location, safe_next};
use super::auth::password::verify_password;
use super::auth::{cookie, Admit, AuthSettings, Credentials, Refusal};
use super::public_url::Origin;
use super::views;
use super::CentralState;
use crate::clock::Timestamp;
use crate::http::query::{param, parse_pairs};
use crate::http::response::{html, json, method_not_allowed, see_other, ErrorDoc, Resp};
use crate::http::secret::bearer_token;
use crate::http::Peer;

/// Password checks run at once; argon2 takes a core and 19 MiB each.
pub const LOGIN_CHECKS_AT_ONCE: usize = 2;

/// How long a failed sign-in waits before it is answered.
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);

/// The largest sign-in form read.
const LOGIN_BODY_MAX: usize = 8 * 1024;

/// What a failed sign-in says, whichever of the two was wrong.
pub const WRONG_NAME_OR_PASSWORD: &str = "wrong name or password";

/// The challenge of a 401 from the API.
const CHALLENGE: &str = "Bearer realm=\"edgeprobe central\"";

/// The address of the connection `req` came on.
pub fn peer<B>(req: &Request<B>) -> Option<SocketAddr> {
    req.extensions().get::<Peer>().map(|p| p.0)
}

/// The client's side of `req` as a trusted proxy describes it
/// (`X-Forwarded-Proto`, `X-Forwarded-Host`); from anyone else, plain
/// HTTP to the address it used (central itself speaks plain HTTP).
pub fn origin<B>(req: &Request<B>, settings: &AuthSettings) -> Origin {
    let trusted = peer(req).is_some_and(|p| settings.is_trusted_proxy(p.ip()));
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    Origin::from_headers(
        trusted,
        header("x-forwarded-proto"),
        header("x-forwarded-host"),
    )
}

/// Whether `req` reached us over HTTPS: when a trusted proxy says so.
/// Decides the cookie's `Secure`.
pub fn is_https<B>(req: &Request<B>, settings: &AuthSettings) -> bool {
    origin(req, settings).https
}

/// Where the site starts: `/`, or the base path and `/`.
fn home(state: &CentralState) -> String {
    format!("{}/", state.base_path.as_str())
}

/// The cookie's `Path`: the site, not the host's other paths.
fn cookie_path(state: &CentralState) -> String {
    home(state)
}

/// A redirect to `path` (already under the base path), absolute when a
/// trusted proxy named the public host.
fn redirect<B>(state: &CentralState, req: &Request<B>, path: &str) -> Resp {
    see_other(&origin(req, &state.auth).url(path))
}

/// What `req` presents: its peer, session cookie, bearer token and the
/// configured proxy user header.
pub fn credentials<'r, B>(req: &'r Request<B>, settings: &AuthSettings) -> Credentials<'r> {
    let headers = req.headers();
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    Credentials {
        peer: peer(req).map(|p| p.ip()),
        session: cookie::find(cookies, cookie::COOKIE_NAME),
        bearer: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| bearer_token(v.as_bytes())),
        proxy_user: settings
            .proxy_user_header
            .as_ref()
            .and_then(|h| headers.get(h))
            .and_then(|v| v.to_str().ok()),
    }
}

/// Who `req` is, now.
pub fn admit<B>(req: &Request<B>, settings: &AuthSettings) -> Admit {
    gate::decide(&credentials(req, settings), settings, unix_now())
}

fn unix_now() -> u64 {
    Timestamp::now().millis().max(0).unsigned_abs() / 1000
}

/// The answer to a request the gate refused: `/api/` gets 401 JSON with
/// a Bearer challenge, a page a redirect to the sign-in form that comes
/// back to it.
pub fn refuse<B>(state: &CentralState, req: &Request<B>, api: bool, refusal: Refusal) -> Resp {
    if api {
        let mut resp = json(
            StatusCode::UNAUTHORIZED,
            &ErrorDoc {
                error: refusal.message(),
            },
        );
        let challenge = match refusal {
            Refusal::WrongToken => format!("{CHALLENGE}, error=\"invalid_token\""),
            Refusal::NoCredentials | Refusal::BadSession => CHALLENGE.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return resp;
    }
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!(
        "{}{}",
        state.base_path.as_str(),
        login_location(path_and_query)
    );
    redirect(state, req, &location)
}

/// `/login`: the form (GET, HEAD) or the password check (POST). With
/// sign-in off there is nothing to sign in to: back to `/`.
pub async fn login<B: FormBody>(state: &CentralState, req: Request<B>) -> Resp {
    if !state.auth.signs_in() {
        return redirect(state, &req, &home(state));
    }
    match *req.method() {
        Method::GET | Method::HEAD => {
            let next = param(req.uri().query(), "next");
            let next = next_or_home(state, safe_next(next.as_deref()));
            html(
                StatusCode::OK,
                views::login_page(state.base_path.as_str(), None, "", &next),
            )
        }
        Method::POST => check_password(state, req).await,
        _ => method_not_allowed(false, "GET, HEAD, POST", req.uri().path()),
    }
}

/// `POST /logout`: the cookie cleared, back to the sign-in form.
pub fn logout<B>(state: &CentralState, req: &Request<B>) -> Resp {
    if req.method() != Method::POST {
        return method_not_allowed(false, "POST", req.uri().path());
    }
    let mut resp = redirect(state, req, &format!("{}/login", state.base_path.as_str()));
    set_cookie(
        &mut resp,
        &cookie::clear_cookie(is_https(req, &state.auth), &cookie_path(state)),
    );
    resp
}

/// `next` as the form carries it: where to go after signing in, the
/// site's start when it names nothing else.
fn next_or_home(state: &CentralState, next: &str) -> String {
    if next == "/" {
        home(state)
    } else {
        next.to_string()
    }
}

fn set_cookie(resp: &mut Resp, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A request body the sign-in form can be read from: hyper's
/// [`Incoming`](hyper::body::Incoming), or any other (the tests').
pub trait FormBody: hyper::body::Body<Error: Into<BoxError>> {}

impl<B: hyper::body::Body<Error: Into<BoxError>>> FormBody for B {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The sign-in form as posted.
struct LoginForm {
    name: String,
    password: String,
    next: String,
}

impl LoginForm {
    fn parse(body: &str) -> LoginForm {
        let pairs = parse_pairs(body);
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        LoginForm {
            name: field("name").unwrap_or("").trim().to_string(),
            password: field("password").unwrap_or("").to_string(),
            next: safe_next(field("next")).to_string(),
        }
    }
}

async fn check_password<B: FormBody>(state: &CentralState, req: Request<B>) -> Resp {
    let peer = peer(&req);
    let origin = origin(&req, &state.auth);
    let form = match read_form(state.base_path.as_str(), req).await {
        Ok(form) => form,
        Err(resp) => return resp,
    };
    let Ok(permit) = state.login_checks.try_acquire() else {
        return too_many_at_once(state.base_path.as_str(), &form);
    };
    let hash = state.auth.password_hash(&form.name).map(str::to_string);
    let known = hash.is_some();
    // An unknown name costs the same check, against the decoy.
    let matched = match hash.or_else(|| state.auth.decoy_hash.clone()) {
        None => false,
        Some(hash) => {
            let password = form.password.clone();
            tokio::task::spawn_blocking(move || verify_password(&hash, &password))
                .await
                .unwrap_or(false)
        }
    };
    drop(permit);
    match (&state.auth.cookie_key, known && matched) {
        (Some(key), true) => {
            let expires = unix_now().saturating_add(state.auth.session.as_secs());
            let value = cookie::sign(key, &form.name, expires);
            let mut resp = see_other(&origin.url(&next_or_home(state, &form.next)));
            set_cookie(
                &mut resp,
                &cookie::set_cookie(
                    &value,
                    state.auth.session,
                    origin.https,
                    &cookie_path(state),
                ),
            );
            resp
        }
        _ => failed(state, &form, known, peer).await,
    }
}

/// A wrong name or password: counted, logged (the name only when it is a
/// configured user: a password typed into the name field stays out of
/// the log), answered after the delay.
async fn failed(
    state: &CentralState,
    form: &LoginForm,
    known: bool,
    peer: Option<SocketAddr>,
) -> Resp {
    let count = state.failed_logins.fetch_add(1, Ordering::Relaxed) + 1;
    let from = peer.map_or_else(|| "an unknown address".to_string(), |p| p.to_string());
    let who = if known {
        format!("wrong password for {:?}", form.name)
    } else {
        "an unknown name".to_string()
    };
    eprintln!("edgeprobe: central: failed sign-in from {from}: {who} ({count} since start)");
    tokio::time::sleep(FAILED_LOGIN_DELAY).await;
    html(
        StatusCode::UNAUTHORIZED,
        views::login_page(
            state.base_path.as_str(),
            Some(WRONG_NAME_OR_PASSWORD),
            &form.name,
            &form.next,
        ),
    )
}

fn too_many_at_once(base: &str, form: &LoginForm) -> Resp {
    let mut resp = html(
        StatusCode::TOO_MANY_REQUESTS,
        views::login_page(
            base,
            Some("Too many sign-ins at once; try again in a second."),
            &form.name,
            &form.next,
        ),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The form-urlencoded body, at most [`LOGIN_BODY_MAX`] bytes.
async fn read_form<B: FormBody>(base: &str, req: Request<B>) -> Result<LoginForm, Resp> {
    let refused =
        |status, message: &str| html(status, views::login_page(base, Some(message), "", "/"));
    let too_large = || {
        refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The sign-in form was too large.",
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > LOGIN_BODY_MAX) {
        return Err(too_large());
    }
    let bytes = match Limited::new(req.into_body(), LOGIN_BODY_MAX)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(_) => {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "The sign-in form did not arrive whole; send it again.",
            ))
        }
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "The sign-in form is not UTF-8 form data; send it from the page's form.",
        ));
    };
    Ok(LoginForm::parse(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_read_with_a_safe_next() {
        let f = LoginForm::parse("name=+alice+&password=a+b%26c&next=%2Fboards%2Fx");
        assert_eq!(
            (f.name.as_str(), f.password.as_str(), f.next.as_str()),
            ("alice", "a b&c", "/boards/x")
        );
        let f = LoginForm::parse("password=x&next=%2F%2Felsewhere");
        assert_eq!((f.name.as_str(), f.next.as_str()), ("", "/"));
    }

    #[test]
    fn https_only_when_a_trusted_proxy_says_so() {
        let settings = AuthSettings {
            trusted_proxies: vec![
                super::super::auth::settings::ProxyRange::parse("127.0.0.1").expect("ip")
            ],
            ..AuthSettings::default()
        };
        let req = |peer: &str, proto: Option<&str>| {
            let mut b = Request::builder().uri("/login");
            if let Some(p) = proto {
                b = b.header("X-Forwarded-Proto", p);
            }
            let mut r = b.body(()).expect("request");
            r.extensions_mut().insert(Peer(peer.parse().expect("addr")));
            r
        };
        assert!(is_https(&req("127.0.0.1:5000", Some("https")), &settings));
        assert!(is_https(&req("127.0.0.1:5000", Some("HTTPS")), &settings));
        assert!(is_https(
            &req("127.0.0.1:5000", Some("https, http")),
            &settings
        ));
        assert!(!is_https(&req("127.0.0.1:5000", Some("http")), &settings));
        assert!(!is_https(&req("127.0.0.1:5000", None), &settings));
        assert!(!is_https(&req("127.0.0.2:5000", Some("https")), &settings));
    }

    fn state_with_alice() -> CentralState {
        use crate::central::auth::cookie::CookieKey;
        use crate::central::auth::password::hash_password;
        use crate::central::auth::settings::User;
        use crate::central::MongoFleet;
        use crate::fleet::MongoSettings;
        // Never contacted: sign-in reads no data.
        let fleet = MongoFleet::new(&MongoSettings::new("mongodb://127.0.0.1:9")).expect("client");
        let hash = hash_password("alice's long password").expect("hash");
        let auth = AuthSettings {
            cookie_key: Some(CookieKey::new(&[7; 32])),
            session: Duration::from_secs(600),
            users: vec![User {
                name: "alice".into(),
                password_hash: hash.clone(),
            }],
            decoy_hash: Some(hash),
            ..AuthSettings::default()
        };
        CentralState::new(
            std::sync::Arc::new(fleet),
            "edgeprobe".into(),
            crate::http::Limits::default(),
            auth,
            crate::central::public_url::BasePath::default(),
            1,
        )
    }

    fn post(body: &'static str) -> Request<http_body_util::Full<bytes::Bytes>> {
        let mut req = Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                body.as_bytes(),
            )))
            .expect("request");
        req.extensions_mut()
            .insert(Peer("127.0.0.1:40000".parse().expect("addr")));
        req
    }

    #[tokio::test(start_paused = true)]
    async fn checks_beyond_the_slots_get_429_and_failures_are_counted_and_slowed() {
        let state = state_with_alice();
        let held: Vec<_> = (0..LOGIN_CHECKS_AT_ONCE)
            .map(|_| state.login_checks.try_acquire().expect("a slot"))
            .collect();
        let busy = login(&state, post("name=alice&password=alice's+long+password")).await;
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            state.failed_logins.load(Ordering::Relaxed),
            0,
            "not a failure"
        );
        drop(held);

        for body in [
            "name=alice&password=wrong",
            "name=nobody&password=alice's+long+password",
        ] {
            let began = tokio::time::Instant::now();
            let r = login(&state, post(body)).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{body}");
            assert!(began.elapsed() >= FAILED_LOGIN_DELAY, "{body}");
            assert!(r.headers().get(header::SET_COOKIE).is_none());
        }
        assert_eq!(state.failed_logins.load(Ordering::Relaxed), 2);
        assert_eq!(state.login_checks.available_permits(), LOGIN_CHECKS_AT_ONCE);

        let ok = login(
            &state,
            post("name=alice&password=alice's+long+password&next=%2Fx"),
        )
        .await;
        assert_eq!(ok.status(), StatusCode::SEE_OTHER);
        assert_eq!(ok.headers()[header::LOCATION], "/x");
        let cookie = ok.headers()[header::SET_COOKIE].to_str().expect("ascii");
        assert!(cookie.starts_with("edgeprobe_session=alice.") && cookie.contains("Max-Age=600"));
    }
}
