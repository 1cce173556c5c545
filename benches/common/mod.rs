//! What the benchmarks share: logging a user in through the real flow (development login) and
//! reading a process's CPU time.

use std::collections::HashMap;
use std::time::Duration;

pub const REDIRECT: &str = "https://claude.ai/api/mcp/auth_callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The server's CPU time so far (user + system), from /proc/<pid>/stat.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc is readable");
    // Fields after the command name (which is in parentheses and may contain spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Follows one user through the login and returns the authorization code.
pub async fn login(http: &reqwest::Client, base: &str, client_id: &str, user: &str) -> String {
    let mut cookies: HashMap<String, String> = HashMap::new();
    let cookie_header = |cookies: &HashMap<String, String>| {
        cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let keep = |cookies: &mut HashMap<String, String>, response: &reqwest::Response| {
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            cookies.insert(name.into(), value.into());
        }
    };
    let field = |html: &str, name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap() + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    };
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256&state=s",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let page = http.get(&authorize).send().await.unwrap();
    keep(&mut cookies, &page);
    let html = page.text().await.unwrap();
    let consent = http
        .post(format!("{base}/authorize/consent"))
        .header("cookie", cookie_header(&cookies))
        .form(&[
            ("request", field(&html, "request")),
            ("csrf", field(&html, "csrf")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    let upstream = consent.headers()["location"].to_str().unwrap().to_owned();
    let query: HashMap<String, String> = url::Url::parse(&upstream)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let dev = http
        .post(format!("{base}/dev/upstream/authorize"))
        .form(&[
            ("username", user),
            ("redirect_uri", &query["redirect_uri"]),
            ("state", &query["state"]),
            ("code_challenge", &query["code_challenge"]),
        ])
        .send()
        .await
        .unwrap();
    let callback = dev.headers()["location"].to_str().unwrap().to_owned();
    let back = http
        .get(&callback)
        .header("cookie", cookie_header(&cookies))
        .send()
        .await
        .unwrap();
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}
