//! The accept loop both dashboards serve with (the board's `edgeprobe run`
//! and the fleet's `edgeprobe central`): accepting connections under a
//! cap, hyper http1 with a header read timeout and a bounded read buffer,
//! a time limit per request, the security headers on every response, and
//! graceful shutdown.
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

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::response::{security_headers, text, Resp};
use super::Limits;

/// Read buffer per connection: request line and headers must fit in it.
/// hyper's default (~400 KiB) is a lot of RAM on a Pi times 256
/// connections; a browser's headers fit in a few KiB.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// The address of the connection a request came on (the client, or the
/// reverse proxy in front of it), in every request's extensions:
/// `req.extensions().get::<Peer>()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Accept and serve until `shutdown` resolves, then let in-flight requests
/// finish for up to `limits.shutdown_grace`.
///
/// `handler` answers one request; it runs under `limits.request_timeout`
/// (a slower one is answered 503) and every response it gives gets the
/// security headers. Body size limits are the handler's to apply, with
/// `limits.body_max`, since only it knows which routes take a body.
pub async fn serve<H, F>(
    listener: TcpListener,
    limits: Limits,
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
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES);
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
                    accept_error(e).await?;
                    continue;
                }
            },
        };
        // Small responses: don't wait for Nagle.
        let _ = stream.set_nodelay(true);
        let conn_handler = handler.clone();
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            let response = conn_handler(req);
            handle(limits.request_timeout, response)
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection ends in an error when the client resets it or
            // is too slow with its headers: the client's business, and
            // nothing the operator can act on.
            let _ = conn.await;
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

/// Decide whether an accept error ends the server. Errors about one
/// connection (reset before we took it) are skipped; running out of file
/// descriptors or memory is waited out, since connections closing will
/// free them; anything else means the listener itself is broken.
async fn accept_error(e: io::Error) -> io::Result<()> {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) {
        return Ok(());
    }
    if matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    ) {
        eprintln!("edgeprobe: web: cannot accept a connection ({e}); retrying");
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    Err(e)
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
