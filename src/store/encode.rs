//! How values are packed into columns, kept small because every round
//! writes thousands of rows to an SD card: statuses as small integers, RTTs
//! as whole microseconds (ping's own precision), gateways as address bytes
//! and hops as compact JSON arrays. Pure, and the inverse of each encoder
//! is next to it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::probe::{Gateway, Hop, Status, Ttl};

/// A column held something the store never writes.
#[derive(Debug, thiserror::Error)]
#[error("unexpected stored value: {0}")]
pub struct BadValue(pub String);

/// 0 Working, 1 Degraded, 2 Not Working. SQLite stores 0 and 1 in no
/// payload bytes at all, the text names would take 7 to 11 bytes twice
/// per result.
pub fn status_code(s: Status) -> i64 {
    match s {
        Status::Working => 0,
        Status::Degraded => 1,
        Status::NotWorking => 2,
    }
}

/// The inverse of [`status_code`].
pub fn status_from_code(code: i64) -> Result<Status, BadValue> {
    Ok(match code {
        0 => Status::Working,
        1 => Status::Degraded,
        2 => Status::NotWorking,
        _ => return Err(BadValue(format!("status code {code}"))),
    })
}

/// Milliseconds to whole microseconds (2 to 4 bytes in SQLite instead of a
/// REAL's 8).
pub fn ms_to_us(ms: f64) -> i64 {
    // `as` saturates and maps NaN to 0, which is what we want here.
    (ms * 1000.0).round() as i64
}

/// The inverse of [`ms_to_us`], exact for values with at most three
/// decimals.
pub fn us_to_ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

/// `None` unknown; an empty blob for Direct; the 4 or 16 address bytes.
pub fn gateway_to_blob(g: Option<Gateway>) -> Option<Vec<u8>> {
    g.map(|g| match g {
        Gateway::Direct => Vec::new(),
        Gateway::Via(IpAddr::V4(a)) => a.octets().to_vec(),
        Gateway::Via(IpAddr::V6(a)) => a.octets().to_vec(),
    })
}

/// The inverse of [`gateway_to_blob`].
pub fn gateway_from_blob(b: Option<&[u8]>) -> Result<Option<Gateway>, BadValue> {
    let Some(b) = b else { return Ok(None) };
    Ok(Some(match b.len() {
        0 => Gateway::Direct,
        4 => Gateway::Via(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(b).expect("length checked"),
        ))),
        16 => Gateway::Via(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(b).expect("length checked"),
        ))),
        n => return Err(BadValue(format!("gateway of {n} bytes"))),
    }))
}

/// One hop as stored: `[ttl, "address" or null, rtt in µs or null]`.
type StoredHop = (u8, Option<IpAddr>, Option<i64>);

/// Hops as a JSON array of arrays, e.g.
/// `[[1,"198.18.1.1",412],[2,null,null]]`: about 25 bytes a hop, where
/// objects with field names would take about 45.
pub fn hops_to_json(hops: &[Hop]) -> String {
    let stored: Vec<StoredHop> = hops
        .iter()
        .map(|h| (h.ttl.0, h.addr, h.rtt_ms.map(ms_to_us)))
        .collect();
    serde_json::to_string(&stored).expect("hops always serialize")
}

/// The inverse of [`hops_to_json`].
pub fn hops_from_json(s: &str) -> Result<Vec<Hop>, BadValue> {
    let stored: Vec<StoredHop> =
        serde_json::from_str(s).map_err(|e| BadValue(format!("hops {s:?}: {e}")))?;
    Ok(stored
        .into_iter()
        .map(|(ttl, addr, rtt)| Hop::new(Ttl(ttl), addr, rtt.map(us_to_ms)))
        .collect())
}

/// The loss a result has when nothing unusual happened, as the prober
/// computes it: total when nothing was sent.
pub fn usual_loss(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        1.0
    } else {
        crate::probe::stats::loss(sent, received)
    }
}

/// `None` (stored as NULL, no payload) when `loss` is the usual one.
pub fn loss_to_column(sent: u32, received: u32, loss: f64) -> Option<f64> {
    (loss.to_bits() != usual_loss(sent, received).to_bits()).then_some(loss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_rejects_unknown_codes() {
        for s in [Status::Working, Status::Degraded, Status::NotWorking] {
            assert_eq!(status_from_code(status_code(s)).unwrap(), s);
        }
        assert!(status_from_code(3).is_err());
        assert!(status_from_code(-1).is_err());
    }

    #[test]
    fn rtt_microseconds() {
        assert_eq!(ms_to_us(1.234), 1234);
        assert_eq!(ms_to_us(0.0004), 0);
        assert_eq!(ms_to_us(0.0005), 1);
        assert_eq!(us_to_ms(1234), 1.234);
        assert_eq!(ms_to_us(f64::NAN), 0);
        for ms in [0.001, 0.5, 12.345, 999.999, 30_000.0] {
            assert_eq!(us_to_ms(ms_to_us(ms)), ms);
        }
    }

    #[test]
    fn gateways_as_bytes() {
        let cases = [
            None,
            Some(Gateway::Direct),
            Some(Gateway::Via("198.18.1.1".parse().unwrap())),
            Some(Gateway::Via("2001:db8:1::1".parse().unwrap())),
        ];
        for g in cases {
            let b = gateway_to_blob(g);
            assert_eq!(gateway_from_blob(b.as_deref()).unwrap(), g);
        }
        assert_eq!(
            gateway_to_blob(Some(Gateway::Via("198.18.1.1".parse().unwrap()))),
            Some(vec![198, 18, 1, 1])
        );
        assert!(gateway_from_blob(Some(&[1, 2, 3])).is_err());
    }

    #[test]
    fn hops_compact_json() {
        let hops = vec![
            Hop::new(Ttl(1), Some("198.18.1.1".parse().unwrap()), Some(0.412)),
            Hop::new(Ttl(2), None, None),
            Hop::new(Ttl(3), Some("2001:db8::3".parse().unwrap()), Some(12.5)),
        ];
        let s = hops_to_json(&hops);
        assert_eq!(
            s,
            r#"[[1,"198.18.1.1",412],[2,null,null],[3,"2001:db8::3",12500]]"#
        );
        assert_eq!(hops_from_json(&s).unwrap(), hops);
        assert_eq!(hops_from_json("[]").unwrap(), vec![]);
        assert!(hops_from_json("[[1,\"not an ip\",3]]").is_err());
        assert!(hops_from_json("[[1,null").is_err(), "truncated");
    }

    #[test]
    fn usual_loss_is_not_stored() {
        assert_eq!(loss_to_column(4, 3, 0.25), None);
        assert_eq!(
            loss_to_column(0, 0, 1.0),
            None,
            "nothing sent is total loss"
        );
        assert_eq!(loss_to_column(0, 0, 0.0), Some(0.0));
        assert_eq!(loss_to_column(4, 4, 0.5), Some(0.5));
    }
}
