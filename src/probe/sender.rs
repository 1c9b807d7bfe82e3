//! One thread sends every probe packet of the process, each at its slot.
//!
//! Ping and traceroute hand their packets to [`PacedSender`] and await the
//! moment the packet left. The thread keeps the one [`Pacer`] timeline and
//! sleeps with the kernel's precision (tens of microseconds) up to each
//! slot, where a task per packet woken by the runtime's millisecond timer
//! would send late packets in pairs. Unpaced, it sends back to back, as
//! fast as the socket takes them, with no locks or wake-ups in between.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use socket2::{SockAddr, Socket};
use tokio::sync::oneshot;

use super::pacer::Pacer;

/// A packet to send.
pub struct Outgoing {
    /// The socket it leaves by (only this thread ever sends on it).
    pub socket: Arc<Socket>,
    pub dst: IpAddr,
    /// The TTL (hop limit) to set first; `None` leaves the socket's own.
    pub ttl: Option<u8>,
    /// The ICMP message, header and payload.
    pub packet: Vec<u8>,
}

struct Request {
    packet: Outgoing,
    sent: oneshot::Sender<io::Result<Instant>>,
}

/// The handle on the sending thread; the thread ends with the last handle.
pub struct PacedSender {
    queue: mpsc::Sender<Request>,
}

impl PacedSender {
    /// Start the sending thread at `packets_per_second` (0 = unpaced).
    pub fn start(packets_per_second: u32) -> io::Result<PacedSender> {
        let (queue, requests) = mpsc::channel();
        let pacer = Pacer::new(packets_per_second);
        std::thread::Builder::new()
            .name("edgeprobe-send".into())
            .spawn(move || send_loop(&requests, pacer))?;
        Ok(PacedSender { queue })
    }

    /// Send `packet` at its slot; returns when it left.
    pub async fn send(&self, packet: Outgoing) -> io::Result<Instant> {
        let (sent, left) = oneshot::channel();
        self.queue
            .send(Request { packet, sent })
            .map_err(|_| stopped())?;
        left.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> io::Error {
    io::Error::other("the packet sending thread has stopped")
}

fn send_loop(requests: &mpsc::Receiver<Request>, mut pacer: Pacer) {
    loop {
        let request = match requests.try_recv() {
            Ok(request) => request,
            Err(mpsc::TryRecvError::Disconnected) => return,
            Err(mpsc::TryRecvError::Empty) => {
                pacer.idle();
                match requests.recv() {
                    Ok(request) => request,
                    Err(_) => return,
                }
            }
        };
        let Request { packet, sent } = request;
        // A probe given up while queued (a round cut short) takes no slot.
        if sent.is_closed() {
            continue;
        }
        let slot = pacer.reserve(Instant::now());
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
        let at = Instant::now();
        pacer.sent(at);
        let _ = sent.send(send_now(&packet).map(|()| at));
    }
}

/// How long a full socket send buffer is waited out before the send fails.
const FULL_BUFFER_WAIT: Duration = Duration::from_secs(1);

fn send_now(out: &Outgoing) -> io::Result<()> {
    if let Some(ttl) = out.ttl {
        match out.dst {
            IpAddr::V4(_) => out.socket.set_ttl_v4(u32::from(ttl))?,
            IpAddr::V6(_) => out.socket.set_unicast_hops_v6(u32::from(ttl))?,
        }
    }
    let to = SockAddr::from(SocketAddr::new(out.dst, 0));
    let give_up = Instant::now() + FULL_BUFFER_WAIT;
    loop {
        match out.socket.send_to(&out.packet, &to) {
            Ok(_) => return Ok(()),
            // A non-blocking socket with a full buffer: it drains at line
            // rate, so a short sleep is enough.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};

    // Real ICMP sending needs privileges and is covered by the probe
    // tests; a UDP socket shows what this thread does with any socket.
    fn udp() -> Arc<Socket> {
        Arc::new(Socket::from(UdpSocket::bind("127.0.0.1:0").unwrap()))
    }

    fn outgoing(socket: &Arc<Socket>, ttl: Option<u8>) -> Outgoing {
        Outgoing {
            socket: socket.clone(),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ttl,
            packet: vec![8, 0, 0, 0],
        }
    }

    #[tokio::test]
    async fn a_send_error_comes_back_to_the_caller() {
        let sender = PacedSender::start(0).unwrap();
        // UDP refuses destination port 0, which ICMP sends always use.
        let err = sender.send(outgoing(&udp(), None)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn the_ttl_is_set_before_the_send() {
        let sender = PacedSender::start(0).unwrap();
        let sock = udp();
        let _ = sender.send(outgoing(&sock, Some(7))).await;
        assert_eq!(sock.ttl_v4().unwrap(), 7);
        let _ = sender.send(outgoing(&sock, None)).await;
        assert_eq!(sock.ttl_v4().unwrap(), 7, "None leaves the socket's TTL");
    }

    #[tokio::test]
    async fn a_stopped_thread_is_reported_rather_than_waited_for() {
        let (queue, requests) = mpsc::channel::<Request>();
        drop(requests);
        let orphan = PacedSender { queue };
        let err = orphan.send(outgoing(&udp(), None)).await.unwrap_err();
        assert!(err.to_string().contains("stopped"), "{err}");
    }
}
