//! What ties a login to one browser: the browser-binding cookie, the consent form's CSRF
//! token, and the remembered-consent cookie. CSRF tokens are HMAC-signed with a server key kept
//! (sealed) in the database, so every instance signs and checks alike. The remembered-consent
//! cookie is only a random handle: what it remembers lives in the database, under its hash.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::Request;

use crate::tokens::opaque;

/// The browser-binding cookie: random, HttpOnly, sent back only to us.
pub struct BrowserCookies {
    key: hmac::Key,
    secure: bool,
}

impl BrowserCookies {
    /// `key_bytes`: the server's cookie key. `secure`: the issuer is https (cookies get
    /// `Secure` and the `__Host-` prefix).
    pub fn new(key_bytes: &[u8], secure: bool) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes),
            secure,
        }
    }

    pub fn browser_cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-ab_browser"
        } else {
            "ab_browser"
        }
    }

    /// The browser's binding value, if it sent one that looks like ours.
    pub fn browser_value(&self, request: &Request) -> Option<String> {
        cookie_value(request, self.browser_cookie_name()).filter(|v| is_random_value(v))
    }

    /// A new binding value and the `Set-Cookie` header that stores it (a session cookie).
    pub fn new_browser_value(&self) -> (String, String) {
        let value = opaque::random_base64url(32);
        let header = self.cookie_header(self.browser_cookie_name(), &value, None);
        (value.clone(), header)
    }

    /// The CSRF token of a consent form: bound to the pending request, the browser, and the
    /// fingerprint of the client as the page showed it, which the token carries so that a
    /// remembered approval is bound to what the user saw, not to what the client is by the
    /// time the form comes back.
    pub fn csrf_token(
        &self,
        request_handle: &str,
        browser: &str,
        client_fingerprint: &str,
    ) -> String {
        let signature = self.sign(&csrf_message(request_handle, browser, client_fingerprint));
        format!("{client_fingerprint}.{signature}")
    }

    /// The client fingerprint a valid CSRF token carries; `None` for any other token.
    pub fn verify_csrf(&self, token: &str, request_handle: &str, browser: &str) -> Option<String> {
        let (fingerprint, signature) = token.split_once('.')?;
        let message = csrf_message(request_handle, browser, fingerprint);
        self.verify(&message, signature)
            .then(|| fingerprint.to_owned())
    }

    fn consent_cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-ab_consents"
        } else {
            "ab_consents"
        }
    }

    /// The browser's remembered-consent handle, if it sent one that looks like ours.
    pub fn consent_handle(&self, request: &Request) -> Option<String> {
        cookie_value(request, self.consent_cookie_name()).filter(|v| is_random_value(v))
    }

    /// A new remembered-consent handle (random, nothing readable in it).
    pub fn new_consent_handle(&self) -> String {
        opaque::random_base64url(32)
    }

    /// The `Set-Cookie` header that keeps `handle` for `max_age` seconds: persistent, unlike
    /// the binding cookie, and HttpOnly, so no script reads it.
    pub fn consent_handle_cookie(&self, handle: &str, max_age: u64) -> String {
        self.cookie_header(self.consent_cookie_name(), handle, Some(max_age))
    }

    fn cookie_header(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut header = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            header.push_str("; Secure");
        }
        if let Some(max_age) = max_age {
            header.push_str(&format!("; Max-Age={max_age}"));
        }
        header
    }

    fn sign(&self, message: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, message.as_bytes()))
    }

    fn verify(&self, message: &str, signature: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(signature)
            .is_ok_and(|tag| hmac::verify(&self.key, message.as_bytes(), &tag).is_ok())
    }
}

fn csrf_message(request_handle: &str, browser: &str, client_fingerprint: &str) -> String {
    format!("csrf\n{request_handle}\n{browser}\n{client_fingerprint}")
}

/// The shape of our random cookie values: 32 bytes in base64url.
fn is_random_value(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value of the cookie `name` in the request's `Cookie` headers.
fn cookie_value(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with_cookie(cookie: &str) -> Request {
        Request::builder().header("cookie", cookie).finish()
    }

    #[test]
    fn csrf_tokens_are_bound_to_request_browser_and_client_fingerprint() {
        let cookies = BrowserCookies::new(&[7; 32], false);
        let token = cookies.csrf_token("req1", "browserA", "fp1");
        assert_eq!(
            cookies.verify_csrf(&token, "req1", "browserA").as_deref(),
            Some("fp1"),
            "the fingerprint comes back"
        );
        let (_, signature) = token.split_once('.').unwrap();
        let refused = [
            ("other request", token.clone(), "req2", "browserA"),
            ("other browser", token.clone(), "req1", "browserB"),
            (
                "swapped fingerprint",
                format!("fp2.{signature}"),
                "req1",
                "browserA",
            ),
            ("no fingerprint", signature.to_owned(), "req1", "browserA"),
            ("empty token", String::new(), "req1", "browserA"),
        ];
        for (name, token, request, browser) in refused {
            assert_eq!(
                cookies.verify_csrf(&token, request, browser),
                None,
                "{name}"
            );
        }
        assert_eq!(
            BrowserCookies::new(&[8; 32], false).verify_csrf(&token, "req1", "browserA"),
            None,
            "other key"
        );
    }

    #[test]
    fn remembered_consent_handle() {
        let cookies = BrowserCookies::new(&[7; 32], true);
        let handle = cookies.new_consent_handle();
        let header = cookies.consent_handle_cookie(&handle, 60);
        assert!(
            header.starts_with("__Host-ab_consents=")
                && header.contains("HttpOnly")
                && header.contains("Secure")
                && header.contains("SameSite=Lax")
                && header.contains("Path=/")
                && header.contains("Max-Age=60"),
            "{header}"
        );
        let pair = header.split(';').next().unwrap();
        assert_eq!(
            cookies.consent_handle(&request_with_cookie(pair)),
            Some(handle)
        );
        assert_eq!(
            cookies.consent_handle(&request_with_cookie("__Host-ab_consents=short")),
            None
        );
        let plain = BrowserCookies::new(&[7; 32], false);
        assert!(
            plain
                .consent_handle_cookie("h", 1)
                .starts_with("ab_consents=")
        );
    }

    #[test]
    fn browser_value_shape() {
        let cookies = BrowserCookies::new(&[7; 32], false);
        let (value, header) = cookies.new_browser_value();
        assert!(header.starts_with("ab_browser=") && !header.contains("Secure"));
        assert_eq!(
            cookies.browser_value(&request_with_cookie(&format!("x=1; ab_browser={value}"))),
            Some(value)
        );
        assert_eq!(
            cookies.browser_value(&request_with_cookie("ab_browser=short")),
            None
        );
    }
}
