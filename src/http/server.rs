//! The connection loop: accepts TCP connections and serves the endpoint over HTTP/1.1 (and
//! HTTP/2 with prior knowledge) with hyper, as poem's own server does, plus what poem's server
//! leaves out: a timer, so that a client must send each request head within
//! `server.header_read_timeout_secs` (the same limit closes a kept-alive connection that sits
//! idle). A client that dribbles a request head one byte at a time, or never finishes it,
//! cannot hold a connection (and its memory) open. Body reads are bounded by the `BodyLimit`
//! middleware, which answers 408 after `server.body_read_timeout_secs`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How the connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Longest wait for a complete request head (and longest idle keep-alive).
    pub header_read_timeout: Duration,
    /// After shutdown is asked for, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
}

/// HTTP/2 pings an idle connection this often, and drops it when a ping goes unanswered for
/// as long.
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Serves `endpoint` on `listener` until `shutdown` completes; then stops accepting, lets
/// in-flight requests finish for up to `shutdown_grace`, and drops what is left.
pub async fn serve(
    listener: TcpListener,
    endpoint: BoxEndpoint<'static>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let endpoint = Arc::new(endpoint);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HTTP2_KEEP_ALIVE)
        .keep_alive_timeout(HTTP2_KEEP_ALIVE);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // Polled first, so that a signal handler behind it is installed before anything is
            // served.
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    // Small request/response exchanges: do not wait to fill a segment.
                    let _ = stream.set_nodelay(true);
                    let endpoint = endpoint.clone();
                    // poem's request (with the addresses handlers read) in, its response out.
                    let service = service_fn(move |request: hyper::Request<Incoming>| {
                        let endpoint = endpoint.clone();
                        async move {
                            let request = poem::Request::from((
                                request,
                                LocalAddr(Addr::SocketAddr(local)),
                                RemoteAddr(Addr::SocketAddr(remote)),
                                Scheme::HTTP,
                            ));
                            let response = endpoint.get_response(request).await;
                            Ok::<_, Infallible>(hyper::Response::from(response))
                        }
                    });
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    let connection = graceful.watch(connection);
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                    });
                }
                // Out of file descriptors, or a connection reset before it was accepted: the
                // listener itself is fine; wait a moment so a persistent error does not spin.
                Err(error) => {
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!(open = connections.len(), "shutdown grace period over: dropping the connections left");
        }
    }
    connections.shutdown().await;
    Ok(())
}
