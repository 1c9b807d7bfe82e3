//! Alerts from a monitor in the namespace lab, with the kernel's default
//! ICMP limits, to a webhook receiver in the board's own namespace.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::monitor::{free_port, run_args, status_of, RunningMonitor};
use common::webhook::WebhookReceiver;
use common::Lab;
use serde_json::Value;

/// The sheet most tests here watch: two hosts behind the board's gateway.
const FILES_AND_PRINTER: &str = "ip,name\n198.19.3.10,files\n198.19.3.11,printer\n";

/// nft rules for a host that answers nothing; `delete table inet down`
/// undoes them.
const HOST_DOWN: &str = "add table inet down; \
    add chain inet down input { type filter hook input priority 0; policy drop; }";

/// nft rules for a router that neither answers nor forwards; `delete
/// table inet dead` undoes them.
const GATEWAY_DEAD: &str = "add table inet dead; \
    add chain inet dead input { type filter hook input priority 0; policy drop; }; \
    add chain inet dead forward { type filter hook forward priority 0; policy drop; }";

/// What every test here starts from: lab `name`, and in a temporary
/// directory the board's config, a sheet and the state directory, for a
/// monitor in the lab's probe namespace.
struct AlertLab {
    lab: Lab,
    config: PathBuf,
    /// `edgeprobe run` arguments: the sheet, the state, `--config` and
    /// `--timeout 300ms`, then the test's own settings.
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl AlertLab {
    /// Lab `name` with the config `board_id = "closet-3"` then `config`
    /// (its channels), the sheet `sheet`, and `settings` (flags and their
    /// values, split at spaces) for the monitor.
    fn up(name: &str, config: &str, sheet: &str, settings: &str) -> AlertLab {
        let lab = Lab::up(name);
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("edgeprobe.toml");
        std::fs::write(&config_path, format!("board_id = \"closet-3\"\n{config}")).unwrap();
        let sheet_path = dir.path().join("targets.csv");
        std::fs::write(&sheet_path, sheet).unwrap();
        let state = dir.path().join("state");
        let mut all = vec![
            "--config",
            config_path.to_str().unwrap(),
            "--timeout",
            "300ms",
        ];
        all.extend(settings.split_whitespace());
        let args = run_args(sheet_path.to_str().unwrap(), state.to_str().unwrap(), &all)
            .into_iter()
            .map(String::from)
            .collect();
        AlertLab {
            lab,
            config: config_path,
            args,
            _dir: dir,
        }
    }

    /// The monitor, started (again) in the probe namespace on the same
    /// config, sheet and state.
    fn start_monitor(&self) -> RunningMonitor {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        RunningMonitor::start_in_netns(&format!("{}-probe", self.lab.name), &args)
    }

    /// A webhook receiver in the probe namespace on `port`.
    fn receiver(&self, port: u16) -> WebhookReceiver {
        WebhookReceiver::start_in(&self.lab, port)
    }

    /// `argv` run in the lab's namespace `role`; it must succeed.
    fn run_in(&self, role: &str, argv: &[&str]) {
        let out = self
            .lab
            .command_in(role, argv[0])
            .args(&argv[1..])
            .output()
            .unwrap();
        common::assert_success(&out, &format!("{argv:?} in {role}"));
    }
}

/// A `[[alerts.webhook]]` to `/hook` on the probe namespace's `port`.
fn webhook(port: u16) -> String {
    format!("[[alerts.webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\n")
}

/// Wait until the files server and the printer are both Working.
fn wait_both_working(m: &RunningMonitor) {
    m.wait_for("both working", Duration::from_secs(20), |v| {
        status_of(v, "198.19.3.10").as_deref() == Some("working")
            && status_of(v, "198.19.3.11").as_deref() == Some("working")
    });
}

#[test]
fn a_dead_board_gateway_is_one_message_and_its_return_one_more() {
    let port = free_port();
    let t = AlertLab::up(
        "alr1",
        &webhook(port),
        FILES_AND_PRINTER,
        "--interval 1s --count 2 --down-after 1",
    );
    let receiver = t.receiver(port);
    let m = t.start_monitor();
    wait_both_working(&m);
    assert!(
        receiver.messages().is_empty(),
        "nothing to say while all is well"
    );

    // r1, the board's gateway, stops answering and forwarding.
    t.run_in("r1", &["nft", GATEWAY_DEAD]);
    m.wait_for("the gateway down", Duration::from_secs(30), |v| {
        v["board_gateways"][0]["up"] == false
            && status_of(v, "198.19.3.10").as_deref() == Some("not_working")
            && status_of(v, "198.19.3.11").as_deref() == Some("not_working")
    });
    let first = common::eventually(Duration::from_secs(20), Duration::from_millis(200), || {
        receiver.messages().into_iter().next()
    })
    .expect("a message about the gateway");
    let notices = first["notices"].as_array().unwrap();
    assert_eq!(
        notices.len(),
        1,
        "one alert for the board, not one per target: {first:#}"
    );
    assert_eq!(notices[0]["alert"], "gateway/198.18.1.1");
    let detail = notices[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("198.19.3.10") && detail.contains("198.19.3.11"),
        "{detail}"
    );

    t.run_in("r1", &["nft", "delete table inet dead"]);
    m.wait_for("everything back", Duration::from_secs(30), |v| {
        status_of(v, "198.19.3.10").as_deref() == Some("working")
            && status_of(v, "198.19.3.11").as_deref() == Some("working")
    });
    let messages = common::eventually(Duration::from_secs(20), Duration::from_millis(200), || {
        let all = receiver.messages();
        (all.len() >= 2).then_some(all)
    })
    .expect("the resolved message");
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let notices = messages[1]["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{:#}", messages[1]);
    assert_eq!(notices[0]["kind"], "resolved");
    assert_eq!(notices[0]["alert"], "gateway/198.18.1.1");
}

#[test]
fn a_queued_alert_survives_kill_9_and_is_sent_once_after_the_restart() {
    let port = free_port();
    // The lab's silent host never answers: Not Working from the start.
    let t = AlertLab::up(
        "alr2",
        &webhook(port),
        "ip,name\n198.19.3.10,files\n198.19.3.20,badge reader\n",
        "--interval 1s --count 1 --down-after 1",
    );
    // No receiver yet: the message waits in the queue.
    let mut m = t.start_monitor();
    m.wait_for("the silent host down", Duration::from_secs(30), |v| {
        v["targets"]
            .as_array()
            .is_some_and(|ts| ts.iter().filter(|t| t["status"] == "not_working").count() >= 1)
    });
    std::thread::sleep(Duration::from_secs(2));
    // A power cut, as near as a test gets: nothing is flushed or said.
    m.signal("KILL");
    assert!(m.wait_exit(Duration::from_secs(10)).is_some());
    drop(m);

    let receiver = t.receiver(port);
    let restarted_at = edgeprobe::clock::Timestamp::now().rfc3339();
    let _m = t.start_monitor();
    let messages = common::eventually(Duration::from_secs(30), Duration::from_millis(200), || {
        let all = receiver.messages();
        (!all.is_empty()).then_some(all)
    })
    .expect("the queued message after the restart");
    std::thread::sleep(Duration::from_secs(4));
    let messages_later = receiver.messages();
    assert_eq!(
        messages_later, messages,
        "sent once, not again by the new process"
    );
    let firing: Vec<&str> = messages
        .iter()
        .flat_map(|m| m["notices"].as_array().unwrap())
        .filter(|n| n["kind"] == "firing")
        .map(|n| n["alert"].as_str().unwrap())
        .collect();
    assert_eq!(firing, ["down/198.19.3.20"], "{messages:#?}");
    // Made by the process that was killed, before the restart: the queue
    // survived, and the new process did not decide it again.
    let made_at = messages[0]["made_at"].as_str().unwrap();
    assert!(
        made_at < restarted_at.as_str(),
        "{made_at} vs restart {restarted_at}"
    );
    // The notice says when the host went down, not when it was sent.
    let at = messages[0]["notices"][0]["at"].as_str().unwrap();
    assert!(at < restarted_at.as_str(), "{at} vs restart {restarted_at}");
}

#[test]
fn two_hundred_targets_down_in_a_round_are_one_message_per_channel() {
    let (hook_port, ntfy_port) = (free_port(), free_port());
    // The silent host holds 198.19.5.0/24: 200 addresses that never answer.
    let rows: String = (1..=200).map(|i| format!("198.19.5.{i}\n")).collect();
    let t = AlertLab::up(
        "alr3",
        &format!(
            "{}[[alerts.ntfy]]\nurl = \"http://127.0.0.1:{ntfy_port}/closet\"\n",
            webhook(hook_port)
        ),
        &format!("ip\n{rows}"),
        "--interval 5s --count 1 --down-after 1",
    );
    let hooks = t.receiver(hook_port);
    let ntfy = t.receiver(ntfy_port);
    let m = t.start_monitor();
    m.wait_for("all 200 down", Duration::from_secs(60), |v| {
        v["targets"]
            .as_array()
            .is_some_and(|ts| ts.len() == 200 && ts.iter().all(|t| t["status"] == "not_working"))
    });
    let got = common::eventually(Duration::from_secs(20), Duration::from_millis(200), || {
        let (h, n) = (hooks.messages(), ntfy.messages());
        (!h.is_empty() && !n.is_empty()).then_some((h, n))
    })
    .expect("a message on each channel");
    // A round later nothing more has come: one message each, all 200 in it.
    std::thread::sleep(Duration::from_secs(6));
    let (h, n) = got;
    assert_eq!(hooks.messages().len(), h.len());
    assert_eq!(ntfy.messages().len(), n.len());
    let listed: usize = h
        .iter()
        .map(|m| m["notices"].as_array().unwrap().len())
        .sum();
    assert_eq!(listed, 200, "every target listed");
    assert_eq!(h.len(), 1, "one webhook message, not 200");
    assert_eq!(n.len(), 1, "one ntfy message, not 200");
    assert_eq!(n[0]["topic"], "closet");
    assert!(
        n[0]["title"].as_str().unwrap().contains("200 firing"),
        "{:#}",
        n[0]
    );
}

#[test]
fn a_host_that_goes_down_is_alerted_once_and_resolved_when_back() {
    let port = free_port();
    let t = AlertLab::up(
        "alr4",
        &webhook(port),
        FILES_AND_PRINTER,
        "--interval 1s --count 2 --down-after 2 --up-after 1",
    );
    let receiver = t.receiver(port);
    let m = t.start_monitor();
    wait_both_working(&m);
    // h2, the printer, stops answering anything.
    t.run_in("h2", &["nft", HOST_DOWN]);
    m.wait_for("the printer down", Duration::from_secs(30), |v| {
        status_of(v, "198.19.3.11").as_deref() == Some("not_working")
    });
    let fired = common::eventually(Duration::from_secs(20), Duration::from_millis(200), || {
        receiver.messages().into_iter().next()
    })
    .expect("the down message");
    assert_eq!(fired["notices"][0]["kind"], "firing", "{fired:#}");
    assert_eq!(fired["notices"][0]["alert"], "down/198.19.3.11");
    assert_eq!(fired["notices"][0]["name"], "printer");

    t.run_in("h2", &["nft", "delete table inet down"]);
    let all = common::eventually(Duration::from_secs(30), Duration::from_millis(200), || {
        let all = receiver.messages();
        (all.len() >= 2).then_some(all)
    })
    .expect("the resolved message");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.messages().len(), 2, "{all:#?}");
    assert_eq!(all[1]["notices"][0]["kind"], "resolved");
    assert_eq!(all[1]["notices"][0]["alert"], "down/198.19.3.11");
    assert_eq!(all[1]["notices"].as_array().unwrap().len(), 1);
}

#[test]
fn a_receiver_down_for_several_rounds_gets_firing_then_resolved_once_each() {
    use edgeprobe::alerts::sender::RETRY_START;
    use edgeprobe::clock::Timestamp;

    // Configured, but nothing listens there yet.
    let port = free_port();
    let t = AlertLab::up(
        "alr5",
        &webhook(port),
        FILES_AND_PRINTER,
        "--interval 1s --count 2 --down-after 2 --up-after 1",
    );
    let m = t.start_monitor();
    wait_both_working(&m);

    // h2, the printer, stops answering: the firing message finds nobody.
    t.run_in("h2", &["nft", HOST_DOWN]);
    m.wait_for("the printer down", Duration::from_secs(30), |v| {
        status_of(v, "198.19.3.11").as_deref() == Some("not_working")
    });
    let down_seen = std::time::Instant::now();
    // Several rounds pass with the printer down, then it answers again:
    // the resolved message is queued behind the waiting firing one.
    std::thread::sleep(Duration::from_secs(5));
    t.run_in("h2", &["nft", "delete table inet down"]);
    m.wait_for("the printer back", Duration::from_secs(30), |v| {
        status_of(v, "198.19.3.11").as_deref() == Some("working")
    });
    // Stay away past the firing message's first wait, so that it has been
    // tried more than once (at once, then after RETRY_START) and waits again.
    let away = RETRY_START + Duration::from_secs(5);
    std::thread::sleep(away.saturating_sub(down_seen.elapsed()));

    let receiver_up = Timestamp::now().rfc3339();
    let receiver = t.receiver(port);
    // The second wait is twice the first: a generous limit above it.
    let all = common::eventually(
        RETRY_START * 2 + Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let all = receiver.messages();
            (all.len() >= 2).then_some(all)
        },
    )
    .expect("the firing and the resolved message once the receiver is up");
    // A few rounds more: nothing else comes, nothing twice.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(receiver.messages(), all, "nothing more, nothing twice");
    assert_eq!(all.len(), 2, "{all:#?}");

    let kinds: Vec<(&str, &str)> = all
        .iter()
        .flat_map(|m| m["notices"].as_array().unwrap())
        .map(|n| (n["kind"].as_str().unwrap(), n["alert"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("firing", "down/198.19.3.11"),
            ("resolved", "down/198.19.3.11")
        ],
        "firing first, then resolved, one notice each: {all:#?}"
    );
    // Each says when it happened: made, and its change, before the
    // receiver was there to take it.
    let mut last_at = "";
    for m in &all {
        let made_at = m["made_at"].as_str().unwrap();
        let at = m["notices"][0]["at"].as_str().unwrap();
        assert!(
            made_at < receiver_up.as_str(),
            "{made_at} vs receiver up {receiver_up}"
        );
        assert!(at <= made_at, "{at} vs made {made_at}");
        assert!(
            last_at < at,
            "the resolved change after the firing one: {all:#?}"
        );
        last_at = at;
    }
}

#[test]
fn a_silenced_target_sends_nothing_until_lifted_and_the_board_shows_it_all() {
    let port = free_port();
    let dead = free_port();
    let t = AlertLab::up(
        "alr6",
        &format!(
            "admin_token = \"lab-admin-token-0123456789\"\n{}\
             [[alerts.webhook]]\nurl = \"http://127.0.0.1:{dead}/gone\"\n",
            webhook(port)
        ),
        FILES_AND_PRINTER,
        "--interval 1s --count 2 --down-after 2 --up-after 1",
    );
    let receiver = t.receiver(port);
    let mut m = t.start_monitor();
    wait_both_working(&m);
    let auth = [("Authorization", "Bearer lab-admin-token-0123456789")];

    // Silence the printer for its maintenance, then take it down.
    let r = m.post(
        "/admin/silence?target=198.19.3.11&for=1h&reason=toner",
        &auth,
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "silenced");
    let r = m.post("/admin/silence?target=198.19.3.99&for=1h", &auth, b"");
    assert_eq!(r.status, 400, "a target not on the sheet: {}", r.text());
    assert!(r.text().contains("no target"), "{}", r.text());
    assert_eq!(m.post("/admin/silence?board&for=1h", &[], b"").status, 401);

    t.run_in("h2", &["nft", HOST_DOWN]);
    m.wait_for("the printer down", Duration::from_secs(30), |v| {
        status_of(v, "198.19.3.11").as_deref() == Some("not_working")
    });
    let alerts = common::eventually(Duration::from_secs(10), Duration::from_millis(200), || {
        let doc = m.get("/api/v1/alerts").json();
        (doc["firing"].as_array()?.len() == 1).then_some(doc)
    })
    .expect("the printer's alert firing");
    assert_eq!(
        alerts["firing"][0]["alert"], "down/198.19.3.11",
        "{alerts:#}"
    );
    assert_eq!(
        alerts["firing"][0]["last_sent"],
        Value::Null,
        "silenced: not sent"
    );
    assert_eq!(alerts["silences"][0]["scope"], "target/198.19.3.11");
    assert_eq!(alerts["silences"][0]["reason"], "toner");
    let page = m.get("/").text();
    assert!(
        page.contains("1 firing") && page.contains("silenced"),
        "{page}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(receiver.messages().is_empty(), "{:#?}", receiver.messages());

    // Lifted: the alert that fired under the silence goes out now, saying
    // when it really started.
    let r = m.post("/admin/silence?target=198.19.3.11&for=0", &auth, b"");
    assert_eq!(r.json()["status"], "lifted", "{}", r.text());
    let fired = common::eventually(Duration::from_secs(20), Duration::from_millis(200), || {
        receiver.messages().into_iter().next()
    })
    .expect("the firing message once the silence is lifted");
    assert_eq!(fired["notices"][0]["kind"], "firing", "{fired:#}");
    assert_eq!(fired["notices"][0]["alert"], "down/198.19.3.11");

    // The dead channel's copy waits; the counters and the page say so.
    let live = format!("webhook 127.0.0.1:{port}");
    let gone = format!("webhook 127.0.0.1:{dead}");
    let metrics = common::eventually(Duration::from_secs(20), Duration::from_millis(200), || {
        let text = m.get("/metrics").text();
        text.contains(&format!(
            "edgeprobe_notifications_total{{channel=\"{gone}\",result=\"failed\"}} 1\n"
        ))
        .then_some(text)
    })
    .expect("the dead channel's failed attempt counted");
    assert!(
        metrics.contains(&format!(
            "edgeprobe_notifications_total{{channel=\"{live}\",result=\"delivered\"}} 1\n"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nedgeprobe_notifications_queued 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nedgeprobe_alerts_firing 1\n"),
        "{metrics}"
    );
    let page = m.get("/alerts").text();
    assert!(
        page.contains("waiting") && page.contains("delivered"),
        "{page}"
    );
    assert!(
        page.contains("connection refused") || page.contains("refused"),
        "{page}"
    );

    // A test through every channel: one takes it, the other is named.
    let r = m.post("/admin/test-alert", &auth, b"");
    assert_eq!(r.status, 502, "{}", r.text());
    let doc = r.json();
    let by_channel = |label: &str| {
        doc["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == label)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_channel(&live)["delivered"], true, "{doc:#}");
    assert_eq!(by_channel(&gone)["delivered"], false, "{doc:#}");
    assert!(by_channel(&gone)["error"]
        .as_str()
        .unwrap()
        .contains(&dead.to_string()));
    let test = common::eventually(Duration::from_secs(10), Duration::from_millis(200), || {
        receiver
            .messages()
            .into_iter()
            .find(|v| v["notices"][0]["kind"] == "test")
    })
    .expect("the test message");
    assert_eq!(test["board"], "closet-3");

    // The same from the command line, against the same config.
    let out = t
        .lab
        .edgeprobe()
        .args(["alerts", "test", "--config", t.config.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED") && stdout.contains(&gone),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 2 channels"), "{stdout}");

    // A silence outlives a restart.
    let r = m.post("/admin/silence?board&for=2h", &auth, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    m.signal("TERM");
    assert!(m.wait_exit(Duration::from_secs(20)).is_some());
    drop(m);
    let m = t.start_monitor();
    let silences = m.get("/api/v1/alerts").json()["silences"].clone();
    assert_eq!(silences[0]["scope"], "board", "{silences:#}");
    t.run_in("h2", &["nft", "delete table inet down"]);
}

#[test]
fn a_target_still_down_when_its_dead_gateway_returns_is_alerted_then() {
    let port = free_port();
    let t = AlertLab::up(
        "alr7",
        &webhook(port),
        FILES_AND_PRINTER,
        "--interval 1s --count 2 --down-after 1",
    );
    let receiver = t.receiver(port);
    let m = t.start_monitor();
    wait_both_working(&m);

    // The gateway dies, and behind it the printer (its own fault) too.
    t.run_in("r1", &["nft", GATEWAY_DEAD]);
    t.run_in("h2", &["nft", HOST_DOWN]);
    m.wait_for("the gateway down", Duration::from_secs(30), |v| {
        v["board_gateways"][0]["up"] == false
    });
    common::eventually(Duration::from_secs(20), Duration::from_millis(200), || {
        receiver.messages().into_iter().next()
    })
    .expect("the gateway's message");

    // The gateway is back; the printer is not.
    t.run_in("r1", &["nft", "delete table inet dead"]);
    m.wait_for("files back", Duration::from_secs(30), |v| {
        status_of(v, "198.19.3.10").as_deref() == Some("working")
    });
    let messages = common::eventually(Duration::from_secs(30), Duration::from_millis(200), || {
        let all = receiver.messages();
        let fired = all
            .iter()
            .flat_map(|m| m["notices"].as_array().unwrap().clone())
            .any(|n| n["kind"] == "firing" && n["alert"] == "down/198.19.3.11");
        fired.then_some(all)
    })
    .expect("the printer alerted once its gateway is back");
    let notices: Vec<(String, String)> = messages
        .iter()
        .flat_map(|m| m["notices"].as_array().unwrap().clone())
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_string(),
                n["alert"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let said = |kind: &str, alert: &str| {
        notices
            .iter()
            .filter(|(k, a)| k == kind && a == alert)
            .count()
    };
    assert_eq!(said("firing", "gateway/198.18.1.1"), 1, "{notices:?}");
    assert_eq!(said("resolved", "gateway/198.18.1.1"), 1, "{notices:?}");
    assert_eq!(said("firing", "down/198.19.3.11"), 1, "{notices:?}");
    assert_eq!(
        said("firing", "down/198.19.3.10"),
        0,
        "files came back with its gateway: never alerted: {notices:?}"
    );
    t.run_in("h2", &["nft", "delete table inet down"]);
}
