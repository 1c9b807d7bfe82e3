//! Target sheets: the list of addresses to monitor, read from a spreadsheet
//! (`.xlsx`, `.xls`, `.ods`) or a CSV file.
//!
//! [`load`] opens the file and picks the sheet; the pure [`parse_rows`] then
//! finds the header, checks every address and collects what a person has to
//! fix. A bad row never stops a load: it becomes a [`Problem`] and the other
//! rows are still monitored. Only a file or sheet that cannot be used at all
//! is a [`LoadError`].
#![forbid(unsafe_code)]

mod addr;
mod cell;
mod delimited;
pub mod isolate;
mod limits;
mod parse;
mod read;
pub mod workbook;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use addr::{parse_address, TargetAddr};
pub use cell::Cell;
pub use limits::{
    human_bytes, SheetLimits, MAX_FILE_KEY, MAX_ROWS_KEY, MAX_UNZIPPED_KEY, READER_MEMORY_BYTES,
    READER_SECONDS,
};
pub use parse::{parse_rows, HEADER_SEARCH_ROWS};
pub use read::{load, Format, Loader};

/// One address to monitor, with the row it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The spreadsheet's own 1-based row number (the line number for CSV).
    pub row: u32,
    /// The address or host name; serialized as `addr` plus `kind`.
    #[serde(flatten)]
    pub addr: TargetAddr,
    /// The `name` column, if the sheet has one and the cell is filled.
    pub name: Option<String>,
    /// The `group` (or `site`) column.
    pub group: Option<String>,
    /// The `notes` column.
    pub notes: Option<String>,
}

/// A row that was skipped or merged, and why. Its [`Display`](fmt::Display)
/// is the line shown to the person who keeps the sheet, e.g.
/// `targets.xlsx: Sheet1 row 7: "192.168.300.1" is not an IP address or host name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file as the caller named it.
    pub file: String,
    /// The sheet; `None` for CSV, which has no sheets.
    pub sheet: Option<String>,
    /// The spreadsheet's own 1-based row number (the line number for CSV).
    pub row: u32,
    /// The ip cell as read, unescaped; empty when the cell was empty.
    pub value: String,
    /// What is wrong and what to do, with the value quoted and escaped.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} row {}: {}",
            Location::new(&self.file, self.sheet.as_deref()),
            self.row,
            Escaped(&self.message)
        )
    }
}

/// The result of a successful load: the usable targets and the problems
/// found in the other rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetList {
    /// The file as the caller named it.
    pub file: String,
    /// The sheet that was read; `None` for CSV.
    pub sheet: Option<String>,
    /// The targets in sheet order, each address once.
    pub targets: Vec<Target>,
    /// The problems in sheet order.
    pub problems: Vec<Problem>,
}

/// Why a file gave no target list at all. Every message names the file and
/// says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    Io {
        /// The file as the caller named it.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Neither the extension nor the content is a supported format.
    UnsupportedFormat {
        /// The file as the caller named it.
        file: String,
        /// What was found instead.
        detail: String,
    },
    /// A spreadsheet (or CSV) reader rejected the file: damaged, encrypted,
    /// or not what its extension says.
    Unreadable {
        /// The file as the caller named it.
        file: String,
        /// The format the file was read as.
        format: Format,
        /// The reader's complaint, plus a hint when the content looks like
        /// another format.
        detail: String,
    },
    /// The caller named a sheet the workbook does not have (or named a sheet
    /// for a CSV file, which has none).
    NoSuchSheet {
        /// The file as the caller named it.
        file: String,
        /// The sheet asked for.
        sheet: String,
        /// The sheets the workbook has; empty for CSV.
        available: Vec<String>,
    },
    /// Every sheet is hidden, so there is no first visible one to pick.
    NoVisibleSheet {
        /// The file as the caller named it.
        file: String,
        /// The (hidden) sheets the workbook has.
        available: Vec<String>,
    },
    /// The file is over one of the [`SheetLimits`], or reading it would
    /// cost more memory or time than a board gives it.
    OverLimit {
        /// The file as the caller named it.
        file: String,
        /// What is too big, the limit and its config key.
        detail: String,
    },
    /// The reader could not finish for a reason of the moment, not of the
    /// file: it could not be started just now, the kernel's out-of-memory
    /// killer stopped it, or a busy board starved it past its time. Worth
    /// trying again ([`LoadError::is_transient`]).
    Interrupted {
        /// The file as the caller named it.
        file: String,
        /// What stopped the reader.
        detail: String,
    },
    /// The sheet or file has no filled cell at all.
    EmptySheet {
        /// The file as the caller named it.
        file: String,
        /// The sheet; `None` for CSV.
        sheet: Option<String>,
    },
    /// No header cell `ip` (or an accepted alias) in the first
    /// [`HEADER_SEARCH_ROWS`] non-empty rows.
    NoHeader {
        /// The file as the caller named it.
        file: String,
        /// The sheet; `None` for CSV.
        sheet: Option<String>,
    },
    /// A header was found but no row below it holds a usable address.
    NoTargets {
        /// The file as the caller named it.
        file: String,
        /// The sheet; `None` for CSV.
        sheet: Option<String>,
        /// The row of the header.
        header_row: u32,
        /// Why each filled row was rejected; empty if no row was filled.
        problems: Vec<Problem>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { file, source } => write!(
                f,
                "{}: cannot read the file ({source}); check the path and the file's permissions",
                Escaped(file)
            ),
            LoadError::UnsupportedFormat { file, detail } => write!(
                f,
                "{}: {}; target lists must be .xlsx, .xls, .ods or .csv files",
                Escaped(file),
                Escaped(detail)
            ),
            LoadError::Unreadable {
                file,
                format,
                detail,
            } => write!(
                f,
                "{}: cannot read it as {format} ({}); open it in a spreadsheet program and save it again as .xlsx, .ods or .csv",
                Escaped(file),
                Escaped(detail)
            ),
            LoadError::NoSuchSheet {
                file,
                sheet,
                available,
            } if available.is_empty() => write!(
                f,
                "{}: a CSV file has no sheets, so there is no sheet {}; leave out the sheet name",
                Escaped(file),
                Quoted(sheet)
            ),
            LoadError::NoSuchSheet {
                file,
                sheet,
                available,
            } => write!(
                f,
                "{}: there is no sheet named {}; the sheets are {}",
                Escaped(file),
                Quoted(sheet),
                QuotedList(available)
            ),
            LoadError::NoVisibleSheet { file, available } => write!(
                f,
                "{}: every sheet is hidden ({}); unhide the sheet with the targets or name it",
                Escaped(file),
                QuotedList(available)
            ),
            LoadError::OverLimit { file, detail } => write!(
                f,
                "{}: not loaded: {}",
                Escaped(file),
                Escaped(detail)
            ),
            LoadError::Interrupted { file, detail } => write!(
                f,
                "{}: not read this time: {}",
                Escaped(file),
                Escaped(detail)
            ),
            LoadError::EmptySheet { file, sheet } => write!(
                f,
                "{}: {} is empty; put a header cell `ip` in the first row and one address per row below it",
                Location::new(file, sheet.as_deref()),
                if sheet.is_some() { "the sheet" } else { "the file" }
            ),
            LoadError::NoHeader { file, sheet } => write!(
                f,
                "{}: no header row with an `ip` column in the first {HEADER_SEARCH_ROWS} filled rows; \
                 add a header cell `ip` above the addresses (also accepted: `ip address`, `address`, `host`)",
                Location::new(file, sheet.as_deref())
            ),
            LoadError::NoTargets {
                file,
                sheet,
                header_row,
                problems,
            } if problems.is_empty() => write!(
                f,
                "{}: no addresses below the header in row {header_row}; put one address per row in the `ip` column",
                Location::new(file, sheet.as_deref())
            ),
            LoadError::NoTargets {
                file,
                sheet,
                problems,
                ..
            } => write!(
                f,
                "{}: no valid targets ({} {}); fix the rows listed",
                Location::new(file, sheet.as_deref()),
                problems.len(),
                if problems.len() == 1 { "problem" } else { "problems" }
            ),
        }
    }
}

impl LoadError {
    /// The problems behind a [`LoadError::NoTargets`], so the caller can
    /// list them; empty for every other kind.
    pub fn problems(&self) -> &[Problem] {
        match self {
            LoadError::NoTargets { problems, .. } => problems,
            _ => &[],
        }
    }

    /// Whether the same file may load if read again later: the reader
    /// was interrupted, or the file could not be opened for a reason a
    /// person fixes without changing the file (its permissions, a disk
    /// that is not there yet). A missing file is not: its arrival is a
    /// change of its own.
    pub fn is_transient(&self) -> bool {
        match self {
            LoadError::Interrupted { .. } => true,
            LoadError::Io { source, .. } => source.kind() != std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// Displays text with control characters (and other invisible or
/// direction-changing characters) escaped, so that a hostile sheet cannot
/// move the cursor or recolour a terminal. Quotes and backslashes are left
/// alone, so Windows paths stay readable. Use it when printing a
/// [`Target`]'s name, group or notes.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for c in self.0.chars() {
            if matches!(c, '"' | '\'' | '\\') {
                f.write_char(c)?;
            } else {
                // escape_debug leaves printable characters as they are and
                // escapes exactly the ones a terminal could act on.
                write!(f, "{}", c.escape_debug())?;
            }
        }
        Ok(())
    }
}

/// Text in double quotes, escaped the way Rust's `Debug` does it.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

struct QuotedList<'a>(&'a [String]);

impl fmt::Display for QuotedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", Quoted(s))?;
        }
        Ok(())
    }
}

/// `file: sheet` for workbooks, `file` for CSV.
struct Location<'a> {
    file: &'a str,
    sheet: Option<&'a str>,
}

impl<'a> Location<'a> {
    fn new(file: &'a str, sheet: Option<&'a str>) -> Self {
        Location { file, sheet }
    }
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", Escaped(self.file))?;
        if let Some(sheet) = self.sheet {
            write!(f, " {}", Escaped(sheet))?;
        }
        Ok(())
    }
}

#[cfg(test)]
impl TargetList {
    /// Each problem as its row and message, for tests to compare.
    pub(crate) fn problem_rows(&self) -> Vec<(u32, &str)> {
        self.problems
            .iter()
            .map(|p| (p.row, p.message.as_str()))
            .collect()
    }
}

/// Each target as its row, its address and what `field` picks from it,
/// for tests to compare.
#[cfg(test)]
pub(crate) fn rows_with<'a, T>(
    targets: &'a [Target],
    field: impl Fn(&'a Target) -> T,
) -> Vec<(u32, String, T)> {
    targets
        .iter()
        .map(|t| (t.row, t.addr.to_string(), field(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(sheet: Option<&str>, message: &str) -> Problem {
        Problem {
            file: "targets.xlsx".into(),
            sheet: sheet.map(str::to_owned),
            row: 7,
            value: String::new(),
            message: message.into(),
        }
    }

    #[test]
    fn problem_display_with_and_without_sheet() {
        let p = problem(Some("Sheet1"), "no IP address in the ip column");
        assert_eq!(
            p.to_string(),
            "targets.xlsx: Sheet1 row 7: no IP address in the ip column"
        );
        let mut p = problem(None, "no IP address in the ip column");
        p.file = "targets.csv".into();
        assert_eq!(
            p.to_string(),
            "targets.csv: row 7: no IP address in the ip column"
        );
    }

    #[test]
    fn escaped_neutralises_terminal_controls_but_keeps_paths() {
        let shown = Escaped("C:\\x\u{1b}[2J\u{202e}\n\"é").to_string();
        assert_eq!(shown, "C:\\x\\u{1b}[2J\\u{202e}\\n\"é");
        let p = problem(Some("She\u{7}et"), "bad\u{1b}");
        let shown = p.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(shown.contains("She\\u{7}et"), "{shown}");
    }

    #[test]
    fn load_error_messages_say_what_to_do() {
        let e = LoadError::NoSuchSheet {
            file: "t.xlsx".into(),
            sheet: "Nope".into(),
            available: vec!["A".into(), "B b".into()],
        };
        assert_eq!(
            e.to_string(),
            "t.xlsx: there is no sheet named \"Nope\"; the sheets are \"A\", \"B b\""
        );
        let e = LoadError::NoSuchSheet {
            file: "t.csv".into(),
            sheet: "Nope".into(),
            available: vec![],
        };
        assert!(e.to_string().contains("leave out the sheet name"));
        let e = LoadError::NoHeader {
            file: "t.xlsx".into(),
            sheet: Some("S".into()),
        };
        assert!(e
            .to_string()
            .starts_with("t.xlsx: S: no header row with an `ip` column"));
        assert!(e
            .to_string()
            .contains("add a header cell `ip` above the addresses"));
        assert!(e.problems().is_empty());
    }
}
