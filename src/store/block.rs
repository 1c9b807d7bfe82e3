//! Result blocks: the results of one round for up to [`CHUNK_SIZE`]
//! targets packed into one row, about 9 bytes a result where a row per
//! result took about 45 and an index entry 20 more. Pure: bytes in, bytes
//! out; the store decides which results go together
//! ([`chunk_of`] their target ids) and keeps the labels and the round in
//! the row and in `targets`.
//!
//! Why: every round rewrites what it touches on an SD card, and SQLite's
//! WAL writes each page twice (into the WAL, then back into the file). A
//! row per result, with an index on `(target, ts)`, wrote 3x the results
//! as CSV per round on a fresh file, and more as the file grows, because
//! each round's index entries land on pages all over the index. A block
//! is appended at the file's end, and a round of 10,000 targets is about
//! 40 of them.
//!
//! # Format (version 1)
//!
//! Integers are LEB128 varints; signed ones are zigzag-encoded first.
//!
//! ```text
//! block   = version:u8 count:varint first_ts:svarint gateways:varint gateway* entry*count
//! gateway = len:u8 (4 or 16) address bytes
//! entry   = id_delta:varint flags:u8 ts_delta:svarint sent:varint received:varint
//!           [loss:f64 LE]  (flag LOSS_GIVEN)
//!           [rtt]          (RTT_ONE: avg:svarint; RTT_FULL: avg, avg-min, max-avg, mdev as svarint)
//!           gateway_ref:varint  (0 unknown, 1 direct, 2+k the k-th gateway above)
//! flags   = status (bits 0-1) | reported (bits 2-3) | rtt form (bits 4-5) | LOSS_GIVEN (bit 6)
//! ```
//!
//! Entries are in ascending target id; `id_delta` is the id minus the
//! previous entry's (the first: minus the chunk's first id). `ts_delta` is
//! the timestamp minus the previous entry's (the first: minus `first_ts`).
//! RTTs are whole microseconds, as in the rest of the store; a single
//! reply (min = avg = max, mdev 0) takes one number instead of four.

use crate::clock::Timestamp;
use crate::probe::{Gateway, RttSummary, Status};

use super::encode::{self, BadValue};

/// Target ids per block: a block holds the ids `chunk << CHUNK_BITS` up
/// to the next chunk's first.
pub const CHUNK_BITS: u32 = 8;

/// How many targets a chunk (and so a block) spans.
pub const CHUNK_SIZE: i64 = 1 << CHUNK_BITS;

/// The version byte this code writes and reads.
const VERSION: u8 = 1;

const RTT_NONE: u8 = 0;
const RTT_ONE: u8 = 1;
const RTT_FULL: u8 = 2;
const LOSS_GIVEN: u8 = 1 << 6;

/// The chunk a target id belongs to.
pub fn chunk_of(target: i64) -> i64 {
    target >> CHUNK_BITS
}

/// One result as a block holds it: the target's id instead of its key
/// and labels; the round is the block's.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub target: i64,
    pub ts: Timestamp,
    pub status: Status,
    pub reported: Status,
    pub sent: u32,
    pub received: u32,
    pub loss: f64,
    pub rtt: Option<RttSummary>,
    pub gateway: Option<Gateway>,
}

/// Pack `entries` (all of one chunk, ascending by target id) into a block.
///
/// # Panics
///
/// If the entries are not of one chunk in ascending order: the store
/// sorts them, so that is a bug here, not bad data.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entries.len() * 12);
    out.push(VERSION);
    put_uint(&mut out, entries.len() as u64);
    let first_ts = entries.first().map_or(0, |e| e.ts.millis());
    put_int(&mut out, first_ts);
    let mut gateways: Vec<Vec<u8>> = Vec::new();
    for e in entries {
        if let Some(bytes) = encode::gateway_to_blob(e.gateway).filter(|b| !b.is_empty()) {
            if !gateways.contains(&bytes) {
                gateways.push(bytes);
            }
        }
    }
    put_uint(&mut out, gateways.len() as u64);
    for g in &gateways {
        out.push(g.len() as u8);
        out.extend_from_slice(g);
    }
    let base = entries
        .first()
        .map_or(0, |e| chunk_of(e.target) << CHUNK_BITS);
    let (mut prev_id, mut prev_ts) = (base, first_ts);
    for e in entries {
        assert!(
            e.target >= prev_id && chunk_of(e.target) == chunk_of(base),
            "block entries must be one chunk's, in ascending id order"
        );
        put_uint(&mut out, (e.target - prev_id) as u64);
        prev_id = e.target;
        let loss = encode::loss_to_column(e.sent, e.received, e.loss);
        let (form, rtt_us) = rtt_form(e.rtt.as_ref());
        let flags = status_bits(e.status)
            | (status_bits(e.reported) << 2)
            | (form << 4)
            | if loss.is_some() { LOSS_GIVEN } else { 0 };
        out.push(flags);
        put_int(&mut out, e.ts.millis().wrapping_sub(prev_ts));
        prev_ts = e.ts.millis();
        put_uint(&mut out, u64::from(e.sent));
        put_uint(&mut out, u64::from(e.received));
        if let Some(loss) = loss {
            out.extend_from_slice(&loss.to_le_bytes());
        }
        let [min, avg, max, mdev] = rtt_us;
        match form {
            RTT_ONE => put_int(&mut out, avg),
            RTT_FULL => {
                put_int(&mut out, avg);
                put_int(&mut out, avg.wrapping_sub(min));
                put_int(&mut out, max.wrapping_sub(avg));
                put_int(&mut out, mdev);
            }
            _ => {}
        }
        let gateway_ref = match encode::gateway_to_blob(e.gateway) {
            None => 0,
            Some(b) if b.is_empty() => 1,
            Some(b) => {
                2 + gateways
                    .iter()
                    .position(|g| *g == b)
                    .expect("collected above") as u64
            }
        };
        put_uint(&mut out, gateway_ref);
    }
    out
}

/// Unpack a block whose chunk is `chunk`, checking every field: a block
/// read from a damaged card is an error, never a panic or a wrong result.
pub fn decode(chunk: i64, data: &[u8]) -> Result<Vec<Entry>, BadValue> {
    let mut r = Bytes { data, at: 0 };
    let version = r.byte()?;
    if version != VERSION {
        return Err(BadValue(format!(
            "result block of version {version}, this build reads {VERSION}"
        )));
    }
    let count = r.uint()?;
    // Each entry takes at least 6 bytes: a count beyond that is damage,
    // and must not size an allocation.
    if count > (data.len() as u64) / 6 {
        return Err(BadValue(format!(
            "result block claims {count} entries in {} bytes",
            data.len()
        )));
    }
    let first_ts = r.int()?;
    let n_gateways = r.uint()?;
    let mut gateways = Vec::new();
    for _ in 0..n_gateways {
        let len = usize::from(r.byte()?);
        if len != 4 && len != 16 {
            return Err(BadValue(format!(
                "gateway of {len} bytes in a result block"
            )));
        }
        gateways.push(encode::gateway_from_blob(Some(r.take(len)?))?);
    }
    let base = chunk
        .checked_mul(CHUNK_SIZE)
        .ok_or_else(|| BadValue(format!("chunk {chunk}")))?;
    let (mut prev_id, mut prev_ts) = (base, first_ts);
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let target = i64::try_from(r.uint()?)
            .ok()
            .and_then(|d| prev_id.checked_add(d))
            .filter(|&id| chunk_of(id) == chunk)
            .ok_or_else(|| BadValue("target id outside the block's chunk".into()))?;
        prev_id = target;
        let flags = r.byte()?;
        if flags & 0x80 != 0 {
            return Err(BadValue(format!("result block flags {flags:#04x}")));
        }
        let ts = prev_ts.wrapping_add(r.int()?);
        prev_ts = ts;
        let sent = r.u32()?;
        let received = r.u32()?;
        let loss = if flags & LOSS_GIVEN != 0 {
            f64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes taken"))
        } else {
            encode::usual_loss(sent, received)
        };
        let rtt = match (flags >> 4) & 0b11 {
            RTT_NONE => None,
            RTT_ONE => {
                let avg = encode::us_to_ms(r.int()?);
                Some(RttSummary {
                    min: avg,
                    avg,
                    max: avg,
                    mdev: 0.0,
                })
            }
            RTT_FULL => {
                let avg = r.int()?;
                let min = avg.wrapping_sub(r.int()?);
                let max = avg.wrapping_add(r.int()?);
                let mdev = r.int()?;
                Some(RttSummary {
                    min: encode::us_to_ms(min),
                    avg: encode::us_to_ms(avg),
                    max: encode::us_to_ms(max),
                    mdev: encode::us_to_ms(mdev),
                })
            }
            form => return Err(BadValue(format!("RTT form {form} in a result block"))),
        };
        let gateway = match r.uint()? {
            0 => None,
            1 => Some(Gateway::Direct),
            k => usize::try_from(k - 2)
                .ok()
                .and_then(|k| gateways.get(k).copied().flatten())
                .map(Some)
                .ok_or_else(|| BadValue(format!("gateway {k} of {n_gateways}")))?,
        };
        entries.push(Entry {
            target,
            ts: Timestamp(ts),
            status: status_from_bits(flags)?,
            reported: status_from_bits(flags >> 2)?,
            sent,
            received,
            loss,
            rtt,
            gateway,
        });
    }
    if r.at != data.len() {
        return Err(BadValue(format!(
            "{} bytes after the last entry of a result block",
            data.len() - r.at
        )));
    }
    Ok(entries)
}

/// The RTT form of a summary and its four values in µs (min, avg, max,
/// mdev).
fn rtt_form(rtt: Option<&RttSummary>) -> (u8, [i64; 4]) {
    let Some(s) = rtt else {
        return (RTT_NONE, [0; 4]);
    };
    let us = [s.min, s.avg, s.max, s.mdev].map(encode::ms_to_us);
    if us[0] == us[1] && us[1] == us[2] && us[3] == 0 {
        (RTT_ONE, us)
    } else {
        (RTT_FULL, us)
    }
}

fn status_bits(s: Status) -> u8 {
    encode::status_code(s) as u8
}

fn status_from_bits(bits: u8) -> Result<Status, BadValue> {
    encode::status_from_code(i64::from(bits & 0b11))
}

fn put_uint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    put_uint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A cursor over a block's bytes; running off the end is an error.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> Result<u8, BadValue> {
        Ok(self.take(1)?[0])
    }

    fn take(&mut self, n: usize) -> Result<&[u8], BadValue> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| BadValue("result block cut short".into()))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn uint(&mut self) -> Result<u64, BadValue> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BadValue(
            "varint longer than 64 bits in a result block".into(),
        ))
    }

    fn int(&mut self) -> Result<i64, BadValue> {
        let z = self.uint()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn u32(&mut self) -> Result<u32, BadValue> {
        let v = self.uint()?;
        u32::try_from(v).map_err(|_| BadValue(format!("packet count {v} in a result block")))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    const T0: i64 = 1_780_000_000_000;

    fn entry(target: i64, ts: i64) -> Entry {
        Entry {
            target,
            ts: Timestamp(ts),
            status: Status::Working,
            reported: Status::Working,
            sent: 1,
            received: 1,
            loss: 0.0,
            rtt: Some(RttSummary {
                min: 0.412,
                avg: 0.412,
                max: 0.412,
                mdev: 0.0,
            }),
            gateway: Some(Gateway::Via(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)))),
        }
    }

    #[test]
    fn every_kind_of_value_round_trips() {
        let mut odd = entry(300, T0 - 5_000);
        odd.status = Status::Degraded;
        odd.reported = Status::NotWorking;
        odd.sent = 3;
        odd.received = 2;
        odd.loss = 0.5; // not the usual 1/3: kept as given
        odd.rtt = Some(RttSummary {
            min: 0.101,
            avg: 2.5,
            max: 9.999,
            mdev: 1.234,
        });
        odd.gateway = Some(Gateway::Via(IpAddr::V6(Ipv6Addr::new(
            0x2001, 0xdb8, 0, 0, 0, 0, 0, 1,
        ))));
        let mut silent = entry(301, T0 + 60_000);
        silent.status = Status::NotWorking;
        silent.received = 0;
        silent.loss = 1.0;
        silent.rtt = None;
        silent.gateway = None;
        let mut direct = entry(511, i64::MAX);
        direct.gateway = Some(Gateway::Direct);
        direct.sent = u32::MAX;
        direct.received = u32::MAX;
        let entries = vec![entry(256, T0), entry(257, T0 + 3), odd, silent, direct];
        let block = encode(&entries);
        assert_eq!(decode(1, &block).unwrap(), entries);
    }

    #[test]
    fn a_round_of_single_replies_takes_about_nine_bytes_a_result() {
        let entries: Vec<Entry> = (0..256).map(|i| entry(i, T0 + i * 5)).collect();
        let block = encode(&entries);
        assert!(block.len() <= 256 * 9, "{} bytes", block.len());
        assert_eq!(decode(0, &block).unwrap(), entries);
    }

    #[test]
    fn an_empty_block_round_trips() {
        assert_eq!(decode(7, &encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let entries: Vec<Entry> = (0..20).map(|i| entry(i, T0 + i)).collect();
        let block = encode(&entries);
        // Every truncation and every single-byte change either decodes to
        // something or is refused; none panics or allocates wildly.
        for n in 0..block.len() {
            assert!(decode(0, &block[..n]).is_err(), "cut at {n}");
        }
        for i in 0..block.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = block.clone();
                b[i] = v;
                let _ = decode(0, &b);
            }
        }
        let mut trailing = block.clone();
        trailing.push(0);
        assert!(decode(0, &trailing).is_err());
        // Ids are kept relative to the chunk the row names.
        assert!(decode(1, &block)
            .unwrap()
            .iter()
            .all(|e| chunk_of(e.target) == 1));
        assert!(decode(0, &[2]).is_err(), "unknown version");
        assert!(decode(0, &[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(decode(i64::MAX, &block).is_err());
    }
}
