//! The accept loop: our own, over hyper's HTTP/1.1 connection, instead of `axum::serve`,
//! because a server that anonymous clients can reach needs three bounds `axum::serve` lacks
//! (issue 11, slowloris):
//!
//! - a **header-read timeout**: a connection must deliver a whole request header within
//!   `header_read_timeout` of its first byte (or of being accepted), else it is closed;
//! - an **idle timeout**: a keep-alive connection with no request for `idle_timeout` is closed
//!   (hyper's own header timeout starts when a connection goes idle, so it cannot tell a slow
//!   header from a quiet keep-alive connection — hence the watchdog below);
//! - a **connection cap**: with `max_connections` open, the loop stops accepting (further
//!   clients wait in the kernel's listen backlog) until one closes.
//!
//! With a TLS acceptor (`tls.rs`) each connection first completes its handshake, within the
//! header-read timeout, and is then served the same way.
//!
//! Graceful shutdown is as before: stop accepting, let in-flight requests finish, close idle
//! connections, return when every connection is gone.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::App;

/// Largest read buffer of one connection, and so the largest request header.
const MAX_HEADER_BUFFER: usize = 64 * 1024;

/// The transport bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Transport {
    pub fn from_settings(settings: &super::Settings) -> Transport {
        Transport {
            header_read_timeout: settings.header_read_timeout,
            idle_timeout: settings.idle_timeout,
            max_connections: settings.max_connections,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains: in-flight requests
/// finish, idle connections close, and the call returns once no connection is left.
pub async fn serve_router<A: App>(
    listener: TcpListener,
    app: A,
    transport: Transport,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = transport.max_connections.clamp(1, Semaphore::MAX_PERMITS) as u32;
    let permits = Arc::new(Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        // A permit first: while `max_connections` are open nothing is accepted, so the next
        // client waits in the listen backlog instead of costing a task and a socket.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let (app, stop) = (app.clone(), stop_rx.clone());
        match tls.clone() {
            None => tokio::spawn(serve_connection(stream, peer, app, transport, stop, permit)),
            Some(acceptor) => tokio::spawn(async move {
                let handshake = acceptor.accept(stream);
                match tokio::time::timeout(transport.header_read_timeout, handshake).await {
                    Ok(Ok(stream)) => {
                        serve_connection(stream, peer, app, transport, stop, permit).await;
                    }
                    // Plain HTTP on the TLS port ends here, as does any failed handshake.
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake not completed in time"),
                }
            }),
        };
    }
    // New clients are refused from here on; open connections are told to finish.
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it ends: having them all back means drained.
    let _ = permits.acquire_many(max).await;
    Ok(())
}

/// Out of file descriptors (EMFILE) and the like: wait rather than spin, as hyper 0.14 did.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn serve_connection<S, A: App>(
    stream: S,
    peer: SocketAddr,
    app: A,
    transport: Transport,
    mut stop: watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // What `into_make_service_with_connect_info` provided: handlers and layers read
            // the peer address from this extension.
            req.extensions_mut().insert(ConnectInfo(peer));
            let busy = BusyGuard::new(activity.clone());
            let response = app.clone().oneshot(req.map(Body::new));
            async move {
                let response = response.await;
                drop(busy);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // No hyper timer: its header timeout would also cut quiet keep-alive connections; the
    // watchdog below tells the two apart.
    // A request header may take at most 64 KiB of buffer (hyper's default is about 400 KiB):
    // with the connection cap, what unauthenticated clients can hold is bounded (431 beyond).
    builder
        .keep_alive(true)
        .header_read_timeout(None)
        .max_buf_size(MAX_HEADER_BUFFER);
    let mut conn = pin!(builder.serve_connection(io, service));

    let mut closing: Option<Instant> = None;
    let close = |conn: Pin<&mut _>, closing: &mut Option<Instant>| {
        if closing.is_none() {
            *closing = Some(Instant::now());
            hyper::server::conn::http1::Connection::graceful_shutdown(conn);
        }
    };
    if *stop.borrow() {
        close(conn.as_mut(), &mut closing);
    }
    loop {
        let deadline = activity.deadline(transport, closing);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if closing.is_none() => {
                if changed.is_err() || *stop.borrow() {
                    close(conn.as_mut(), &mut closing);
                }
            }
            _ = activity.changed.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {
                match activity.expired(transport, closing) {
                    Expired::No => {}
                    Expired::Idle => close(conn.as_mut(), &mut closing),
                    Expired::Header => {
                        tracing::debug!(%peer, "request header not received in time: closing");
                        return; // dropping the connection closes the socket
                    }
                    Expired::Closing => {
                        tracing::debug!(%peer, "connection did not finish closing: dropped");
                        return;
                    }
                }
            }
        }
    }
}

/// Where a connection is in its request cycle, as the watchdog needs it.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request; the instant the last one finished (or the connection opened).
    Idle(Instant),
    /// Part of a request header has arrived (or the connection is new); since when.
    Header(Instant),
    /// This many requests are being handled (their body and handler are bounded by the
    /// request timeout, not here).
    Busy(usize),
}

enum Expired {
    No,
    Idle,
    Header,
    /// A graceful close did not complete (e.g. a client not reading its response).
    Closing,
}

struct Activity {
    phase: Mutex<Phase>,
    /// Woken when a deadline gets earlier (the first byte of a request after idling).
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            // A new connection must send its first header within the header timeout.
            phase: Mutex::new(Phase::Header(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deadline(&self, t: Transport, closing: Option<Instant>) -> Instant {
        let phase = *self.phase();
        if let Some(since) = closing {
            return match phase {
                Phase::Busy(_) => Instant::now() + t.header_read_timeout,
                _ => since + t.header_read_timeout,
            };
        }
        match phase {
            Phase::Idle(since) => since + t.idle_timeout,
            Phase::Header(since) => since + t.header_read_timeout,
            // Checked again later; a request ending only makes the next deadline later.
            Phase::Busy(_) => Instant::now() + t.idle_timeout,
        }
    }

    fn expired(&self, t: Transport, closing: Option<Instant>) -> Expired {
        let now = Instant::now();
        let phase = *self.phase();
        if let Some(since) = closing {
            // A request in flight is drained (the request timeout bounds it); a connection
            // with none that still has not closed is dropped.
            return match phase {
                Phase::Busy(_) => Expired::No,
                _ if now >= since + t.header_read_timeout => Expired::Closing,
                _ => Expired::No,
            };
        }
        match phase {
            Phase::Idle(since) if now >= since + t.idle_timeout => Expired::Idle,
            Phase::Header(since) if now >= since + t.header_read_timeout => Expired::Header,
            _ => Expired::No,
        }
    }

    /// Bytes arrived: an idle connection has started a request header.
    fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Header(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }
}

/// Marks a connection busy while a request is being handled.
struct BusyGuard(Arc<Activity>);

impl BusyGuard {
    fn new(activity: Arc<Activity>) -> BusyGuard {
        {
            let mut phase = activity.phase();
            *phase = match *phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                _ => Phase::Busy(1),
            };
        }
        BusyGuard(activity)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let mut phase = self.0.phase();
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
    }
}

/// The connection's stream (TCP, or TLS over it), noting when bytes arrive so the watchdog
/// sees a request begin.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
