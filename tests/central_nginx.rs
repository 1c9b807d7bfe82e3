//! `edgeprobe central` published the way the README shows: behind a real
//! nginx from Debian, under the subpath `/edgeprobe/`, over TLS with a
//! throwaway certificate, sign-in on. Everything on 127.0.0.1: nginx on a
//! free port, central and the test MongoDB (nx-27017) behind it. The
//! client is curl, told to trust the test certificate.
//!
//! Checked: links, forms, redirects and the stylesheet stay under the
//! subpath; redirects name the public https origin that nginx forwards
//! (`X-Forwarded-Proto`, `X-Forwarded-Host` from the trusted proxy); the
//! session cookie is `Secure` and scoped to the subpath; the API answers
//! through the proxy with a cookie; central refuses what is outside its
//! base path.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::central::hash_password;
use common::fleet::{board, board_target, hour, insert, rollup};
use common::mongo::TestMongo;
use common::monitor::{free_port, request, RunningMonitor};
use edgeprobe::clock::Timestamp;

const PASSWORD: &str = "correct horse battery staple";

/// A real nginx terminating TLS for `/edgeprobe/` in front of `upstream`.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Nginx {
    fn start(upstream: SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .arg("-keyout")
            .arg(d.join("key.pem"))
            .arg("-out")
            .arg(d.join("cert.pem"))
            .output()
            .expect("run openssl (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let p = |name: &str| d.join(name).display().to_string();
        let conf = format!(
            "worker_processes 1;\n\
             daemon off;\n\
             pid {pid};\n\
             error_log {err} info;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n\
               access_log {access};\n\
               client_body_temp_path {tmp}/body;\n\
               proxy_temp_path {tmp}/proxy;\n\
               fastcgi_temp_path {tmp}/fastcgi;\n\
               uwsgi_temp_path {tmp}/uwsgi;\n\
               scgi_temp_path {tmp}/scgi;\n\
               server {{\n\
                 listen 127.0.0.1:{port} ssl;\n\
                 server_name localhost;\n\
                 ssl_certificate {cert};\n\
                 ssl_certificate_key {key};\n\
                 location /edgeprobe/ {{\n\
                   proxy_pass http://{upstream};\n\
                   proxy_set_header Host $host;\n\
                   proxy_set_header X-Forwarded-Proto $scheme;\n\
                   proxy_set_header X-Forwarded-Host $http_host;\n\
                   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 }}\n\
                 location / {{ return 404; }}\n\
               }}\n\
             }}\n",
            pid = p("nginx.pid"),
            err = p("error.log"),
            access = p("access.log"),
            tmp = d.display(),
            cert = p("cert.pem"),
            key = p("key.pem"),
        );
        std::fs::write(d.join("nginx.conf"), conf).expect("write nginx.conf");
        // Workers run as root's default `nobody`: let them into the
        // temporary directories.
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("error.log"))
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx (scripts/test.sh installs it)");
        let nginx = Nginx { child, dir, port };
        let up = common::eventually(Duration::from_secs(10), Duration::from_millis(100), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "nginx did not listen:\n{}", nginx.log());
        nginx
    }

    fn origin(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// `curl` through nginx: the status, the headers (names lower case)
    /// and the body. `extra` are more curl arguments (a cookie, a form).
    fn fetch(&self, path: &str, extra: &[&str]) -> Fetched {
        let out = Command::new("curl")
            .args(["-sS", "-i", "--http1.1", "--max-time", "30", "--cacert"])
            .arg(self.cert())
            .args(extra)
            .arg(format!("{}{path}", self.origin()))
            .output()
            .expect("run curl (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "curl {path}: {}\nnginx:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        Fetched::parse(&String::from_utf8_lossy(&out.stdout))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM: the master stops its workers first. A KILL would leave
        // them running, holding the port and every inherited descriptor.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let stopped =
            common::eventually(Duration::from_secs(10), Duration::from_millis(50), || {
                self.child.try_wait().ok().flatten()
            });
        if stopped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Fetched {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Fetched {
    fn parse(raw: &str) -> Fetched {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {raw:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Fetched {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every `href`, `action` and `src` of a page.
fn links(html: &str) -> Vec<&str> {
    ["href=\"", "action=\"", "src=\""]
        .iter()
        .flat_map(|attr| html.split(attr).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

fn assert_all_under_the_subpath(html: &str) {
    for link in links(html) {
        assert!(
            link.starts_with("/edgeprobe/") || link.starts_with('#'),
            "a link leaves the subpath: {link}\n{html}"
        );
    }
}

fn write_config(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("cookie.key"), [b'n'; 32]).expect("key file");
    let path = dir.join("central.toml");
    std::fs::write(
        &path,
        format!(
            "[auth]\ncookie_key_file = {:?}\ntrusted_proxies = [\"127.0.0.1\"]\n\
             [[auth.users]]\nname = \"alice\"\npassword_hash = \"{}\"\n",
            dir.join("cookie.key"),
            hash_password(PASSWORD)
        ),
    )
    .expect("write config");
    path
}

#[test]
fn central_behind_nginx_under_a_subpath_with_tls() {
    let nx = TestMongo::start();
    let now = Timestamp::now();
    insert(
        &nx.uri(),
        "boards",
        vec![board(
            "closet-1",
            now,
            now,
            [1, 0, 0, 0],
            0,
            vec![board_target(
                "198.18.0.10",
                "core switch",
                "working",
                now,
                None,
            )],
        )],
    );
    insert(
        &nx.uri(),
        "rollups",
        (0..48)
            .map(|h| rollup("closet-1", "198.18.0.10", hour(now, h), 60, 0, 0))
            .collect(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let central = RunningMonitor::start_central(&[
        "--mongo-uri",
        &nx.uri(),
        "--base-path",
        "/edgeprobe",
        "--config",
        config.to_str().expect("utf-8 path"),
    ]);
    let nginx = Nginx::start(central.addr);
    let origin = nginx.origin();

    // Not signed in: to the sign-in form, on the public https origin,
    // coming back to the page asked for.
    let r = nginx.fetch("/edgeprobe/boards/closet-1", &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.header("location").expect("a redirect").to_string();
    assert_eq!(
        location,
        format!("{origin}/edgeprobe/login?next=%2Fedgeprobe%2Fboards%2Fcloset-1")
    );
    let form = nginx.fetch(&location[origin.len()..], &[]);
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains(r#"action="/edgeprobe/login""#),
        "{}",
        form.body
    );
    assert_all_under_the_subpath(&form.body);
    let style = nginx.fetch("/edgeprobe/static/style.css", &[]);
    assert_eq!(style.status, 200);
    assert_eq!(
        style.header("content-type"),
        Some("text/css; charset=utf-8")
    );

    // A wrong password through the proxy: 401 and no cookie.
    let wrong = nginx.fetch(
        "/edgeprobe/login",
        &["--data", "name=alice&password=not+it&next=%2Fedgeprobe%2F"],
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());

    // Signing in: back to the page, with a Secure cookie for the subpath.
    let body = format!(
        "name=alice&password={}&next=%2Fedgeprobe%2Fboards%2Fcloset-1",
        PASSWORD.replace(' ', "+")
    );
    let signed = nginx.fetch("/edgeprobe/login", &["--data", &body]);
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(
        signed.header("location"),
        Some(format!("{origin}/edgeprobe/boards/closet-1").as_str())
    );
    let set = signed.header("set-cookie").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/edgeprobe/"] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    let cookie = set.split(';').next().expect("name=value").to_string();

    // Signed in: the pages, every link under the subpath, the chart, the
    // API.
    let page = nginx.fetch("/edgeprobe/boards/closet-1", &["-b", &cookie]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("core switch") && page.body.contains("<svg"));
    assert_all_under_the_subpath(&page.body);
    let index = nginx.fetch("/edgeprobe/", &["-b", &cookie]);
    assert_eq!(index.status, 200);
    assert_all_under_the_subpath(&index.body);
    let api = nginx.fetch(
        "/edgeprobe/api/v1/availability?window=24h",
        &["-b", &cookie],
    );
    assert_eq!(api.status, 200, "{}", api.body);
    let doc: serde_json::Value = serde_json::from_str(&api.body).expect("json");
    assert_eq!(doc["rows"][0]["rounds"], 24 * 60, "{doc:#}");
    let health = nginx.fetch("/edgeprobe/healthz", &[]);
    assert_eq!(health.body.trim(), r#"{"status":"ok"}"#);

    // Outside the subpath there is nothing, at nginx and at central.
    assert_eq!(nginx.fetch("/", &[]).status, 404);
    let direct = request(central.addr, "GET", "/boards/closet-1", &[], b"");
    assert_eq!(direct.status, 404);
    assert!(
        direct.text().contains("under /edgeprobe/"),
        "{}",
        direct.text()
    );
}
