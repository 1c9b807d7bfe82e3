//! The dashboard in a real browser: headless Chromium (Debian's package)
//! loads `/` and a target page served by the monitor running in the
//! namespace lab, the rendered DOM must hold the table, and the
//! screenshots are saved to `images/` for the README. Needs root (CI is
//! root) and `chromium` (scripts/test.sh installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::monitor::{run_args, RunningMonitor};
use common::Lab;

/// Run headless Chromium with a fresh profile; returns stdout.
fn chromium(args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            // The network rule: the browser talks to 127.0.0.1 and nothing
            // else, not even DNS or its vendor's services.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium (apt-get install chromium; scripts/test.sh does)");
    common::assert_success(&out, &format!("chromium {args:?} failed"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshot(url: &str, size: &str, file: &Path) {
    let _ = std::fs::remove_file(file);
    chromium(&[
        &format!("--window-size={size}"),
        &format!("--screenshot={}", file.display()),
        url,
    ]);
    let png = std::fs::read(file).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        file.display()
    );
    assert!(png.len() > 10_000, "{} looks blank", file.display());
}

#[test]
fn the_dashboard_renders_in_chromium_and_is_photographed_for_the_readme() {
    let lab = Lab::up("brw");
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("targets.csv");
    std::fs::write(
        &sheet,
        "ip,name,group\n\
         198.18.1.1,closet gateway,core\n\
         198.18.2.2,distribution router,core\n\
         198.19.3.10,file server,lan\n\
         198.19.3.11,printer,lan\n\
         2001:db8:3::10,file server (IPv6),lan\n\
         198.19.3.20,badge reader,lan\n\
         198.19.200.1,branch office,wan\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let m = RunningMonitor::start_in_netns(
        &format!("{}-probe", lab.name),
        &run_args(
            sheet.to_str().unwrap(),
            state.to_str().unwrap(),
            &[
                "--interval",
                "2s",
                "--timeout",
                "400ms",
                "--board-id",
                "closet-3",
            ],
        ),
    );
    // A few rounds, so the sparklines have a line to draw.
    m.wait_for("five rounds", Duration::from_secs(60), |v| {
        v["last_round"]["round"].as_u64().is_some_and(|r| r >= 5)
    });

    let base = format!("http://{}", m.addr);
    let dom = chromium(&["--dump-dom", &format!("{base}/")]);
    assert!(dom.contains("<table"), "no table:\n{dom}");
    let rows = dom.matches("<tr").count();
    assert!(
        rows >= 8,
        "a header and seven targets, found {rows} rows:\n{dom}"
    );
    for needle in [
        "closet-3",
        "file server",
        "badge reader",
        "Not Working",
        "198.18.2.2",
        "<svg",
    ] {
        assert!(dom.contains(needle), "the page lacks {needle}");
    }
    let target = chromium(&["--dump-dom", &format!("{base}/targets/198.19.3.10")]);
    assert!(
        target.contains("198.18.2.2"),
        "the path is on the target page"
    );
    assert!(
        target.contains("<svg"),
        "the RTT chart is on the target page"
    );

    let images: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("images");
    std::fs::create_dir_all(&images).unwrap();
    screenshot(
        &format!("{base}/"),
        "1280,720",
        &images.join("dashboard.png"),
    );
    screenshot(
        &format!("{base}/targets/198.19.3.10"),
        "1280,900",
        &images.join("target.png"),
    );
    screenshot(
        &format!("{base}/"),
        "390,844",
        &images.join("dashboard-phone.png"),
    );
}
