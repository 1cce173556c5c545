//! Prometheus metrics: off by default, on a separate listener or behind a bearer token, and
//! counting what happened, in an exposition a strict text-format parser accepts.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_with};
use crate::ownerrez_double::{Failure, Route};
use crate::scene::{REDIRECT, RESOURCE, log_in_and_redeem, resource_server, spawn_with_double_and};

const METRICS_TOKEN: &str = "prom_test_token_for_the_metrics_endpoint";

fn with_metrics_token(config: &mut authbridge::config::Config) {
    config.metrics.enabled = true;
    config.metrics.token_sha256 = Some(authbridge::tokens::opaque::hash(METRICS_TOKEN));
}

async fn scrape(app: &TestApp) -> Exposition {
    let response = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    if std::env::var_os("SHOW_METRICS").is_some() {
        eprintln!("{text}");
    }
    Exposition::parse(&text)
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let app = spawn_app().await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    assert!(app.metrics_address.is_none());
}

#[tokio::test]
async fn metrics_on_the_main_listener_require_the_bearer_token() {
    let app = spawn_app_with(TestDb::new().await, with_metrics_token).await;
    let without = app.get("/metrics").await;
    assert_eq!(without.status(), 401);
    assert!(without.headers().contains_key("www-authenticate"));
    for wrong in ["wrong-token", crate::helpers::ADMIN_TOKEN, ""] {
        let response = app
            .http
            .get(app.url("/metrics"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "token {wrong:?}");
    }
    let basic = app
        .http
        .get(app.url("/metrics"))
        .basic_auth("prometheus", Some(METRICS_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401, "only a bearer token");
    let exposition = scrape(&app).await;
    assert_eq!(
        exposition.value(
            "authbridge_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
}

#[tokio::test]
async fn metrics_on_a_separate_listener_are_served_only_there() {
    let app = spawn_app_with(TestDb::new().await, |c| {
        c.metrics.enabled = true;
        c.metrics.listen = Some("127.0.0.1:0".into());
    })
    .await;
    let address = app.metrics_address.clone().expect("a metrics listener");
    assert_eq!(
        app.get("/metrics").await.status(),
        404,
        "not on the main listener"
    );
    let response = app
        .http
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let exposition = Exposition::parse(&response.text().await.unwrap());
    assert!(exposition.value("authbridge_db_pool_max_connections", &[]) >= 1.0);
    let other = app
        .http
        .get(format!("{address}/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves nothing else"
    );
}

/// The acceptance scenario: a login, a refresh, a replay in the grace window, a reuse, a
/// failed upstream call and a refused registration, each counted.
#[tokio::test]
async fn what_happened_is_counted() {
    let (app, double) = spawn_with_double_and(with_metrics_token).await;
    let client_id = app.register_public(REDIRECT, "ChatGPT").await;
    let tokens = log_in_and_redeem(&app, &double, &client_id).await;

    // The MCP server exchanges the access token for the user's upstream token, and fails once.
    let (server_id, server_secret) = resource_server(&app, Some(RESOURCE)).await;
    let access = tokens["access_token"].as_str().unwrap();
    let exchanged = app.exchange(&server_id, &server_secret, access).await;
    assert_eq!(exchanged.status(), 200, "a token exchange");
    let refused = app
        .exchange(&server_id, &server_secret, "not-a-token")
        .await;
    assert_eq!(refused.status(), 400, "a refused token exchange");

    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.refresh(&client_id, &first).await.status(),
        200,
        "a refresh"
    );
    assert_eq!(
        app.refresh(&client_id, &first).await.status(),
        200,
        "a replay in the grace window"
    );
    app.clock
        .advance(app.tokens.refresh_token_grace_secs as i64 + 1);
    assert_eq!(
        app.refresh(&client_id, &first).await.status(),
        400,
        "reuse after the window"
    );

    // A second login whose code exchange meets an upstream outage.
    double.set_failure(Route::Token, Some(Failure::ServerError));
    let mut browser = Browser::new();
    let upstream = app
        .authorize_through_consent(
            &mut browser,
            &app.authorize_url(&client_id, REDIRECT, &[("resource", RESOURCE)]),
        )
        .await;
    let callback = double.log_in(&upstream).await;
    let back = browser
        .get(&callback.location.replace(&app.issuer, &app.address))
        .await;
    assert!(
        crate::browser::location(&back).contains("error=temporarily_unavailable"),
        "the outage is reported to the client"
    );
    double.set_failure(Route::Token, None);

    let refused = app.register(&json!({"client_name": "no redirect"})).await;
    assert_eq!(refused.status(), 400);

    let m = scrape(&app).await;
    assert_eq!(m.value("authbridge_logins_started_total", &[]), 2.0);
    assert_eq!(m.value("authbridge_logins_completed_total", &[]), 1.0);
    assert_eq!(
        m.value(
            "authbridge_logins_failed_total",
            &[("reason", "upstream_unavailable")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "authbridge_tokens_issued_total",
            &[("grant_type", "authorization_code")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "authbridge_tokens_issued_total",
            &[("grant_type", "refresh_token")]
        ),
        2.0,
        "the rotation and its replay"
    );
    assert_eq!(
        m.value("authbridge_refresh_token_grace_replays_total", &[]),
        1.0
    );
    assert_eq!(
        m.value("authbridge_refresh_token_reuse_detected_total", &[]),
        1.0
    );
    assert_eq!(
        m.value(
            "authbridge_upstream_requests_total",
            &[("endpoint", "code_exchange"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "authbridge_upstream_requests_total",
            &[("endpoint", "code_exchange"), ("outcome", "unavailable")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "authbridge_upstream_request_duration_seconds_count",
            &[("endpoint", "code_exchange")]
        ),
        2.0
    );
    assert_eq!(
        m.value("authbridge_registrations_total", &[("outcome", "created")]),
        1.0
    );
    assert_eq!(
        m.value(
            "authbridge_registrations_refused_total",
            &[("reason", "invalid_metadata")]
        ),
        1.0
    );
    assert_eq!(m.value("authbridge_dynamic_clients", &[]), 1.0);
    assert_eq!(m.value("authbridge_dynamic_clients_max", &[]), 10_000.0);
    assert!(m.value("authbridge_signing_key_age_seconds", &[]) >= 0.0);
    let pool = m.value("authbridge_db_pool_connections", &[("state", "in_use")])
        + m.value("authbridge_db_pool_connections", &[("state", "idle")]);
    assert!(
        (1.0..=4.0).contains(&pool),
        "the pool has 1 to max connections: {pool}"
    );

    // HTTP requests by route template and status, never by raw path.
    assert_eq!(
        m.value(
            "authbridge_tokens_issued_total",
            &[("grant_type", "token_exchange")]
        ),
        1.0
    );
    assert_eq!(
        m.value("authbridge_token_exchanges_total", &[("outcome", "issued")]),
        1.0
    );
    assert_eq!(
        m.value(
            "authbridge_token_exchanges_total",
            &[("outcome", "refused")]
        ),
        1.0
    );
    let token_ok = [("route", "/token"), ("method", "POST"), ("status", "200")];
    assert_eq!(m.value("authbridge_http_requests_total", &token_ok), 4.0);
    let token_refused = [("route", "/token"), ("method", "POST"), ("status", "400")];
    assert_eq!(
        m.value("authbridge_http_requests_total", &token_refused),
        2.0
    );
    assert!(
        m.value(
            "authbridge_http_request_duration_seconds_count",
            &[("route", "/token")]
        ) >= 6.0
    );
    assert!(
        m.label_values("route")
            .iter()
            .all(|route| !route.contains(&client_id) && !route.contains(&server_id)),
        "no client id in a route label: {:?}",
        m.label_values("route")
    );
}

#[tokio::test]
async fn parameterised_and_unknown_paths_count_under_their_template() {
    let app = spawn_app_with(TestDb::new().await, with_metrics_token).await;
    let response = app
        .register(&json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    let info: Value = response.json().await.unwrap();
    let client_id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let read = app
        .http
        .get(app.url(&format!("/register/{client_id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(app.get("/wp-login.php").await.status(), 404);
    assert_eq!(
        app.get(&format!("/nothing/{client_id}")).await.status(),
        404
    );
    let listed = app
        .admin(Method::GET, "/admin/v1/clients")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let again = app
        .register(&json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(
        again.status(),
        201,
        "an identical registration is deduplicated"
    );

    let m = scrape(&app).await;
    let read_labels = [
        ("route", "/register/{client_id}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(m.value("authbridge_http_requests_total", &read_labels), 1.0);
    assert_eq!(
        m.value("authbridge_registrations_total", &[("outcome", "created")]),
        1.0
    );
    assert_eq!(
        m.value(
            "authbridge_registrations_total",
            &[("outcome", "deduplicated")]
        ),
        1.0
    );
    let unmatched = [("route", "unmatched"), ("method", "GET"), ("status", "404")];
    assert_eq!(m.value("authbridge_http_requests_total", &unmatched), 2.0);
    for value in m.label_values("route") {
        assert!(
            !value.contains(client_id),
            "a raw path became a label: {value}"
        );
    }
}

#[test]
fn the_parser_refuses_what_prometheus_refuses() {
    let bad = [
        "metric{label=\"unterminated} 1",
        "1metric 1",
        "metric{label=\"a\"} not_a_number",
        "metric{label=a} 1",
        "# TYPE metric nonsense",
        "metric 1 2 3",
    ];
    for text in bad {
        assert!(Exposition::try_parse(text).is_err(), "{text}");
    }
}

/// A strict reader of the Prometheus text format 0.0.4: every line is a `# HELP`, a `# TYPE`
/// (declared once, before its samples, with a known type) or a sample with a valid name,
/// well-formed labels and a float value; a counter's name ends in `_total`.
struct Exposition {
    samples: Vec<(String, HashMap<String, String>, f64)>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        Self::try_parse(text).unwrap_or_else(|error| panic!("{error}\n---\n{text}"))
    }

    fn try_parse(text: &str) -> Result<Self, String> {
        let mut types: HashMap<String, String> = HashMap::new();
        let mut seen_samples: Vec<String> = Vec::new();
        let mut samples = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let fail = |why: &str| Err(format!("line {}: {why}: {line}", number + 1));
            if line.trim().is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let (Some(name), Some(kind), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return fail("a TYPE line is `# TYPE name type`");
                };
                if !valid_name(name) {
                    return fail("invalid metric name");
                }
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return fail("unknown type");
                }
                if kind == "counter" && !name.ends_with("_total") {
                    return fail("a counter's name must end in _total");
                }
                if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                    return fail("TYPE declared twice");
                }
                if seen_samples.iter().any(|s| family_of(s, &types) == name) {
                    return fail("TYPE after samples of its family");
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                if !rest.split(' ').next().is_some_and(valid_name) {
                    return fail("invalid metric name in HELP");
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, labels, rest) = match parse_series(line) {
                Ok(parsed) => parsed,
                Err(why) => return fail(&why),
            };
            let mut fields = rest.split(' ').filter(|f| !f.is_empty());
            let Some(value) = fields.next() else {
                return fail("no value");
            };
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                other => match other.parse::<f64>() {
                    Ok(v) => v,
                    Err(_) => return fail("the value is not a float"),
                },
            };
            if let Some(timestamp) = fields.next()
                && timestamp.parse::<i64>().is_err()
            {
                return fail("the timestamp is not an integer");
            }
            if fields.next().is_some() {
                return fail("trailing fields");
            }
            seen_samples.push(name.clone());
            samples.push((name, labels, value));
        }
        Ok(Self { samples })
    }

    /// The value of the sample with exactly these labels (0 when there is none).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: HashMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == wanted)
            .map_or(0.0, |(_, _, v)| *v)
    }

    fn label_values(&self, label: &str) -> Vec<String> {
        self.samples
            .iter()
            .filter_map(|(_, l, _)| l.get(label).cloned())
            .collect()
    }
}

/// The family a sample belongs to: itself, or a histogram's or summary's base name.
fn family_of<'a>(sample: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return base;
        }
    }
    sample
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

type Series = (String, HashMap<String, String>, String);

/// `name{label="value",...} rest`, with the label values' escapes (`\\`, `\"`, `\n`) read.
fn parse_series(line: &str) -> Result<Series, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err("invalid metric name".into());
    }
    let mut labels = HashMap::new();
    let rest = &line[name_end..];
    let Some(mut inside) = rest.strip_prefix('{') else {
        return Ok((name.to_owned(), labels, rest.to_owned()));
    };
    loop {
        if let Some(after) = inside.strip_prefix('}') {
            return Ok((name.to_owned(), labels, after.to_owned()));
        }
        let eq = inside.find('=').ok_or("a label without `=`")?;
        let label = &inside[..eq];
        if !valid_name(label) || label.contains(':') {
            return Err("invalid label name".into());
        }
        let mut chars = inside[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("a label value must be quoted".into());
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    _ => return Err("an invalid escape in a label value".into()),
                },
                '"' => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                '\n' => return Err("a raw newline in a label value".into()),
                c => value.push(c),
            }
        }
        let end = end.ok_or("an unterminated label value")?;
        if labels.insert(label.to_owned(), value).is_some() {
            return Err("a label given twice".into());
        }
        inside = &inside[end..];
        inside = inside.strip_prefix(',').unwrap_or(inside);
    }
}
