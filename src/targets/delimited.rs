//! CSV (and tab- or semicolon-separated) target files: decoding the bytes
//! whatever the exporting program chose, guessing the delimiter, and handing
//! the records to the parser as text cells numbered by line.

use std::borrow::Cow;

use crate::targets::cell::Cell;
use crate::targets::limits::{too_many_cells, too_many_rows, SheetLimits};
use crate::targets::parse::parse_rows;
use crate::targets::{Format, LoadError, TargetList};

/// Parses the bytes of a CSV file; `file` is only used in messages. More
/// than `limits.max_rows` records end the load there.
pub(crate) fn parse_csv(
    file: &str,
    bytes: &[u8],
    limits: &SheetLimits,
) -> Result<TargetList, LoadError> {
    let mut text = decode(bytes);
    // One line-end convention makes line counting below a matter of
    // counting '\n' (a lone CR is the classic Mac line end).
    if text.contains('\r') {
        text = Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(detect_delimiter(&text))
        .from_reader(text.as_bytes());
    let bytes = text.as_bytes();
    let (mut counted_to, mut line) = (0usize, 1u64);
    let mut rows = Vec::new();
    let mut cells = 0u64;
    for record in reader.records() {
        if rows.len() >= limits.max_rows as usize {
            return Err(LoadError::OverLimit {
                file: file.to_owned(),
                detail: too_many_rows(1, line.try_into().unwrap_or(u32::MAX), limits.max_rows),
            });
        }
        // The input is valid UTF-8 and records may be ragged, so the csv
        // crate has nothing left to reject; still, never panic on a file.
        let record = record.map_err(|e| LoadError::Unreadable {
            file: file.to_owned(),
            format: Format::Csv,
            detail: e.to_string(),
        })?;
        // csv's own line count misses newlines inside quoted cells, but its
        // byte offsets are exact. The offset may point at the previous
        // record's line end or at skipped blank lines; step over those to
        // the record's first character.
        let offset = record.position().map_or(0, |p| p.byte());
        let mut start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        while bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
        let start = start.max(counted_to);
        line += bytes[counted_to..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        counted_to = start;
        let number = u32::try_from(line).unwrap_or(u32::MAX);
        cells += record.len() as u64;
        if cells > limits.max_cells() {
            return Err(LoadError::OverLimit {
                file: file.to_owned(),
                detail: too_many_cells(limits),
            });
        }
        rows.push((
            number,
            record.iter().map(|s| Cell::Text(s.to_owned())).collect(),
        ));
    }
    parse_rows(file, None, rows)
}

/// Decodes the text of a CSV file without ever failing: UTF-8 (BOM
/// stripped), UTF-16 when it has a BOM (Excel's "Unicode text" export), and
/// otherwise Windows-1252, which is what Excel writes on Western Windows
/// systems and which also reads plain Latin-1.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
        return Cow::Owned(decode_utf16(rest, u16::from_le_bytes));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
        return Cow::Owned(decode_utf16(rest, u16::from_be_bytes));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| windows_1252(b)).collect()),
    }
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{fffd}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{fffd}', 'Ž',
        '\u{fffd}', '\u{fffd}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ',
        '\u{fffd}', 'ž', 'Ÿ',
    ];
    match b {
        // The five unassigned bytes become U+FFFD rather than C1 control
        // characters, which would have to be escaped everywhere they show.
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Picks `,`, `;` or tab: whichever is most frequent (outside quotes) in
/// the first non-empty line that has any of them, `,` on a tie or when
/// none has. Looking past delimiter-free lines lets a title line such as
/// `Targets` sit above a `name;ip` header.
pub(crate) fn detect_delimiter(text: &str) -> u8 {
    const CANDIDATES: [u8; 3] = [b',', b';', b'\t'];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut counts = [0usize; 3];
        let mut quoted = false;
        for b in line.bytes() {
            if b == b'"' {
                quoted = !quoted;
            } else if !quoted {
                if let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
                    counts[i] += 1;
                }
            }
        }
        let mut best = 0;
        for i in 1..CANDIDATES.len() {
            if counts[i] > counts[best] {
                best = i;
            }
        }
        if counts[best] > 0 {
            return CANDIDATES[best];
        }
    }
    b','
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{load, rows_with, Target};
    use std::path::PathBuf;

    /// Writes `bytes` to `name` in a fresh temp dir and loads it.
    fn load_bytes(
        name: &str,
        bytes: &[u8],
    ) -> (tempfile::TempDir, PathBuf, Result<TargetList, LoadError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let result = load(&path, None);
        (dir, path, result)
    }

    fn summary(targets: &[Target]) -> Vec<(u32, String, Option<String>)> {
        rows_with(targets, |t| t.name.clone())
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn comma_separated() {
        let (_d, path, r) = load_bytes(
            "targets.csv",
            b"name,ip,group\nlo,127.0.0.1,lab\n\"six, v6\",::1,lab\nbad,127.0.0.300,lab\n",
        );
        let list = r.unwrap();
        assert_eq!(list.sheet, None);
        assert_eq!(
            summary(&list.targets),
            [
                (2, "127.0.0.1".into(), s("lo")),
                (3, "::1".into(), s("six, v6"))
            ]
        );
        assert_eq!(list.targets[0].group, s("lab"));
        assert_eq!(
            list.problems[0].to_string(),
            format!(
                "{}: row 4: \"127.0.0.300\" is not an IP address or host name",
                path.display()
            )
        );
    }

    #[test]
    fn semicolon_and_tab_separated() {
        let (_d, _p, r) = load_bytes("t.csv", b"Name;IP Address\nlo;127.0.0.1\nv6;::1\n");
        assert_eq!(
            summary(&r.unwrap().targets),
            [(2, "127.0.0.1".into(), s("lo")), (3, "::1".into(), s("v6"))]
        );
        let (_d, _p, r) = load_bytes("t.tsv", b"name\tip\nlo, the first\t127.0.0.1\n");
        assert_eq!(
            summary(&r.unwrap().targets),
            [(2, "127.0.0.1".into(), s("lo, the first"))]
        );
    }

    #[test]
    fn bom_crlf_and_line_numbers() {
        let (_d, _p, r) = load_bytes(
            "t.csv",
            b"\xef\xbb\xbfip,notes\r\n127.0.0.1,\"two\r\nlines\"\r\n\r\n127.0.0.2,x\r\n\r10.1.1\r",
        );
        let list = r.unwrap();
        let got = rows_with(&list.targets, |t| t.notes.clone());
        assert_eq!(
            got,
            [
                (2, "127.0.0.1".into(), s("two lines")),
                (5, "127.0.0.2".into(), s("x"))
            ]
        );
        // A lone CR (classic Mac line end) also ends a line.
        let rows: Vec<u32> = list.problems.iter().map(|p| p.row).collect();
        assert_eq!(rows, [7]);
    }

    #[test]
    fn line_numbers_stay_right_across_buffer_refills() {
        // Enough rows to pass csv's internal buffer several times, with
        // multi-line quoted cells and blank lines in between.
        let mut text = String::from("\n\nip,notes\r\n");
        let mut line = 4;
        let mut expected = Vec::new();
        for i in 0..1500u32 {
            let ip = format!("127.{}.{}.1", i / 256, i % 256);
            expected.push((line, ip.clone()));
            if i % 3 == 0 {
                text += &format!("{ip},\"a\r\nb\nc\"\r\n");
                line += 3;
            } else {
                text += &format!("{ip},plain\n\n");
                line += 2;
            }
        }
        let (_d, _p, r) = load_bytes("t.csv", text.as_bytes());
        let got: Vec<(u32, String)> = r
            .unwrap()
            .targets
            .iter()
            .map(|t| (t.row, t.addr.to_string()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn ragged_rows() {
        let (_d, _p, r) = load_bytes(
            "t.csv",
            b"Targets\n\nname,ip,group,notes\nlo,127.0.0.1\nv6,::1,lab,n,extra,cells\nonly a name\n",
        );
        let list = r.unwrap();
        assert_eq!(
            summary(&list.targets),
            [(4, "127.0.0.1".into(), s("lo")), (5, "::1".into(), s("v6"))]
        );
        assert_eq!(list.problems.len(), 1);
        assert_eq!(list.problems[0].row, 6);
        assert_eq!(list.problems[0].message, "no IP address in the ip column");
    }

    #[test]
    fn legacy_encodings_are_decoded_not_rejected() {
        let (_d, _p, r) = load_bytes("t.csv", b"name;ip\nCaf\xe9 \x80;127.0.0.1\n");
        assert_eq!(r.unwrap().targets[0].name, s("Café €"));
        let utf16: Vec<u8> = "\u{feff}ip\tname\r\n::1\tGrüße\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let (_d, _p, r) = load_bytes("t.txt", &utf16);
        let list = r.unwrap();
        assert_eq!(summary(&list.targets), [(2, "::1".into(), s("Grüße"))]);
    }

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter("a,b;c,d"), b',');
        assert_eq!(detect_delimiter("a;b;c,d"), b';');
        assert_eq!(detect_delimiter("a\tb\tc;d"), b'\t');
        assert_eq!(detect_delimiter("\"x;y;z\",ip"), b',');
        assert_eq!(detect_delimiter("\n  \nTitle\nname;ip\n"), b';');
        assert_eq!(detect_delimiter("ip\n127.0.0.1\n"), b',');
        assert_eq!(detect_delimiter("a;b,c"), b',');
    }

    #[test]
    fn decode_never_fails() {
        assert_eq!(decode(b"\xef\xbb\xbfip"), "ip");
        assert_eq!(decode(b"\x81\x9d"), "\u{fffd}\u{fffd}");
        assert_eq!(decode(b"\xfe\xff\x00i\x00p"), "ip");
        assert_eq!(decode(b"\xff\xfei\x00\x00\xd8"), "i\u{fffd}");
    }
}
