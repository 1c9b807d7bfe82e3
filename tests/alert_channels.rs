//! The alert channels against real receivers on loopback, started here:
//! Debian's `python3-aiosmtpd` for e-mail and Debian's Prometheus
//! Alertmanager with a webhook receiver of its own (the test command
//! installs both).

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::monitor::free_port;
use common::webhook::WebhookReceiver;
use edgeprobe::alerts::deliver::Delivery;
use edgeprobe::alerts::email::{SmtpSettings, SmtpTarget};
use edgeprobe::alerts::settings::SmtpTls;

/// aiosmtpd with its Debugging handler, which prints every message it
/// takes to stdout; killed when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
}

impl SmtpServer {
    fn start() -> SmtpServer {
        let port = free_port();
        // Debian's Python: a python3 earlier on PATH (pyenv, a venv) does
        // not see Debian's packages.
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd (apt-get install python3-aiosmtpd; scripts/test.sh does)");
        let up = common::eventually(Duration::from_secs(20), Duration::from_millis(100), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(up.is_some(), "aiosmtpd did not listen on port {port}");
        SmtpServer { child, port }
    }

    /// Everything it printed, after stopping it.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let _ = self.child.wait();
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_alert_mail_arrives_with_its_subject_body_and_recipients() {
    let server = SmtpServer::start();
    let smtp = format!("127.0.0.1:{}", server.port);
    let to = [
        "noc@example.org".to_string(),
        "oncall@example.org".to_string(),
    ];
    let target = SmtpTarget::new(&SmtpSettings {
        smtp: &smtp,
        tls: SmtpTls::None,
        login: None,
        from: "edgeprobe@closet-3.example.org",
        to: &to,
        ca_file: None,
    })
    .unwrap();
    let d = target
        .send(
            "closet-3: 1 firing",
            "closet-3: 1 firing\n\nFIRING not working: 198.19.3.10 (files): no reply\n",
        )
        .await;
    assert_eq!(d, Delivery::Delivered);
    let printed = server.stop();
    assert!(printed.contains("Subject: closet-3: 1 firing"), "{printed}");
    assert!(
        printed.contains("FIRING not working: 198.19.3.10 (files): no reply"),
        "{printed}"
    );
    assert!(
        printed.contains("noc@example.org") && printed.contains("oncall@example.org"),
        "{printed}"
    );
    assert!(
        printed.contains("edgeprobe@closet-3.example.org"),
        "{printed}"
    );
}

#[tokio::test]
async fn no_smtp_server_is_a_failure_to_try_again() {
    let smtp = format!("127.0.0.1:{}", free_port());
    let to = ["noc@example.org".to_string()];
    let target = SmtpTarget::new(&SmtpSettings {
        smtp: &smtp,
        tls: SmtpTls::None,
        login: None,
        from: "edgeprobe@closet-3.example.org",
        to: &to,
        ca_file: None,
    })
    .unwrap();
    let d = target.send("s", "t").await;
    assert!(
        matches!(&d, Delivery::Failed(why) if why.starts_with(&smtp)),
        "{d:?}"
    );
}

/// Debian's Prometheus Alertmanager on loopback, routing everything at
/// once to a webhook receiver of this test; killed when dropped.
struct Alertmanager {
    child: Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start(webhook_port: u16) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{webhook_port}/am\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No cluster: nothing listens or gossips beyond this test.
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-alertmanager (apt-get install prometheus-alertmanager; scripts/test.sh does)");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let up = common::eventually(Duration::from_secs(30), Duration::from_millis(200), || {
            let r = common::monitor::try_request(addr, "GET", "/-/ready", &[], b"").ok()?;
            (r.status == 200).then_some(())
        });
        assert!(up.is_some(), "alertmanager did not get ready on {addr}");
        Alertmanager {
            child,
            addr,
            _dir: dir,
        }
    }

    /// `GET /api/v2/alerts`: the alerts it holds.
    fn alerts(&self) -> serde_json::Value {
        let r = common::monitor::request(self.addr, "GET", "/api/v2/alerts", &[], b"");
        serde_json::from_slice(&r.body).unwrap()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver on loopback, on a free port: every POST body it
/// takes, in order.
fn webhook_receiver() -> (u16, std::sync::mpsc::Receiver<serde_json::Value>) {
    webhook_receiver_bound(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
}

/// A webhook receiver on a given port.
fn webhook_receiver_on(port: u16) -> std::sync::mpsc::Receiver<serde_json::Value> {
    let (bound, rx) =
        webhook_receiver_bound(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    assert_eq!(bound, port);
    rx
}

/// The webhook receiver on `listener`: its port, and every POST body it
/// takes, in order.
fn webhook_receiver_bound(
    listener: std::net::TcpListener,
) -> (u16, std::sync::mpsc::Receiver<serde_json::Value>) {
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice(&body) {
                    let _ = tx.send(v);
                }
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_takes_the_alert_fires_its_webhook_and_resolves_it() {
    use edgeprobe::alerts::deliver::HttpTarget;
    use edgeprobe::alerts::message::alertmanager_alerts;
    use edgeprobe::alerts::{ActiveAlert, AlertKind, Notice, NoticeKind};
    use edgeprobe::clock::Timestamp;

    let (hook_port, hooks) = webhook_receiver();
    let am = Alertmanager::start(hook_port);
    let target =
        HttpTarget::new(format!("http://{}", am.addr).parse().unwrap(), &[], None).unwrap();
    let since = Timestamp::now();
    let firing = ActiveAlert {
        kind: AlertKind::Down {
            target: "198.19.3.10".into(),
        },
        since,
        last_sent: Some(since),
        detail: "198.19.3.10 (files): no reply to 4 requests".into(),
        name: Some("files".into()),
        group: Some("lan".into()),
    };
    // Open for five minutes unless told again, as the board sends it.
    let open_until = since.add(Duration::from_secs(300));
    let body =
        serde_json::to_vec(&alertmanager_alerts("closet-3", &[firing], &[], open_until)).unwrap();
    let d = target
        .post(Some("/api/v2/alerts"), "application/json", body)
        .await;
    assert_eq!(d, Delivery::Delivered);

    let held = am.alerts();
    let alert = &held[0];
    assert_eq!(alert["labels"]["alertname"], "EdgeprobeTargetDown");
    assert_eq!(alert["labels"]["board"], "closet-3");
    assert_eq!(alert["labels"]["target"], "198.19.3.10");
    assert_eq!(alert["labels"]["name"], "files");
    assert_eq!(alert["labels"]["group"], "lan");
    assert_eq!(alert["status"]["state"], "active", "{held:#}");

    // Its own webhook fired.
    let hook = hooks
        .recv_timeout(Duration::from_secs(30))
        .expect("alertmanager's webhook");
    assert_eq!(hook["status"], "firing", "{hook:#}");
    assert_eq!(hook["alerts"][0]["labels"]["target"], "198.19.3.10");

    // Resolved: endsAt now.
    let resolved = Notice {
        kind: NoticeKind::Resolved,
        key: "down/198.19.3.10".into(),
        target: Some("198.19.3.10".into()),
        name: Some("files".into()),
        group: Some("lan".into()),
        at: Timestamp::now(),
        detail: "198.19.3.10 (files): no reply to 4 requests".into(),
    };
    let body = serde_json::to_vec(&alertmanager_alerts(
        "closet-3",
        &[],
        &[resolved],
        Timestamp::now(),
    ))
    .unwrap();
    let d = target
        .post(Some("/api/v2/alerts"), "application/json", body)
        .await;
    assert_eq!(d, Delivery::Delivered);
    let hook = hooks
        .recv_timeout(Duration::from_secs(30))
        .expect("the resolved webhook");
    assert_eq!(hook["status"], "resolved", "{hook:#}");
}

#[tokio::test]
async fn alertmanager_refuses_a_malformed_alert_and_says_why() {
    use edgeprobe::alerts::deliver::HttpTarget;
    let (hook_port, _hooks) = webhook_receiver();
    let am = Alertmanager::start(hook_port);
    let target =
        HttpTarget::new(format!("http://{}", am.addr).parse().unwrap(), &[], None).unwrap();
    let d = target
        .post(
            Some("/api/v2/alerts"),
            "application/json",
            br#"[{"labels":{}}]"#.to_vec(),
        )
        .await;
    assert!(matches!(&d, Delivery::Refused { status: 400, .. }), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_for_a_while_gets_everything_once_and_blocks_no_other() {
    use edgeprobe::alerts::sender::{send_due, Courier, RETRY_START};
    use edgeprobe::clock::Timestamp;
    use edgeprobe::store::{QueuedNotification, RoundId, RoundRecord};
    use std::collections::HashMap;

    let dir = tempfile::tempdir().unwrap();
    let store = empty_store(dir.path());
    let (up_port, up_hooks) = webhook_receiver();
    let down_port = free_port();
    let webhook = loopback_webhook;
    let channels = [webhook(up_port), webhook(down_port)];
    let couriers: HashMap<String, Courier> = channels
        .iter()
        .map(|c| (c.label(), Courier::for_channel(c).unwrap()))
        .collect();
    let t0 = Timestamp::now();
    // Three rounds, each a message for both channels.
    for n in 1..=3u64 {
        let notifications = channels
            .iter()
            .map(|c| QueuedNotification {
                channel: c.label(),
                made_at: t0,
                subject: format!("round {n}"),
                content_type: "application/json".into(),
                body: serde_json::to_vec(&serde_json::json!({ "round": n })).unwrap(),
            })
            .collect();
        let record = RoundRecord {
            round: RoundId(n),
            started: t0,
            finished: t0,
            notifications,
            ..RoundRecord::default()
        };
        store.lock().unwrap().write_round(&record).unwrap();
    }
    let day = Duration::from_secs(86_400);

    // The live receiver gets its three; the dead one waits.
    let r = send_due(&store, &couriers, t0, day).await.unwrap();
    assert_eq!(r.count("delivered"), 3, "{r:?}");
    assert_eq!(
        r.count("failed"),
        1,
        "a dead channel is tried once a pass: {r:?}"
    );
    assert_eq!(r.queued, 3, "the dead channel's three wait");
    let got: Vec<u64> = (0..3)
        .map(|_| {
            up_hooks.recv_timeout(Duration::from_secs(10)).unwrap()["round"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, [1, 2, 3]);

    // Down for a while: passes before the backoff ends send nothing.
    let r = send_due(&store, &couriers, t0.add(RETRY_START / 2), day)
        .await
        .unwrap();
    assert!(r.attempts.is_empty(), "{r:?}");

    // Up again: everything arrives, once, in order.
    let down_hooks = webhook_receiver_on(down_port);
    let r = send_due(&store, &couriers, t0.add(RETRY_START), day)
        .await
        .unwrap();
    assert_eq!(r.count("delivered"), 3, "{r:?}");
    let got: Vec<u64> = (0..3)
        .map(|_| {
            down_hooks.recv_timeout(Duration::from_secs(10)).unwrap()["round"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(store.lock().unwrap().notification_backlog().unwrap().0, 0);
    let r = send_due(&store, &couriers, t0.add(day / 2), day)
        .await
        .unwrap();
    assert_eq!(r, Default::default(), "nothing is sent twice");
    assert!(up_hooks.try_recv().is_err() && down_hooks.try_recv().is_err());
}

/// A throwaway CA and a server certificate it signed for IP 127.0.0.1,
/// made by the `openssl` command in a temporary directory.
struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    fn new() -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("/usr/bin/openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("run /usr/bin/openssl (apt-get install openssl)");
            common::assert_success(&out, &format!("openssl {args:?}"));
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &[
                    "req",
                    "-x509",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=edgeprobe test CA",
                ][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem"],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
                &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req", "-subj", "/CN=127.0.0.1"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr"],
            ]
            .concat(),
        );
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n\
             keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        TestCa { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// `scripts/lib/webhook-receiver.py` speaking HTTPS on loopback with the
/// test CA's server certificate.
fn https_receiver(ca: &TestCa) -> WebhookReceiver {
    WebhookReceiver::start_https(&ca.path("server.pem"), &ca.path("server.key"))
}

/// An empty store in `dir`, shared as the sender takes it.
fn empty_store(dir: &std::path::Path) -> std::sync::Arc<std::sync::Mutex<edgeprobe::store::Store>> {
    use edgeprobe::store::{RetentionPolicy, Store};
    let store = Store::open(dir, RetentionPolicy::default()).unwrap();
    std::sync::Arc::new(std::sync::Mutex::new(store))
}

/// A JSON webhook to `/hook` on loopback `port`: no headers, no CA file.
fn loopback_webhook(port: u16) -> edgeprobe::alerts::settings::Channel {
    use edgeprobe::alerts::settings::{Channel, WebhookFormat};
    Channel::Webhook {
        url: format!("http://127.0.0.1:{port}/hook").parse().unwrap(),
        format: WebhookFormat::Json,
        headers: vec![],
        ca_file: None,
    }
}

/// A store with one queued notification per channel, made now.
fn queued(
    dir: &std::path::Path,
    channels: &[&edgeprobe::alerts::settings::Channel],
    body: &serde_json::Value,
) -> std::sync::Arc<std::sync::Mutex<edgeprobe::store::Store>> {
    use edgeprobe::clock::Timestamp;
    use edgeprobe::store::{QueuedNotification, RetentionPolicy, RoundId, RoundRecord, Store};
    let mut store = Store::open(dir, RetentionPolicy::default()).unwrap();
    let now = Timestamp::now();
    let notifications = channels
        .iter()
        .map(|c| QueuedNotification {
            channel: c.label(),
            made_at: now,
            subject: "closet-3: 1 firing".into(),
            content_type: "application/json".into(),
            body: serde_json::to_vec(body).unwrap(),
        })
        .collect();
    store
        .write_round(&RoundRecord {
            round: RoundId(1),
            started: now,
            finished: now,
            notifications,
            ..RoundRecord::default()
        })
        .unwrap();
    std::sync::Arc::new(std::sync::Mutex::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_channels_ca_file_is_delivered_to_webhook_and_ntfy() {
    use edgeprobe::alerts::deliver::HttpTarget;
    use edgeprobe::alerts::sender::{send_due, Courier};
    use edgeprobe::alerts::settings::{Channel, WebhookFormat};
    use edgeprobe::clock::Timestamp;
    use std::collections::HashMap;

    let ca = TestCa::new();
    let receiver = https_receiver(&ca);
    let url = format!("https://127.0.0.1:{}/hook", receiver.port);

    // The edge itself: trusted through ca_file, the body arrives.
    let target = HttpTarget::new(url.parse().unwrap(), &[], Some(&ca.path("ca.pem"))).unwrap();
    let d = target
        .post(None, "application/json", br#"{"edge":"direct"}"#.to_vec())
        .await;
    assert_eq!(d, Delivery::Delivered);
    assert_eq!(receiver.messages(), [serde_json::json!({"edge": "direct"})]);

    // Configured channels, through the sender and the queue: a webhook and
    // ntfy (JSON at the server's root, the topic inside) over HTTPS.
    let webhook = Channel::Webhook {
        url: url.parse().unwrap(),
        format: WebhookFormat::Json,
        headers: vec![],
        ca_file: Some(ca.path("ca.pem")),
    };
    let ntfy_receiver = https_receiver(&ca);
    let ntfy = Channel::Ntfy {
        url: format!("https://127.0.0.1:{}/closet", ntfy_receiver.port)
            .parse()
            .unwrap(),
        token: None,
        ca_file: Some(ca.path("ca.pem")),
    };
    let dir = tempfile::tempdir().unwrap();
    let body = serde_json::json!({"topic": "closet", "message": "1 firing"});
    let store = queued(dir.path(), &[&webhook, &ntfy], &body);
    let couriers: HashMap<String, Courier> = [&webhook, &ntfy]
        .iter()
        .map(|c| (c.label(), Courier::for_channel(c).unwrap()))
        .collect();
    let day = Duration::from_secs(86_400);
    let r = send_due(&store, &couriers, Timestamp::now(), day)
        .await
        .unwrap();
    assert_eq!((r.count("delivered"), r.count("failed")), (2, 0), "{r:?}");
    assert_eq!(
        receiver.messages(),
        [serde_json::json!({"edge": "direct"}), body.clone()]
    );
    assert_eq!(ntfy_receiver.messages(), [body]);
    assert_eq!(store.lock().unwrap().notification_backlog().unwrap().0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_without_the_ca_file_says_the_certificate_is_not_trusted_and_retries() {
    use edgeprobe::alerts::deliver::HttpTarget;
    use edgeprobe::alerts::sender::{send_due, Courier};
    use edgeprobe::alerts::settings::{Channel, WebhookFormat};
    use edgeprobe::clock::Timestamp;
    use std::collections::HashMap;

    let ca = TestCa::new();
    let receiver = https_receiver(&ca);
    let url = format!("https://127.0.0.1:{}/hook", receiver.port);

    // The system's roots alone do not know the test CA.
    let target = HttpTarget::new(url.parse().unwrap(), &[], None).unwrap();
    let d = target.post(None, "application/json", b"{}".to_vec()).await;
    let Delivery::Failed(why) = &d else {
        panic!("an untrusted certificate is a failure to retry, not {d:?}")
    };
    assert!(
        why.starts_with(&format!("127.0.0.1:{}", receiver.port)),
        "{why}"
    );
    assert!(
        why.contains("certificate") && why.contains("not trusted"),
        "{why}"
    );

    // Through the queue: retried later, not refused, nothing arrived.
    let webhook = Channel::Webhook {
        url: url.parse().unwrap(),
        format: WebhookFormat::Json,
        headers: vec![],
        ca_file: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let store = queued(dir.path(), &[&webhook], &serde_json::json!({"n": 1}));
    let couriers: HashMap<String, Courier> =
        HashMap::from([(webhook.label(), Courier::for_channel(&webhook).unwrap())]);
    let r = send_due(
        &store,
        &couriers,
        Timestamp::now(),
        Duration::from_secs(86_400),
    )
    .await
    .unwrap();
    assert_eq!((r.count("delivered"), r.count("failed")), (0, 1), "{r:?}");
    assert_eq!(r.count("refused") + r.count("given_up"), 0, "{r:?}");
    assert_eq!(store.lock().unwrap().notification_backlog().unwrap().0, 1);
    assert!(receiver.messages().is_empty());

    // Another CA of the same name (one made anew) is not trusted either.
    let other = TestCa::new();
    let target = HttpTarget::new(url.parse().unwrap(), &[], Some(&other.path("ca.pem"))).unwrap();
    let d = target.post(None, "application/json", b"{}".to_vec()).await;
    assert!(
        matches!(&d, Delivery::Failed(why) if why.contains("not trusted")),
        "{d:?}"
    );
    assert!(receiver.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_queued_while_an_earlier_one_waits_does_not_overtake_it() {
    use edgeprobe::alerts::sender::{send_due, Courier, RETRY_START};
    use edgeprobe::clock::Timestamp;
    use edgeprobe::store::{QueuedNotification, RoundId, RoundRecord};
    use std::collections::HashMap;

    let dir = tempfile::tempdir().unwrap();
    let store = empty_store(dir.path());
    let port = free_port();
    let webhook = loopback_webhook(port);
    let couriers: HashMap<String, Courier> =
        HashMap::from([(webhook.label(), Courier::for_channel(&webhook).unwrap())]);
    let queue = |n: u64, at: Timestamp| {
        let record = RoundRecord {
            round: RoundId(n),
            started: at,
            finished: at,
            notifications: vec![QueuedNotification {
                channel: webhook.label(),
                made_at: at,
                subject: format!("round {n}"),
                content_type: "application/json".into(),
                body: serde_json::to_vec(&serde_json::json!({ "round": n })).unwrap(),
            }],
            ..RoundRecord::default()
        };
        store.lock().unwrap().write_round(&record).unwrap();
    };
    let day = Duration::from_secs(86_400);
    let t0 = Timestamp::now();

    // The firing message finds nobody and waits.
    queue(1, t0);
    let r = send_due(&store, &couriers, t0, day).await.unwrap();
    assert_eq!((r.count("delivered"), r.count("failed")), (0, 1), "{r:?}");

    // The receiver comes back, and a round later the resolved message is
    // queued: it waits behind the firing one rather than arrive first.
    let hooks = webhook_receiver_on(port);
    let t1 = t0.add(Duration::from_secs(1));
    queue(2, t1);
    let r = send_due(&store, &couriers, t1, day).await.unwrap();
    assert!(r.attempts.is_empty(), "the later message went first: {r:?}");
    assert_eq!(r.queued, 2, "{r:?}");
    assert!(hooks.try_recv().is_err());

    // When the firing one's wait ends, both go, in order.
    let r = send_due(&store, &couriers, t0.add(RETRY_START), day)
        .await
        .unwrap();
    assert_eq!(r.count("delivered"), 2, "{r:?}");
    let got: Vec<u64> = (0..2)
        .map(|_| {
            hooks.recv_timeout(Duration::from_secs(10)).unwrap()["round"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, [1, 2]);
}

/// What a round the store could not keep decided goes from memory, in
/// order per channel, with the same backoff, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_the_store_could_not_keep_are_sent_from_memory_once_in_order() {
    use edgeprobe::alerts::sender::{AlertSender, Unstored, RETRY_START};
    use edgeprobe::alerts::settings::{AlertSettings, Channel};
    use edgeprobe::clock::Timestamp;
    use edgeprobe::store::QueuedNotification;

    let dir = tempfile::tempdir().unwrap();
    let store = empty_store(dir.path());
    let (up_port, up_hooks) = webhook_receiver();
    let down_port = free_port();
    let webhook = loopback_webhook;
    let settings = AlertSettings {
        channels: vec![webhook(up_port), webhook(down_port)],
        give_up_after: Duration::from_secs(86_400),
        ..AlertSettings::default()
    };
    let unstored = Unstored::default();
    let sender = AlertSender::new(&settings, unstored.clone()).unwrap();
    let t0 = Timestamp::now();
    let message = |c: &Channel, n: u64| QueuedNotification {
        channel: c.label(),
        made_at: t0,
        subject: format!("round {n}"),
        content_type: "application/json".into(),
        body: serde_json::to_vec(&serde_json::json!({ "round": n })).unwrap(),
    };
    for n in 1..=2 {
        unstored.hold(settings.channels.iter().map(|c| message(c, n)));
    }
    let r = sender.pass(&store, t0).await.unwrap();
    assert_eq!((r.count("delivered"), r.count("failed")), (2, 1), "{r:?}");
    let got: Vec<u64> = (0..2)
        .map(|_| {
            up_hooks.recv_timeout(Duration::from_secs(10)).unwrap()["round"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, [1, 2]);

    let down_hooks = webhook_receiver_on(down_port);
    let r = sender.pass(&store, t0.add(RETRY_START / 2)).await.unwrap();
    assert!(r.attempts.is_empty(), "waits out its backoff: {r:?}");
    let r = sender.pass(&store, t0.add(RETRY_START)).await.unwrap();
    assert_eq!(r.count("delivered"), 2, "{r:?}");
    let got: Vec<u64> = (0..2)
        .map(|_| {
            down_hooks.recv_timeout(Duration::from_secs(10)).unwrap()["round"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, [1, 2], "in order, behind the one that failed");
    let r = sender.pass(&store, t0.add(RETRY_START * 4)).await.unwrap();
    assert!(r.attempts.is_empty(), "nothing twice: {r:?}");
    let counted = sender.activity().attempts;
    assert_eq!(counted[&(webhook(down_port).label(), "failed")], 1);
    assert_eq!(counted[&(webhook(down_port).label(), "delivered")], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_is_cut_off_at_the_delivery_timeout_while_the_others_deliver() {
    use edgeprobe::alerts::deliver::DELIVERY_TIMEOUT;
    use edgeprobe::alerts::sender::{send_due, Courier, Next};
    use edgeprobe::clock::Timestamp;
    use std::collections::HashMap;

    // A receiver that accepts the connection, reads nothing and never
    // answers: the case of a wedged proxy, worse than a closed port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let (live_port, live_hooks) = webhook_receiver();
    let (live, hanging) = (loopback_webhook(live_port), loopback_webhook(hanging_port));
    let dir = tempfile::tempdir().unwrap();
    let store = queued(
        dir.path(),
        &[&live, &hanging],
        &serde_json::json!({ "round": 1 }),
    );
    let couriers: HashMap<String, Courier> = [&live, &hanging]
        .iter()
        .map(|c| (c.label(), Courier::for_channel(c).unwrap()))
        .collect();

    let pass = tokio::spawn({
        let store = std::sync::Arc::clone(&store);
        async move {
            let began = std::time::Instant::now();
            let report = send_due(
                &store,
                &couriers,
                Timestamp::now(),
                Duration::from_secs(86_400),
            )
            .await
            .unwrap();
            (report, began.elapsed())
        }
    });
    // Side by side: the live channel's message arrives while the hanging
    // one still holds the pass open.
    let got = tokio::task::spawn_blocking(move || live_hooks.recv_timeout(DELIVERY_TIMEOUT * 3))
        .await
        .unwrap()
        .expect("the live channel's message, without waiting for the hanging one");
    assert_eq!(got["round"], 1);
    assert!(
        !pass.is_finished(),
        "the pass was still waiting for the hanging receiver"
    );
    let (report, took) = pass.await.unwrap();
    // Cut off, not waited for without end; a lower bound only (the
    // machine may be slow, never fast beyond the timeout).
    assert!(took >= DELIVERY_TIMEOUT, "cut off after {took:?}");
    assert_eq!(report.count("delivered"), 1, "{report:?}");
    let hung = report
        .attempts
        .iter()
        .find(|(channel, _)| *channel == hanging.label())
        .map(|(_, next)| next.clone());
    assert!(
        matches!(&hung, Some(Next::RetryAt(_, why)) if why.contains("no answer within 10s")),
        "the hanging channel waits to retry, saying it timed out: {hung:?}"
    );
    assert_eq!(report.queued, 1, "its message waits");
    assert!(!held.lock().unwrap().is_empty(), "it was connected to");
}
