//! A test double of an MCP server behind the gateway, unaware of authbridge: it records what it
//! receives and answers the Streamable HTTP transport's three methods at `/mcp`.
//!
//! - POST: 401 for a bearer token it was told to refuse; otherwise a JSON-RPC response as
//!   `application/json` echoing what it saw, or, for the method `stream`, an SSE stream whose
//!   second event waits for [`McpBackend::release`] (to prove the gateway does not buffer).
//! - GET: 405 with `Allow` (the default), or after [`McpBackend::serve_get_stream`] an SSE
//!   stream sending one event and then holding the stream open; [`McpBackend::open_streams`]
//!   counts the streams still held (the gateway must close them when the host goes away).
//! - DELETE: 204.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use poem::http::StatusCode;
use poem::{Body, Request, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::ownerrez_double::{RecordedRequest, record};

/// The session id the backend assigns.
pub const SESSION_ID: &str = "backend-session-1";

#[derive(Default)]
struct State {
    requests: Vec<(RecordedRequest, Bytes)>,
    refused_tokens: HashSet<String>,
    refuse_every_token: bool,
    get_stream: bool,
}

pub struct McpBackend {
    address: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    release: Arc<Notify>,
    open_streams: Arc<AtomicUsize>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for McpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts an SSE stream as open until the body holding it is dropped.
struct OpenStream(Arc<AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl McpBackend {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let release = Arc::new(Notify::new());
        let open_streams = Arc::new(AtomicUsize::new(0));
        let (shared, gate, streams) = (state.clone(), release.clone(), open_streams.clone());
        let endpoint = poem::endpoint::make(move |mut request: Request| {
            let (state, gate, streams) = (shared.clone(), gate.clone(), streams.clone());
            async move {
                let body = request.take_body().into_bytes().await.unwrap_or_default();
                let recorded = record(&request, &body);
                state
                    .lock()
                    .unwrap()
                    .requests
                    .push((recorded.clone(), body.clone()));
                answer(&state, &gate, &streams, &recorded, &body)
            }
        });
        let (address, task) = serve_plain(endpoint);
        Self {
            address,
            state,
            release,
            open_streams,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.address)
    }

    /// The requests received so far with their bodies.
    pub fn requests(&self) -> Vec<(RecordedRequest, Bytes)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Answers 401 to requests bearing `token` from now on.
    pub fn refuse_token(&self, token: &str) {
        self.state
            .lock()
            .unwrap()
            .refused_tokens
            .insert(token.to_owned());
    }

    /// Answers 401 to every request from now on.
    pub fn refuse_every_token(&self) {
        self.state.lock().unwrap().refuse_every_token = true;
    }

    /// Serves an SSE stream on GET instead of 405.
    pub fn serve_get_stream(&self) {
        self.state.lock().unwrap().get_stream = true;
    }

    /// Lets the waiting second event of a POST stream go.
    pub fn release(&self) {
        self.release.notify_one();
    }

    /// GET streams whose bodies are still held.
    pub fn open_streams(&self) -> usize {
        self.open_streams.load(Ordering::SeqCst)
    }
}

/// Serves `endpoint` on 127.0.0.1 with authbridge's own connection loop: poem's server serves
/// with HTTP upgrades, and then hyper does not notice a client that goes away while a response
/// body waits, which is what these tests must see.
fn serve_plain(
    endpoint: impl poem::Endpoint + 'static,
) -> (std::net::SocketAddr, JoinHandle<std::io::Result<()>>) {
    use poem::EndpointExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let options = authbridge::http::server::ServeOptions {
        header_read_timeout: std::time::Duration::from_secs(10),
        shutdown_grace: std::time::Duration::from_secs(1),
    };
    let endpoint = endpoint.map_to_response().boxed();
    let task = tokio::spawn(authbridge::http::server::serve(
        listener,
        endpoint,
        options,
        std::future::pending(),
    ));
    (address, task)
}

fn answer(
    state: &Mutex<State>,
    gate: &Arc<Notify>,
    streams: &Arc<AtomicUsize>,
    request: &RecordedRequest,
    body: &[u8],
) -> Response {
    let bearer = request.bearer_token().unwrap_or_default().to_owned();
    {
        let state = state.lock().unwrap();
        if state.refuse_every_token || state.refused_tokens.contains(&bearer) {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("www-authenticate", "Bearer error=\"invalid_token\"")
                .body("the OwnerRez token was refused");
        }
    }
    match request.method.as_str() {
        "POST" => post(gate, request, body, &bearer),
        "GET" if state.lock().unwrap().get_stream => get_stream(streams, request),
        "GET" => Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header("allow", "POST, DELETE")
            .finish(),
        "DELETE" => Response::builder().status(StatusCode::NO_CONTENT).finish(),
        _ => Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .finish(),
    }
}

fn post(gate: &Arc<Notify>, request: &RecordedRequest, body: &[u8], bearer: &str) -> Response {
    let message: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = message["id"].clone();
    if message["method"] == "stream" {
        let gate = gate.clone();
        let events = futures_util::stream::unfold(0, move |step| {
            let (gate, id) = (gate.clone(), id.clone());
            async move {
                let event = match step {
                    0 => "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n".to_owned(),
                    1 => {
                        gate.notified().await;
                        format!("id: 2\nevent: message\ndata: {}\n\n", json!({"jsonrpc": "2.0", "id": id, "result": {}}))
                    }
                    _ => return None,
                };
                Some((Ok::<_, std::io::Error>(Bytes::from(event)), step + 1))
            }
        });
        return Response::builder()
            .content_type("text/event-stream")
            .header("mcp-session-id", SESSION_ID)
            .body(Body::from_bytes_stream(events));
    }
    let result = json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {"bearer": bearer, "protocol": request.header("mcp-protocol-version")},
    });
    Response::builder()
        .content_type("application/json")
        .header("mcp-session-id", SESSION_ID)
        .header("mcp-protocol-version", "2025-06-18")
        .header("set-cookie", "backend=1")
        .header("x-backend-secret", "internal")
        .body(result.to_string())
}

fn get_stream(streams: &Arc<AtomicUsize>, request: &RecordedRequest) -> Response {
    streams.fetch_add(1, Ordering::SeqCst);
    let guard = OpenStream(streams.clone());
    let resumed = request.header("last-event-id").unwrap_or("none").to_owned();
    let events = futures_util::stream::unfold((0, guard), move |(step, guard)| {
        let resumed = resumed.clone();
        async move {
            if step == 0 {
                let event = format!(
                    "id: g1\nevent: message\ndata: {}\n\n",
                    json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"resumed_after": resumed}})
                );
                Some((Ok::<_, std::io::Error>(Bytes::from(event)), (1, guard)))
            } else {
                // Hold the stream open (with the guard) until the reader goes away.
                std::future::pending::<()>().await;
                None
            }
        }
    });
    Response::builder()
        .content_type("text/event-stream")
        .body(Body::from_bytes_stream(events))
}
