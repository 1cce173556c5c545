//! The admin API's one error type and one response shape. Every operation answers
//! [`AdminResult<T>`]: its own success `T` (a JSON body, or one of the few success shapes
//! below), or an [`AdminFailure`], whose body is always `{"error", "error_description"}`.
//! Requests that fail before the handler (no valid admin token, a body, path or query that
//! does not parse) become an `AdminFailure` too, so the OpenAPI document lists exactly what is
//! served. An operation's own success shapes (a `201` that must not be cached, say) are small
//! enums beside it.

use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponses, Registry};

use super::errors::{ErrorBody, error_body};
use crate::clients::admin::AdminError;
use crate::store::StoreError;

/// Why an admin request failed.
#[derive(ApiResponse)]
pub enum AdminFailure {
    /// `invalid_request`: a body, path or query that does not parse, or a refused value.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `invalid_token`: no admin token, or an unknown one.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// `not_found`: no such client, user, grant or key.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `conflict`: the change contradicts the current state (a client id taken, a rotation
    /// already waiting for its key).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `server_error`: fixed text; the cause is in the log.
    #[oai(status = 500)]
    ServerError(Json<ErrorBody>),
}

impl AdminFailure {
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::BadRequest(error_body("invalid_request", description))
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::NotFound(error_body("not_found", description))
    }

    pub fn conflict(description: impl Into<String>) -> Self {
        Self::Conflict(error_body("conflict", description))
    }

    /// A server error whose cause the caller has logged.
    pub fn internal() -> Self {
        Self::ServerError(error_body(
            "server_error",
            "the server could not complete the request",
        ))
    }

    /// A server error; `error` goes to the log, never to the caller.
    pub fn server_error(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "admin request failed");
        Self::internal()
    }

    /// A request that failed before its handler ran.
    fn from_parse_error(error: poem::Error) -> Self {
        if error.status() == poem::http::StatusCode::UNAUTHORIZED {
            Self::Unauthorized(
                error_body("invalid_token", "a valid admin bearer token is required"),
                r#"Bearer error="invalid_token""#.into(),
            )
        } else {
            Self::bad_request(error.to_string())
        }
    }
}

impl From<AdminError> for AdminFailure {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::NotFound(_) => Self::not_found(error.to_string()),
            AdminError::Conflict(_) => Self::conflict(error.to_string()),
            AdminError::Invalid(message) => Self::bad_request(message),
            AdminError::Store(error) => Self::server_error(error),
        }
    }
}

impl From<StoreError> for AdminFailure {
    fn from(error: StoreError) -> Self {
        Self::server_error(error)
    }
}

/// What every admin operation answers: `T` on success, an [`AdminFailure`] otherwise.
pub struct AdminResult<T>(pub Result<T, AdminFailure>);

impl<T, E: Into<AdminFailure>> From<Result<T, E>> for AdminResult<T> {
    fn from(result: Result<T, E>) -> Self {
        Self(result.map_err(Into::into))
    }
}

impl<T: ApiResponse> ApiResponse for AdminResult<T> {
    const BAD_REQUEST_HANDLER: bool = true;

    fn meta() -> MetaResponses {
        let mut meta = T::meta();
        meta.responses.extend(AdminFailure::meta().responses);
        meta
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
        AdminFailure::register(registry);
    }

    fn from_parse_request_error(error: poem::Error) -> Self {
        Self(Err(AdminFailure::from_parse_error(error)))
    }
}

impl<T: IntoResponse> IntoResponse for AdminResult<T> {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(success) => success.into_response(),
            Err(failure) => failure.into_response(),
        }
    }
}

/// A success without a body.
#[derive(ApiResponse)]
pub enum NoContent {
    #[oai(status = 204)]
    Done,
}
