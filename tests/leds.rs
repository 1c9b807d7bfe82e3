//! The LEDs through the real binary: `edgeprobe leds test` and `edgeprobe
//! run` driving a fake `/sys/class/leds` tree (the Linux LED class as the
//! kernel shows it: trigger, max_brightness, brightness), and LEDs that
//! cannot be opened leaving the monitor running.
//!
//! Only loopback targets are probed here.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::monitor::{run_args, RunningMonitor};
use serde_json::Value;

/// A fake LED class tree with the Pi's two LEDs: ACT (trigger mmc0) and
/// PWR (trigger default-on).
fn led_tree(root: &Path) {
    for (name, trigger, max) in [("ACT", "mmc0", "255"), ("PWR", "default-on", "1")] {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("trigger"),
            format!("none timer heartbeat [{trigger}] default-on mmc0"),
        )
        .unwrap();
        fs::write(dir.join("max_brightness"), format!("{max}\n")).unwrap();
        fs::write(dir.join("brightness"), "0\n").unwrap();
    }
}

fn read(root: &Path, led: &str, file: &str) -> String {
    fs::read_to_string(root.join(led).join(file))
        .unwrap()
        .trim()
        .to_string()
}

/// `edgeprobe leds test ARGS...`, run to the end.
fn leds_test(args: &[&str]) -> Output {
    common::edgeprobe()
        .args(["leds", "test"])
        .args(args)
        .output()
        .unwrap()
}

/// [`leds_test`] with `toml` as the config file in `dir`.
fn leds_test_with(dir: &Path, toml: &str) -> Output {
    leds_test(&["--config", &write_config(dir, toml)])
}

fn write_config(dir: &Path, leds: &str) -> String {
    let path = dir.join("edgeprobe.toml");
    fs::write(&path, leds).unwrap();
    path.display().to_string()
}

fn sysfs_config(dir: &Path, root: &Path) -> String {
    write_config(
        dir,
        &format!(
            "[leds]\nbackend = \"sysfs\"\nsysfs_root = {:?}\ngreen = {{ name = \"ACT\" }}\nred = {{ name = \"PWR\" }}\n",
            root.display().to_string()
        ),
    )
}

#[test]
fn leds_test_lights_each_led_in_turn_and_hands_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("leds");
    led_tree(&root);
    let config = sysfs_config(dir.path(), &root);
    let out = leds_test(&["--config", &config, "--each", "100ms"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Testing 2 LED(s) on the sysfs backend, 100ms each"),
        "{stdout}"
    );
    let green = stdout
        .find("green (LED class ACT, active high): on")
        .expect(&stdout);
    let red = stdout
        .find("red (LED class PWR, active high): on")
        .expect(&stdout);
    assert!(green < red, "in turn, green first: {stdout}");
    assert!(stdout.contains("all together: blinking"), "{stdout}");
    assert!(stdout.contains("All off."), "{stdout}");
    // Off, and each LED back on the trigger it had.
    assert_eq!(read(&root, "ACT", "brightness"), "0");
    assert_eq!(read(&root, "PWR", "brightness"), "0");
    assert_eq!(read(&root, "ACT", "trigger"), "mmc0");
    assert_eq!(read(&root, "PWR", "trigger"), "default-on");
}

#[test]
fn leds_test_names_an_led_it_cannot_drive_and_tests_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("leds");
    led_tree(&root);
    let config = write_config(
        dir.path(),
        &format!(
            "[leds]\nbackend = \"sysfs\"\nsysfs_root = {:?}\ngreen = {{ name = \"ACT\" }}\namber = {{ name = \"led7\" }}\n",
            root.display().to_string()
        ),
    );
    let out = leds_test(&["--config", &config, "--each", "50ms"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("NOT DRIVEN  amber (LED class led7, active high): no LED named \"led7\""),
        "{stdout}"
    );
    assert!(stdout.contains("available: ACT, PWR"), "{stdout}");
    assert!(
        stdout.contains("green (LED class ACT, active high): on"),
        "{stdout}"
    );
}

#[test]
fn leds_test_explains_itself_without_real_leds() {
    let dir = tempfile::tempdir().unwrap();
    // No config: the virtual backend, nothing to light.
    let out = leds_test(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("virtual backend has no LEDs to light"),
        "{stderr}"
    );
    assert!(stderr.contains("--config"), "{stderr}");

    // A GPIO chip that is not there: named, with what to do.
    let out = leds_test_with(
        dir.path(),
        "[leds]\nbackend = \"cdev\"\nchip = \"/dev/gpiochip-absent\"\nred = { pin = 27 }\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "NOT DRIVEN  red (pin 27, active high): GPIO chip /dev/gpiochip-absent: no such device"
        ),
        "{stdout}"
    );

    // A config mistake names the key.
    let out = leds_test_with(
        dir.path(),
        "[leds]\nbackend = \"rppal\"\ngreen = { name = \"ACT\" }\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("leds.green: the rppal backend needs pin = N"),
        "{stderr}"
    );
}

/// Poll until `done` holds for the LED files, or panic with what was seen.
fn wait_files(what: &str, timeout: Duration, done: impl Fn() -> bool, seen: impl Fn() -> String) {
    if common::eventually(timeout, Duration::from_millis(5), || done().then_some(())).is_some() {
        return;
    }
    panic!("timed out waiting for {what}; saw {}", seen());
}

/// `edgeprobe run` with `config`, probing 127.0.0.1 every second.
fn monitor_loopback(dir: &Path, config: &str) -> RunningMonitor {
    let sheet = dir.join("targets.csv");
    fs::write(&sheet, "IP,Name\n127.0.0.1,loopback\n").unwrap();
    let state = dir.join("state");
    RunningMonitor::start_local(&run_args(
        sheet.to_str().unwrap(),
        state.to_str().unwrap(),
        &[
            "--config",
            config,
            "--interval",
            "1s",
            "--count",
            "1",
            "--timeout",
            "300ms",
        ],
    ))
}

#[test]
fn the_monitor_drives_sysfs_leds_and_gives_them_back_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("leds");
    led_tree(&root);
    let config = sysfs_config(dir.path(), &root);
    let mut m = monitor_loopback(dir.path(), &config);
    let v = m.wait_for("the first round", Duration::from_secs(30), |v| {
        v["counts"]["working"] == 1
    });
    assert_eq!(v["led_driver"]["backend"], "sysfs", "{v:#}");
    assert_eq!(
        v["led_driver"]["driven"],
        serde_json::json!([
            "green (LED class ACT, active high)",
            "red (LED class PWR, active high)"
        ])
    );
    assert_eq!(v["led_driver"]["faults"], serde_json::json!([]));
    // The kernel triggers are taken over while it runs.
    assert_eq!(read(&root, "ACT", "trigger"), "none");
    assert_eq!(read(&root, "PWR", "trigger"), "none");
    m.wait_for("green heartbeat", Duration::from_secs(10), |v| {
        v["leds"]["green"] == "heartbeat" && v["leds"]["red"] == "off"
    });
    // The heartbeat is written to the pin: lit most of the time, with a
    // short blink-off every 2 s.
    let seen = || format!("ACT brightness {}", read(&root, "ACT", "brightness"));
    wait_files(
        "green lit",
        Duration::from_secs(5),
        || read(&root, "ACT", "brightness") == "255",
        seen,
    );
    wait_files(
        "the heartbeat's blink-off",
        Duration::from_secs(5),
        || read(&root, "ACT", "brightness") == "0",
        seen,
    );
    wait_files(
        "green lit again",
        Duration::from_secs(5),
        || read(&root, "ACT", "brightness") == "255",
        seen,
    );
    assert_eq!(read(&root, "PWR", "brightness"), "0", "red stays off");

    m.signal("TERM");
    let status = m.wait_exit(Duration::from_secs(20)).expect("stops");
    assert!(status.success(), "{}", m.log());
    assert_eq!(read(&root, "ACT", "brightness"), "0");
    assert_eq!(read(&root, "ACT", "trigger"), "mmc0", "trigger restored");
    assert_eq!(
        read(&root, "PWR", "trigger"),
        "default-on",
        "trigger restored"
    );
}

#[test]
fn leds_that_cannot_be_opened_leave_the_monitor_running() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[leds]\nbackend = \"cdev\"\nchip = \"/dev/gpiochip-absent\"\ngreen = { pin = 17 }\nred = { pin = 27 }\n",
    );
    let m = monitor_loopback(dir.path(), &config);
    let v: Value = m.wait_for("a round without LEDs", Duration::from_secs(30), |v| {
        v["counts"]["working"] == 1
    });
    let faults = v["led_driver"]["faults"]
        .as_array()
        .expect("faults")
        .clone();
    assert_eq!(faults.len(), 2, "{v:#}");
    assert!(faults[0].as_str().is_some_and(
        |f| f.starts_with("green (pin 17, active high): GPIO chip /dev/gpiochip-absent")
    ));
    // The patterns are still worked out and shown.
    assert_eq!(v["leds"]["green"], "heartbeat");
    let page = m.get("/").text();
    assert!(
        page.contains("LED not driven (probing goes on): red (pin 27"),
        "{page}"
    );
    assert!(
        m.log()
            .contains("warning: LED not driven (probing goes on): green (pin 17"),
        "{}",
        m.log()
    );
}
