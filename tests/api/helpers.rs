//! `spawn_app()` and the test database.

use std::path::PathBuf;
use std::sync::Arc;

use authbridge::app::Application;
use authbridge::clock::{Clock, ManualClock};
use authbridge::config::{Config, Secret};
use authbridge::tokens::keyring::SigningKeys;
use sea_orm::{ConnectionTrait, Database};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The encryption key every test server uses (base64 of 32 bytes of 0x2a).
pub const TEST_ENCRYPTION_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// The admin API token every test server accepts (its hash is configured).
pub const ADMIN_TOKEN: &str = "adm_test_token_for_the_admin_api";

/// Environment variable naming a PostgreSQL server to run the tests against, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`. Each test creates its own database there.
pub const POSTGRES_ENV: &str = "TEST_POSTGRES_URL";

/// A database of one test: an SQLite file in a temporary directory, or a fresh PostgreSQL
/// database.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = match std::env::var(POSTGRES_ENV) {
            Ok(server) if !server.is_empty() => create_postgres_database(&server).await,
            _ => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("authbridge.db").display()
            ),
        };
        Self { url, dir }
    }

    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// The SQLite database file and its WAL companions.
    pub fn sqlite_files(&self) -> Vec<PathBuf> {
        let base = self.dir.path().join("authbridge.db");
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| PathBuf::from(format!("{}{suffix}", base.display())))
            .filter(|p| p.exists())
            .collect()
    }
}

async fn create_postgres_database(server: &str) -> String {
    let name = format!("ab_test_{}", random_suffix());
    let admin = Database::connect(server)
        .await
        .expect("the PostgreSQL test server answers");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    admin.close().await.ok();
    let mut url = url::Url::parse(server).expect("TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    hex::encode(bytes)
}

/// The configuration of a test server on `db`.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config {
        data_dir: db.dir.path().to_path_buf(),
        ..Config::default()
    };
    config.server.listen = "127.0.0.1:0".into();
    config.server.shutdown_grace_secs = 2;
    config.database.url = Some(db.url.clone());
    config.database.max_connections = 4;
    config.encryption.key = Some(Secret::new(TEST_ENCRYPTION_KEY));
    config.keys.refresh_interval_secs = 1;
    config.admin.tokens = vec![authbridge::config::AdminTokenConfig {
        name: "test-admin".into(),
        sha256: authbridge::tokens::opaque::hash(ADMIN_TOKEN),
    }];
    config
}

pub struct TestApp {
    pub address: String,
    pub issuer: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub keys: Arc<SigningKeys>,
    pub registry: Arc<authbridge::clients::registry::Registry>,
    /// The server's token configuration (lifetimes, grace window).
    pub tokens: authbridge::config::TokenConfig,
    pub db: TestDb,
    /// `http://address` of the separate metrics listener, when configured.
    pub metrics_address: Option<String>,
    pub housekeeping: Arc<authbridge::housekeeping::Housekeeping>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// A server on a fresh database with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestDb::new().await, |_| {}).await
}

/// A server on `db` (which may already hold data), with `adjust` applied to its configuration.
pub async fn spawn_app_with(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let clock = ManualClock::starting_at(authbridge::clock::SystemClock.now());
    spawn_app_on(db, clock, adjust).await
}

pub async fn spawn_app_on(
    db: TestDb,
    clock: Arc<ManualClock>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = test_config(&db);
    adjust(&mut config);
    let tokens = config.tokens.clone();
    let app = Application::build(config, clock.clone())
        .await
        .expect("the server starts");
    let address = format!("http://{}", app.local_addr());
    let issuer = app.issuer().as_str().to_owned();
    let keys = app.keys();
    let registry = app.registry();
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let housekeeping = app.housekeeping();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        rx.await.ok();
    }));
    TestApp {
        address,
        issuer,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        clock,
        keys,
        registry,
        tokens,
        db,
        metrics_address,
        housekeeping,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// POSTs a JSON body to /register.
    pub async fn register(&self, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/register"))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// A request to the admin API with the test admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    pub fn clock_now(&self) -> i64 {
        use authbridge::clock::Clock;
        self.clock.now()
    }

    /// Runs the client reaper once; returns how many clients it deleted.
    pub async fn reap(&self) -> usize {
        self.registry.reap().await.expect("the reaper runs")
    }

    /// Runs the token housekeeping once (what the background task does every reap interval);
    /// returns how many rows it deleted.
    pub async fn housekeeping(&self) -> u64 {
        let cutoffs = authbridge::grants::housekeeping_cutoffs(&self.tokens, self.clock_now());
        self.registry
            .store()
            .delete_expired(&cutoffs)
            .await
            .expect("housekeeping runs")
    }

    /// One run of the background housekeeping (reaper, purges, audit retention), as the server
    /// runs it every reap interval.
    pub async fn run_housekeeping(&self) -> authbridge::housekeeping::Purged {
        self.housekeeping.run_once().await
    }

    /// The newest audit entries (at most 200), newest first, through the admin API.
    pub async fn audit_entries(&self) -> Vec<serde_json::Value> {
        let response = self
            .admin(reqwest::Method::GET, "/admin/v1/audit?limit=200")
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200, "GET /admin/v1/audit");
        let page: serde_json::Value = response.json().await.expect("a JSON body");
        page["entries"].as_array().cloned().unwrap_or_default()
    }

    /// The audit entries with this action, newest first.
    pub async fn audit_entries_of(&self, action: &str) -> Vec<serde_json::Value> {
        self.audit_entries()
            .await
            .into_iter()
            .filter(|entry| entry["action"] == action)
            .collect()
    }

    /// `SELECT COUNT(*) FROM table WHERE condition` on the server's database.
    pub async fn count_rows(&self, table: &str, condition: &str) -> i64 {
        let db = Database::connect(&self.db.url).await.unwrap();
        let backend = db.get_database_backend();
        let row = db
            .query_one(sea_orm::Statement::from_string(
                backend,
                format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}"),
            ))
            .await
            .unwrap()
            .unwrap();
        let count: i64 = row.try_get("", "n").unwrap();
        db.close().await.ok();
        count
    }

    pub async fn jwks_kids(&self) -> Vec<String> {
        let jwks = self.get_json("/jwks.json").await;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Stops the server gracefully and hands back its database for a restart.
    pub async fn stop(mut self) -> TestDb {
        self.shutdown.take().unwrap().send(()).ok();
        self.server.take().unwrap().await.unwrap().unwrap();
        self.db
    }
}

/// What the server logs, captured in memory as the text format writes it (no colour).
///
/// `#[tokio::test]` runs the server's tasks on the test's own thread, so a subscriber set as
/// that thread's default sees every event the server logs and nothing from the tests running
/// beside it on other threads.
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Captures this thread's events at `level` and above until the guard is dropped.
    pub fn start(level: tracing::Level) -> (Self, tracing::subscriber::DefaultGuard) {
        // tracing caches per call site whether anyone listens. While a single dispatcher is
        // registered in the process, a call site first reached on another thread is asked of
        // that thread's default (none) and cached as "never", for this thread too: events
        // then vanish depending on which test reached a line first. A second dispatcher (a
        // process-wide one that drops everything) makes every call site ask all of them.
        static DISCARD_ELSEWHERE: std::sync::Once = std::sync::Once::new();
        DISCARD_ELSEWHERE.call_once(|| {
            let _ =
                tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::new());
        });
        let log = Self::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .finish();
        // Also takes the `log` crate's records (as the server's own set-up does), which some
        // dependencies write instead of tracing events.
        let guard = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
        (log, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
