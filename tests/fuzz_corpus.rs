//! The fuzz targets' committed corpus and every input that once crashed
//! them (`fuzz/regressions/TARGET/`), replayed through the same harness
//! on stable Rust in every test run. `scripts/fuzz.sh` runs the fuzzers.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seen = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} crashes {target}", path.display());
            seen += 1;
        }
    }
    assert!(seen > 0, "no corpus for {target}");
}

#[test]
fn sheet_corpus() {
    replay("sheet", harness::sheet);
}

#[test]
fn worksheet_xml_corpus() {
    replay("worksheet_xml", harness::worksheet_xml);
}

#[test]
fn packet_corpus() {
    replay("packet", harness::packet);
}
