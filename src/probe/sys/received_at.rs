//! When a datagram really arrived: the kernel's receive timestamp
//! (`SO_TIMESTAMPNS`), read out of a `recvmsg` control buffer and turned
//! into an [`Instant`], so that a reply's round-trip time does not include
//! how long it waited in the socket for a busy thread to read it. Pure:
//! bytes in, a time out.
//!
//! The kernel stamps with the wall clock (`CLOCK_REALTIME`); probes are
//! timed with the monotonic clock. The stamp becomes an instant by its
//! age, the wall clock now minus the stamp, taken off the monotonic now.
//! An age that cannot be right (negative, or longer than any reply waits:
//! the wall clock was stepped in between) falls back to now, the time of
//! reading, which is what the receive loops used before. So does the
//! kernel itself for a moment after the first socket of the machine asks
//! for stamps: it turns them on in deferred work, and until then stamps a
//! datagram when it is read.

use std::mem::size_of;
use std::time::{Duration, Instant, SystemTime};

/// The control buffer that holds one `SCM_TIMESTAMPNS` message, with room
/// to spare: a header and a `timespec`, each at most 16 bytes.
pub const CONTROL_BYTES: usize = 64;

/// The longest a reply is believed to have waited in its socket; an older
/// stamp means the wall clock moved, not the packet.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

/// The kernel's receive time in a control buffer (`control`, the bytes the
/// kernel filled), if it holds one. Malformed buffers give `None`.
pub fn kernel_stamp(control: &[u8]) -> Option<SystemTime> {
    let header = align(size_of::<usize>() + 2 * size_of::<libc::c_int>());
    let mut rest = control;
    while rest.len() >= header {
        let len = usize::from_ne_bytes(rest[..size_of::<usize>()].try_into().ok()?);
        let level = int_at(rest, size_of::<usize>())?;
        let kind = int_at(rest, size_of::<usize>() + size_of::<libc::c_int>())?;
        if len < header || len > rest.len() {
            return None;
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
            return timespec(&rest[header..len]);
        }
        rest = &rest[align(len).min(rest.len())..];
    }
    None
}

/// The instant `stamp` names, given the wall clock and the monotonic clock
/// read together just now; `now` when the two clocks disagree.
pub fn instant_of(stamp: SystemTime, wall_now: SystemTime, now: Instant) -> Instant {
    match wall_now.duration_since(stamp) {
        Ok(age) if age <= LONGEST_WAIT => now.checked_sub(age).unwrap_or(now),
        _ => now,
    }
}

/// A control message length rounded up as `CMSG_ALIGN` does.
fn align(len: usize) -> usize {
    let word = size_of::<usize>();
    (len + word - 1) & !(word - 1)
}

fn int_at(bytes: &[u8], at: usize) -> Option<libc::c_int> {
    let end = at + size_of::<libc::c_int>();
    Some(libc::c_int::from_ne_bytes(
        bytes.get(at..end)?.try_into().ok()?,
    ))
}

/// A `timespec` as the kernel sends it: seconds then nanoseconds, two
/// fields of one width (a `long` each, 32 bits on 32-bit Arm; 64 bits
/// each in the 64-bit-time variant), as a wall-clock time.
fn timespec(data: &[u8]) -> Option<SystemTime> {
    let (secs, nanos) = data.split_at(data.len() / 2);
    let secs = u64::try_from(signed(secs)?).ok()?;
    let nanos = u32::try_from(signed(nanos)?)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

fn signed(bytes: &[u8]) -> Option<i64> {
    match bytes.len() {
        4 => Some(i64::from(i32::from_ne_bytes(bytes.try_into().ok()?))),
        8 => Some(i64::from_ne_bytes(bytes.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control buffer as the kernel lays out one message.
    fn message(level: libc::c_int, kind: libc::c_int, data: &[u8]) -> Vec<u8> {
        let header = align(size_of::<usize>() + 2 * size_of::<libc::c_int>());
        let mut m = Vec::new();
        m.extend_from_slice(&(header + data.len()).to_ne_bytes());
        m.extend_from_slice(&level.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.resize(header, 0);
        m.extend_from_slice(data);
        m.resize(align(m.len()), 0);
        m
    }

    /// This target's `struct timespec` (`long` seconds and nanoseconds).
    fn timespec_bytes(secs: i64, nanos: i64) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&(secs as libc::c_long).to_ne_bytes());
        t.extend_from_slice(&(nanos as libc::c_long).to_ne_bytes());
        t
    }

    #[test]
    fn the_timestamp_message_is_read() {
        let buf = message(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(1_700_000_000, 250),
        );
        let want = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 250);
        assert_eq!(kernel_stamp(&buf), Some(want));
    }

    #[test]
    fn other_messages_before_it_are_stepped_over() {
        let mut buf = message(libc::IPPROTO_IP, libc::IP_TTL, &7i32.to_ne_bytes());
        buf.extend(message(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(5, 6),
        ));
        let want = SystemTime::UNIX_EPOCH + Duration::new(5, 6);
        assert_eq!(kernel_stamp(&buf), Some(want));
    }

    #[test]
    fn no_stamp_or_a_broken_buffer_gives_none() {
        assert_eq!(kernel_stamp(&[]), None);
        let ttl = message(libc::IPPROTO_IP, libc::IP_TTL, &7i32.to_ne_bytes());
        assert_eq!(kernel_stamp(&ttl), None);
        let stamp = message(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(5, 6),
        );
        // Cut short, or a length that points past the end.
        assert_eq!(kernel_stamp(&stamp[..stamp.len() - 4]), None);
        let mut too_long = stamp.clone();
        too_long[..size_of::<usize>()].copy_from_slice(&1000usize.to_ne_bytes());
        assert_eq!(kernel_stamp(&too_long), None);
        let mut zero = stamp;
        zero[..size_of::<usize>()].copy_from_slice(&0usize.to_ne_bytes());
        assert_eq!(kernel_stamp(&zero), None, "a zero length must not loop");
        let bad_nanos = message(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(5, 1_000_000_000),
        );
        assert_eq!(kernel_stamp(&bad_nanos), None);
    }

    #[test]
    fn the_64_bit_time_layout_is_read_on_any_target() {
        let mut t = Vec::new();
        t.extend_from_slice(&9i64.to_ne_bytes());
        t.extend_from_slice(&10i64.to_ne_bytes());
        let want = SystemTime::UNIX_EPOCH + Duration::new(9, 10);
        assert_eq!(timespec(&t), Some(want));
    }

    #[test]
    fn a_stamp_becomes_the_instant_it_is_old() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let stamp = wall - Duration::from_millis(3);
        assert_eq!(instant_of(stamp, wall, now), now - Duration::from_millis(3));
    }

    #[test]
    fn a_stepped_wall_clock_falls_back_to_now() {
        let now = Instant::now();
        let wall = SystemTime::now();
        // The stamp from the future: the clock was stepped back since.
        assert_eq!(instant_of(wall + Duration::from_secs(1), wall, now), now);
        // A stamp from an hour ago: the clock was stepped forward.
        assert_eq!(instant_of(wall - Duration::from_secs(3600), wall, now), now);
    }
}
