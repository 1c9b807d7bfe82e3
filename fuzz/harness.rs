#![allow(dead_code)] // each fuzz target uses one entry point of the harness
//! What each fuzz target does with one input. Shared by the targets in
//! `fuzz_targets/` (run by `cargo fuzz`) and by `tests/fuzz_corpus.rs`,
//! which replays the committed corpus and every past crash on stable Rust.
//! A panic or an abort here is a finding.

use std::io::{Cursor, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use edgeprobe::probe::wire::{self, ReplyKind};
use edgeprobe::targets::{Loader, SheetLimits};
use smoltcp::wire::Icmpv4Packet;

/// Small caps, so that an input cannot make one run slow.
fn limits() -> SheetLimits {
    SheetLimits {
        max_file_bytes: 1024 * 1024,
        max_rows: 5_000,
        max_unzipped_bytes: 4 * 1024 * 1024,
    }
}

/// The loader in this process (no reader process: the fuzzer must see what
/// the spreadsheet library does). The first byte picks the file name, and
/// so the format; `.xls` is left out: the library's `.xls` reader aborts on
/// a declared size and loops on a cyclic sector chain, which only the
/// confined reader process contains (tests/hostile_sheets.rs covers it).
pub fn sheet(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let name = ["t.xlsx", "t.ods", "t.csv", "t"][usize::from(pick % 4)];
    let loader = Loader {
        limits: limits(),
        isolate_with: None,
    };
    if let Ok(list) = loader.load_bytes(name, Path::new(name), bytes, None) {
        assert!(!list.targets.is_empty());
        assert!(list.targets.len() + list.problems.len() <= limits().max_rows as usize + 1);
    }
}

/// The input as the worksheet XML of an otherwise valid `.xlsx` (stored,
/// not deflated), so mutations reach the XML and cell handling instead of
/// failing the zip checksum.
pub fn worksheet_xml(data: &[u8]) {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let parts: [(&str, &[u8]); 5] = [
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", ROOT_RELS),
        ("xl/workbook.xml", WORKBOOK),
        ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
        ("xl/worksheets/sheet1.xml", data),
    ];
    for (name, body) in parts {
        if zip.start_file(name, stored).is_err() || zip.write_all(body).is_err() {
            return;
        }
    }
    let Ok(bytes) = zip.finish().map(Cursor::into_inner) else {
        return;
    };
    let mut with_pick = vec![0u8];
    with_pick.extend_from_slice(&bytes);
    sheet(&with_pick);
}

const CONTENT_TYPES: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
const ROOT_RELS: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
const WORKBOOK: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Targets" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
const WORKBOOK_RELS: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;

/// Every packet parser on the input, three ways: as a whole IPv4 datagram
/// (raw socket), and as an ICMPv4 or ICMPv6 message after a sender address
/// taken from its first bytes (ping socket, IPv6 raw socket). The ICMPv4
/// checksum is filled in first, or almost nothing would get past it.
pub fn packet(data: &[u8]) {
    if let Ok(Some(reply)) = wire::parse_v4(data) {
        check_reply(&reply);
    }
    if data.len() >= 4 {
        let from = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
        let mut message = data[4..].to_vec();
        if message.len() >= 4 {
            Icmpv4Packet::new_unchecked(&mut message[..]).fill_checksum();
        }
        if let Ok(Some(reply)) = wire::parse_icmp_v4(from, &message) {
            assert_eq!(reply.from, IpAddr::V4(from));
            check_reply(&reply);
        }
    }
    if data.len() >= 16 {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&data[..16]);
        let from = Ipv6Addr::from(octets);
        if let Ok(Some(reply)) = wire::parse_v6(from, &data[16..]) {
            assert_eq!(reply.from, IpAddr::V6(from));
            check_reply(&reply);
        }
    }
}

/// What a reply must say whatever the bytes were: an echo reply answers a
/// request to its sender; an error quotes a destination of its own family.
fn check_reply(reply: &wire::Reply) {
    match reply.kind {
        ReplyKind::EchoReply => assert_eq!(reply.probe_dst, reply.from),
        _ => assert_eq!(reply.probe_dst.is_ipv4(), reply.from.is_ipv4()),
    }
}
