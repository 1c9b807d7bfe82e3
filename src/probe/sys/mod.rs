//! Platform edge of probing: opening ICMP sockets, the privileges they need,
//! reading datagrams with the kernel's receive time, and the four `unsafe`
//! calls that `socket2` and tokio leave to us (a plain-data `setsockopt`,
//! registering a socket with the reactor, an initialised buffer handed
//! over as `MaybeUninit`, and an empty address for `recvmsg` to fill),
//! each with its SAFETY note.
//!
//! Privilege failures become [`PrivilegeError`] values whose message tells
//! the operator the fix, never a bare "permission denied".

mod received_at;

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use socket2::{
    Domain, MaybeUninitSlice, MsgHdrMut, Protocol, SockAddr, SockAddrStorage, SockFilter, Socket,
    Type,
};
use tokio::io::unix::AsyncFd;

use super::wire::{self, Reply};

/// IP version of a socket or address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn domain(self) -> Domain {
        match self {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        }
    }

    fn protocol(self) -> Protocol {
        match self {
            Family::V4 => Protocol::ICMPV4,
            Family::V6 => Protocol::ICMPV6,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// Why an ICMP socket could not be opened, with the operator's fix.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "traceroute needs raw {family} ICMP sockets, which need the CAP_NET_RAW capability.\n\
         Run edgeprobe as root, or grant the capability once:\n    \
         sudo setcap cap_net_raw+ep {exe}\n\
         (under systemd: AmbientCapabilities=CAP_NET_RAW)"
    )]
    NoRawIcmp { family: Family, exe: String },
    #[error(
        "ping needs either CAP_NET_RAW or unprivileged {family} ICMP sockets, and neither is allowed.\n\
         Either grant the capability:\n    sudo setcap cap_net_raw+ep {exe}\n\
         or allow ICMP sockets for all groups (the one setting covers IPv4 and IPv6):\n    \
         sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\""
    )]
    NoPingSocket { family: Family, exe: String },
    #[error(
        "{family} is not available on this machine ({source}); {family} targets cannot be probed"
    )]
    FamilyUnavailable { family: Family, source: io::Error },
    #[error("cannot open {family} ICMP socket: {source}")]
    Other { family: Family, source: io::Error },
}

fn exe_path() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/path/to/edgeprobe".into())
}

fn is_permission(err: &io::Error) -> bool {
    // EPERM (1) for raw sockets without CAP_NET_RAW; EACCES (13) for ping
    // sockets outside ping_group_range.
    matches!(err.raw_os_error(), Some(1 | 13))
}

fn is_family_missing(err: &io::Error) -> bool {
    // EAFNOSUPPORT (97): the kernel was built or booted without IPv6.
    err.raw_os_error() == Some(97)
}

/// Which kind of ICMP socket ping got: raw first, else a ping socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingSocketKind {
    /// Raw socket: we own the identifier; needs CAP_NET_RAW.
    Raw,
    /// Unprivileged "ping socket": the kernel owns the identifier.
    Datagram,
}

/// Open a raw ICMP socket (blocking); needs CAP_NET_RAW.
fn raw_socket(family: Family) -> Result<Socket, PrivilegeError> {
    Socket::new(family.domain(), Type::RAW, Some(family.protocol())).map_err(|e| {
        if is_permission(&e) {
            PrivilegeError::NoRawIcmp {
                family,
                exe: exe_path(),
            }
        } else if is_family_missing(&e) {
            PrivilegeError::FamilyUnavailable { family, source: e }
        } else {
            PrivilegeError::Other { family, source: e }
        }
    })
}

/// A raw ICMP socket that only sends: it keeps no input (a raw socket
/// otherwise gets a copy of every ICMP message of the machine), and it
/// blocks, because only the sending thread uses it. Replies reach the
/// receiving [`IcmpSocket`] of the same family all the same: every raw
/// ICMP socket sees every ICMP message.
pub fn open_raw_sender(family: Family) -> Result<Socket, PrivilegeError> {
    let socket = raw_socket(family)?;
    set_icmp_filter(&socket, family, &[]);
    let _ = socket.set_recv_buffer_size(0); // the kernel rounds up to its minimum
    Ok(socket)
}

/// A non-blocking ICMP socket registered with tokio, for receiving.
pub struct IcmpSocket {
    family: Family,
    kind: PingSocketKind,
    inner: AsyncFd<Socket>,
}

impl IcmpSocket {
    /// A raw ICMP socket (CAP_NET_RAW) that sees the echo replies and the
    /// ICMP errors of every probe, with a large receive buffer.
    pub fn open_raw(family: Family) -> Result<Self, PrivilegeError> {
        Self::register(family, PingSocketKind::Raw, raw_socket(family)?)
    }

    /// An unprivileged ping socket: the kernel sets the echo identifier and
    /// delivers only the echo replies that carry it (no ICMP errors), without
    /// the IP header.
    pub fn open_datagram(family: Family) -> Result<Self, PrivilegeError> {
        let socket =
            Socket::new(family.domain(), Type::DGRAM, Some(family.protocol())).map_err(|e| {
                if is_permission(&e) {
                    PrivilegeError::NoPingSocket {
                        family,
                        exe: exe_path(),
                    }
                } else {
                    PrivilegeError::Other { family, source: e }
                }
            })?;
        Self::register(family, PingSocketKind::Datagram, socket)
    }

    fn register(
        family: Family,
        kind: PingSocketKind,
        socket: Socket,
    ) -> Result<Self, PrivilegeError> {
        let setup = || -> io::Result<AsyncFd<Socket>> {
            socket.set_nonblocking(true)?;
            tune_receive(&socket, family);
            register(socket)
        };
        let inner = setup().map_err(|source| PrivilegeError::Other { family, source })?;
        Ok(Self {
            family,
            kind,
            inner,
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn kind(&self) -> PingSocketKind {
        self.kind
    }

    /// Let the kernel drop echo replies by identifier before they are
    /// queued, so a socket is not woken for replies that are not its own:
    /// with [`EchoReplies::Only`] the ping socket drops the traces' (and any
    /// other program's), with [`EchoReplies::Except`] the trace socket drops
    /// ping's. Other ICMP messages pass. Best effort: without the filter
    /// the receive loops still sort replies by identifier themselves.
    pub fn filter_echo_replies(&self, which: EchoReplies) {
        let _ = self
            .inner
            .get_ref()
            .attach_filter(&echo_filter(self.family, which));
    }

    /// A second handle on this socket, for the sending thread. A datagram
    /// ping socket must send its own requests: the kernel delivers the
    /// replies only to the socket whose identifier they carry.
    pub fn try_clone(&self) -> io::Result<Socket> {
        self.inner.get_ref().try_clone()
    }

    /// The next ICMP message about an echo request, and when it arrived
    /// (the kernel's receive time, see [`Self::recv_from`]). Datagrams
    /// that are malformed or not about an echo request are skipped;
    /// transient receive errors (e.g. ENOBUFS) are waited out with a short
    /// pause, so a repeating one cannot spin a core. `buf` must hold the
    /// largest datagram (64 KiB).
    pub async fn next_reply(&self, buf: &mut [u8]) -> (Reply, Instant) {
        loop {
            let Ok((len, from, at)) = self.recv_from(buf).await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let datagram = &buf[..len];
            let parsed = match (self.family, self.kind, from) {
                (Family::V4, PingSocketKind::Raw, _) => wire::parse_v4(datagram),
                (Family::V4, PingSocketKind::Datagram, IpAddr::V4(from)) => {
                    wire::parse_icmp_v4(from, datagram)
                }
                (Family::V6, _, IpAddr::V6(from)) => wire::parse_v6(from, datagram),
                _ => continue,
            };
            if let Ok(Some(reply)) = parsed {
                return (reply, at);
            }
        }
    }

    /// Receive one datagram: for a raw IPv4 socket the whole IP packet,
    /// otherwise the ICMP message only. Returns the length, the sender and
    /// when the kernel received it, so that a reply that waited for a busy
    /// thread to read it is timed by its arrival (the time of reading when
    /// the kernel gave no stamp).
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr, Instant)> {
        loop {
            let mut guard = self.inner.readable().await?;
            match guard.try_io(|fd| recv_with_stamp(fd.get_ref(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Which echo replies a receiving socket keeps, by identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoReplies {
    Only(u16),
    Except(u16),
}

/// The classic BPF program of [`IcmpSocket::filter_echo_replies`]. An IPv4
/// raw socket's filter sees the IP header first, an IPv6 one the ICMPv6
/// message.
fn echo_filter(family: Family, which: EchoReplies) -> Vec<SockFilter> {
    // Opcodes from <linux/filter.h>.
    const LDX_B_MSH: u16 = 0xb1; // X = 4 * (packet[k] & 0xf)
    const LD_B_ABS: u16 = 0x30; // A = packet[k]
    const LD_H_ABS: u16 = 0x28; // A = packet[k..k+2]
    const LD_B_IND: u16 = 0x50; // A = packet[X + k]
    const LD_H_IND: u16 = 0x48; // A = packet[X + k..]
    const JEQ_K: u16 = 0x15; // A == k ? skip jt : skip jf
    const RET_K: u16 = 0x06; // keep k bytes (0: drop)
    const KEEP: u32 = u32::MAX;
    let (ident, keep_if_equal) = match which {
        EchoReplies::Only(ident) => (ident, true),
        EchoReplies::Except(ident) => (ident, false),
    };
    // The identifier test ends in "drop" (next) or "keep" (the one after).
    let (jt, jf) = if keep_if_equal { (1, 0) } else { (0, 1) };
    let mut program = match family {
        Family::V4 => vec![
            SockFilter::new(LDX_B_MSH, 0, 0, 0),
            SockFilter::new(LD_B_IND, 0, 0, 0),
            SockFilter::new(JEQ_K, 0, 3, 0), // not an echo reply: keep
            SockFilter::new(LD_H_IND, 0, 0, 4),
        ],
        Family::V6 => vec![
            SockFilter::new(LD_B_ABS, 0, 0, 0),
            SockFilter::new(JEQ_K, 0, 3, 129),
            SockFilter::new(LD_H_ABS, 0, 0, 4),
        ],
    };
    program.extend([
        SockFilter::new(JEQ_K, jt, jf, u32::from(ident)),
        SockFilter::new(RET_K, 0, 0, 0),
        SockFilter::new(RET_K, 0, 0, KEEP),
    ]);
    program
}

/// Receive buffer asked for: thousands of replies can arrive at once in
/// a large round, and a full buffer drops them silently.
const RECV_BUFFER_BYTES: usize = 8 << 20;

// From <linux/icmp.h>, <linux/icmpv6.h> and <asm/socket.h>; libc does not
// export them for every target.
const ICMP_FILTER: libc::c_int = 1;
const ICMP6_FILTER: libc::c_int = 1;
const SO_RCVBUFFORCE: libc::c_int = 33;

/// ICMP types a probe socket needs to see; the kernel drops the rest before
/// they take buffer space (a raw socket otherwise gets a copy of every
/// ICMP message, our own echo requests on loopback included).
const WANTED_V4: [u8; 3] = [0, 3, 11]; // echo reply, unreachable, time exceeded
const WANTED_V6: [u8; 3] = [1, 3, 129]; // unreachable, time exceeded, echo reply

/// Make an ICMP socket keep only what probes need, with a large receive
/// buffer. Best effort: a socket that refuses (a datagram ping socket, a
/// kernel without the option) still works, only with more to sift.
pub fn tune_receive(socket: &impl std::os::fd::AsFd, family: Family) {
    let sock = socket2::SockRef::from(socket);
    if set_opt(
        &sock,
        libc::SOL_SOCKET,
        SO_RCVBUFFORCE,
        &(RECV_BUFFER_BYTES as libc::c_int),
    )
    .is_err()
    {
        // Without CAP_NET_ADMIN the kernel caps this at net.core.rmem_max.
        let _ = sock.set_recv_buffer_size(RECV_BUFFER_BYTES);
    }
    // The kernel's receive time on every datagram (see `recv_with_stamp`).
    let _ = set_opt(
        &sock,
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPNS,
        &(1 as libc::c_int),
    );
    match family {
        Family::V4 => set_icmp_filter(socket, family, &WANTED_V4),
        Family::V6 => set_icmp_filter(socket, family, &WANTED_V6),
    }
}

/// Let only the ICMP types in `wanted` into a raw socket's receive queue
/// (none at all for an empty list). Best effort, as above.
fn set_icmp_filter(socket: &impl std::os::fd::AsFd, family: Family, wanted: &[u8]) {
    let sock = socket2::SockRef::from(socket);
    match family {
        Family::V4 => {
            // A set bit blocks that type; ICMPv4 types above 31 are always
            // let through by the kernel, and none of them are sent to us.
            let block = !wanted
                .iter()
                .filter(|t| **t < 32)
                .fold(0u32, |m, t| m | 1 << t);
            let _ = set_opt(&sock, libc::SOL_RAW, ICMP_FILTER, &block);
        }
        Family::V6 => {
            let mut block = [u32::MAX; 8];
            for t in wanted {
                block[usize::from(t >> 5)] &= !(1 << (t & 31));
            }
            let _ = set_opt(&sock, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &block);
        }
    }
}

/// `setsockopt` with a plain-data value.
#[allow(unsafe_code)]
fn set_opt<T: Copy>(
    sock: &socket2::SockRef<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `value` points to a live, initialised `T` of the size passed,
    // and the descriptor is borrowed from a socket that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Register an owned socket with tokio's reactor.
#[allow(unsafe_code)]
fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: `Socket` owns its file descriptor, which stays open and
    // unchanged until the `AsyncFd` (and the `Socket` in it) is dropped.
    unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)
}

/// `recvmsg` into an initialised buffer, with the kernel's receive time
/// from the control message `SO_TIMESTAMPNS` adds (now, when it is
/// missing or the wall clock was stepped: see [`received_at`]).
#[allow(unsafe_code)]
fn recv_with_stamp(sock: &Socket, buf: &mut [u8]) -> io::Result<(usize, IpAddr, Instant)> {
    let mut control = [0u8; received_at::CONTROL_BYTES];
    let storage = SockAddrStorage::zeroed();
    let storage_len = storage.size_of();
    // SAFETY: a zeroed storage is a valid (unspecified) address of its
    // full size, which `recvmsg` overwrites with the sender's.
    let mut from = unsafe { SockAddr::new(storage, storage_len) };
    let mut data = [MaybeUninitSlice::new(as_uninit(buf))];
    let mut msg = MsgHdrMut::new()
        .with_addr(&mut from)
        .with_buffers(&mut data)
        .with_control(as_uninit(&mut control));
    let len = sock.recvmsg(&mut msg, 0)?;
    let control_len = msg.control_len();
    let (now, wall_now) = (Instant::now(), SystemTime::now());
    let at = received_at::kernel_stamp(&control[..control_len.min(control.len())])
        .map_or(now, |stamp| received_at::instant_of(stamp, wall_now, now));
    let from = from
        .as_socket()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    Ok((len, from, at))
}

/// An initialised buffer as socket2's `MaybeUninit` bytes, which it takes
/// so that it can read into uninitialised memory; ours is initialised.
#[allow(unsafe_code)]
fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the same layout as `u8`, every byte of
    // `buf` is already initialised, and the kernel only writes bytes.
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<MaybeUninit<u8>>(), buf.len()) }
}
