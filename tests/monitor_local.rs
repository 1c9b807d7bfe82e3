//! `edgeprobe run` on loopback targets: settings, sheet reloads (file
//! change, SIGHUP, upload), the admin token, and what survives `kill -9`
//! and SIGTERM. Probing loopback needs no lab; raw sockets need root.

mod common;

use std::path::Path;
use std::time::Duration;

use common::monitor::{quick_args, run_args, RunningMonitor};
use serde_json::Value;

const TOKEN: &str = "test-token-0123456789abcdef";

fn addrs(v: &Value) -> Vec<String> {
    v["targets"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| t["addr"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn results_count(m: &RunningMonitor, addr: &str) -> usize {
    let r = m.get(&format!("/api/v1/targets/{addr}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["results"]
        .as_array()
        .expect("a results array")
        .len()
}

/// A quick monitor on `sheet_text` (written to `dir/t.csv`), with
/// `extra` flags; its history in `dir/state`.
fn monitor_on(dir: &Path, sheet_text: &str, extra: &[&str]) -> RunningMonitor {
    let (sheet, state) = sheet_and_state(dir, sheet_text);
    RunningMonitor::start_local(&quick_args(&sheet, &state, extra))
}

/// `sheet_text` written to `dir/t.csv`, and `dir/state` for the history:
/// their paths.
fn sheet_and_state(dir: &Path, sheet_text: &str) -> (String, String) {
    let sheet = dir.join("t.csv");
    std::fs::write(&sheet, sheet_text).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    (path(&sheet), path(&dir.join("state")))
}

#[test]
fn a_sheet_edited_on_disk_or_signalled_is_reloaded_and_a_bad_one_is_not() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let m = monitor_on(dir.path(), "ip,name\n127.0.0.1,one\n", &[]);
    let sheet = dir.path().join("t.csv");
    let v = m.wait_for("one target", Duration::from_secs(20), |v| {
        addrs(v) == ["127.0.0.1"] && v["targets"][0]["status"] == "working"
    });
    // Loopback targets need no gateway: the host's own is never pinged.
    assert_eq!(v["board_gateways"], serde_json::json!([]), "{v:#}");

    std::fs::write(&sheet, "ip,name\n127.0.0.1,one\n127.0.0.2,two\n").unwrap();
    m.wait_for("the edit picked up", Duration::from_secs(20), |v| {
        addrs(v) == ["127.0.0.1", "127.0.0.2"]
    });

    // A broken sheet: the old list keeps running, the problem is shown.
    std::fs::write(&sheet, "ip,name\n127.0.0.300,bad\n").unwrap();
    let v = m.wait_for("the rejection shown", Duration::from_secs(20), |v| {
        !v["sheet"]["rejected"].is_null()
    });
    assert_eq!(addrs(&v), ["127.0.0.1", "127.0.0.2"]);
    let shown = v["sheet"]["rejected"]["problems"].to_string();
    assert!(shown.contains("127.0.0.300"), "{shown}");
    assert!(
        m.get("/").text().contains("127.0.0.300"),
        "the dashboard shows it"
    );
    // ...and the old list is still probed, round after round.
    let rejected_at = v["last_round"]["round"].as_u64().expect("a round");
    let v = m.wait_for("rounds after the rejection", Duration::from_secs(20), |v| {
        v["last_round"]["round"].as_u64() > Some(rejected_at + 1)
    });
    assert_eq!(addrs(&v), ["127.0.0.1", "127.0.0.2"]);
    assert_eq!(v["counts"]["working"], 2, "{:#}", v["counts"]);

    // Deleted while running: still the old list.
    std::fs::remove_file(&sheet).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(addrs(&m.status()), ["127.0.0.1", "127.0.0.2"]);

    // SIGHUP reloads at once (the write alone would be seen by the poll too,
    // so the check is that the sheet is back and the rejection cleared).
    std::fs::write(&sheet, "ip\n127.0.0.3\n").unwrap();
    m.signal("HUP");
    let v = m.wait_for("the SIGHUP reload", Duration::from_secs(20), |v| {
        addrs(v) == ["127.0.0.3"]
    });
    assert!(v["sheet"]["rejected"].is_null(), "{v:#}");
    // The log is read from the monitor's stderr as it comes, and the poll
    // may have reloaded before the signal was handled: wait for the line.
    let logged = common::eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        m.log().contains("SIGHUP").then_some(())
    });
    assert!(logged.is_some(), "{}", m.log());
}

#[test]
fn admin_uploads_need_the_token_and_a_bad_sheet_keeps_the_old_list() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let (sheet, state) = sheet_and_state(dir.path(), "ip\n127.0.0.1\n");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let m = RunningMonitor::start_local(&quick_args(
        &sheet,
        &state,
        &["--admin-token-file", token_file.to_str().unwrap()],
    ));
    m.wait_for("the first list", Duration::from_secs(20), |v| {
        addrs(v) == ["127.0.0.1"]
    });
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];

    let good = b"ip,name\n127.0.0.5,five\n127.0.0.6,six\n";
    assert_eq!(
        m.post("/admin/targets?filename=new.csv", &[], good).status,
        401
    );
    let wrong = [("Authorization", "Bearer not-the-token-at-all-000")];
    assert_eq!(
        m.post("/admin/targets?filename=new.csv", &wrong, good)
            .status,
        401
    );
    assert_eq!(addrs(&m.status()), ["127.0.0.1"]);

    let bad = m.post("/admin/targets?filename=new.csv", &auth, b"ip\n999.1.1.1\n");
    assert_eq!(bad.status, 422, "{}", bad.text());
    assert!(bad.text().contains("999.1.1.1"), "{}", bad.text());
    let v = m.status();
    assert_eq!(addrs(&v), ["127.0.0.1"], "the old list keeps running");
    assert!(!v["sheet"]["rejected"].is_null(), "{v:#}");
    assert_eq!(std::fs::read_to_string(&sheet).unwrap(), "ip\n127.0.0.1\n");

    let ok = m.post("/admin/targets?filename=new.csv", &auth, good);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let v = m.wait_for("the uploaded list", Duration::from_secs(10), |v| {
        addrs(v) == ["127.0.0.5", "127.0.0.6"]
    });
    assert!(v["sheet"]["rejected"].is_null());
    // The upload went into the state directory, where it stands in for
    // the configured sheet (a restart keeps it); that file is never
    // written, so it may live where the service cannot write.
    assert_eq!(
        std::fs::read(Path::new(&state).join("targets.csv")).unwrap(),
        good
    );
    assert_eq!(std::fs::read_to_string(&sheet).unwrap(), "ip\n127.0.0.1\n");

    assert_eq!(m.post("/admin/probe-now", &[], b"").status, 401);
    assert_eq!(m.post("/admin/probe-now", &auth, b"").status, 202);
}

#[test]
fn admin_endpoints_are_off_without_a_token() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let m = monitor_on(dir.path(), "ip\n127.0.0.1\n", &[]);
    let r = m.post(
        "/admin/probe-now",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("admin"), "{}", r.text());
}

#[test]
fn history_survives_kill_9_and_round_numbers_continue() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let (sheet, state) = sheet_and_state(dir.path(), "ip\n127.0.0.1\n127.0.0.9\n");
    let a = quick_args(&sheet, &state, &[]);

    let mut m = RunningMonitor::start_local(&a);
    m.wait_for("three rounds", Duration::from_secs(30), |v| {
        v["last_round"]["round"].as_u64().is_some_and(|r| r >= 3)
    });
    let before = results_count(&m, "127.0.0.1");
    assert!(before >= 3, "{before}");
    m.signal("KILL");
    m.wait_exit(Duration::from_secs(10)).expect("killed");
    drop(m);

    let m = RunningMonitor::start_local(&a);
    // Right after the restart, before any new round, the history is back.
    let restored = results_count(&m, "127.0.0.1");
    assert!(restored >= before, "kept {restored} of {before}");
    let v = m.status();
    assert_eq!(v["targets"][0]["status"], "working", "{v:#}");
    let v = m.wait_for("a round after the restart", Duration::from_secs(30), |v| {
        v["last_round"]["round"].as_u64().is_some()
    });
    let round = v["last_round"]["round"].as_u64().unwrap();
    assert!(round > 3, "round numbers continue: {round}");

    drop(m);
}

#[test]
fn sigterm_stops_cleanly_and_commits_the_round_in_flight() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (1..=10).map(|i| format!("127.0.1.{i}\n")).collect();
    let (sheet, state) = sheet_and_state(dir.path(), &format!("ip\n{rows}"));
    // A 10 s round spreads its ten targets about 0.9 s apart.
    let a = run_args(
        &sheet,
        &state,
        &["--interval", "10s", "--timeout", "200ms", "--count", "1"],
    );
    let mut m = RunningMonitor::start_local(&a);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        m.status()["last_round"].is_null(),
        "still in the first round"
    );
    m.signal("TERM");
    let st = m
        .wait_exit(Duration::from_secs(15))
        .expect("stops on SIGTERM");
    assert!(st.success(), "{st:?}\n{}", m.log());
    let log = m.log_once(|l| l.contains("the last round is saved"));
    assert!(log.contains("the last round is saved"), "{log}");
    drop(m);

    let m = RunningMonitor::start_local(&a);
    assert_eq!(
        results_count(&m, "127.0.1.1"),
        1,
        "the first target's result was saved"
    );
    assert_eq!(
        results_count(&m, "127.0.1.10"),
        0,
        "the last target had not started"
    );
}

#[test]
fn bad_settings_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgeprobe.toml");
    std::fs::write(&config, "[probe]\nintervall = \"5s\"\n").unwrap();
    let out = common::edgeprobe()
        .args(["run", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("intervall"), "{err}");

    let out = common::edgeprobe()
        .args(["run", "--interval", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interval"));

    let out = common::edgeprobe()
        .env("EDGEPROBE_DOWN_AFTER", "0")
        .args(["run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("down_after"));
}

#[test]
fn it_runs_with_no_config_and_no_sheet_and_says_what_to_do() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let m = RunningMonitor::start_local(&["--state-dir", state.to_str().unwrap()]);
    let v = m.status();
    assert_eq!(addrs(&v), Vec::<String>::new());
    let why = v["sheet"]["rejected"]["problems"].to_string();
    assert!(why.contains("--targets"), "{v:#}");
    assert_eq!(m.get("/healthz").status, 200);
}

#[test]
fn a_reader_that_cannot_run_in_time_is_killed_and_the_sheet_read_again() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("t.xlsx");
    std::fs::copy(common::fixture("sites.xlsx"), &sheet).unwrap();
    let state = dir.path().join("state");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (sheet, state) = (s(&sheet), s(&state));
    let m = RunningMonitor::start_local(&quick_args(&sheet, &state, &[]));
    m.wait_for("the sheet", Duration::from_secs(30), |v| {
        v["counts"]["working"] == 3
    });
    let reader = m.stop_next_workbook_reader(|_| true);
    // The monitor waits for its reader; the dashboard does not.
    for path in ["/healthz", "/", "/api/v1/status"] {
        assert_eq!(
            m.get(path).status,
            200,
            "{path} while the reader is stopped"
        );
    }
    let v = m.wait_for(
        "the stopped reader given up at its deadline",
        Duration::from_secs(60),
        |v| !v["sheet"]["rejected"].is_null(),
    );
    let rejected = &v["sheet"]["rejected"];
    assert!(
        rejected["problems"].to_string().contains("ran for only"),
        "{v:#}"
    );
    assert!(rejected["retry_at"].is_string(), "{v:#}");
    assert_eq!(v["counts"]["working"], 3, "the list in use stays: {v:#}");
    assert!(
        !Path::new(&format!("/proc/{reader}")).exists(),
        "the stopped reader was killed and reaped"
    );
    m.wait_for(
        "the same sheet read again by itself",
        Duration::from_secs(30),
        |v| v["sheet"]["rejected"].is_null() && v["counts"]["working"] == 3,
    );
}

/// Kills a process when dropped: the monitor started under strace, whose
/// own death would leave it running.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

#[test]
fn an_upload_is_flushed_renamed_and_only_then_the_earlier_one_set_aside() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let (sheet, state) = sheet_and_state(dir.path(), "ip\n127.0.0.1\n");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let trace = dir.path().join("trace");
    let strace = [
        "strace",
        "-f",
        "-qq",
        "-y",
        "-e",
        "trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat",
        "-o",
        trace.to_str().unwrap(),
        env!("CARGO_BIN_EXE_edgeprobe"),
    ]
    .map(String::from);
    let m = RunningMonitor::start_local_via(
        &strace,
        &quick_args(
            &sheet,
            &state,
            &["--admin-token-file", token_file.to_str().unwrap()],
        ),
    );
    let strace_pid = m.child.id();
    let monitor = common::eventually(Duration::from_secs(10), Duration::from_millis(20), || {
        std::fs::read_to_string(format!("/proc/{strace_pid}/task/{strace_pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse::<u32>()
            .ok()
    })
    .expect("the monitor under strace");
    let _kill = KillOnDrop(monitor);
    m.wait_for("the first list", Duration::from_secs(30), |v| {
        addrs(v) == ["127.0.0.1"]
    });
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let xlsx = std::fs::read(common::fixture("sites.xlsx")).unwrap();
    let first = m.post("/admin/targets?filename=first.xlsx", &auth, &xlsx);
    assert_eq!(first.status, 200, "{}", first.text());
    let second = m.post(
        "/admin/targets?filename=second.csv",
        &auth,
        b"ip\n127.0.0.7\n",
    );
    assert_eq!(second.status, 200, "{}", second.text());
    m.wait_for("the second upload in use", Duration::from_secs(10), |v| {
        addrs(v) == ["127.0.0.7"]
    });

    let state_dir = std::fs::canonicalize(&state).unwrap();
    let state_dir = state_dir.to_str().unwrap();
    let calls = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    let temp = format!("{state_dir}/.edgeprobe-upload.csv");
    let fsync_of = |path: &str, l: &str| l.contains("fsync(") && l.contains(&format!("<{path}>"));
    let renamed = lines
        .iter()
        .rposition(|l| l.contains(&format!("\"{temp}\", \"{state_dir}/targets.csv\"")))
        .unwrap_or_else(|| panic!("the upload was not renamed into place:\n{calls}"));
    assert!(
        lines[..renamed].iter().any(|l| fsync_of(&temp, l)),
        "the upload is flushed before it is renamed:\n{calls}"
    );
    let after = |what: &dyn Fn(&str) -> bool| {
        lines[renamed..]
            .iter()
            .position(|l| what(l))
            .unwrap_or_else(|| panic!("nothing as expected after the rename:\n{calls}"))
    };
    let dir_flushed = after(&|l| fsync_of(state_dir, l));
    let set_aside = after(&|l| l.contains(&format!("\"{state_dir}/targets.xlsx.previous\"")));
    assert!(
        dir_flushed < set_aside,
        "the directory is flushed before the earlier upload is set aside:\n{calls}"
    );
    assert!(Path::new(state_dir).join("targets.csv").exists());
    assert!(Path::new(state_dir).join("targets.xlsx.previous").exists());
    assert!(!Path::new(state_dir).join("targets.xlsx").exists());
    assert_eq!(std::fs::read_to_string(&sheet).unwrap(), "ip\n127.0.0.1\n");
}

/// `curl ARGS` on this machine: its exit code and what it printed.
fn curl(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn with_a_certificate_the_dashboard_and_the_admin_token_go_over_https_only() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let (sheet, state) = sheet_and_state(dir.path(), "ip\n127.0.0.1\n");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let config = dir.path().join("edgeprobe.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\ntls_certificate_file = {:?}\ntls_key_file = {:?}\n",
            cert.to_str().unwrap(),
            key.to_str().unwrap()
        ),
    )
    .unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let m = RunningMonitor::start_local(&quick_args(
        &sheet,
        &state,
        &[
            "--config",
            config.to_str().unwrap(),
            "--admin-token-file",
            token_file.to_str().unwrap(),
        ],
    ));
    assert!(m.log().contains("dashboard on https://"), "{}", m.log());
    let base = format!("https://{}", m.addr);
    let ca = cert.to_str().unwrap();

    let (code, text) = curl(&["--cacert", ca, &format!("{base}/healthz")]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ok"), "{text}");
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let (code, text) = curl(&[
        "--cacert",
        ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "-H",
        &bearer,
        &format!("{base}/admin/probe-now"),
    ]);
    assert_eq!(
        (code, text.as_str()),
        (0, "202"),
        "the admin token over HTTPS"
    );

    // A client that does not trust the certificate is refused by curl
    // itself (60: the certificate cannot be verified).
    let (code, text) = curl(&[&format!("{base}/healthz")]);
    assert_eq!(code, 60, "{text}");
    // Plain HTTP gets no answer at all.
    let (code, text) = curl(&[&format!("http://{}/healthz", m.addr)]);
    assert_ne!(code, 0, "{text}");
    assert!(!text.contains("ok"), "{text}");
}

#[test]
fn a_certificate_without_its_key_or_a_bad_one_stops_the_monitor_saying_which() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let (sheet, state) = sheet_and_state(dir.path(), "ip\n127.0.0.1\n");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    for (section, says) in [
        (
            format!("tls_certificate_file = {cert:?}\n"),
            "web.tls_key_file",
        ),
        (
            format!("tls_certificate_file = {cert:?}\ntls_key_file = {cert:?}\n"),
            "no certificate in it",
        ),
    ] {
        let config = dir.path().join("edgeprobe.toml");
        std::fs::write(&config, format!("[web]\n{section}")).unwrap();
        let out = common::edgeprobe()
            .args([
                "run",
                "--listen",
                "127.0.0.1:0",
                "--config",
                config.to_str().unwrap(),
            ])
            .args(["--targets", &sheet, "--state-dir", &state])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
}
