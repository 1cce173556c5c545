//! Connections to a gateway backend: HTTP/1.1 over TCP, kept alive and reused.
//!
//! Not reqwest: a request must end its backend connection the moment the host goes away, and a
//! pooled client cannot do that (dropping a response whose body waits for the backend's next
//! event leaves the connection open until that event comes, which on an idle SSE stream is
//! never). Here every connection's driver is a task of its own; a request holds its connection
//! in a [`Lease`] until the response body has been read to the end, when the connection goes
//! back to the idle list. A lease dropped before that (the host disconnected, a timeout) aborts
//! the task, which closes the socket, and the backend sees its request end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

/// Idle connections kept per backend; more are closed when they come back.
const MAX_IDLE: usize = 64;

pub type BackendRequest = hyper::Request<Full<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("connecting took too long")]
    ConnectTimeout,
    #[error("the request failed: {0}")]
    Request(#[from] hyper::Error),
}

/// Where a backend listens, and its idle connections.
pub struct Backend {
    address: String,
    connect_timeout: Duration,
    idle: Arc<Mutex<Vec<Connection>>>,
}

struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: AbortHandle,
}

/// A connection in use by one request. Dropped unreleased, it closes the connection.
pub struct Lease {
    connection: Option<Connection>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Lease {
    /// The response was read to its end: the connection may serve another request.
    pub fn release(mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        let mut idle = self.idle.lock().expect("the idle list is never poisoned");
        if idle.len() < MAX_IDLE && !connection.sender.is_closed() {
            idle.push(connection);
        } else {
            connection.driver.abort();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.driver.abort();
        }
    }
}

impl Backend {
    /// `address` is `host:port` as TCP connects to it.
    pub fn new(address: String, connect_timeout: Duration) -> Self {
        Self {
            address,
            connect_timeout,
            idle: Arc::default(),
        }
    }

    /// Sends `request` on an idle connection, or a new one; a reused connection that turns out
    /// to be closed by the backend (its keep-alive ran out) is replaced once.
    pub async fn send(
        &self,
        request: BackendRequest,
    ) -> Result<(hyper::Response<Incoming>, Lease), BackendError> {
        let mut request = request;
        if let Some(mut lease) = self.idle_lease().await {
            let connection = lease.connection.as_mut().expect("a fresh lease");
            match connection.sender.try_send_request(request).await {
                Ok(response) => return Ok((response, lease)),
                // Never sent: the connection was already gone; the request comes back.
                Err(mut error) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(error.into_error().into()),
                },
            }
        }
        let mut lease = self.connect().await?;
        let connection = lease.connection.as_mut().expect("a fresh lease");
        let response = connection.sender.send_request(request).await?;
        Ok((response, lease))
    }

    async fn idle_lease(&self) -> Option<Lease> {
        loop {
            let connection = self.idle.lock().expect("never poisoned").pop()?;
            let mut lease = self.lease(connection);
            let sender = &mut lease.connection.as_mut()?.sender;
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(lease);
            }
        }
    }

    async fn connect(&self) -> Result<Lease, BackendError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.address))
            .await
            .map_err(|_| BackendError::ConnectTimeout)?
            .map_err(|e| BackendError::Connect(e.to_string()))?;
        stream.set_nodelay(true).ok();
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "backend connection ended with an error");
            }
        })
        .abort_handle();
        Ok(self.lease(Connection { sender, driver }))
    }

    fn lease(&self, connection: Connection) -> Lease {
        Lease {
            connection: Some(connection),
            idle: self.idle.clone(),
        }
    }
}
