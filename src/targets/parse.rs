//! The pure core of the loader: from numbered rows of [`Cell`]s to a
//! [`TargetList`]. No I/O happens here, so every rule is testable with
//! rows written inline.

use std::collections::HashMap;

use crate::targets::addr::{classify, TargetAddr};
use crate::targets::cell::{trim, Cell};
use crate::targets::{Escaped, LoadError, Problem, Target, TargetList};

/// How many filled rows are searched for the header; title rows and notes
/// above the table are common, a header further down than this is not.
pub const HEADER_SEARCH_ROWS: usize = 20;

/// Header names accepted for the address column, most specific first: when
/// a sheet has both `IP` and `Host` columns, `Host` is likely a label.
const IP_HEADERS: [&str; 4] = ["ip", "ip address", "address", "host"];
const NAME_HEADERS: [&str; 1] = ["name"];
const GROUP_HEADERS: [&str; 2] = ["group", "site"];
const NOTES_HEADERS: [&str; 2] = ["notes", "note"];

const RETYPE: &str = "format the ip column as Text and type the address again";

/// Where the known columns are, as indices into a row's cells.
#[derive(Debug)]
struct Columns {
    ip: usize,
    name: Option<usize>,
    group: Option<usize>,
    notes: Option<usize>,
}

impl Columns {
    /// Reads a header row; `None` if it has no address column.
    fn from_header(cells: &[Cell]) -> Option<Columns> {
        let names: Vec<Option<String>> = cells
            .iter()
            .map(|c| match c {
                Cell::Text(s) => Some(normalise_header(s)),
                _ => None,
            })
            .collect();
        let find = |aliases: &[&str]| {
            aliases
                .iter()
                .find_map(|a| names.iter().position(|n| n.as_deref() == Some(*a)))
        };
        Some(Columns {
            ip: find(&IP_HEADERS)?,
            name: find(&NAME_HEADERS),
            group: find(&GROUP_HEADERS),
            notes: find(&NOTES_HEADERS),
        })
    }
}

/// Lowercases, trims, and folds `_`, `-` and runs of whitespace into one
/// space, so `IP_Address`, ` ip-address ` and `IP  Address` all match.
fn normalise_header(s: &str) -> String {
    trim(s)
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Turns numbered rows into a target list.
///
/// `file` and `sheet` are only used in messages (`sheet` is `None` for
/// CSV). Each row comes with its number as the user sees it: the
/// spreadsheet's 1-based row, or the CSV line. The header is the first of
/// the first [`HEADER_SEARCH_ROWS`] filled rows that has an `ip` column;
/// rows above it are ignored, blank rows anywhere are skipped.
///
/// Errors: [`LoadError::EmptySheet`], [`LoadError::NoHeader`], and
/// [`LoadError::NoTargets`] when no row gives a usable address.
pub fn parse_rows<I>(file: &str, sheet: Option<&str>, rows: I) -> Result<TargetList, LoadError>
where
    I: IntoIterator<Item = (u32, Vec<Cell>)>,
{
    let mut rows = rows
        .into_iter()
        .filter(|(_, cells)| !cells.iter().all(Cell::is_blank));
    let mut seen_filled = false;
    let mut header = None;
    for (row, cells) in rows.by_ref().take(HEADER_SEARCH_ROWS) {
        seen_filled = true;
        if let Some(columns) = Columns::from_header(&cells) {
            header = Some((row, columns));
            break;
        }
    }
    let owned_sheet = sheet.map(str::to_owned);
    let Some((header_row, columns)) = header else {
        return Err(if seen_filled {
            LoadError::NoHeader {
                file: file.to_owned(),
                sheet: owned_sheet,
            }
        } else {
            LoadError::EmptySheet {
                file: file.to_owned(),
                sheet: owned_sheet,
            }
        });
    };

    let mut targets = Vec::new();
    let mut problems = Vec::new();
    let mut first_row: HashMap<TargetAddr, u32> = HashMap::new();
    for (row, cells) in rows {
        let problem = |value: String, message: String| Problem {
            file: file.to_owned(),
            sheet: owned_sheet.clone(),
            row,
            value,
            message,
        };
        let text = |i: Option<usize>| i.and_then(|i| cells.get(i)).and_then(Cell::to_text);
        let ip_cell = cells.get(columns.ip).unwrap_or(&Cell::Empty);
        let addr = match read_addr(ip_cell) {
            Ok(addr) => addr,
            Err((value, message)) => {
                problems.push(problem(value, message));
                continue;
            }
        };
        if let Some(first) = first_row.get(&addr.dedup_key()) {
            let value = ip_text(ip_cell);
            let message = format!("{value:?} is a duplicate of row {first}; monitored once");
            problems.push(problem(value, message));
            continue;
        }
        first_row.insert(addr.dedup_key(), row);
        targets.push(Target {
            row,
            addr,
            name: text(columns.name),
            group: text(columns.group),
            notes: text(columns.notes),
        });
    }

    if targets.is_empty() {
        return Err(LoadError::NoTargets {
            file: file.to_owned(),
            sheet: owned_sheet,
            header_row,
            problems,
        });
    }
    Ok(TargetList {
        file: file.to_owned(),
        sheet: owned_sheet,
        targets,
        problems,
    })
}

/// The ip cell's trimmed text, as reported in [`Problem::value`].
fn ip_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => trim(s).to_owned(),
        other => other.to_string(),
    }
}

/// The address in an ip cell, or the problem's value and message.
fn read_addr(cell: &Cell) -> Result<TargetAddr, (String, String)> {
    let value = ip_text(cell);
    // Non-text values are rendered by us or by a reader, but an .ods file
    // can carry arbitrary text in a date or error attribute: escape them.
    let shown = Escaped(&value);
    let message = match cell {
        Cell::Empty => "no IP address in the ip column".to_owned(),
        Cell::Text(_) if value.is_empty() => "no IP address in the ip column".to_owned(),
        Cell::Text(_) => match classify(&value) {
            Ok(addr) => return Ok(addr),
            Err(e) => e.describe(&value),
        },
        Cell::Number(_) | Cell::Int(_) => format!("the cell is a number ({shown}); {RETYPE}"),
        Cell::Bool(_) => format!("the cell is a boolean ({shown}); {RETYPE}"),
        Cell::DateTime(_) => format!("the cell is a date or time ({shown}); {RETYPE}"),
        Cell::Error(_) => {
            format!("the cell holds the error value {shown}; fix the formula or type the address")
        }
    };
    Err((value, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn t(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }

    /// Rows numbered from 1, as a sheet whose data starts at A1.
    fn rows(rows: Vec<Vec<Cell>>) -> Vec<(u32, Vec<Cell>)> {
        (1..).zip(rows).collect()
    }

    fn parse(rows_: Vec<Vec<Cell>>) -> Result<TargetList, LoadError> {
        parse_rows("targets.xlsx", Some("Sheet1"), rows(rows_))
    }

    /// A sheet with a valid first target, then `cell` in row 3.
    fn one_bad(cell: Cell) -> Problem {
        let list = parse(vec![vec![t("ip")], vec![t("127.0.0.1")], vec![cell]]).unwrap();
        assert_eq!(list.targets.len(), 1);
        assert_eq!(list.problems.len(), 1, "{:?}", list.problems);
        list.problems.into_iter().next().unwrap()
    }

    fn ip(s: &str) -> TargetAddr {
        TargetAddr::Ip(s.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn invalid_ipv4_renders_the_contract_line() {
        let mut r = rows(vec![vec![t("ip")], vec![t("127.0.0.1")]]);
        r.push((7, vec![t("192.168.300.1")]));
        let list = parse_rows("targets.xlsx", Some("Sheet1"), r).unwrap();
        let p = &list.problems[0];
        assert_eq!(
            p.to_string(),
            r#"targets.xlsx: Sheet1 row 7: "192.168.300.1" is not an IP address or host name"#
        );
        assert_eq!((p.row, p.value.as_str()), (7, "192.168.300.1"));
    }

    #[test]
    fn csv_rendering_has_no_sheet() {
        let r = vec![
            (1, vec![t("ip")]),
            (2, vec![t("::1")]),
            (7, vec![t("10.1.1")]),
        ];
        let list = parse_rows("targets.csv", None, r).unwrap();
        assert_eq!(
            list.problems[0].to_string(),
            "targets.csv: row 7: \"10.1.1\" is not an IP address or host name; \
             an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1"
        );
    }

    #[test]
    fn leading_zeros_say_why() {
        let p = one_bad(t("010.0.0.1"));
        assert_eq!(
            p.message,
            "\"010.0.0.1\" is not an IP address or host name; leading zeros are not accepted \
             because they are ambiguous (some tools read them as octal); write 10.0.0.1"
        );
    }

    #[test]
    fn invalid_ipv6() {
        let p = one_bad(t("2001:db8::g"));
        assert_eq!(p.message, "\"2001:db8::g\" is not a valid IPv6 address");
        assert_eq!(p.row, 3);
    }

    #[test]
    fn number_cells() {
        let p = one_bad(Cell::Number(127001.0));
        assert_eq!(
            p.message,
            "the cell is a number (127001); format the ip column as Text and type the address again"
        );
        assert_eq!(p.value, "127001");
        assert_eq!(
            one_bad(Cell::Int(10)).message,
            format!("the cell is a number (10); {RETYPE}")
        );
    }

    #[test]
    fn date_bool_and_error_cells() {
        let p = one_bad(Cell::DateTime("2024-01-15".into()));
        assert_eq!(
            p.message,
            format!("the cell is a date or time (2024-01-15); {RETYPE}")
        );
        let p = one_bad(Cell::Bool(true));
        assert_eq!(p.message, format!("the cell is a boolean (TRUE); {RETYPE}"));
        let p = one_bad(Cell::Error("#N/A".into()));
        assert_eq!(
            p.to_string(),
            "targets.xlsx: Sheet1 row 3: the cell holds the error value #N/A; fix the formula or type the address"
        );
        assert_eq!(p.value, "#N/A");
    }

    #[test]
    fn empty_ip_with_other_cells_is_a_problem_but_blank_rows_are_not() {
        let list = parse(vec![
            vec![t("name"), t("ip")],
            vec![t("a"), t("127.0.0.1")],
            vec![t(" "), Cell::Empty, t("\u{a0}")],
            vec![],
            vec![t("forgotten"), t("  ")],
            vec![t("short row")],
        ])
        .unwrap();
        assert_eq!(list.targets.len(), 1);
        let got = list.problem_rows();
        assert_eq!(
            got,
            [
                (5, "no IP address in the ip column"),
                (6, "no IP address in the ip column")
            ]
        );
    }

    #[test]
    fn duplicates_are_reported_and_kept_once() {
        let list = parse(vec![
            vec![t("ip"), t("name")],
            vec![t("127.0.0.1"), t("first")],
            vec![t("::1")],
            vec![t("Example.COM.")],
            vec![t(" 127.0.0.1\u{a0}"), t("second")],
            vec![t("[0:0:0:0:0:0:0:1]")],
            vec![t("example.com")],
        ])
        .unwrap();
        let addrs: Vec<String> = list.targets.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1", "::1", "Example.COM."]);
        assert_eq!(list.targets[0].name.as_deref(), Some("first"));
        let got = list.problem_rows();
        assert_eq!(
            got,
            [
                (5, "\"127.0.0.1\" is a duplicate of row 2; monitored once"),
                (
                    6,
                    "\"[0:0:0:0:0:0:0:1]\" is a duplicate of row 3; monitored once"
                ),
                (7, "\"example.com\" is a duplicate of row 4; monitored once"),
            ]
        );
    }

    #[test]
    fn header_aliases() {
        for h in [
            "ip",
            " IP ",
            "Ip Address",
            "ip_address",
            "IP-Address",
            "ip   address",
            "Address",
            "HOST",
        ] {
            let list = parse(vec![vec![t("x"), t(h)], vec![t("label"), t("::1")]])
                .unwrap_or_else(|e| panic!("{h:?}: {e}"));
            assert_eq!(list.targets[0].addr, ip("::1"), "{h:?}");
        }
        // "ipaddress" and "hostname" are not in the accepted list.
        for h in ["ipaddress", "i p"] {
            assert!(matches!(
                parse(vec![vec![t(h)], vec![t("::1")]]),
                Err(LoadError::NoHeader { .. })
            ));
        }
    }

    #[test]
    fn optional_columns_and_ip_priority() {
        let list = parse(vec![
            vec![t("Host"), t("Notes"), t("Site"), t("IP"), t("NAME")],
            vec![t("h1"), t("n"), t("lab"), t("127.0.0.1"), Cell::Int(7)],
            vec![t("h2"), Cell::Empty, t(" "), t("127.0.0.2")],
        ])
        .unwrap();
        let t0 = &list.targets[0];
        assert_eq!(t0.addr, ip("127.0.0.1"));
        assert_eq!(
            (t0.name.as_deref(), t0.group.as_deref(), t0.notes.as_deref()),
            (Some("7"), Some("lab"), Some("n"))
        );
        let t1 = &list.targets[1];
        assert_eq!(
            (t1.name.as_ref(), t1.group.as_ref(), t1.notes.as_ref()),
            (None, None, None)
        );
        // "group" wins over "site" when both exist.
        let list = parse(vec![
            vec![t("site"), t("group"), t("ip")],
            vec![t("s"), t("g"), t("::1")],
        ])
        .unwrap();
        assert_eq!(list.targets[0].group.as_deref(), Some("g"));
    }

    #[test]
    fn header_below_title_rows_and_row_numbers_kept() {
        let r = vec![
            (2, vec![Cell::Empty, t("Monitoring targets")]),
            (3, vec![t(""), Cell::Empty]),
            (
                4,
                vec![Cell::Empty, t("updated 2024"), Cell::Number(2024.0)],
            ),
            (6, vec![Cell::Empty, t("Name"), t("IP")]),
            (7, vec![Cell::Empty, t("lo"), t("127.0.0.1")]),
            (9, vec![Cell::Empty, t("bad"), t("127.0.0.300")]),
        ];
        let list = parse_rows("t.xlsx", Some("S"), r).unwrap();
        assert_eq!(list.targets[0].row, 7);
        assert_eq!(list.targets[0].name.as_deref(), Some("lo"));
        assert_eq!(list.problems[0].row, 9);
    }

    #[test]
    fn header_missing() {
        let err = parse(vec![vec![t("address list")], vec![t("127.0.0.1")]]).unwrap_err();
        assert!(matches!(err, LoadError::NoHeader { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("targets.xlsx: Sheet1: no header row"),
            "{msg}"
        );
        assert!(
            msg.contains("add a header cell `ip` above the addresses"),
            "{msg}"
        );
    }

    #[test]
    fn header_search_counts_only_filled_rows() {
        let mut sheet: Vec<Vec<Cell>> = Vec::new();
        for i in 0..HEADER_SEARCH_ROWS - 1 {
            sheet.push(vec![t(&format!("title {i}"))]);
            sheet.push(vec![]);
        }
        sheet.push(vec![t("ip")]);
        sheet.push(vec![t("::1")]);
        assert_eq!(parse(sheet.clone()).unwrap().targets.len(), 1);
        sheet.insert(0, vec![t("one title too many")]);
        assert!(matches!(parse(sheet), Err(LoadError::NoHeader { .. })));
    }

    #[test]
    fn empty_sheet() {
        let err = parse(vec![vec![], vec![Cell::Empty, t(" ")]]).unwrap_err();
        assert!(matches!(err, LoadError::EmptySheet { .. }), "{err:?}");
        assert!(err.to_string().contains("the sheet is empty"), "{err}");
    }

    #[test]
    fn zero_valid_targets_is_an_error_carrying_the_problems() {
        let err = parse(vec![
            vec![t("ip")],
            vec![t("nope!")],
            vec![Cell::Error("#REF!".into())],
        ])
        .unwrap_err();
        assert_eq!(err.problems().len(), 2);
        assert_eq!(err.problems()[0].row, 2);
        assert_eq!(
            err.to_string(),
            "targets.xlsx: Sheet1: no valid targets (2 problems); fix the rows listed"
        );
        let err = parse(vec![vec![t("title")], vec![t("ip")]]).unwrap_err();
        assert!(
            matches!(err, LoadError::NoTargets { header_row: 2, .. }),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .contains("no addresses below the header in row 2"));
    }

    #[test]
    fn control_characters_are_escaped_when_rendered() {
        let p = one_bad(t("1.2.3.4\u{1b}[31m\nx"));
        assert_eq!(p.value, "1.2.3.4\u{1b}[31m\nx");
        let line = p.to_string();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains(r#""1.2.3.4\u{1b}[31m\nx""#), "{line}");
        let p = one_bad(Cell::DateTime("2024\u{7}".into()));
        assert!(!p.to_string().chars().any(char::is_control));
    }

    #[test]
    fn bracketed_ipv6_and_host_names() {
        let list = parse(vec![
            vec![t("ip")],
            vec![t("[::1]")],
            vec![t("localhost")],
            vec![t("my-host.example.")],
            vec![t("-bad.example")],
        ])
        .unwrap();
        let got: Vec<(&str, String)> = list
            .targets
            .iter()
            .map(|t| (t.addr.kind(), t.addr.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("ipv6", "::1".to_owned()),
                ("host", "localhost".to_owned()),
                ("host", "my-host.example.".to_owned())
            ]
        );
        assert_eq!(
            list.problems[0].message,
            "\"-bad.example\" is not an IP address or host name; \
             no part of a host name may start or end with a hyphen"
        );
    }

    #[test]
    fn json_shape() {
        let list = parse(vec![
            vec![t("ip"), t("name")],
            vec![t("127.0.0.1"), t("lo")],
            vec![t("bad!")],
        ])
        .unwrap();
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "file": "targets.xlsx",
                "sheet": "Sheet1",
                "targets": [{"row": 2, "addr": "127.0.0.1", "kind": "ipv4",
                             "name": "lo", "group": null, "notes": null}],
                "problems": [{"file": "targets.xlsx", "sheet": "Sheet1", "row": 3,
                              "value": "bad!",
                              "message": "\"bad!\" is not an IP address or host name"}],
            })
        );
    }
}
