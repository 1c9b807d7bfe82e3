//! Workbooks (`.xlsx`, `.xls`, `.ods`) to the numbered rows of one sheet,
//! with the sheet limits applied before and while the spreadsheet library
//! reads them.
//!
//! What a hostile workbook can do to the library, and what stops it here:
//! - a zip bomb: the parts' declared sizes are summed first, and the zip
//!   reader holds each part to its declared size;
//! - a sparse sheet (a cell in A1 and one in XFD1048576) that the library
//!   would make dense: `.xlsx` is read cell by cell instead, stopping at the
//!   row and column caps; `.xls` and `.ods` have no such reader and are
//!   bounded by the separate process of [`super::isolate`];
//! - a string table that declares billions of entries: refused before the
//!   library reserves room for them;
//! - a panic in the library: caught, and reported as an unreadable file.
//!
//! Everything here crosses from the reader process as JSON, hence serde.

use std::io::{Cursor, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};

use calamine::{
    Data, DataRef, ExcelDateTime, Ods, Reader, SheetType, SheetVisible, Sheets, Xls, Xlsx,
};
use serde::{Deserialize, Serialize};

use crate::targets::cell::Cell;
use crate::targets::limits::{
    human_bytes, too_many_cells, too_many_rows, SheetLimits, MAX_UNZIPPED_KEY,
};
use crate::targets::{parse_rows, Format, LoadError, Problem, TargetList};

/// Filled cells beyond this column (IV, the old Excel limit) end the load:
/// a target sheet has a handful of columns, and each row is held densely.
pub const MAX_COLUMNS: u32 = 256;

/// The rows of the sheet that was read, numbered as the sheet numbers them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SheetCells {
    pub sheet: String,
    pub rows: Vec<(u32, Vec<Cell>)>,
}

/// Why a workbook gave no rows; [`WorkbookError::into_load_error`] adds
/// the file name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkbookError {
    Unreadable {
        format: Format,
        detail: String,
    },
    NoSuchSheet {
        sheet: String,
        available: Vec<String>,
    },
    NoVisibleSheet {
        available: Vec<String>,
    },
    OverLimit {
        detail: String,
    },
    /// The reader process did not finish, for a reason of the moment
    /// ([`LoadError::Interrupted`]).
    Interrupted {
        detail: String,
    },
    /// The rows were read but hold no target list: the refusals of
    /// [`parse_rows`], the same as [`LoadError`]'s of those names.
    EmptySheet {
        sheet: Option<String>,
    },
    NoHeader {
        sheet: Option<String>,
    },
    NoTargets {
        sheet: Option<String>,
        header_row: u32,
        problems: Vec<Problem>,
    },
}

impl WorkbookError {
    pub fn into_load_error(self, file: &str) -> LoadError {
        let file = file.to_owned();
        match self {
            WorkbookError::Unreadable { format, detail } => LoadError::Unreadable {
                file,
                format,
                detail,
            },
            WorkbookError::NoSuchSheet { sheet, available } => LoadError::NoSuchSheet {
                file,
                sheet,
                available,
            },
            WorkbookError::NoVisibleSheet { available } => {
                LoadError::NoVisibleSheet { file, available }
            }
            WorkbookError::OverLimit { detail } => LoadError::OverLimit { file, detail },
            WorkbookError::Interrupted { detail } => LoadError::Interrupted { file, detail },
            WorkbookError::EmptySheet { sheet } => LoadError::EmptySheet { file, sheet },
            WorkbookError::NoHeader { sheet } => LoadError::NoHeader { file, sheet },
            WorkbookError::NoTargets {
                sheet,
                header_row,
                problems,
            } => LoadError::NoTargets {
                file,
                sheet,
                header_row,
                problems,
            },
        }
    }
}

/// [`read`], then the rows made into a target list ([`parse_rows`]) with
/// `file` as the name in its messages: the whole of a workbook's reading,
/// as the reader process does it.
pub fn read_targets(
    file: &str,
    formats: &[Format],
    bytes: &[u8],
    wanted: Option<&str>,
    limits: &SheetLimits,
) -> Result<TargetList, WorkbookError> {
    let cells = read(formats, bytes, wanted, limits)?;
    parse_rows(file, Some(&cells.sheet), cells.rows).map_err(|e| match e {
        LoadError::EmptySheet { sheet, .. } => WorkbookError::EmptySheet { sheet },
        LoadError::NoHeader { sheet, .. } => WorkbookError::NoHeader { sheet },
        LoadError::NoTargets {
            sheet,
            header_row,
            problems,
            ..
        } => WorkbookError::NoTargets {
            sheet,
            header_row,
            problems,
        },
        // parse_rows refuses a sheet in the three ways above only.
        other => WorkbookError::Unreadable {
            format: formats.first().copied().unwrap_or(Format::Xlsx),
            detail: other.to_string(),
        },
    })
}

/// Read `wanted` (or the first visible worksheet) from `bytes`, trying each
/// of `formats` until one opens. In this process: use it for files that
/// passed [`super::isolate`], or where a crash costs nothing (tests, fuzz).
pub fn read(
    formats: &[Format],
    bytes: &[u8],
    wanted: Option<&str>,
    limits: &SheetLimits,
) -> Result<SheetCells, WorkbookError> {
    if formats
        .iter()
        .any(|f| matches!(f, Format::Xlsx | Format::Ods))
    {
        check_zip(bytes, limits)?;
    }
    let mut last_error = None;
    for &format in formats {
        let attempt = guarded(format, || match open(format, bytes) {
            Ok(workbook) => Some(read_sheet(format, workbook, wanted, limits)),
            Err(detail) => {
                last_error = Some(WorkbookError::Unreadable { format, detail });
                None
            }
        });
        match attempt {
            Ok(Some(result)) => return result,
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or(WorkbookError::Unreadable {
        format: Format::Xlsx,
        detail: "no format to read it as".into(),
    }))
}

/// What the zip says about itself, checked before the library unzips
/// anything. A file that is not a zip at all is left for the library to
/// report.
///
/// - The zip bomb: what every part declares it unzips to, summed. Reading
///   a part past its declared size is an error in the zip reader, so the
///   declaration is binding.
/// - The library reserves room for as many shared strings as
///   `xl/sharedStrings.xml` declares (`uniqueCount`) before reading one; a
///   count that the part cannot possibly hold (each entry takes at least
///   `<si><t/></si>`, 13 bytes) would exhaust memory at once.
fn check_zip(bytes: &[u8], limits: &SheetLimits) -> Result<(), WorkbookError> {
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(());
    };
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        if let Ok(part) = zip.by_index_raw(i) {
            total = total.saturating_add(part.size());
        }
    }
    if total > limits.max_unzipped_bytes {
        return Err(WorkbookError::OverLimit {
            detail: format!(
                "it unzips to {} ({} zipped), over the limit of {} (`{MAX_UNZIPPED_KEY}`); \
                 a target list is far smaller, so this is most likely not one",
                human_bytes(total),
                human_bytes(bytes.len() as u64),
                human_bytes(limits.max_unzipped_bytes)
            ),
        });
    }
    let Ok(part) = zip.by_name("xl/sharedStrings.xml") else {
        return Ok(());
    };
    let size = part.size();
    let mut head = Vec::with_capacity(1024);
    if part.take(1024).read_to_end(&mut head).is_err() {
        return Ok(());
    }
    match declared_unique_count(&head) {
        Some(declared) if declared > size / 13 + 1 => Err(WorkbookError::Unreadable {
            format: Format::Xlsx,
            detail: format!(
                "its string table declares {declared} strings in {}, which cannot hold them",
                human_bytes(size)
            ),
        }),
        _ => Ok(()),
    }
}

/// `uniqueCount="N"` from the start of a shared-strings part.
fn declared_unique_count(head: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(head);
    let rest = text.split("uniqueCount=").nth(1)?;
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let digits = rest[1..].split(quote).next()?;
    digits.trim().parse().ok()
}

type Workbook<'a> = Sheets<Cursor<&'a [u8]>>;

/// `read` with a panic inside the spreadsheet library caught: the file is
/// unreadable, said with the library's reason, and the caller goes on.
fn guarded<T>(format: Format, read: impl FnOnce() -> T) -> Result<T, WorkbookError> {
    catch_unwind(AssertUnwindSafe(read)).map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no reason given".into());
        WorkbookError::Unreadable {
            format,
            detail: format!("the spreadsheet library failed on it: {what}"),
        }
    })
}

fn open(format: Format, bytes: &[u8]) -> Result<Workbook<'_>, String> {
    let rs = Cursor::new(bytes);
    match format {
        Format::Xlsx => Xlsx::new(rs).map(Sheets::Xlsx).map_err(|e| e.to_string()),
        Format::Xls => Xls::new(rs).map(Sheets::Xls).map_err(|e| e.to_string()),
        Format::Ods => Ods::new(rs).map(Sheets::Ods).map_err(|e| e.to_string()),
        Format::Csv => Err("CSV is not a workbook".to_owned()),
    }
}

fn read_sheet(
    format: Format,
    mut workbook: Workbook<'_>,
    wanted: Option<&str>,
    limits: &SheetLimits,
) -> Result<SheetCells, WorkbookError> {
    let name = choose_sheet(workbook.sheets_metadata(), wanted)?;
    let unreadable = |e: String| WorkbookError::Unreadable {
        format,
        detail: format!("sheet {name:?}: {e}"),
    };
    let rows = match &mut workbook {
        Sheets::Xlsx(xlsx) => xlsx_rows(xlsx, &name, limits).map_err(|e| match e {
            Streamed::Library(e) => unreadable(e),
            Streamed::Limit(e) => e,
        })?,
        other => {
            let range = other
                .worksheet_range(&name)
                .map_err(|e| unreadable(e.to_string()))?;
            dense_rows(&range, limits)?
        }
    };
    Ok(SheetCells { sheet: name, rows })
}

fn choose_sheet(sheets: &[calamine::Sheet], wanted: Option<&str>) -> Result<String, WorkbookError> {
    let names = || sheets.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    match wanted {
        Some(wanted) => {
            let found = sheets.iter().find(|s| s.name == wanted).or_else(|| {
                let folded = wanted.trim().to_lowercase();
                sheets
                    .iter()
                    .find(|s| s.name.trim().to_lowercase() == folded)
            });
            found
                .map(|s| s.name.clone())
                .ok_or_else(|| WorkbookError::NoSuchSheet {
                    sheet: wanted.to_owned(),
                    available: names(),
                })
        }
        // Hidden sheets usually hold old data or lookup tables that the
        // person editing the visible one never sees.
        None => sheets
            .iter()
            .find(|s| s.visible == SheetVisible::Visible && s.typ == SheetType::WorkSheet)
            .map(|s| s.name.clone())
            .ok_or_else(|| WorkbookError::NoVisibleSheet { available: names() }),
    }
}

enum Streamed {
    Library(String),
    Limit(WorkbookError),
}

/// An `.xlsx` sheet cell by cell, keeping only filled cells, and stopping
/// as soon as a cap is crossed.
fn xlsx_rows(
    xlsx: &mut Xlsx<Cursor<&[u8]>>,
    name: &str,
    limits: &SheetLimits,
) -> Result<Vec<(u32, Vec<Cell>)>, Streamed> {
    let mut reader = xlsx
        .worksheet_cells_reader(name)
        .map_err(|e| Streamed::Library(e.to_string()))?;
    let mut rows = RowCollector::new(limits);
    while let Some(cell) = reader
        .next_cell()
        .map_err(|e| Streamed::Library(e.to_string()))?
    {
        let value = cell_from_data_ref(cell.get_value());
        let (row, col) = cell.get_position();
        rows.put(row, col, value).map_err(Streamed::Limit)?;
    }
    Ok(rows.finish())
}

/// A sheet the library already holds as a dense range (`.xls`, `.ods`).
fn dense_rows(
    range: &calamine::Range<Data>,
    limits: &SheetLimits,
) -> Result<Vec<(u32, Vec<Cell>)>, WorkbookError> {
    // A Range begins at the first filled cell, not at A1.
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let mut rows = RowCollector::new(limits);
    for (i, cells) in range.rows().enumerate() {
        let row = first_row.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
        for (j, data) in cells.iter().enumerate() {
            if matches!(data, Data::Empty) {
                continue;
            }
            let col = first_col.saturating_add(u32::try_from(j).unwrap_or(u32::MAX));
            rows.put(row, col, cell_from_data(data))?;
        }
    }
    Ok(rows.finish())
}

/// Filled cells, in sheet order, into 1-numbered rows; enforces the row
/// span, the column cap and the cell budget.
struct RowCollector {
    rows: Vec<(u32, Vec<Cell>)>,
    /// The lowest and highest row seen (in any order).
    span: Option<(u32, u32)>,
    /// Cells held, each row counted up to its last filled column.
    cells: u64,
    /// Bytes of text held.
    text: u64,
    limits: SheetLimits,
}

impl RowCollector {
    fn new(limits: &SheetLimits) -> RowCollector {
        RowCollector {
            rows: Vec::new(),
            span: None,
            cells: 0,
            text: 0,
            limits: *limits,
        }
    }

    /// `row` and `col` are 0-based, as the library gives them.
    fn put(&mut self, row: u32, col: u32, value: Cell) -> Result<(), WorkbookError> {
        if matches!(value, Cell::Empty) {
            return Ok(());
        }
        let number = row.saturating_add(1);
        if let Cell::Text(t) | Cell::DateTime(t) | Cell::Error(t) = &value {
            // Text can repeat (an .ods cell repeated across columns): hold
            // no more of it than the sheet could unzip to.
            self.text += t.len() as u64;
            if self.text > self.limits.max_unzipped_bytes {
                return Err(WorkbookError::OverLimit {
                    detail: format!(
                        "its cells hold more than {} of text, over the limit of \
                         `{MAX_UNZIPPED_KEY}`",
                        human_bytes(self.limits.max_unzipped_bytes)
                    ),
                });
            }
        }
        if col >= MAX_COLUMNS {
            return Err(WorkbookError::OverLimit {
                detail: format!(
                    "row {number} has a filled cell in column {}, past column {MAX_COLUMNS}; \
                     keep the target list in the first columns and delete what is far to the right",
                    col.saturating_add(1)
                ),
            });
        }
        let (low, high) = match self.span {
            Some((low, high)) => (low.min(number), high.max(number)),
            None => (number, number),
        };
        self.span = Some((low, high));
        if high - low >= self.limits.max_rows {
            return Err(WorkbookError::OverLimit {
                detail: too_many_rows(low, high, self.limits.max_rows),
            });
        }
        let col = col as usize;
        let row = match self.rows.last_mut() {
            Some((n, cells)) if *n == number => cells,
            _ => {
                self.rows.push((number, Vec::new()));
                &mut self.rows.last_mut().expect("just pushed").1
            }
        };
        if row.len() <= col {
            self.cells += (col + 1 - row.len()) as u64;
            if self.cells > self.limits.max_cells() {
                return Err(WorkbookError::OverLimit {
                    detail: too_many_cells(&self.limits),
                });
            }
            row.resize(col + 1, Cell::Empty);
        }
        row[col] = value;
        Ok(())
    }

    fn finish(self) -> Vec<(u32, Vec<Cell>)> {
        self.rows
    }
}

fn cell_from_data(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Float(f) => Cell::Number(*f),
        Data::Int(i) => Cell::Int(*i),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) => Cell::DateTime(datetime_text(dt)),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::DateTime(s.clone()),
        Data::Error(e) => Cell::Error(e.to_string()),
    }
}

fn cell_from_data_ref(data: &DataRef<'_>) -> Cell {
    match data {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) => Cell::Text(s.clone()),
        DataRef::SharedString(s) => Cell::Text((*s).to_owned()),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::Int(i) => Cell::Int(*i),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(dt) => Cell::DateTime(datetime_text(dt)),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::DateTime(s.clone()),
        DataRef::Error(e) => Cell::Error(e.to_string()),
    }
}

/// Renders a date serial the way a person would recognise it in the
/// sheet; calamine is built without chrono, so this uses its own
/// component conversion.
fn datetime_text(dt: &ExcelDateTime) -> String {
    let serial = dt.as_f64();
    if dt.is_duration() {
        // Saturating float-to-int casts keep absurd values from panicking.
        let total = (serial * 86_400.0).round() as i64;
        let sign = if total < 0 { "-" } else { "" };
        let total = total.unsigned_abs();
        return format!(
            "{sign}{}:{:02}:{:02}",
            total / 3600,
            total / 60 % 60,
            total % 60
        );
    }
    let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
    let date = format!("{y:04}-{mo:02}-{d:02}");
    let time = format!("{h:02}:{mi:02}:{s:02}");
    if serial.fract() == 0.0 {
        date
    } else if (0.0..1.0).contains(&serial) {
        time
    } else {
        format!("{date} {time}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::ExcelDateTimeType;

    fn limits(max_rows: u32) -> SheetLimits {
        SheetLimits {
            max_rows,
            ..SheetLimits::default()
        }
    }

    #[test]
    fn datetime_rendering() {
        let dt = |v, t| datetime_text(&ExcelDateTime::new(v, t, false));
        assert_eq!(dt(45306.0, ExcelDateTimeType::DateTime), "2024-01-15");
        assert_eq!(
            dt(45306.5, ExcelDateTimeType::DateTime),
            "2024-01-15 12:00:00"
        );
        assert_eq!(dt(0.25, ExcelDateTimeType::DateTime), "06:00:00");
        assert_eq!(dt(1.5, ExcelDateTimeType::TimeDelta), "36:00:00");
        assert_eq!(dt(f64::NAN, ExcelDateTimeType::TimeDelta), "0:00:00");
    }

    #[test]
    fn rows_collect_sparse_cells_in_order() {
        let mut rows = RowCollector::new(&limits(10));
        rows.put(2, 1, Cell::Int(1)).unwrap();
        rows.put(2, 0, Cell::Text("a".into())).unwrap();
        rows.put(3, 0, Cell::Empty).unwrap();
        rows.put(5, 2, Cell::Bool(true)).unwrap();
        assert_eq!(
            rows.finish(),
            [
                (3, vec![Cell::Text("a".into()), Cell::Int(1)]),
                (6, vec![Cell::Empty, Cell::Empty, Cell::Bool(true)]),
            ]
        );
    }

    #[test]
    fn the_row_span_is_capped_from_the_first_filled_row() {
        let mut rows = RowCollector::new(&limits(3));
        rows.put(10, 0, Cell::Int(1)).unwrap();
        rows.put(12, 0, Cell::Int(1)).unwrap();
        let e = rows.put(13, 0, Cell::Int(1)).unwrap_err();
        let WorkbookError::OverLimit { detail } = e else {
            panic!("{e:?}")
        };
        assert!(detail.contains("row 11 to at least row 14"), "{detail}");
        assert!(detail.contains("limits.sheet_max_rows"), "{detail}");

        // Rows in descending order are held to the same span.
        let mut rows = RowCollector::new(&limits(3));
        rows.put(100, 0, Cell::Int(1)).unwrap();
        rows.put(99, 0, Cell::Int(1)).unwrap();
        rows.put(98, 0, Cell::Int(1)).unwrap();
        assert!(rows.put(97, 0, Cell::Int(1)).is_err());
    }

    #[test]
    fn wide_rows_are_held_to_the_cell_budget() {
        // 10 rows allowed: 160 cells, so a few rows out at column 200 fail.
        let mut rows = RowCollector::new(&limits(10));
        rows.put(0, 199, Cell::Int(1)).unwrap_err();
        let mut rows = RowCollector::new(&limits(10));
        for r in 0..10 {
            rows.put(r, 15, Cell::Int(1)).unwrap();
        }
        let e = rows.put(9, 16, Cell::Int(1)).unwrap_err();
        assert!(format!("{e:?}").contains("more than 160 cells"), "{e:?}");
    }

    #[test]
    fn a_panic_in_the_library_is_an_unreadable_file_with_its_reason() {
        let e = guarded(Format::Xlsx, || -> u32 { panic!("index out of bounds") }).unwrap_err();
        let shown = format!("{e:?}");
        assert!(
            shown.contains("the spreadsheet library failed on it: index out of bounds"),
            "{shown}"
        );
        let e = guarded(Format::Ods, || -> u32 { std::panic::panic_any(7u8) }).unwrap_err();
        assert!(format!("{e:?}").contains("no reason given"), "{e:?}");
        assert_eq!(guarded(Format::Xls, || 3).unwrap(), 3);
    }

    #[test]
    fn text_is_held_to_the_unzipped_size_however_often_a_cell_repeats() {
        let limits = SheetLimits {
            max_unzipped_bytes: 1000,
            ..limits(100)
        };
        let mut rows = RowCollector::new(&limits);
        // An .ods cell repeated down the rows: 100 bytes each, 10 fit.
        let text = || Cell::Text("x".repeat(100));
        for r in 0..10 {
            rows.put(r, 0, text()).unwrap();
        }
        let e = rows.put(10, 0, text()).unwrap_err();
        assert!(format!("{e:?}").contains("of text"), "{e:?}");
    }

    #[test]
    fn a_cell_far_to_the_right_is_refused_not_allocated() {
        let mut rows = RowCollector::new(&limits(100));
        let e = rows.put(0, 16_383, Cell::Int(1)).unwrap_err();
        assert!(format!("{e:?}").contains("column 16384"), "{e:?}");
        rows.put(0, MAX_COLUMNS - 1, Cell::Int(1)).unwrap();
    }

    #[test]
    fn the_declared_string_count_is_read_from_the_head() {
        let head = br#"<?xml version="1.0"?><sst xmlns="x" count="3" uniqueCount="4294967295">"#;
        assert_eq!(declared_unique_count(head), Some(4_294_967_295));
        assert_eq!(declared_unique_count(b"<sst uniqueCount='2'>"), Some(2));
        assert_eq!(declared_unique_count(b"<sst count=\"2\">"), None);
        assert_eq!(declared_unique_count(b"uniqueCount=\"x"), None);
    }
}
