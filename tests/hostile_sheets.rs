//! Hostile target sheets through the real binary (`edgeprobe check`, which
//! reads workbooks in a confined process, as the monitor does): each ends
//! in a clear error, or loads, and never crashes or hangs the caller. The
//! files are built here, in the bytes a hostile writer would use.

mod common;

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::monitor::{quick_args, RunningMonitor};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

const MAIN_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";

fn check(path: &Path) -> Output {
    common::edgeprobe()
        .args(["check", path.to_str().unwrap()])
        .output()
        .expect("run edgeprobe check")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `check` refused the file (exit 2) with a message containing `want`,
/// and nothing crashed on the way.
fn assert_refused(path: &Path, want: &str) -> String {
    let out = check(path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
    assert!(
        err.contains(want),
        "{}: wanted {want:?} in: {err}",
        path.display()
    );
    assert!(
        err.contains(&path.display().to_string()),
        "the message names the file: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// [`assert_refused`] for `dir/NAME`, a workbook whose one sheet,
/// "Targets", holds `rows` (the content of `<sheetData>`).
fn assert_sheet_refused(dir: &Path, name: &str, rows: &str, want: &str) {
    let book = xlsx(&[("Targets", false, &worksheet(rows))], &[]);
    assert_refused(&write(dir, name, &book), want);
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A minimal .xlsx: a workbook with `sheets` (name, hidden, worksheet XML),
/// and each part deflated. `extra` parts are added as given.
fn xlsx(sheets: &[(&str, bool, &[u8])], extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut part = |name: &str, body: &[u8]| {
        zip.start_file(name, opts).unwrap();
        zip.write_all(body).unwrap();
    };
    let mut overrides = String::new();
    let mut entries = String::new();
    let mut rels = String::new();
    for (i, (name, hidden, _)) in sheets.iter().enumerate() {
        let n = i + 1;
        overrides.push_str(&format!(
            r#"<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#
        ));
        let state = if *hidden { r#" state="hidden""# } else { "" };
        entries.push_str(&format!(
            r#"<sheet name="{name}" sheetId="{n}"{state} r:id="rId{n}"/>"#
        ));
        rels.push_str(&format!(
            r#"<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{n}.xml"/>"#
        ));
    }
    part(
        "[Content_Types].xml",
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>{overrides}</Types>"#
        )
        .as_bytes(),
    );
    part(
        "_rels/.rels",
        br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    );
    part(
        "xl/workbook.xml",
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN_NS}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{entries}</sheets></workbook>"#
        )
        .as_bytes(),
    );
    part(
        "xl/_rels/workbook.xml.rels",
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#
        )
        .as_bytes(),
    );
    for (i, (_, _, xml)) in sheets.iter().enumerate() {
        part(&format!("xl/worksheets/sheet{}.xml", i + 1), xml);
    }
    for (name, body) in extra {
        part(name, body);
    }
    zip.finish().unwrap().into_inner()
}

/// Worksheet XML around `cells` (the content of `<sheetData>`).
fn worksheet(cells: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>{cells}</sheetData></worksheet>"#
    )
    .into_bytes()
}

/// Inline-string cell.
fn text_cell(r: &str, text: &str) -> String {
    format!(r#"<c r="{r}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

const HEADER_AND_ONE: &str = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>ip</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>127.0.0.1</t></is></c></row>"#;

#[test]
fn truncated_and_garbage_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for fixture in ["sites.xlsx", "sites.ods"] {
        let bytes = std::fs::read(common::fixture(fixture)).unwrap();
        for cut in [bytes.len() / 2, 100, 4] {
            let path = write(d, &format!("cut-{cut}-{fixture}"), &bytes[..cut]);
            assert_refused(&path, "cannot read it as");
        }
    }
    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for ext in ["xlsx", "xls", "ods"] {
        let path = write(d, &format!("garbage.{ext}"), &garbage);
        assert_refused(&path, "cannot read it as");
    }
    // A zip header on garbage, an OLE header on garbage.
    let mut zipish = b"PK\x03\x04".to_vec();
    zipish.extend_from_slice(&garbage);
    assert_refused(&write(d, "zipish.xlsx", &zipish), "cannot read it as");
    let mut oleish = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".to_vec();
    oleish.extend_from_slice(&garbage);
    assert_refused(&write(d, "oleish.xls", &oleish), "cannot read it as");
    assert_refused(&write(d, "empty.xlsx", b""), "cannot read it as");
    assert_refused(&write(d, "empty.csv", b""), "is empty");
}

#[test]
fn a_zip_bomb_is_refused_before_it_is_unzipped() {
    let dir = tempfile::tempdir().unwrap();
    // 100 MiB of blanks inside the sheet, about 100 KiB zipped, written a
    // mebibyte at a time.
    let sheet = worksheet(HEADER_AND_ONE);
    let (head, tail) = sheet.split_at(sheet.len() - "</sheetData></worksheet>".len());
    let blanks = vec![b' '; 1024 * 1024];
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    zip.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
    zip.write_all(head).unwrap();
    for _ in 0..100 {
        zip.write_all(&blanks).unwrap();
    }
    zip.write_all(tail).unwrap();
    let bomb = zip.finish().unwrap().into_inner();
    assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
    let path = write(dir.path(), "bomb.xlsx", &bomb);
    let err = assert_refused(&path, "unzips to 100");
    assert!(err.contains("limits.sheet_max_unzipped_mb"), "{err}");
}

#[test]
fn a_declared_string_table_it_cannot_hold_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sst = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}" count="4294967295" uniqueCount="4294967295"><si><t>ip</t></si></sst>"#
    );
    let book = xlsx(
        &[("Targets", false, &worksheet(HEADER_AND_ONE))],
        &[("xl/sharedStrings.xml", sst.as_bytes())],
    );
    let path = write(dir.path(), "sst.xlsx", &book);
    assert_refused(&path, "string table declares 4294967295 strings");
}

#[test]
fn entities_and_deep_nesting_end_quickly_either_way() {
    let dir = tempfile::tempdir().unwrap();
    // Billion laughs: the reader does not expand custom entities.
    let mut laughs = String::from(r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">"#);
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        laughs.push_str(&format!(
            r#"<!ENTITY lol{i} "{}">"#,
            format!("&{prev};").repeat(10)
        ));
    }
    laughs.push_str(&format!(
        r#"]><worksheet xmlns="{MAIN_NS}"><sheetData>{HEADER_AND_ONE}<row r="3">{}</row></sheetData></worksheet>"#,
        text_cell("A3", "&lol9;")
    ));
    // 200,000 nested elements inside a cell.
    let deep = format!(
        r#"<?xml version="1.0"?><worksheet xmlns="{MAIN_NS}"><sheetData>{HEADER_AND_ONE}<row r="3"><c r="A3" t="inlineStr"><is><t>{}{}</t></is></c></row></sheetData></worksheet>"#,
        "<x>".repeat(200_000),
        "</x>".repeat(200_000)
    );
    for (name, xml) in [
        ("laughs.xlsx", laughs.into_bytes()),
        ("deep.xlsx", deep.into_bytes()),
    ] {
        let path = write(dir.path(), name, &xlsx(&[("Targets", false, &xml)], &[]));
        let out = check(&path);
        let err = stderr(&out);
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "{name}: {:?} {err}",
            out.status
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        // Expanding entities would end at a memory or text cap, deep
        // nesting on the stack in a crash of the reader: neither may show.
        for sign in [
            "took more than",
            "needs more than",
            "hold more than",
            "workbook reader failed on it",
            "stack overflow",
        ] {
            assert!(!err.contains(sign), "{name}: {sign:?} in: {err}");
        }
        let all = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
        assert!(!all.contains("lollollol"), "{name}: an entity was expanded");
        assert!(all.len() < 100_000, "{name}: {} bytes of output", all.len());
    }
}

#[test]
fn a_million_rows_stop_at_the_row_limit() {
    let dir = tempfile::tempdir().unwrap();
    // One shared string for every row keeps the parts under the unzip cap.
    let mut rows = String::from(HEADER_AND_ONE);
    for r in 3..=1_000_000u32 {
        rows.push_str(&format!(
            r#"<row r="{r}"><c r="A{r}" t="s"><v>0</v></c></row>"#
        ));
    }
    let sst = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}" count="999998" uniqueCount="1"><si><t>127.0.0.3</t></si></sst>"#
    );
    let book = xlsx(
        &[("Targets", false, &worksheet(&rows))],
        &[("xl/sharedStrings.xml", sst.as_bytes())],
    );
    drop(rows);
    let path = write(dir.path(), "million.xlsx", &book);
    let err = assert_refused(&path, "more than the limit of 100000 rows");
    assert!(err.contains("limits.sheet_max_rows"), "{err}");

    // The same as CSV: over the file size cap first; under it, the rows.
    let mut csv = String::from("ip\n");
    for r in 0..1_000_000u32 {
        csv.push_str(&format!(
            "127.{}.{}.{}\n",
            r >> 16 & 255,
            r >> 8 & 255,
            r & 255
        ));
    }
    let path = write(dir.path(), "million.csv", csv.as_bytes());
    assert_refused(&path, "over the limit of 8 MiB (`limits.sheet_max_mb`)");
    let cut: String = csv
        .lines()
        .take(150_000)
        .map(|l| format!("{l}\n"))
        .collect();
    let path = write(dir.path(), "150k.csv", cut.as_bytes());
    assert_refused(&path, "more than the limit of 100000 rows");
}

#[test]
fn a_cell_far_away_is_refused_not_made_dense() {
    let dir = tempfile::tempdir().unwrap();
    let far_right = format!(
        "{HEADER_AND_ONE}<row r=\"3\">{}</row>",
        text_cell("XFD3", "x")
    );
    assert_sheet_refused(
        dir.path(),
        "right.xlsx",
        &far_right,
        "column 16384, past column 256",
    );
    let far_down = format!(
        "{HEADER_AND_ONE}<row r=\"1048576\">{}</row>",
        text_cell("A1048576", "127.0.0.2")
    );
    assert_sheet_refused(
        dir.path(),
        "down.xlsx",
        &far_down,
        "to at least row 1048576",
    );
    // Both corners at once: a reader that made the range dense would need
    // 17 billion cells and die at the reader's memory limit instead.
    let corners = format!(
        "{HEADER_AND_ONE}<row r=\"1048576\">{}</row>",
        text_cell("XFD1048576", "x")
    );
    let err = assert_refused(
        &write(
            dir.path(),
            "corners.xlsx",
            &xlsx(&[("Targets", false, &worksheet(&corners))], &[]),
        ),
        "",
    );
    assert!(
        err.contains("past column 256") || err.contains("to at least row 1048576"),
        "refused for its span, not its memory: {err}"
    );
    // Within the caps on rows and columns, but wide everywhere: one cell in
    // column 250 on each of 20,000 rows, and 7 million commas on one line.
    let mut wide = String::from(HEADER_AND_ONE);
    for r in 3..20_003u32 {
        wide.push_str(&format!(
            "<row r=\"{r}\">{}</row>",
            text_cell(&format!("IP{r}"), "x")
        ));
    }
    assert_sheet_refused(
        dir.path(),
        "wide.xlsx",
        &wide,
        "holds more than 1600000 cells",
    );
    let mut commas = String::from("ip\n127.0.0.1");
    commas.push_str(&",".repeat(7_000_000));
    let path = write(dir.path(), "commas.csv", commas.as_bytes());
    assert_refused(&path, "holds more than 1600000 cells");
}

/// An .ods whose few hundred bytes declare a million rows of filled cells:
/// the spreadsheet library builds it densely, so only its own cell cap or
/// the confined reader process stops it.
#[test]
fn an_ods_that_repeats_itself_into_gigabytes_is_stopped_by_the_reader_limits() {
    let dir = tempfile::tempdir().unwrap();
    let content = |rows: u32, cols: u32| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Targets"><table:table-row><table:table-cell office:value-type="string"><text:p>ip</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="{rows}"><table:table-cell table:number-columns-repeated="{cols}" office:value-type="string"><text:p>127.0.0.1</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#
        )
    };
    let dir_path = dir.path();
    let ods = |name: &str, rows: u32, cols: u32| {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        zip.start_file("mimetype", stored).unwrap();
        zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
            .unwrap();
        zip.start_file("content.xml", stored).unwrap();
        zip.write_all(content(rows, cols).as_bytes()).unwrap();
        zip.start_file("META-INF/manifest.xml", stored).unwrap();
        zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        assert!(bytes.len() < 4096);
        write(dir_path, name, &bytes)
    };
    // 16 billion cells: over the library's own cap of 100 million.
    assert_refused(&ods("repeat.ods", 1_000_000, 16_384), "Cell limit exceeded");
    // 99 million cells, 3 GB as the library holds them: under its cap,
    // over the reader's memory.
    let repeat99 = ods("repeat99.ods", 1_000_000, 99);
    assert_refused(&repeat99, "needs more than 384 MiB");
    // `probe` reads its sheet through the same confined reader: only that
    // process's limit says this.
    let out = Command::new(env!("CARGO_BIN_EXE_edgeprobe"))
        .args(["probe", "--no-trace", "--targets"])
        .arg(&repeat99)
        .output()
        .expect("run edgeprobe probe");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs more than 384 MiB"), "{err}");
}

/// The office-made .xls fixture with its DIMENSIONS record claiming
/// 4 billion rows: the library reserves room for them up front and the
/// allocation aborts its process, which here is the confined reader.
#[test]
fn an_xls_that_declares_billions_of_cells_is_stopped_by_the_reader_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/targets/testdata/typed.xls"))
            .unwrap();
    // BIFF8 DIMENSIONS: type 0x0200, length 14, first row u32, last row + 1
    // u32, first column u16, last column + 1 u16, reserved u16.
    let mut patched = 0;
    let mut i = 0;
    while i + 18 <= bytes.len() {
        if bytes[i..i + 4] == [0x00, 0x02, 0x0e, 0x00] {
            bytes[i + 8..i + 12].copy_from_slice(&0xffff_0000u32.to_le_bytes());
            bytes[i + 14..i + 16].copy_from_slice(&0x00ffu16.to_le_bytes());
            patched += 1;
        }
        i += 1;
    }
    assert!(patched >= 1, "no DIMENSIONS record found");
    let path = write(dir.path(), "dimensions.xls", &bytes);
    let err = assert_refused(&path, "not loaded");
    assert!(err.contains("needs more than 384 MiB"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line says it: {err}");
}

#[test]
fn formulas_errors_merged_cells_and_hidden_sheets_load_as_a_person_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let rows = format!(
        concat!(
            r#"<row r="1">{}{}</row>"#,
            // A formula with its cached value, as every office suite saves it.
            r#"<row r="2"><c r="A2" t="str"><f>"127.0.0."&amp;"1"</f><v>127.0.0.1</v></c>{}</row>"#,
            // A formula that was never calculated: no value.
            r#"<row r="3"><c r="A3"><f>1+1</f></c>{}</row>"#,
            // An error cell.
            r#"<row r="4"><c r="A4" t="e"><v>#REF!</v></c>{}</row>"#,
            // Merged across A5:B5: only the first cell holds the value.
            r#"<row r="5">{}<c r="B5"/></row>"#,
        ),
        text_cell("A1", "ip"),
        text_cell("B1", "name"),
        text_cell("B2", "formula"),
        text_cell("B3", "uncalculated"),
        text_cell("B4", "error"),
        text_cell("A5", "127.0.0.5"),
    );
    let visible = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>{rows}</sheetData><mergeCells count="1"><mergeCell ref="A5:B5"/></mergeCells></worksheet>"#
    );
    let hidden = worksheet(&format!(
        r#"<row r="1">{}</row><row r="2">{}</row>"#,
        text_cell("A1", "ip"),
        text_cell("A2", "127.9.9.9")
    ));
    let book = xlsx(
        &[
            ("Old", true, &hidden),
            ("Targets", false, visible.as_bytes()),
        ],
        &[],
    );
    let path = write(dir.path(), "typed.xlsx", &book);
    let out = common::edgeprobe()
        .args(["check", "--json", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sheet"], "Targets", "the hidden sheet is skipped");
    let addrs = common::target_addrs(&v);
    assert_eq!(addrs, ["127.0.0.1", "127.0.0.5"]);
    let problems: Vec<(u64, String)> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["row"].as_u64().unwrap(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].0, 3);
    assert_eq!(problems[1].0, 4);
    assert!(problems[1].1.contains("#REF!"), "{problems:?}");
}

/// Names with markup and terminal controls: escaped in the terminal, and
/// inert on every page and feed of the monitor.
#[test]
fn markup_and_control_characters_in_names_are_escaped_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = write(
        dir.path(),
        "t.csv",
        "ip,name,group,notes\n127.0.0.1,<script>alert(1)</script>,\"a\"\"b\nc\",\u{1b}[2J\u{7}bell\n127.0.0.2,<img src=x onerror=alert(2)>,</td><b>grp</b>,\u{202e}rtl\n".as_bytes(),
    );
    let out = check(&sheet);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(text.contains("\\u{1b}[2J"), "{text}");

    let state = dir.path().join("state");
    let m = RunningMonitor::start_local(&quick_args(
        sheet.to_str().unwrap(),
        state.to_str().unwrap(),
        &[],
    ));
    m.wait_for("a round", std::time::Duration::from_secs(30), |s| {
        !s["last_round"].is_null()
    });
    for path in [
        "/",
        "/targets/127.0.0.1",
        "/targets/127.0.0.2",
        "/metrics",
        "/api/v1/status",
    ] {
        let body = m.get(path).text();
        for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
            assert!(!body.contains(raw), "{path} carries {raw:?} unescaped");
        }
        if path == "/api/v1/status" || path == "/metrics" {
            // Data, not markup: served as JSON or plain text, with nosniff.
            let r = m.get(path);
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
            assert!(!r.header("content-type").unwrap_or("").contains("html"));
            continue;
        }
        for raw in ["<script>alert", "<img src=x", "<b>grp</b>"] {
            assert!(!body.contains(raw), "{path} carries {raw:?} unescaped");
        }
    }
    let page = m.get("/").text();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is shown, escaped"
    );
    let status = m.status();
    let names: Vec<&str> = status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"<script>alert(1)</script>"),
        "JSON keeps the text as data: {names:?}"
    );
}
