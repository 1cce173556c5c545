//! What ties a login to one browser: the browser-binding cookie, the consent form's CSRF
//! token, and the remembered-approval cookie. Values are HMAC-signed with a server key kept
//! (sealed) in the database, so every instance signs and checks alike.

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
        cookie_value(request, self.browser_cookie_name()).filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    }

    /// A new binding value and the `Set-Cookie` header that stores it (a session cookie).
    pub fn new_browser_value(&self) -> (String, String) {
        let value = opaque::random_base64url(32);
        let header = self.cookie_header(self.browser_cookie_name(), &value, None);
        (value.clone(), header)
    }

    /// The CSRF token of a consent form: bound to the pending request and the browser.
    pub fn csrf_token(&self, request_handle: &str, browser: &str) -> String {
        self.sign(&format!("csrf\n{request_handle}\n{browser}"))
    }

    pub fn verify_csrf(&self, token: &str, request_handle: &str, browser: &str) -> bool {
        self.verify(&format!("csrf\n{request_handle}\n{browser}"), token)
    }

    fn consent_cookie_name(&self, client_id: &str) -> String {
        let prefix = if self.secure { "__Host-" } else { "" };
        format!("{prefix}ab_consent_{}", &opaque::hash(client_id)[..16])
    }

    /// The `Set-Cookie` header remembering an approval for this browser and client.
    pub fn remember_consent(
        &self,
        client_id: &str,
        browser: &str,
        expires_at: i64,
        max_age: u64,
    ) -> String {
        let signature = self.sign(&format!("consent\n{client_id}\n{browser}\n{expires_at}"));
        self.cookie_header(
            &self.consent_cookie_name(client_id),
            &format!("{expires_at}.{signature}"),
            Some(max_age),
        )
    }

    /// Whether this browser approved this client before, and the approval is still good.
    pub fn has_remembered_consent(
        &self,
        request: &Request,
        client_id: &str,
        browser: &str,
        now: i64,
    ) -> bool {
        let Some(value) = cookie_value(request, &self.consent_cookie_name(client_id)) else {
            return false;
        };
        let Some((expires_at, signature)) = value.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires_at.parse::<i64>() else {
            return false;
        };
        expires > now
            && self.verify(
                &format!("consent\n{client_id}\n{browser}\n{expires}"),
                signature,
            )
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
    fn csrf_tokens_are_bound_to_request_and_browser() {
        let cookies = BrowserCookies::new(&[7; 32], false);
        let token = cookies.csrf_token("req1", "browserA");
        assert!(cookies.verify_csrf(&token, "req1", "browserA"));
        assert!(
            !cookies.verify_csrf(&token, "req2", "browserA"),
            "other request"
        );
        assert!(
            !cookies.verify_csrf(&token, "req1", "browserB"),
            "other browser"
        );
        assert!(
            !BrowserCookies::new(&[8; 32], false).verify_csrf(&token, "req1", "browserA"),
            "other key"
        );
        assert!(!cookies.verify_csrf("", "req1", "browserA"));
    }

    #[test]
    fn remembered_consent() {
        let cookies = BrowserCookies::new(&[7; 32], true);
        let header = cookies.remember_consent("client_a", "browserA", 1000, 60);
        assert!(
            header.contains("HttpOnly")
                && header.contains("Secure")
                && header.contains("SameSite=Lax")
                && header.starts_with("__Host-")
        );
        let pair = header.split(';').next().unwrap();
        let request = request_with_cookie(pair);
        assert!(cookies.has_remembered_consent(&request, "client_a", "browserA", 999));
        assert!(
            !cookies.has_remembered_consent(&request, "client_a", "browserA", 1000),
            "expired"
        );
        assert!(
            !cookies.has_remembered_consent(&request, "client_a", "browserB", 999),
            "other browser"
        );
        assert!(
            !cookies.has_remembered_consent(&request, "client_b", "browserA", 999),
            "other client"
        );
        let (name, value) = pair.split_once('=').unwrap();
        let forged = request_with_cookie(&format!("{name}={}", value.replace("1000.", "9999.")));
        assert!(
            !cookies.has_remembered_consent(&forged, "client_a", "browserA", 2000),
            "extended expiry"
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
