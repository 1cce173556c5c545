//! Client ID Metadata Documents fetched over real HTTP from a local document server, validated,
//! and cached in the test database (SQLite or PostgreSQL) under a manual clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authbridge::clients::cimd::{CimdError, ClientDocumentResolver};
use authbridge::clock::ManualClock;
use authbridge::config::ClientMetadataDocumentConfig;
use authbridge::ids::ClientId;
use authbridge::store::Store;
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::{Body, Request, Response, Server};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::helpers::TestDb;

/// A client id as the HTTP layer hands it on, parsed.
fn id(client_id: &str) -> ClientId {
    client_id.parse().expect("a client id")
}

const START: i64 = 1_800_000_000;

/// One answer of the document server.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Sent chunked, without a Content-Length.
    streamed: bool,
    delay: Duration,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: body.into(),
            streamed: false,
            delay: Duration::ZERO,
        }
    }

    fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::ok("")
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn streamed(mut self) -> Self {
        self.streamed = true;
        self
    }

    fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the document server received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    user_agent: Option<String>,
    accept: Option<String>,
}

#[derive(Default)]
struct Routes {
    replies: HashMap<String, VecDeque<Reply>>,
    received: Vec<Received>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
}

/// A web server on 127.0.0.1 that serves client metadata documents. Each path answers with the
/// replies queued for it, in order, the last one repeating (404 when none); every request is
/// recorded.
struct DocumentServer {
    port: u16,
    routes: Arc<Mutex<Routes>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl DocumentServer {
    async fn start() -> Self {
        let routes = Arc::new(Mutex::new(Routes::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = TcpAcceptor::from_std(listener).unwrap();
        let state = routes.clone();
        let endpoint = poem::endpoint::make(move |request: Request| {
            let state = state.clone();
            async move { answer(&state, &request).await }
        });
        let task = tokio::spawn(Server::new_with_acceptor(acceptor).run(endpoint));
        Self { port, routes, task }
    }

    /// The http URL of `path` on this server.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn serve(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut routes = self.routes.lock().unwrap();
        routes
            .replies
            .insert(path.to_owned(), replies.into_iter().collect());
    }

    fn received(&self) -> Vec<Received> {
        self.routes.lock().unwrap().received.clone()
    }

    fn hits(&self, path: &str) -> usize {
        self.received().iter().filter(|r| r.path == path).count()
    }

    fn max_in_flight(&self) -> usize {
        self.routes.lock().unwrap().max_in_flight
    }
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(routes: &Mutex<Routes>, request: &Request) -> Response {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = request.uri().path().to_owned();
    let reply = {
        let mut routes = routes.lock().unwrap();
        routes.received.push(Received {
            path: path.clone(),
            user_agent: header("user-agent"),
            accept: header("accept"),
        });
        routes.in_flight += 1;
        routes.max_in_flight = routes.max_in_flight.max(routes.in_flight);
        match routes.replies.get_mut(&path) {
            Some(queue) if queue.len() > 1 => queue.pop_front(),
            Some(queue) => queue.front().cloned(),
            None => None,
        }
    };
    let reply = reply.unwrap_or_else(|| Reply::status(404));
    tokio::time::sleep(reply.delay).await;
    routes.lock().unwrap().in_flight -= 1;
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    let body = if reply.streamed {
        Body::from_async_read(std::io::Cursor::new(reply.body))
    } else {
        Body::from_vec(reply.body)
    };
    response.body(body)
}

/// A resolver on a fresh database, a document server, and the clock the resolver reads.
struct Harness {
    resolver: ClientDocumentResolver,
    store: Store,
    clock: Arc<ManualClock>,
    server: DocumentServer,
    _db: TestDb,
}

/// A harness with the test switch `allow_http_loopback` on, so the server can be reached.
async fn harness() -> Harness {
    harness_with(|_| {}).await
}

async fn harness_with(adjust: impl FnOnce(&mut ClientMetadataDocumentConfig)) -> Harness {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url, 4)
        .await
        .expect("the test database opens");
    store.migrate().await.expect("the migrations apply");
    let mut config = ClientMetadataDocumentConfig {
        allow_http_loopback: true,
        ..ClientMetadataDocumentConfig::default()
    };
    adjust(&mut config);
    let clock = ManualClock::starting_at(START);
    let resolver = ClientDocumentResolver::new(config, store.clone(), clock.clone());
    Harness {
        resolver,
        store,
        clock,
        server: DocumentServer::start().await,
        _db: db,
    }
}

/// Asserts that no valid document is cached for `url` (a remembered failure may be).
async fn assert_no_document_cached(h: &Harness, url: &str) {
    let row = h.store.client_document(&id(url)).await.unwrap();
    assert!(
        row.as_ref()
            .is_none_or(|row| row.failure.is_some() && row.document.is_empty()),
        "{row:?}"
    );
}

/// A valid document for `client_id`.
fn document(client_id: &str) -> String {
    json!({
        "client_id": client_id,
        "client_name": "Example MCP client",
        "redirect_uris": ["https://app.example.com/callback", "http://127.0.0.1/callback"],
    })
    .to_string()
}

/// A valid document for `client_id`, padded to exactly `size` bytes.
fn document_of_size(client_id: &str, size: usize) -> String {
    let with = |padding: &str| {
        json!({
            "client_id": client_id,
            "redirect_uris": ["https://app.example.com/callback"],
            "padding": padding,
        })
        .to_string()
    };
    let text = with(&"x".repeat(size - with("").len()));
    assert_eq!(text.len(), size);
    text
}

#[tokio::test]
async fn valid_document_is_accepted_and_cached() {
    let h = harness().await;
    let url = h.server.url("/clients/app.json");
    let reply = Reply::ok(document(&url)).header("cache-control", "public, max-age=300");
    h.server.serve("/clients/app.json", [reply]);

    let client = h
        .resolver
        .resolve(&id(&url))
        .await
        .expect("the document is accepted");

    assert_eq!(client.client_id, url);
    assert_eq!(
        client.redirect_uris,
        [
            "https://app.example.com/callback",
            "http://127.0.0.1/callback"
        ]
    );
    assert_eq!(client.client_name.as_deref(), Some("Example MCP client"));
    assert_eq!(client.token_endpoint_auth_method, "none");
    assert_eq!(client.raw["client_name"], "Example MCP client");
    let request = &h.server.received()[0];
    let user_agent = request.user_agent.as_deref().unwrap_or_default();
    assert!(user_agent.starts_with("authbridge/"), "{user_agent}");
    assert_eq!(request.accept.as_deref(), Some("application/json"));
    let row = h
        .store
        .client_document(&id(&url))
        .await
        .unwrap()
        .expect("cached");
    assert_eq!(row.document, document(&url), "the raw text is cached");
    assert_eq!((row.fetched_at, row.expires_at), (START, START + 300));
}

#[tokio::test]
async fn opaque_client_id_is_refused_without_a_request() {
    let h = harness().await;
    for client_id in ["my-client", "http://app.example.com/client.json"] {
        let error = h.resolver.resolve(&id(client_id)).await.unwrap_err();
        assert!(
            matches!(error, CimdError::InvalidUrl),
            "{client_id}: {error:?}"
        );
    }
    assert!(h.server.received().is_empty());
}

#[tokio::test]
async fn redirect_is_refused_and_not_followed() {
    let h = harness().await;
    let url = h.server.url("/moved");
    let target = h.server.url("/target");
    h.server.serve("/target", [Reply::ok(document(&url))]);
    h.server
        .serve("/moved", [Reply::status(302).header("location", &target)]);

    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();

    assert!(matches!(error, CimdError::Redirect), "{error:?}");
    assert!(!error.is_temporary());
    assert_eq!(h.server.hits("/target"), 0, "the redirect was not followed");
}

#[tokio::test]
async fn not_found_is_refused() {
    let h = harness().await;
    let url = h.server.url("/missing.json");

    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();

    assert!(matches!(error, CimdError::Status(404)), "{error:?}");
    assert!(!error.is_temporary());
    assert!(error.to_string().contains("404"), "{error}");
    assert_no_document_cached(&h, &url).await;
}

#[tokio::test]
async fn document_of_exactly_the_size_limit_is_accepted() {
    let h = harness().await;
    let url = h.server.url("/limit.json");
    let text = document_of_size(&url, 5120);
    h.server.serve("/limit.json", [Reply::ok(text).streamed()]);

    h.resolver
        .resolve(&id(&url))
        .await
        .expect("5120 bytes are accepted");
}

#[tokio::test]
async fn oversized_document_is_refused() {
    let h = harness().await;
    let url = h.server.url("/big.json");
    let text = document_of_size(&url, 5121);
    h.server.serve("/big.json", [Reply::ok(text)]);

    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();

    assert!(matches!(error, CimdError::TooLarge), "{error:?}");
    assert_no_document_cached(&h, &url).await;
}

#[tokio::test]
async fn oversized_document_without_content_length_is_refused() {
    let h = harness().await;
    let url = h.server.url("/big.json");
    let text = document_of_size(&url, 64 * 1024);
    h.server.serve("/big.json", [Reply::ok(text).streamed()]);

    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();

    assert!(matches!(error, CimdError::TooLarge), "{error:?}");
}

#[tokio::test]
async fn client_id_mismatch_is_refused() {
    let h = harness().await;
    let url = h.server.url("/clients/app.json");
    let other = h.server.url("/clients/other.json");
    h.server
        .serve("/clients/app.json", [Reply::ok(document(&other))]);

    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();

    assert!(matches!(error, CimdError::ClientIdMismatch), "{error:?}");
    assert!(!error.is_temporary());
}

#[tokio::test]
async fn loopback_target_is_refused_when_the_test_switch_is_off() {
    let h = harness_with(|config| config.allow_http_loopback = false).await;
    let port = h.server.port;
    // https, so that the refusal is about the address and not the scheme: the IP literals are
    // refused before connecting, `localhost` by the resolver.
    for url in [
        format!("https://127.0.0.1:{port}/clients/app.json"),
        format!("https://[::1]:{port}/clients/app.json"),
        format!("https://localhost:{port}/clients/app.json"),
    ] {
        h.server
            .serve("/clients/app.json", [Reply::ok(document(&url))]);
        let error = h.resolver.resolve(&id(&url)).await.unwrap_err();
        assert!(
            matches!(error, CimdError::ForbiddenAddress),
            "{url}: {error:?}"
        );
        assert!(!error.is_temporary());
    }
    let url = h.server.url("/clients/app.json");
    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();
    assert!(
        matches!(error, CimdError::InvalidUrl),
        "plain http: {error:?}"
    );
    assert!(
        h.server.received().is_empty(),
        "no request reached the server"
    );
}

#[tokio::test]
async fn secret_based_auth_method_is_refused() {
    let h = harness().await;
    let url = h.server.url("/clients/app.json");
    let text = json!({
        "client_id": url,
        "redirect_uris": ["https://app.example.com/callback"],
        "token_endpoint_auth_method": "client_secret_basic",
    });
    h.server
        .serve("/clients/app.json", [Reply::ok(text.to_string())]);

    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();

    assert!(matches!(error, CimdError::SecretAuthMethod(_)), "{error:?}");
    assert_no_document_cached(&h, &url).await;
}

#[tokio::test]
async fn slow_server_times_out_as_a_temporary_failure() {
    let h = harness_with(|config| config.timeout_ms = 200).await;
    let url = h.server.url("/slow.json");
    let reply = Reply::ok(document(&url)).delayed(Duration::from_secs(3));
    h.server.serve("/slow.json", [reply]);

    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();

    assert!(matches!(error, CimdError::Timeout), "{error:?}");
    assert!(error.is_temporary());
}

#[tokio::test]
async fn second_resolve_within_max_age_is_served_from_the_cache() {
    let h = harness().await;
    let url = h.server.url("/clients/app.json");
    let reply = Reply::ok(document(&url)).header("cache-control", "max-age=300");
    h.server.serve("/clients/app.json", [reply]);

    let first = h.resolver.resolve(&id(&url)).await.unwrap();
    h.clock.advance(299);
    let second = h.resolver.resolve(&id(&url)).await.unwrap();

    assert_eq!(first, second);
    assert_eq!(h.server.hits("/clients/app.json"), 1);
}

#[tokio::test]
async fn expired_document_is_fetched_again() {
    let h = harness().await;
    let url = h.server.url("/clients/app.json");
    let reply = Reply::ok(document(&url)).header("cache-control", "max-age=300");
    h.server.serve("/clients/app.json", [reply]);

    h.resolver.resolve(&id(&url)).await.unwrap();
    h.clock.advance(300);
    h.resolver.resolve(&id(&url)).await.unwrap();

    assert_eq!(h.server.hits("/clients/app.json"), 2);
    let row = h.store.client_document(&id(&url)).await.unwrap().unwrap();
    assert_eq!((row.fetched_at, row.expires_at), (START + 300, START + 600));
}

#[tokio::test]
async fn cache_lifetime_is_clamped_to_the_configured_bounds() {
    let h = harness_with(|config| {
        config.min_cache_secs = 60;
        config.max_cache_secs = 3600;
    })
    .await;
    for (path, cache_control, lifetime) in [
        ("/short.json", Some("max-age=5"), 60),
        ("/long.json", Some("max-age=31536000"), 3600),
        ("/silent.json", None, 60),
    ] {
        let url = h.server.url(path);
        let mut reply = Reply::ok(document(&url));
        if let Some(value) = cache_control {
            reply = reply.header("cache-control", value);
        }
        h.server.serve(path, [reply]);
        h.resolver.resolve(&id(&url)).await.unwrap();
        let row = h.store.client_document(&id(&url)).await.unwrap().unwrap();
        assert_eq!(row.expires_at, START + lifetime, "{path}");
    }
}

#[tokio::test]
async fn no_store_document_is_not_cached() {
    let h = harness().await;
    let url = h.server.url("/clients/app.json");
    let reply = Reply::ok(document(&url)).header("cache-control", "no-store");
    h.server.serve("/clients/app.json", [reply]);

    h.resolver.resolve(&id(&url)).await.unwrap();
    h.resolver.resolve(&id(&url)).await.unwrap();

    assert_eq!(h.server.hits("/clients/app.json"), 2);
    assert_eq!(h.store.client_document(&id(&url)).await.unwrap(), None);
}

#[tokio::test]
async fn failure_is_cached_briefly() {
    let h = harness().await;
    let url = h.server.url("/clients/app.json");
    h.server.serve(
        "/clients/app.json",
        [Reply::status(500), Reply::ok(document(&url))],
    );

    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();
    assert!(matches!(error, CimdError::Status(500)), "{error:?}");
    assert!(error.is_temporary());

    // A bad URL cannot make the server fetch on every request.
    let again = h.resolver.resolve(&id(&url)).await.unwrap_err();
    assert!(again.is_temporary(), "{again:?}");
    assert_eq!(h.server.hits("/clients/app.json"), 1);

    h.clock.advance(60);
    h.resolver
        .resolve(&id(&url))
        .await
        .expect("after the failure expires, the document is fetched again");
    assert_eq!(h.server.hits("/clients/app.json"), 2);
}

#[tokio::test]
async fn private_key_jwt_is_refused_until_it_is_implemented() {
    let h = harness().await;
    let url = h.server.url("/clients/app.json");
    let text = json!({
        "client_id": url,
        "redirect_uris": ["https://app.example.com/callback"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": "https://app.example.com/jwks.json",
    });
    h.server
        .serve("/clients/app.json", [Reply::ok(text.to_string())]);

    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();

    assert!(
        matches!(error, CimdError::UnsupportedAuthMethod(_)),
        "{error:?}"
    );
    assert!(!error.is_temporary());
    assert!(error.to_string().contains("private_key_jwt"), "{error}");
}

#[tokio::test]
async fn fetches_to_one_host_are_limited_in_number_at_once() {
    let h = harness().await;
    let mut resolving = tokio::task::JoinSet::new();
    for i in 0..8 {
        let path = format!("/clients/{i}.json");
        let url = h.server.url(&path);
        let reply = Reply::ok(document(&url)).delayed(Duration::from_millis(150));
        h.server.serve(&path, [reply]);
        let resolver = h.resolver.clone();
        resolving.spawn(async move { resolver.resolve(&id(&url)).await.map(|_| ()) });
    }
    while let Some(result) = resolving.join_next().await {
        result
            .unwrap()
            .expect("every document resolves, some after waiting");
    }
    let most = h.server.max_in_flight();
    assert!(
        (1..=2).contains(&most),
        "{most} fetches to one host at once"
    );
}

#[tokio::test]
async fn failed_refetch_does_not_serve_the_expired_document() {
    let h = harness().await;
    let url = h.server.url("/clients/app.json");
    let fresh = Reply::ok(document(&url)).header("cache-control", "max-age=60");
    h.server
        .serve("/clients/app.json", [fresh, Reply::status(404)]);
    h.resolver.resolve(&id(&url)).await.unwrap();

    h.clock.advance(60);
    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();
    assert!(matches!(error, CimdError::Status(404)), "{error:?}");
    assert_no_document_cached(&h, &url).await;

    // The failure is remembered briefly, then the URL is fetched again; the expired document
    // is never served.
    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();
    assert!(error.to_string().contains("404"), "{error}");
    assert!(!error.is_temporary());
    assert_eq!(h.server.hits("/clients/app.json"), 2);
    h.clock.advance(30);
    let error = h.resolver.resolve(&id(&url)).await.unwrap_err();
    assert!(matches!(error, CimdError::Status(404)), "{error:?}");
    assert_eq!(h.server.hits("/clients/app.json"), 3);
}
