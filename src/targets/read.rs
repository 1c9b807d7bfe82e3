//! The I/O side of the loader: reading the file within its size cap,
//! deciding its format, and handing workbooks to [`super::workbook`]
//! (here or in a separate process) and text to the CSV reader.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::targets::delimited::parse_csv;
use crate::targets::isolate;
use crate::targets::limits::{human_bytes, SheetLimits, MAX_FILE_KEY};
use crate::targets::workbook::{self, WorkbookError};
use crate::targets::{LoadError, TargetList};

/// The file formats a target list can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// Office Open XML workbook (Excel 2007 and later, LibreOffice).
    Xlsx,
    /// Legacy Excel 97-2003 workbook.
    Xls,
    /// OpenDocument spreadsheet.
    Ods,
    /// Comma-, semicolon- or tab-separated text.
    Csv,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Xlsx => ".xlsx",
            Format::Xls => ".xls",
            Format::Ods => ".ods",
            Format::Csv => ".csv",
        })
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// A zip archive: .xlsx or .ods (both are zipped XML).
    Zip,
    /// An OLE2 compound file: .xls.
    Ole,
    Text,
    Binary,
}

fn sniff(bytes: &[u8]) -> Content {
    if bytes.starts_with(b"PK\x03\x04") {
        return Content::Zip;
    }
    if bytes.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        return Content::Ole;
    }
    if bytes.starts_with(b"\xff\xfe") || bytes.starts_with(b"\xfe\xff") {
        return Content::Text;
    }
    // Text files have no control bytes other than layout ones; binary
    // formats have plenty (NUL above all) in their first few kilobytes.
    let head = &bytes[..bytes.len().min(8192)];
    let text = head
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c));
    if text {
        Content::Text
    } else {
        Content::Binary
    }
}

fn format_from_extension(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "xlsx" | "xlsm" => Format::Xlsx,
        "xls" => Format::Xls,
        "ods" => Format::Ods,
        "csv" | "tsv" | "txt" => Format::Csv,
        _ => return None,
    })
}

/// How target files are read: the caps that apply, and where workbooks
/// are parsed.
#[derive(Debug, Clone, Default)]
pub struct Loader {
    pub limits: SheetLimits,
    /// The edgeprobe binary to parse workbooks in, as a separate process
    /// with memory and time limits ([`super::isolate`]); `None` parses them
    /// in this process.
    pub isolate_with: Option<PathBuf>,
}

impl Loader {
    /// Workbooks parsed in a separate process: what the commands use. If
    /// this program's own path is unknown they are parsed here.
    pub fn isolated(limits: SheetLimits) -> Loader {
        Loader {
            limits,
            isolate_with: isolate::this_program(),
        }
    }

    /// Loads the targets from a `.xlsx`, `.xls`, `.ods` or `.csv` file.
    ///
    /// The extension decides the format; without a known one the content
    /// is sniffed. `sheet` names the sheet to read (exact name first, then
    /// ignoring case); `None` takes the first visible worksheet. Messages
    /// name the file as `path.display()` shows it.
    pub fn load(&self, path: &Path, sheet: Option<&str>) -> Result<TargetList, LoadError> {
        let file = path.display().to_string();
        let bytes = read_capped(path, &file, &self.limits)?;
        self.load_bytes(&file, path, &bytes, sheet)
    }

    /// [`Loader::load`] for bytes already in memory (an upload); `name`
    /// supplies the extension, `file` the name used in messages.
    pub fn load_bytes(
        &self,
        file: &str,
        name: &Path,
        bytes: &[u8],
        sheet: Option<&str>,
    ) -> Result<TargetList, LoadError> {
        let file = file.to_owned();
        if bytes.len() as u64 > self.limits.max_file_bytes {
            return Err(too_big(file, bytes.len() as u64, &self.limits));
        }
        let content = sniff(bytes);
        let candidates: &[Format] = match format_from_extension(name) {
            Some(format) => &[format][..],
            None => match content {
                Content::Zip => &[Format::Xlsx, Format::Ods],
                Content::Ole => &[Format::Xls],
                Content::Text => &[Format::Csv],
                Content::Binary => {
                    let what = match name.extension() {
                        Some(ext) => format!(
                            "the extension .{} is not a target list format and the content is not text",
                            ext.to_string_lossy()
                        ),
                        None => "the file has no extension and its content is neither a spreadsheet nor text".into(),
                    };
                    return Err(LoadError::UnsupportedFormat { file, detail: what });
                }
            },
        };

        if candidates == [Format::Csv] {
            if let Some(wanted) = sheet {
                return Err(LoadError::NoSuchSheet {
                    file,
                    sheet: wanted.to_owned(),
                    available: Vec::new(),
                });
            }
            return parse_csv(&file, bytes, &self.limits);
        }

        let in_process = || workbook::read_targets(&file, candidates, bytes, sheet, &self.limits);
        let read = match &self.isolate_with {
            None => in_process(),
            Some(exe) => match isolate::read(exe, &file, candidates, bytes, sheet, &self.limits) {
                Ok(answer) => answer,
                // Only where this binary cannot start itself at all (qemu-user
                // without binfmt support): better read than not at all.
                Err(e) if isolate::cannot_start_here(&e) => {
                    eprintln!(
                        "edgeprobe: warning: the workbook reader process cannot be started here ({e}); \
                         reading {} in this process, without its memory and time limits",
                        crate::targets::Escaped(&file)
                    );
                    in_process()
                }
                Err(e) => Err(WorkbookError::Interrupted {
                    detail: format!("the workbook reader process could not be started ({e})"),
                }),
            },
        };
        match read {
            Ok(list) => Ok(list),
            Err(WorkbookError::Unreadable { format, mut detail }) => {
                if let Some(actual) = mismatch_hint(format, content) {
                    detail = format!("{detail}; {actual}");
                }
                Err(LoadError::Unreadable {
                    file,
                    format,
                    detail,
                })
            }
            Err(e) => Err(e.into_load_error(&file)),
        }
    }
}

/// [`Loader::load`] with the default limits, parsing in this process.
pub fn load(path: &Path, sheet: Option<&str>) -> Result<TargetList, LoadError> {
    Loader::default().load(path, sheet)
}

/// The whole file, unless it is over `max` bytes (checked before reading,
/// and again while reading, in case it grows).
fn read_capped(path: &Path, file: &str, limits: &SheetLimits) -> Result<Vec<u8>, LoadError> {
    let io = |source| LoadError::Io {
        file: file.to_owned(),
        source,
    };
    let max = limits.max_file_bytes;
    let f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len > max {
        return Err(too_big(file.to_owned(), len, limits));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(too_big(file.to_owned(), bytes.len() as u64, limits));
    }
    Ok(bytes)
}

fn too_big(file: String, len: u64, limits: &SheetLimits) -> LoadError {
    LoadError::OverLimit {
        file,
        detail: format!(
            "the file is {}, over the limit of {} (`{MAX_FILE_KEY}`); a list of \
             {} addresses is a fraction of that",
            human_bytes(len),
            human_bytes(limits.max_file_bytes),
            limits.max_rows
        ),
    }
}

/// A note for when the extension promised one format and the bytes are
/// another, the usual cause being a file renamed instead of re-saved.
fn mismatch_hint(format: Format, content: Content) -> Option<&'static str> {
    match (format, content) {
        (Format::Xlsx | Format::Ods, Content::Zip) | (Format::Xls, Content::Ole) => None,
        (_, Content::Zip) => Some("the content is a zip archive, as in .xlsx or .ods files"),
        (_, Content::Ole) => Some("the content looks like a legacy .xls workbook"),
        (_, Content::Text) => {
            Some("the content is plain text, perhaps CSV with the wrong extension")
        }
        (_, Content::Binary) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{rows_with, Problem, TargetAddr};
    use std::path::PathBuf;

    /// The office-made fixtures (`tests/fixtures`, see its README).
    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn the_reader_is_skipped_only_where_it_cannot_start_at_all() {
        let sheet = fixture("sites.xlsx");
        // Missing: nothing to start, so it is read here, with a warning.
        let missing = Loader {
            limits: SheetLimits::default(),
            isolate_with: Some(PathBuf::from("/nonexistent/edgeprobe")),
        };
        assert_eq!(missing.load(&sheet, None).unwrap().targets.len(), 3);
        // A program that cannot be run just now (a directory stands in for
        // one whose exec is refused): not read here, tried again later.
        let refused = Loader {
            limits: SheetLimits::default(),
            isolate_with: Some(PathBuf::from("/")),
        };
        let e = refused.load(&sheet, None).unwrap_err();
        assert!(
            matches!(&e, LoadError::Interrupted { detail, .. } if detail.contains("could not be started")),
            "{e:?}"
        );
        assert!(e.is_transient());
    }

    /// Fixtures made by third-party writers (see testdata/make_fixtures.py),
    /// copied to a temp dir under `name`, which also sets the extension.
    fn testdata(bytes: &[u8], name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    const TYPED_XLS: &[u8] = include_bytes!("testdata/typed.xls");
    const TYPED_XLSX: &[u8] = include_bytes!("testdata/typed.xlsx");

    fn addrs(list: &TargetList) -> Vec<String> {
        list.targets.iter().map(|t| t.addr.to_string()).collect()
    }

    #[test]
    fn seed_layout_xlsx() {
        let list = load(&fixture("seed-layout.xlsx"), None).unwrap();
        assert_eq!(list.sheet.as_deref(), Some("seed-layout"));
        assert_eq!(
            addrs(&list),
            [
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.53",
                "::1",
                "127.10.20.30"
            ]
        );
        let rows: Vec<u32> = list.targets.iter().map(|t| t.row).collect();
        assert_eq!(rows, [2, 3, 4, 5, 6]);
        assert!(list.problems.is_empty(), "{:?}", list.problems);
    }

    fn check_sites(name: &str) {
        let path = fixture(name);
        let list = load(&path, None).unwrap();
        let got: Vec<_> = list
            .targets
            .iter()
            .map(|t| {
                (
                    t.row,
                    t.addr.to_string(),
                    t.name.as_deref(),
                    t.group.as_deref(),
                    t.notes.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    2,
                    "127.0.0.1".to_owned(),
                    Some("loopback"),
                    Some("lab"),
                    Some("always up")
                ),
                (
                    3,
                    "127.0.0.2".to_owned(),
                    Some("second loopback"),
                    Some("lab"),
                    None
                ),
                (4, "::1".to_owned(), Some("v6 loopback"), Some("lab"), None),
            ],
            "{name}"
        );
        assert_eq!(list.problems.len(), 1, "{name}: {:?}", list.problems);
        let p: &Problem = &list.problems[0];
        assert_eq!((p.row, p.value.as_str()), (5, "127.0.0.300"), "{name}");
        assert_eq!(
            p.to_string(),
            format!(
                "{}: sites row 5: \"127.0.0.300\" is not an IP address or host name",
                path.display()
            )
        );
    }

    #[test]
    fn sites_xlsx() {
        check_sites("sites.xlsx");
    }

    #[test]
    fn sites_ods() {
        check_sites("sites.ods");
    }

    /// typed.xls and typed.xlsx: a hidden sheet "Old" first, then
    /// "Targets" with a title in B2 and the header in row 4 from column B.
    fn check_typed(path: &Path) {
        let list = load(path, None).unwrap();
        assert_eq!(list.sheet.as_deref(), Some("Targets"));
        let got = rows_with(&list.targets, |t| t.group.as_deref());
        assert_eq!(
            got,
            [
                (5, "127.0.0.1".into(), Some("lab")),
                (11, "::1".into(), Some("lab")),
                (14, "localhost".into(), Some("lab")),
            ]
        );
        assert_eq!(list.targets[1].notes.as_deref(), Some("bracketed"));
        let problems = list.problem_rows();
        let retype = "format the ip column as Text and type the address again";
        assert_eq!(
            problems,
            [
                (
                    6,
                    format!("the cell is a number (127001); {retype}").as_str()
                ),
                (
                    7,
                    format!("the cell is a date or time (2024-01-15); {retype}").as_str()
                ),
                (
                    8,
                    format!("the cell is a boolean (TRUE); {retype}").as_str()
                ),
                (
                    9,
                    "the cell holds the error value #N/A; fix the formula or type the address"
                ),
                (12, "no IP address in the ip column"),
                (13, "\"127.0.0.1\" is a duplicate of row 5; monitored once"),
            ]
        );
    }

    #[test]
    fn typed_xls() {
        let (_d, path) = testdata(TYPED_XLS, "typed.xls");
        check_typed(&path);
    }

    #[test]
    fn typed_xlsx() {
        let (_d, path) = testdata(TYPED_XLSX, "typed.xlsx");
        check_typed(&path);
    }

    #[test]
    fn named_sheets() {
        let (_d, path) = testdata(TYPED_XLSX, "typed.xlsx");
        let hidden = load(&path, Some("Old")).unwrap();
        assert_eq!(hidden.sheet.as_deref(), Some("Old"));
        assert_eq!(addrs(&hidden), ["127.9.9.9"]);
        assert_eq!(load(&path, Some(" targets ")).unwrap().targets.len(), 3);
        let err = load(&path, Some("Nope")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: there is no sheet named \"Nope\"; the sheets are \"Old\", \"Targets\"",
                path.display()
            )
        );
        let err = load(&fixture("sites.ods"), Some("nope")).unwrap_err();
        assert!(
            err.to_string().ends_with("the sheets are \"sites\""),
            "{err}"
        );
    }

    #[test]
    fn content_is_sniffed_without_a_known_extension() {
        let cases: [(&[u8], &str); 4] = [
            (TYPED_XLSX, "targets"),
            (TYPED_XLS, "targets.bak"),
            (&std::fs::read(fixture("sites.ods")).unwrap(), "sites"),
            (b"ip\n127.0.0.1\n", "targets.list"),
        ];
        for (bytes, name) in cases {
            let (_d, path) = testdata(bytes, name);
            let list = load(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!list.targets.is_empty(), "{name}");
        }
        let (_d, path) = testdata(&std::fs::read(fixture("sites.ods")).unwrap(), "sites");
        assert_eq!(load(&path, None).unwrap().sheet.as_deref(), Some("sites"));
    }

    #[test]
    fn unsupported_and_unreadable_files_name_the_file_and_formats() {
        let (_d, path) = testdata(b"\x00\x01\x02binary", "targets.bin");
        let err = load(&path, None).unwrap_err();
        assert!(
            matches!(err, LoadError::UnsupportedFormat { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("{}: ", path.display())), "{msg}");
        assert!(msg.contains(".xlsx, .xls, .ods or .csv"), "{msg}");

        let (_d, path) = testdata(b"ip\n127.0.0.1\n", "renamed.xlsx");
        let err = load(&path, None).unwrap_err();
        assert!(
            matches!(
                err,
                LoadError::Unreadable {
                    format: Format::Xlsx,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("perhaps CSV with the wrong extension"),
            "{err}"
        );

        let (_d, path) = testdata(b"PK\x03\x04 not really a zip", "broken");
        let err = load(&path, None).unwrap_err();
        assert!(matches!(err, LoadError::Unreadable { .. }), "{err:?}");

        let missing = Path::new("/nonexistent/targets.xlsx");
        let err = load(missing, None).unwrap_err();
        assert!(matches!(err, LoadError::Io { .. }), "{err:?}");
        assert!(err
            .to_string()
            .starts_with("/nonexistent/targets.xlsx: cannot read the file"));
    }

    #[test]
    fn csv_has_no_sheets() {
        let (_d, path) = testdata(b"ip\n127.0.0.1\n", "t.csv");
        let err = load(&path, Some("Sheet1")).unwrap_err();
        assert!(matches!(err, LoadError::NoSuchSheet { .. }), "{err:?}");
        assert_eq!(
            load(&path, None).unwrap().targets[0].addr,
            TargetAddr::Ip([127, 0, 0, 1].into())
        );
    }

    #[test]
    fn a_reader_process_that_cannot_start_falls_back_to_this_one() {
        let loader = Loader {
            limits: SheetLimits::default(),
            isolate_with: Some(PathBuf::from("/nonexistent/edgeprobe")),
        };
        let list = loader.load(&fixture("sites.ods"), None).unwrap();
        assert_eq!(list.targets.len(), 3);
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Content::Zip);
        assert_eq!(sniff(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), Content::Ole);
        assert_eq!(sniff(b"ip;name\r\n\xe9"), Content::Text);
        assert_eq!(sniff(b""), Content::Text);
        assert_eq!(sniff(b"\xff\xfei\x00"), Content::Text);
        assert_eq!(sniff(b"%PDF-1.7\n\x00"), Content::Binary);
    }
}
