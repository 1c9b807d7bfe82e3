//! `edgeprobe check` on the office-made fixtures and on files a user can
//! get wrong: the exit codes and the messages.

mod common;

use std::io::Write as _;

use common::{edgeprobe, fixture};

fn check(args: &[&str]) -> (Option<i32>, String, String) {
    let out = edgeprobe().arg("check").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn seed_layout_is_clean() {
    let path = fixture("seed-layout.xlsx");
    let (code, stdout, _) = check(&["--json", path.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let addrs = common::target_addrs(&v);
    assert_eq!(
        addrs,
        [
            "127.0.0.1",
            "127.0.0.2",
            "127.0.0.53",
            "::1",
            "127.10.20.30"
        ]
    );
    assert_eq!(v["problems"], serde_json::json!([]));
}

#[test]
fn sites_sheets_have_three_targets_and_the_typo_row() {
    for name in ["sites.xlsx", "sites.ods"] {
        let path = fixture(name);
        let path = path.to_str().unwrap();
        let (code, stdout, _) = check(&["--json", path]);
        assert_eq!(code, Some(1), "{name}: problems but valid targets");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let targets = v["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 3, "{name}");
        assert_eq!(targets[0]["name"], "loopback");
        assert_eq!(targets[0]["group"], "lab");
        let problems = v["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{name}");
        assert_eq!(problems[0]["row"], 5);
        assert_eq!(problems[0]["value"], "127.0.0.300");

        let (_, text, _) = check(&[path]);
        assert!(
            text.contains(&format!(
                "{path}: sites row 5: \"127.0.0.300\" is not an IP address or host name"
            )),
            "{text}"
        );
    }
}

#[test]
fn unusable_files_exit_2_with_a_reason() {
    let (code, _, stderr) = check(&["/nonexistent/targets.xlsx"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/nonexistent/targets.xlsx"), "{stderr}");

    let mut bad = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    writeln!(bad, "ip,name\n127.0.0.300,typo\n,no address here").unwrap();
    let (code, stdout, _) = check(&["--json", bad.path().to_str().unwrap()]);
    assert_eq!(code, Some(2), "zero valid targets");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("no valid targets"),
        "{v:#}"
    );
    assert_eq!(v["problems"].as_array().unwrap().len(), 2);

    let mut no_header = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    writeln!(no_header, "name,where\nrouter,closet").unwrap();
    let (code, _, stderr) = check(&[no_header.path().to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("add a header cell `ip`"), "{stderr}");
}

#[test]
fn hostile_names_are_escaped_on_the_terminal() {
    let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    writeln!(f, "ip,name\n127.0.0.1,\"evil\x1b[2Jname\"").unwrap();
    let (code, stdout, _) = check(&[f.path().to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert!(!stdout.contains('\x1b'), "raw escape reached the terminal");
    assert!(stdout.contains("evil\\u{1b}[2Jname"), "{stdout}");
}

#[test]
fn a_sheet_can_be_named_and_a_wrong_name_lists_the_sheets() {
    let path = fixture("sites.xlsx");
    let path = path.to_str().unwrap();
    let (code, _, _) = check(&["--sheet", "sites", path]);
    assert_eq!(code, Some(1));
    let (code, _, stderr) = check(&["--sheet", "nope", path]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("nope") && stderr.contains("sites"),
        "{stderr}"
    );
}
