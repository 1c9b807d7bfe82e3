//! The alert channels against real receivers on loopback, started here:
//! Debian's `python3-aiosmtpd` for e-mail (the test command installs it).

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::monitor::free_port;
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
