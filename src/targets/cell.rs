//! The format-neutral cell value that every reader produces and the pure
//! parser consumes, so the parser never sees calamine or csv types.

use std::fmt;

/// One cell of a target sheet, as the file stored it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Cell {
    /// No value.
    Empty,
    /// Text, as typed (not yet trimmed).
    Text(String),
    /// A floating-point number.
    Number(f64),
    /// An integer number.
    Int(i64),
    /// A boolean (`TRUE`/`FALSE`).
    Bool(bool),
    /// A date, time or duration, already rendered as text for messages.
    DateTime(String),
    /// An error value such as `#N/A` or `#VALUE!`.
    Error(String),
}

impl Cell {
    /// True for an empty cell or one holding only whitespace; such cells
    /// count as not filled in.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => trim(s).is_empty(),
            _ => false,
        }
    }

    /// The cell as trimmed text for the free-text columns (name, group,
    /// notes); `None` when blank.
    pub(crate) fn to_text(&self) -> Option<String> {
        let text = match self {
            Cell::Empty => return None,
            Cell::Text(s) => trim(s).to_owned(),
            other => other.to_string(),
        };
        (!text.is_empty()).then(|| printable(&text))
    }
}

/// Label text that is safe to show anywhere (terminal, page, metrics,
/// logs): line breaks and tabs in a cell become spaces, and other control
/// or direction-changing characters become visible escapes such as
/// `\u{1b}`, so a sheet cannot move a terminal's cursor or reorder what a
/// page shows. Markup is left to each output's own escaping.
pub(crate) fn printable(text: &str) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(' '),
            '"' | '\'' | '\\' => out.push(c),
            c => {
                let _ = write!(out, "{}", c.escape_debug());
            }
        }
    }
    out
}

impl fmt::Display for Cell {
    /// Roughly what a spreadsheet shows for the cell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Empty => Ok(()),
            Cell::Text(s) | Cell::DateTime(s) | Cell::Error(s) => f.write_str(s),
            Cell::Number(n) => write!(f, "{n}"),
            Cell::Int(n) => write!(f, "{n}"),
            Cell::Bool(true) => f.write_str("TRUE"),
            Cell::Bool(false) => f.write_str("FALSE"),
        }
    }
}

/// Trims whitespace, including the non-breaking space that office suites
/// and web pages paste in, and the zero-width characters that survive
/// copy-and-paste invisibly.
pub(crate) fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || matches!(c, '\u{200b}' | '\u{feff}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_made_printable() {
        assert_eq!(
            Cell::Text("a\u{1b}[2J\u{7}b\nc\td \u{202e}é\"\\".into()).to_text(),
            Some("a\\u{1b}[2J\\u{7}b c d \\u{202e}é\"\\".into())
        );
        assert_eq!(
            Cell::Text("<script>".into()).to_text(),
            Some("<script>".into()),
            "markup is each output's to escape"
        );
    }

    #[test]
    fn blank_cells() {
        assert!(Cell::Empty.is_blank());
        assert!(Cell::Text(" \u{a0}\t".into()).is_blank());
        assert!(!Cell::Text("x".into()).is_blank());
        assert!(!Cell::Int(0).is_blank());
        assert!(!Cell::Error("#N/A".into()).is_blank());
    }

    #[test]
    fn free_text_of_any_cell() {
        assert_eq!(
            Cell::Text("\u{a0} lab \u{200b}".into()).to_text(),
            Some("lab".into())
        );
        assert_eq!(Cell::Text("  ".into()).to_text(), None);
        assert_eq!(Cell::Number(12.5).to_text(), Some("12.5".into()));
        assert_eq!(Cell::Number(127001.0).to_text(), Some("127001".into()));
        assert_eq!(Cell::Bool(true).to_text(), Some("TRUE".into()));
        assert_eq!(Cell::Empty.to_text(), None);
    }
}
