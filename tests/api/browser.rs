//! A scripted browser for login tests: keeps cookies, never follows redirects (each hop is
//! checked), and reads the consent form's hidden fields.

use std::collections::HashMap;

use crate::helpers::TestApp;

pub struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
    }

    /// The value of the cookie `name`, unless it is absent or was cleared.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name).filter(|v| !v.is_empty()).cloned()
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let response = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    pub async fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.post_form_with(url, fields, &[]).await
    }

    async fn post_form_with(
        &mut self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        self.keep_cookies(&response);
        response
    }

    /// Submits a form of a page served with `referrer_policy` that the browser shows at an
    /// address of `issuer` to `url` (of the same server), with the headers a browser adds to a
    /// same-origin form post: `Sec-Fetch-Site: same-origin` and the `Origin` the policy lets it
    /// send (see [`origin_of_own_post`]).
    pub async fn submit_from(
        &mut self,
        referrer_policy: &str,
        issuer: &str,
        url: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let origin = origin_of_own_post(referrer_policy, &origin_of(issuer));
        let headers = [
            ("sec-fetch-site", "same-origin"),
            ("origin", origin.as_str()),
        ];
        self.post_form_with(url, fields, &headers).await
    }
}

/// A page's body and the referrer policy it lives under: its `<meta name="referrer">` when it
/// has one (it overrides the header), else its `Referrer-Policy` header, else the browsers'
/// default `strict-origin-when-cross-origin`.
pub async fn page_and_referrer_policy(page: reqwest::Response) -> (String, String) {
    let header = page
        .headers()
        .get("referrer-policy")
        .map(|v| v.to_str().unwrap().to_owned());
    let html = page.text().await.unwrap();
    let meta = html
        .split_once(r#"<meta name="referrer" content=""#)
        .map(|(_, rest)| rest[..rest.find('"').unwrap()].to_owned());
    let policy = meta
        .or(header)
        .unwrap_or_else(|| "strict-origin-when-cross-origin".to_owned());
    (html, policy)
}

/// The `Origin` header of a form post from a page of `origin` to `origin`, as the Fetch
/// standard serializes it (Chromium and Firefox follow it): `null` when the page's referrer
/// policy is `no-referrer`, the origin itself under every other policy.
pub fn origin_of_own_post(referrer_policy: &str, origin: &str) -> String {
    match referrer_policy {
        "no-referrer" => "null".to_owned(),
        _ => origin.to_owned(),
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> String {
    url::Url::parse(url).unwrap().origin().ascii_serialization()
}

/// The `Location` of a redirect (asserting it is one).
pub fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 302, "expected a redirect");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The `Location` of a 303 See Other, the answer to the consent form (asserting it is one).
pub fn see_other(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "expected a 303 See Other");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The value of the hidden input `name` in a page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in the page"))
        + marker.len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end]
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&amp;", "&")
}

/// RFC 7636 Appendix B: the S256 challenge of the verifier
/// `dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk`.
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

// The flows below are `TestApp` methods now (tests/api/endpoints.rs); these thin wrappers stay
// for tests written against them, until none is left.

/// Registers a public client with one redirect URI; returns its client_id.
#[allow(dead_code)]
pub async fn register_public_client(app: &TestApp, redirect_uri: &str, name: &str) -> String {
    app.register_public(redirect_uri, name).await
}

/// An authorization URL with PKCE (S256), `state=st-1` and any `extra` parameters.
#[allow(dead_code)]
pub fn authorize_url(
    app: &TestApp,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    app.authorize_url(client_id, redirect_uri, extra)
}

/// Opens the authorization URL and approves the consent page; returns the redirect to the
/// upstream.
#[allow(dead_code)]
pub async fn approve(browser: &mut Browser, app: &TestApp, authorize: &str) -> String {
    app.authorize_through_consent(browser, authorize).await
}

/// On the dev upstream: types `user` and submits; returns the redirect to our callback.
pub async fn dev_login(browser: &mut Browser, app: &TestApp, upstream: &str, user: &str) -> String {
    let page = browser
        .get(&upstream.replace(&app.issuer, &app.address))
        .await;
    assert_eq!(page.status(), 200, "the dev login page");
    let html = page.text().await.unwrap();
    let mut fields: Vec<(String, String)> = vec![("username".into(), user.into())];
    for name in ["redirect_uri", "state", "code_challenge"] {
        if html.contains(&format!("name=\"{name}\"")) {
            fields.push((name.into(), hidden_field(&html, name)));
        }
    }
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = browser
        .post_form(&app.url("/dev/upstream/authorize"), &borrowed)
        .await;
    location(&response)
}

/// A whole login with the dev provider; returns the final redirect to the client.
#[allow(dead_code)]
pub async fn login_with_dev(
    app: &TestApp,
    browser: &mut Browser,
    client_id: &str,
    redirect_uri: &str,
    user: &str,
) -> String {
    app.log_in_with_dev(browser, client_id, redirect_uri, user)
        .await
}

/// The RFC 7636 Appendix B verifier of [`CHALLENGE`].
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Redeems a code issued to a public client at `/token`.
#[allow(dead_code)]
pub async fn redeem_code(
    app: &TestApp,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
) -> reqwest::Response {
    app.redeem_code(client_id, code, redirect_uri).await
}
