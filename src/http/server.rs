//! The accept loop both dashboards serve with (the board's `edgeprobe run`
//! and the fleet's `edgeprobe central`): accepting connections under a
//! cap and a share per client ([`super::clients`]), hyper http1 with a
//! header read timeout and a bounded read buffer, a time limit per
//! request, a cut for connections whose client reads nothing of its
//! answers ([`super::stall`], and `TCP_USER_TIMEOUT`), the security
//! headers on every response, and graceful shutdown.
//!
//! What a path means is the caller's business: [`serve`] takes a handler
//! from request to response and knows nothing about routes. Each request
//! carries the address of the client's connection as a [`Peer`] in its
//! extensions.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, Either};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::tls::TlsAcceptor;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::clients::ClientSlots;
use super::host::AllowedHosts;
use super::response::{security_headers, text, Resp};
use super::stall::WriteStallLimit;
use super::Limits;

/// Read buffer per connection: request line and headers must fit in it.
/// hyper's default (~400 KiB) is a lot of RAM on a Pi times 256
/// connections; a browser's headers fit in a few KiB.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// Connections beyond their client's share that are answered 429 at
/// once; more are closed unanswered.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a client at its share is asked to wait, in seconds.
const RETRY_AFTER_SECS: u32 = 10;

/// The address of the connection a request came on (the client, or the
/// reverse proxy in front of it), in every request's extensions:
/// `req.extensions().get::<Peer>()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Accept and serve until `shutdown` resolves, then let in-flight requests
/// finish for up to `limits.shutdown_grace`.
///
/// A request whose `Host` is not in `hosts` is answered 421 without
/// reaching `handler` (see [`super::host`]). With `tls`, every connection
/// is HTTPS: the handshake must end within `limits.header_read_timeout`,
/// and a client over its connection share is closed without an answer.
///
/// `handler` answers one request; it runs under `limits.request_timeout`
/// (a slower one is answered 503) and every response it gives gets the
/// security headers. Body size limits are the handler's to apply, with
/// `limits.body_max`, since only it knows which routes take a body.
pub async fn serve<H, F>(
    listener: TcpListener,
    limits: Limits,
    hosts: Arc<AllowedHosts>,
    tls: Option<TlsAcceptor>,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let handler = Arc::new(handler);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let clients = ClientSlots::new(limits.max_connections_per_client);
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES);
    let mut failing = AcceptFailures::default();
    let mut refusing = builder.clone();
    refusing.keep_alive(false);
    tokio::pin!(shutdown);

    loop {
        // Take a permit before accepting: at the cap, new connections wait
        // in the kernel's backlog instead of costing memory here.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                // Never closed: we hold the semaphore.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    drop(permit);
                    let pause = failing.failed(&e);
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        failing.accepted();
        tune(&stream, &limits);
        let Some(slot) = clients.try_take(peer.ip()) else {
            // This client holds its share: the server's slot goes back at
            // once, and it is told so while refusals are few; past that
            // the connection is just closed.
            drop(permit);
            if tls.is_some() {
                // Answering would cost a handshake: just close it.
                continue;
            }
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                let conn = graceful.watch(refusing.serve_connection(
                    WriteStallLimit::new(TokioIo::new(stream), limits.write_stall_timeout),
                    service_fn(move |_req| refuse(limits.max_connections_per_client)),
                ));
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(refusal);
                });
            }
            continue;
        };
        let conn_handler = handler.clone();
        let local = stream.local_addr().map_or(peer.ip(), |a| a.ip());
        let hosts = Arc::clone(&hosts);
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            // A Host that is not text names nothing of ours.
            let host = req.headers().get(HOST).map(|v| v.to_str().unwrap_or(""));
            let response = match host {
                Some(host) if !hosts.allows(Some(host), local) => {
                    Either::Right(future::ready(hosts.misdirected(host)))
                }
                _ => Either::Left(conn_handler(req)),
            };
            handle(limits.request_timeout, response)
        });
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            // A connection ends in an error when the client resets it, is
            // too slow with its headers or handshake, or reads nothing of
            // its answers: the client's business, and nothing the operator
            // can act on.
            let stall = limits.write_stall_timeout;
            match tls {
                None => {
                    let io = WriteStallLimit::new(TokioIo::new(stream), stall);
                    let _ = watcher.watch(builder.serve_connection(io, service)).await;
                }
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.header_read_timeout, handshake).await
                    {
                        let io = WriteStallLimit::new(TokioIo::new(stream), stall);
                        let _ = watcher.watch(builder.serve_connection(io, service)).await;
                    }
                }
            }
            drop(slot);
            drop(permit);
        });
    }

    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            eprintln!(
                "edgeprobe: web: requests still running {:?} after shutdown; dropping them",
                limits.shutdown_grace
            );
        }
    }
    Ok(())
}

/// The longest pause between accept attempts while they fail.
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);

/// Accept errors in a row. None ends the server: an error about one
/// connection (reset before it was taken, or a network error that
/// accept(2) passes on for it) is skipped at once; any other (out of
/// file descriptors or memory, say) is waited out with pauses doubling
/// from 10 ms up to [`ACCEPT_PAUSE_MAX`], since connections closing free
/// what it lacks. Logged once when accepting stops working and once when
/// it works again, never per retry.
#[derive(Debug, Default)]
struct AcceptFailures {
    in_a_row: u32,
}

impl AcceptFailures {
    /// How long to wait before accepting again after `e`.
    fn failed(&mut self, e: &io::Error) -> Duration {
        if is_about_one_connection(e) {
            return Duration::ZERO;
        }
        if self.in_a_row == 0 {
            eprintln!(
                "edgeprobe: web: cannot accept connections ({e}); the dashboard waits and \
                 retries (if this lasts, raise LimitNOFILE= or look for what holds connections)"
            );
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        accept_pause(self.in_a_row)
    }

    /// A connection was accepted: the trouble, if any, is over.
    fn accepted(&mut self) {
        if self.in_a_row > 0 {
            eprintln!(
                "edgeprobe: web: accepting connections again after {} failed attempts",
                self.in_a_row
            );
            self.in_a_row = 0;
        }
    }
}

/// The pause after the `n`th failure in a row: 10 ms, doubling, at most
/// [`ACCEPT_PAUSE_MAX`].
fn accept_pause(n: u32) -> Duration {
    let doubled = 1u32 << n.saturating_sub(1).min(10);
    (Duration::from_millis(10) * doubled).min(ACCEPT_PAUSE_MAX)
}

/// An error of the connection being accepted rather than of the
/// listener: accept(2) says to retry these at once.
fn is_about_one_connection(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(
            libc::ENETDOWN
                | libc::EPROTO
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}

/// Socket options of every accepted connection: small responses go out
/// without waiting for Nagle, and sent data left unacknowledged for the
/// write-stall limit ends the connection in the kernel too.
fn tune(stream: &TcpStream, limits: &Limits) {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(limits.write_stall_timeout));
}

/// The answer on a connection beyond its client's share.
async fn refuse(per_client: usize) -> Result<Resp, Infallible> {
    let mut resp = text(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "this address already has {per_client} connections open to this dashboard, the most \
             one client may; close some (other tabs, a script's idle connections) and try again\n"
        ),
    );
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    security_headers(resp.headers_mut());
    Ok(resp)
}

/// One request: the handler's answer within the time limit, then the
/// headers every response carries.
async fn handle(limit: Duration, response: impl Future<Output = Resp>) -> Result<Resp, Infallible> {
    let mut resp = match tokio::time::timeout(limit, response).await {
        Ok(resp) => resp,
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} s and was given up; try again\n",
                limit.as_secs()
            ),
        ),
    };
    security_headers(resp.headers_mut());
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_pause_doubling_up_to_a_second_and_never_end_the_server() {
        let pauses: Vec<u64> = (1..=9)
            .map(|n| accept_pause(n).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(accept_pause(u32::MAX), ACCEPT_PAUSE_MAX);

        let mut failing = AcceptFailures::default();
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(failing.failed(&reset), Duration::ZERO);
        assert_eq!(failing.in_a_row, 0, "one connection's error is no trouble");
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let unknown = io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(failing.failed(&emfile), Duration::from_millis(10));
        assert_eq!(failing.failed(&unknown), Duration::from_millis(20));
        failing.accepted();
        assert_eq!(
            failing.failed(&emfile),
            Duration::from_millis(10),
            "a new episode"
        );
    }

    #[tokio::test]
    async fn accepted_connections_get_the_user_timeout_and_no_nagle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"));
        let (accepted, _client) = tokio::join!(listener.accept(), client);
        let (stream, _) = accepted.expect("accept");
        let limits = Limits::default();
        tune(&stream, &limits);
        let sock = socket2::SockRef::from(&stream);
        assert_eq!(
            sock.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
            Some(limits.write_stall_timeout)
        );
        assert!(stream.nodelay().expect("TCP_NODELAY"));
    }
}
