//! HTTP request metrics: a count by route template, method and status, and a latency histogram
//! by route template. The route is found by matching the path against the server's templates
//! (`/register/{client_id}`), so a raw path never becomes a label; a path no route serves counts
//! as `unmatched`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{Counter, Histogram, Key, Label, Recorder, SharedString};
use metrics_exporter_prometheus::PrometheusRecorder;

use super::METADATA;

/// The route label of a path that no route serves.
pub const UNMATCHED: &str = "unmatched";

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "other"];

/// The statuses this server answers with, each with its own pre-sized slot. Any other status
/// is still counted, through the recorder's registry (a lookup that takes a lock, for a status
/// that should not happen).
const STATUSES: [u16; 24] = [
    200, 201, 204, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 406, 408, 409, 413, 415,
    422, 429, 500, 502, 503,
];

/// The route templates of a server, matched segment by segment: `{name}` matches any one
/// non-empty segment and a final `*` any rest. A path that is a template as it stands (most
/// requests: `/token`, `/authorize`) is found by one hash lookup; the others are compared only
/// with the templates of as many segments.
#[derive(Debug, Clone)]
pub struct RouteTable {
    templates: Vec<String>,
    literal: HashMap<String, usize>,
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    index: usize,
    /// Segments after the leading `/`; `None` stands for a parameter.
    segments: Vec<Option<String>>,
    /// Ends in `/*`: any rest, of at least one segment.
    rest: bool,
}

impl Pattern {
    fn parse(index: usize, template: &str) -> Self {
        let mut parts: Vec<&str> = template.split('/').skip(1).collect();
        let rest = parts.last() == Some(&"*");
        if rest {
            parts.pop();
        }
        let segments = parts
            .into_iter()
            .map(|part| {
                let parameter = part.starts_with('{') && part.ends_with('}');
                (!parameter).then(|| part.to_owned())
            })
            .collect();
        Self {
            index,
            segments,
            rest,
        }
    }

    /// Whether `path`, of `count` segments, matches.
    fn matches(&self, path: &str, count: usize) -> bool {
        let fits = if self.rest {
            count > self.segments.len()
        } else {
            count == self.segments.len()
        };
        fits && self.segments.iter().zip(path.split('/').skip(1)).all(
            |(wanted, given)| match wanted {
                Some(literal) => literal == given,
                None => !given.is_empty(),
            },
        )
    }
}

impl RouteTable {
    pub fn new(templates: impl IntoIterator<Item = String>) -> Self {
        let mut templates: Vec<String> = templates.into_iter().collect();
        templates.sort();
        templates.dedup();
        let mut literal = HashMap::new();
        let mut patterns = Vec::new();
        for (index, template) in templates.iter().enumerate() {
            if template.contains('{') || template.ends_with("/*") {
                patterns.push(Pattern::parse(index, template));
            } else {
                literal.insert(template.clone(), index);
            }
        }
        Self {
            templates,
            literal,
            patterns,
        }
    }

    pub fn templates(&self) -> &[String] {
        &self.templates
    }

    /// The index of the template `path` matches.
    pub fn find(&self, path: &str) -> Option<usize> {
        if let Some(index) = self.literal.get(path) {
            return Some(*index);
        }
        let count = path.bytes().filter(|b| *b == b'/').count();
        self.patterns
            .iter()
            .find(|pattern| pattern.matches(path, count))
            .map(|pattern| pattern.index)
    }
}

struct RouteSeries {
    label: SharedString,
    /// By method index × status index, registered on first use so that the exposition lists
    /// only what happened.
    requests: Box<[OnceLock<Counter>]>,
    duration: OnceLock<Histogram>,
}

/// The per-request series of one server.
pub struct HttpMetrics {
    recorder: Arc<PrometheusRecorder>,
    table: RouteTable,
    /// One per template, then `unmatched`.
    routes: Vec<RouteSeries>,
}

impl HttpMetrics {
    pub(super) fn new(recorder: Arc<PrometheusRecorder>, table: RouteTable) -> Self {
        let labels = table
            .templates()
            .iter()
            .map(|t| SharedString::from(t.clone()))
            .chain([SharedString::const_str(UNMATCHED)]);
        let routes = labels
            .map(|label| RouteSeries {
                label,
                requests: (0..METHODS.len() * STATUSES.len())
                    .map(|_| OnceLock::new())
                    .collect(),
                duration: OnceLock::new(),
            })
            .collect();
        Self {
            recorder,
            table,
            routes,
        }
    }

    /// Counts one answered request.
    pub fn record(&self, path: &str, method: &str, status: u16, elapsed: Duration) {
        let route_index = self.table.find(path).unwrap_or(self.routes.len() - 1);
        let route = &self.routes[route_index];
        let method_index = METHODS
            .iter()
            .position(|m| *m == method)
            .unwrap_or(METHODS.len() - 1);
        match STATUSES.binary_search(&status) {
            Ok(status_index) => {
                let slot = &route.requests[method_index * STATUSES.len() + status_index];
                slot.get_or_init(|| self.requests_counter(route, method_index, status))
                    .increment(1);
            }
            Err(_) => self
                .requests_counter(route, method_index, status)
                .increment(1),
        }
        route
            .duration
            .get_or_init(|| {
                let key = Key::from_parts(
                    "authbridge_http_request_duration_seconds",
                    vec![Label::new("route", route.label.clone())],
                );
                self.recorder.register_histogram(&key, &METADATA)
            })
            .record(elapsed.as_secs_f64());
    }

    fn requests_counter(&self, route: &RouteSeries, method_index: usize, status: u16) -> Counter {
        let key = Key::from_parts(
            "authbridge_http_requests_total",
            vec![
                Label::new("route", route.label.clone()),
                Label::from_static_parts("method", METHODS[method_index]),
                Label::new("status", status_label(status)),
            ],
        );
        self.recorder.register_counter(&key, &METADATA)
    }
}

fn status_label(status: u16) -> SharedString {
    SharedString::from(status.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new(
            [
                "/token",
                "/register",
                "/register/{client_id}",
                "/admin/v1/clients/{client_id}/secret",
                "/docs/*",
                "/p/.well-known/oauth-authorization-server",
            ]
            .map(String::from),
        )
    }

    #[test]
    fn paths_match_their_template_and_nothing_else() {
        let table = table();
        let template = |path: &str| table.find(path).map(|i| table.templates()[i].as_str());
        let cases: [(&str, &str, Option<&str>); 10] = [
            ("a literal path", "/token", Some("/token")),
            (
                "a parameter",
                "/register/client_abc",
                Some("/register/{client_id}"),
            ),
            (
                "a parameter in the middle",
                "/admin/v1/clients/x/secret",
                Some("/admin/v1/clients/{client_id}/secret"),
            ),
            ("a nested rest", "/docs/index.css", Some("/docs/*")),
            ("an empty parameter", "/register/", None),
            ("an extra segment", "/register/a/b", None),
            ("a missing segment", "/admin/v1/clients/x", None),
            ("an unknown path", "/wp-login.php", None),
            ("a prefix of a template", "/regis", None),
            (
                "a prefixed path",
                "/p/.well-known/oauth-authorization-server",
                Some("/p/.well-known/oauth-authorization-server"),
            ),
        ];
        for (name, path, expected) in cases {
            assert_eq!(template(path), expected, "{name}");
        }
    }

    #[test]
    fn the_status_slots_are_sorted_for_the_binary_search() {
        assert!(STATUSES.windows(2).all(|w| w[0] < w[1]));
    }
}
