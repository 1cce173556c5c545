//! JSON error bodies (`{"error", "error_description"}`): the one mapping from an RFC error
//! ([`OAuthError`]) to a JSON response ([`OAuthFailure`]), and the answer to every failure the
//! framework raises before or instead of a handler: unknown paths, wrong methods, malformed
//! bodies, wrong content types, oversized bodies. Server errors show fixed text; their cause
//! goes to the log only. (Errors of `/authorize` that go back to the client are redirects:
//! `http::authorize::error_redirect`.)

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::Object;
use serde::Serialize;

use crate::oauth::error::{ErrorCode, MAX_DESCRIPTION_CHARS, OAuthError, to_error_description};

/// The error body of RFC 6749 §5.2, used by every JSON endpoint.
#[derive(Debug, Clone, Object, Serialize)]
pub struct ErrorBody {
    /// An error code such as `invalid_request`.
    pub error: String,
    /// A human-readable explanation.
    pub error_description: String,
}

impl ErrorBody {
    /// A body whose description keeps to RFC 6749 §5.2's character set: descriptions quote
    /// what the client sent (a redirect URI, a field), which may hold anything.
    pub fn new(error: &str, description: impl Into<String>) -> Self {
        Self {
            error: error.to_owned(),
            error_description: to_error_description(&description.into(), MAX_DESCRIPTION_CHARS),
        }
    }
}

impl From<&OAuthError> for ErrorBody {
    fn from(error: &OAuthError) -> Self {
        Self {
            error: error.code.as_str().to_owned(),
            error_description: error.description.clone(),
        }
    }
}

/// An RFC error answered as JSON: the status its code has (or 429 when rate-limited), never
/// cached, with the challenge its code calls for.
#[derive(Debug)]
pub struct OAuthFailure {
    pub error: OAuthError,
    /// Seconds, for a rate-limited request (answered 429 with `Retry-After`).
    pub retry_after: Option<u64>,
}

impl From<OAuthError> for OAuthFailure {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl OAuthFailure {
    /// `temporarily_unavailable` for a source or server over its limit: 429 with `Retry-After`.
    pub fn rate_limited(description: impl std::fmt::Display, retry_after: u64) -> Self {
        Self {
            error: OAuthError::new(ErrorCode::TemporarilyUnavailable, description),
            retry_after: Some(retry_after),
        }
    }

    /// A `server_error` with fixed text; `cause` goes to the log, never to the caller.
    pub fn server_error(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        OAuthError::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
        .into()
    }

    pub fn status(&self) -> StatusCode {
        match self.retry_after {
            Some(_) => StatusCode::TOO_MANY_REQUESTS,
            None => StatusCode::from_u16(self.error.code.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The `WWW-Authenticate` challenge a 401 or 403 must carry.
    pub fn challenge(&self) -> Option<&'static str> {
        match self.error.code {
            // RFC 6749 §5.2: a 401 names the scheme the client used, and HTTP Basic is the only
            // HTTP authentication scheme a client can use at this server.
            ErrorCode::InvalidClient => Some(r#"Basic realm="authbridge""#),
            // RFC 6750 §3.
            ErrorCode::InvalidToken => Some(r#"Bearer error="invalid_token""#),
            ErrorCode::InsufficientScope => Some(r#"Bearer error="insufficient_scope""#),
            _ => None,
        }
    }
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        let mut builder = Response::builder()
            .status(self.status())
            .content_type("application/json")
            .header("cache-control", "no-store")
            .header("pragma", "no-cache");
        if let Some(challenge) = self.challenge() {
            builder = builder.header("www-authenticate", challenge);
        }
        if let Some(seconds) = self.retry_after {
            builder = builder.header("retry-after", seconds.to_string());
        }
        let body = ErrorBody::from(&self.error);
        builder.body(serde_json::to_vec(&body).expect("an error body serialises"))
    }
}

/// An error body for a poem-openapi response.
pub fn error_body(
    error: &str,
    description: impl Into<String>,
) -> poem_openapi::payload::Json<ErrorBody> {
    poem_openapi::payload::Json(ErrorBody::new(error, description))
}

/// A JSON error response with `Cache-Control: no-store`.
pub fn json_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    let body = ErrorBody::new(error, description);
    Response::builder()
        .status(status)
        .content_type("application/json")
        .header("cache-control", "no-store")
        .body(serde_json::to_vec(&body).expect("an error body serialises"))
}

/// Marks an error that carries a complete answer (an extractor's page or redirect, such as the
/// sign-in redirect of a page asked for without a session): it is sent as it is.
#[derive(Debug, Clone, Copy)]
pub struct AnswerAsIs;

/// An error that answers with `response` unchanged.
pub fn answer_as_is(response: Response) -> poem::Error {
    let mut error = poem::Error::from_response(response);
    error.set_data(AnswerAsIs);
    error
}

/// Turns a framework error into a JSON error response.
pub fn framework_error_response(error: poem::Error) -> Response {
    if error.data::<AnswerAsIs>().is_some() {
        return error.into_response();
    }
    let status = error.status();
    match status {
        StatusCode::NOT_FOUND => json_error(status, "not_found", "there is no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => json_error(
            status,
            "method_not_allowed",
            "this endpoint does not accept that HTTP method",
        ),
        // Missing or unknown bearer token (the admin API's security scheme).
        StatusCode::UNAUTHORIZED => {
            let mut response =
                json_error(status, "invalid_token", "a valid bearer token is required");
            response.headers_mut().insert(
                "www-authenticate",
                poem::http::HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
            response
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            json_error(status, "invalid_request", "the request body is too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            json_error(status, "invalid_request", error.to_string())
        }
        status if status.is_server_error() => {
            tracing::error!(%status, error = %crate::telemetry::untrusted(&error), "request failed");
            json_error(
                status,
                "server_error",
                "the server could not complete the request",
            )
        }
        status if status.is_client_error() => {
            json_error(status, "invalid_request", error.to_string())
        }
        // A non-error status carried by an error (rare: redirects raised as errors).
        _ => error.into_response(),
    }
}

/// Middleware that answers every framework error with [`framework_error_response`].
pub struct JsonErrors;

impl<E: Endpoint> Middleware<E> for JsonErrors {
    type Output = JsonErrorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        JsonErrorsEndpoint { inner }
    }
}

pub struct JsonErrorsEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for JsonErrorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        Ok(match self.inner.call(request).await {
            Ok(output) => output.into_response(),
            Err(error) => framework_error_response(error),
        })
    }
}
