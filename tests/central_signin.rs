//! Sign-in for `edgeprobe central`, through the real binary against a
//! test MongoDB (nx-27017 on 127.0.0.1): the config is made with the
//! binary's own `hash-password` and `new-token`, then pages, the API,
//! `/healthz`, a proxy's user header, the cookie across replicas, and
//! where central agrees to listen without sign-in.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::central::{central_command, hash_password, stderr, stdout};
use common::mongo::TestMongo;
use common::monitor::{free_port, request, Response, RunningMonitor};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery staple";

/// A token and its `[[auth.tokens]]` entry, from `edgeprobe central
/// new-token`.
fn new_token(name: &str) -> (String, String) {
    let out = central_command(&["new-token", "--name", name], "");
    assert!(out.status.success(), "new-token: {}", stderr(&out));
    let text = stdout(&out);
    let token = text.lines().next().expect("a token line").to_string();
    let entry = text
        .split_once("[[auth.tokens]]")
        .map(|(_, e)| format!("[[auth.tokens]]{e}"))
        .expect("an entry");
    (token, entry)
}

/// A config directory: a cookie key file and `central.toml` for user
/// alice and one token, trusting `proxies` for `X-Forwarded-User`.
struct Setup {
    dir: tempfile::TempDir,
    token: String,
    hash: String,
    token_entry: String,
}

impl Setup {
    fn new() -> Setup {
        let (token, token_entry) = new_token("grafana");
        let setup = Setup {
            dir: tempfile::tempdir().expect("tempdir"),
            token,
            hash: hash_password(PASSWORD),
            token_entry,
        };
        setup.key_file("cookie.key", b'k');
        setup
    }

    /// A 32-byte key file filled with `byte`.
    fn key_file(&self, name: &str, byte: u8) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, [byte; 32]).expect("write key file");
        path
    }

    /// A config with `key` as the cookie key file and, unless `proxies`
    /// is empty, those proxies trusted for `X-Forwarded-User`.
    fn config(&self, name: &str, key: &str, proxies: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let key = self.dir.path().join(key);
        let proxy = if proxies.is_empty() {
            String::new()
        } else {
            format!("trusted_proxies = [{proxies}]\nproxy_user_header = \"X-Forwarded-User\"\n")
        };
        std::fs::write(
            &path,
            format!(
                "[auth]\ncookie_key_file = {key:?}\n{proxy}\
                 [[auth.users]]\nname = \"alice\"\npassword_hash = \"{}\"\n{}",
                self.hash, self.token_entry
            ),
        )
        .expect("write config");
        path
    }
}

fn start(mongo: &TestMongo, config: &Path) -> RunningMonitor {
    RunningMonitor::start_central(&[
        "--mongo-uri",
        &mongo.uri(),
        "--config",
        config.to_str().expect("utf-8 path"),
    ])
}

fn get_with(central: &RunningMonitor, path: &str, headers: &[(&str, &str)]) -> Response {
    request(central.addr, "GET", path, headers, b"")
}

fn sign_in(central: &RunningMonitor, name: &str, password: &str, next: &str) -> Response {
    let body = format!(
        "name={name}&password={}&next={next}",
        password.replace(' ', "+")
    );
    central.post(
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

/// `edgeprobe_session=VALUE` from a response's `Set-Cookie`.
fn session_cookie(r: &Response) -> String {
    let set = r.header("set-cookie").expect("Set-Cookie");
    set.split(';').next().expect("name=value").to_string()
}

fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

#[test]
fn pages_send_browsers_to_sign_in_and_a_password_gives_a_session() {
    let setup = Setup::new();
    let mongo = TestMongo::start();
    let central = start(
        &mongo,
        &setup.config("central.toml", "cookie.key", "\"127.0.0.1\""),
    );

    // Not signed in: pages go to the form, which comes back to them.
    let r = central.get("/");
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    let r = central.get("/availability?window=7d");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Favailability%3Fwindow%3D7d")
    );
    let form = central.get("/login?next=%2Fboards%2Fcloset-1");
    assert_eq!(form.status, 200);
    assert!(
        form.text().contains(r#"name="password""#),
        "{}",
        form.text()
    );
    assert!(form.text().contains(r#"value="/boards/closet-1""#));
    // The form runs no script either: the same policy as every page.
    let policy = form.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.starts_with("default-src 'none'") && !policy.contains("script-src"),
        "{policy}"
    );
    assert_eq!(central.get("/static/style.css").status, 200);

    // Wrong password, unknown name: the same 401, after the delay,
    // counted and logged without the password.
    for (name, password) in [("alice", "not the password at all"), ("mallory", PASSWORD)] {
        let began = Instant::now();
        let r = sign_in(&central, name, password, "%2F");
        assert_eq!(r.status, 401, "{name}: {}", r.text());
        assert!(r.text().contains("wrong name or password"), "{}", r.text());
        assert!(r.header("set-cookie").is_none());
        assert!(
            began.elapsed() >= Duration::from_millis(900),
            "{:?}",
            began.elapsed()
        );
    }
    let log = central.log();
    assert!(
        log.contains("failed sign-in from 127.0.0.1:") && log.contains("an unknown name"),
        "{log}"
    );
    assert!(
        !log.contains("not the password") && !log.contains(PASSWORD),
        "{log}"
    );
    assert!(
        !log.contains("mallory"),
        "an unknown name stays out of the log:\n{log}"
    );

    // The right password: a cookie, and back to where the browser was.
    let r = sign_in(&central, "alice", PASSWORD, "%2Fboards%2Fcloset-1");
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/boards/closet-1"));
    let set = r.header("set-cookie").expect("Set-Cookie").to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(
            set.split("; ").any(|a| a == attribute),
            "{attribute}: {set}"
        );
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    assert!(set.starts_with("edgeprobe_session=alice."), "{set}");
    let cookie = session_cookie(&r);
    let page = get_with(&central, "/", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("signed in as alice"));

    // The failures show on /healthz, to a signed-in caller only.
    let health = get_with(&central, "/healthz", &[("Cookie", &cookie)]).json();
    assert_eq!(health["failed_logins"], 2, "{health:#}");
    assert_eq!(keys(&central.get("/healthz").json()), ["status"]);

    // A `next` that leaves the site is not followed.
    let r = sign_in(&central, "alice", PASSWORD, "%2F%2Felsewhere%2F");
    assert_eq!(r.header("location"), Some("/"));

    // Behind a trusted proxy that says HTTPS, the cookie is Secure.
    let body = format!("name=alice&password={}", PASSWORD.replace(' ', "+"));
    let r = central.post(
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-Proto", "https"),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(r
        .header("set-cookie")
        .expect("cookie")
        .ends_with("; Secure"));

    // Signing out clears the cookie.
    let out = central.post("/logout", &[("Cookie", &cookie)], b"");
    assert_eq!((out.status, out.header("location")), (303, Some("/login")));
    assert!(out
        .header("set-cookie")
        .expect("cookie")
        .contains("Max-Age=0"));
    assert_eq!(central.get("/logout").status, 405);
}

#[test]
fn a_session_from_one_replica_works_on_another_with_the_same_key_only() {
    let setup = Setup::new();
    let mongo = TestMongo::start();
    let config = setup.config("central.toml", "cookie.key", "");
    let first = start(&mongo, &config);
    let second = start(&mongo, &config);
    assert_ne!(first.addr, second.addr);
    setup.key_file("other.key", b'o');
    let other = start(&mongo, &setup.config("other.toml", "other.key", ""));

    let r = sign_in(&first, "alice", PASSWORD, "%2F");
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = session_cookie(&r);
    for (replica, what) in [
        (&first, "the replica that signed it"),
        (&second, "the other replica"),
    ] {
        let page = get_with(replica, "/", &[("Cookie", &cookie)]);
        assert_eq!(page.status, 200, "{what}: {}", page.text());
    }

    // One byte of the signature changed: a login page, as without one.
    let mut tampered = cookie.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let r = get_with(&second, "/boards/x", &[("Cookie", &tampered)]);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login?next=%2Fboards%2Fx"));
    let r = get_with(&second, "/api/v1/boards", &[("Cookie", &tampered)]);
    assert_eq!(r.status, 401);

    // The user's name changed in an otherwise valid cookie.
    let renamed = cookie.replacen("=alice.", "=alicf.", 1);
    assert_eq!(get_with(&second, "/", &[("Cookie", &renamed)]).status, 303);

    // Another key file: the cookie means nothing there.
    let r = get_with(&other, "/", &[("Cookie", &cookie)]);
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
}

#[test]
fn api_clients_need_a_configured_bearer_token() {
    let setup = Setup::new();
    let mongo = TestMongo::start();
    let central = start(&mongo, &setup.config("central.toml", "cookie.key", ""));

    let r = central.get("/api/v1/boards");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("Bearer")),
        "{}",
        r.text()
    );
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("Bearer")));

    let bearer = format!("Bearer {}", setup.token);
    let r = get_with(&central, "/api/v1/boards", &[("Authorization", &bearer)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["boards"], Value::Array(vec![]));

    let mut wrong = setup.token.clone();
    wrong.pop();
    wrong.push(if setup.token.ends_with('A') { 'B' } else { 'A' });
    let r = get_with(
        &central,
        "/api/v1/boards",
        &[("Authorization", &format!("Bearer {wrong}"))],
    );
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.contains("invalid_token")));
    // The hash from the config is no token.
    let sha = setup.token_entry.split('"').nth(3).expect("sha256 value");
    let r = get_with(
        &central,
        "/api/v1/boards",
        &[("Authorization", &format!("Bearer {sha}"))],
    );
    assert_eq!(r.status, 401);

    // /healthz: ok or not for anyone, the details with a token.
    let bare = central.get("/healthz");
    assert_eq!(bare.status, 200);
    assert_eq!(keys(&bare.json()), ["status"], "{}", bare.text());
    assert_eq!(bare.json()["status"], "ok");
    let full = get_with(&central, "/healthz", &[("Authorization", &bearer)]).json();
    assert_eq!(full["status"], "ok");
    assert!(
        full["server"]
            .as_str()
            .is_some_and(|s| s.contains("127.0.0.1")),
        "{full:#}"
    );
    assert_eq!(full["failed_logins"], 0);
}

#[test]
fn a_proxy_user_header_counts_only_from_a_trusted_proxy() {
    let setup = Setup::new();
    let mongo = TestMongo::start();
    let trusted = start(
        &mongo,
        &setup.config("trusted.toml", "cookie.key", "\"127.0.0.0/8\""),
    );
    let elsewhere = start(
        &mongo,
        &setup.config("elsewhere.toml", "cookie.key", "\"127.0.0.2\""),
    );
    let header = [("X-Forwarded-User", "bob")];

    let r = get_with(&trusted, "/", &header);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get_with(&trusted, "/api/v1/boards", &header).status, 200);
    // Only a session cookie gets the sign-out button.
    assert!(!r.text().contains("/logout"));

    let r = get_with(&elsewhere, "/", &header);
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    assert_eq!(get_with(&elsewhere, "/api/v1/boards", &header).status, 401);
}

#[test]
fn without_sign_in_central_listens_on_loopback_only() {
    let mongo = TestMongo::start();
    let port = free_port();
    let asked = format!("0.0.0.0:{port}");
    let central = RunningMonitor::start_command(&[
        "central",
        "--mongo-uri",
        &mongo.uri(),
        "--listen",
        &asked,
    ]);
    let log = central.log();
    assert!(
        log.contains(&format!("dashboard on http://127.0.0.1:{port}/")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "listening on 127.0.0.1:{port} only instead of {asked}"
        )),
        "{log}"
    );
    // Open, but only here: no sign-in asked.
    assert_eq!(central.get("/").status, 200);
}

#[test]
fn no_auth_listens_as_asked_and_says_so() {
    let mongo = TestMongo::start();
    let port = free_port();
    let asked = format!("0.0.0.0:{port}");
    let central = RunningMonitor::start_command(&[
        "central",
        "--mongo-uri",
        &mongo.uri(),
        "--listen",
        &asked,
        "--no-auth",
    ]);
    let log = central.log();
    assert!(
        log.contains(&format!(
            "edgeprobe: central: --no-auth: anyone who can reach {asked} sees the whole fleet"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("dashboard on http://{asked}/")),
        "{log}"
    );
    assert_eq!(central.get("/").status, 200);
    let health = central.get("/healthz").json();
    assert!(
        health["server"].is_string(),
        "sign-in off: details for all: {health:#}"
    );
}

#[test]
fn no_auth_with_users_and_bad_configs_are_refused_at_start() {
    let setup = Setup::new();
    let config = setup.config("central.toml", "cookie.key", "");
    let config = config.to_str().expect("utf-8 path");
    let uri = "mongodb://127.0.0.1:9/";
    let out = central_command(&["--mongo-uri", uri, "--config", config, "--no-auth"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--no-auth turns sign-in off"),
        "{}",
        stderr(&out)
    );

    let short = setup.key_file("short.key", b's');
    std::fs::write(&short, b"12345").expect("write");
    let bad = setup.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[auth]\ncookie_key_file = {short:?}\n[[auth.users]]\nname = \"alice\"\npassword_hash = \"{}\"\n",
            setup.hash
        ),
    )
    .expect("write");
    let out = central_command(
        &["--mongo-uri", uri, "--config", bad.to_str().expect("utf-8")],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    let why = stderr(&out);
    assert!(
        why.contains(&format!(
            "[auth] cookie_key_file: {} holds 5 bytes; write at least 32 random bytes: head -c 32 /dev/urandom > {}",
            short.display(),
            short.display()
        )),
        "{why}"
    );
}

#[test]
fn hash_password_refuses_short_passwords() {
    let out = central_command(&["hash-password"], "eleven-char\n");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("at least 12"), "{}", stderr(&out));
    let out = central_command(&["hash-password"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no password"), "{}", stderr(&out));
}

#[test]
fn every_route_but_the_open_ones_needs_sign_in() {
    let setup = Setup::new();
    let mongo = TestMongo::start();
    let central = start(&mongo, &setup.config("central.toml", "cookie.key", ""));
    // One path per route of src/central/routes.rs, and paths that match
    // none: an unknown path is refused as well, never told apart.
    let pages = [
        "/",
        "/availability?window=30d",
        "/boards/closet-1",
        "/targets/198.18.0.1",
        "/nothing-here",
        "/boards/",
    ];
    for path in pages {
        let r = central.get(path);
        assert_eq!(r.status, 303, "{path}: {}", r.text());
        assert!(
            r.header("location")
                .is_some_and(|l| l.starts_with("/login")),
            "{path}"
        );
    }
    let api = [
        "/api/v1/boards",
        "/api/v1/availability?window=24h",
        "/api/v1/targets/198.18.0.1",
        "/api/v1/nothing-here",
    ];
    for path in api {
        let r = central.get(path);
        assert_eq!(r.status, 401, "{path}: {}", r.text());
    }
    // What stays open: the form, the stylesheet, the bare health.
    assert_eq!(central.get("/login").status, 200);
    assert_eq!(central.get("/static/style.css").status, 200);
    let health = central.get("/healthz");
    assert_eq!(health.status, 200);
    let keys: Vec<String> = health
        .json()
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["status"], "no details without sign-in");
}
