//! Durations as people write them in the config and on the command line:
//! `500ms`, `5s`, `10m`, `1h`, `30d`, or sums such as `1m30s`.

use std::time::Duration;

/// Parse a duration such as `500ms`, `5s`, `10m`, `1h`, `30d`, or a sum
/// of them (`1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let hint = || format!("{text:?} is not a duration; write e.g. 500ms, 5s, 10m, 1h or 30d");
    if s.is_empty() {
        return Err(hint());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(hint());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| hint())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(hint()),
        };
        rest = &rest[unit_len..];
        let ms = n.checked_mul(unit_ms).ok_or_else(hint)?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(hint)?;
    }
    Ok(total)
}

/// The inverse of [`parse_duration`] for display: `1m30s`, `500ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        for bad in ["", "5", "s", "5x", "-5s", "5.5s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    }
}
