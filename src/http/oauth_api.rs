//! The form-encoded OAuth endpoints (`/token`, `/revoke`, `/introspect`) in the OpenAPI
//! document. Their handlers read the raw form themselves, so that *they* choose the RFC error
//! for every bad input (a repeated parameter, a wrong content type); this module only
//! describes them: a form body of a documented shape in, RFC JSON out. Each success body is
//! the type the handler returns, serialised by the derive that documents it.

use std::marker::PhantomData;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::{IntoResponse, Request, RequestBody, Response};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi, Tags, Union,
};

use super::errors::{ErrorBody, OAuthFailure};
use super::{AppState, revocation, token};
use crate::grants::exchange::ExchangeResponse;
use crate::grants::introspection::Introspection;
use crate::grants::service::TokenResponse;

#[derive(Tags)]
enum OAuthTags {
    /// The OAuth endpoints clients and resource servers call (RFC 6749, 7009, 7662, 8693).
    OAuth,
}

/// A form body: documented with the schema `T`, read as raw text.
pub struct FormBody<T> {
    pub raw: String,
    schema: PhantomData<fn() -> T>,
}

const FORM: &str = "application/x-www-form-urlencoded";

impl<'a, T: Type> ApiExtractor<'a> for FormBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: FORM,
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _options: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let raw = body.take()?.into_string().await?;
        Ok(Self {
            raw,
            schema: PhantomData,
        })
    }
}

/// What a form endpoint answers on success: documented and served from the same value.
pub trait OAuthSuccess: Send {
    fn meta() -> MetaResponse;
    fn register(registry: &mut Registry);
    fn into_response(self) -> Response;
}

/// A JSON success body (RFC 6749 §5.1's headers): the schema in the document is `T`'s, and the
/// body served is `T` serialised by the same derive, so the two cannot differ.
pub struct JsonBody<T>(pub T);

impl<T: Type + ToJSON + Send> OAuthSuccess for JsonBody<T> {
    fn meta() -> MetaResponse {
        json_response(200, "Success (`Cache-Control: no-store`).", T::schema_ref())
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn into_response(self) -> Response {
        Response::builder()
            .status(StatusCode::OK)
            .content_type("application/json")
            .header("cache-control", "no-store")
            .header("pragma", "no-cache")
            .body(self.0.to_json_string())
    }
}

/// Revocation answers 200 with no body, whatever the token (RFC 7009 §2.2).
pub struct Revoked;

impl OAuthSuccess for Revoked {
    fn meta() -> MetaResponse {
        MetaResponse {
            description: "Revoked, or not a token of this client's (RFC 7009 §2.2); no body.",
            status: Some(200),
            status_range: None,
            content: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn register(_registry: &mut Registry) {}

    fn into_response(self) -> Response {
        Response::builder()
            .status(StatusCode::OK)
            .header("cache-control", "no-store")
            .finish()
    }
}

/// What a form endpoint answers: its success `S`, or an RFC error through the one mapping
/// ([`OAuthFailure`]).
pub struct OAuthAnswer<S>(pub Result<S, OAuthFailure>);

impl<S, E: Into<OAuthFailure>> From<Result<S, E>> for OAuthAnswer<S> {
    fn from(result: Result<S, E>) -> Self {
        Self(result.map_err(Into::into))
    }
}

impl<S: OAuthSuccess> IntoResponse for OAuthAnswer<S> {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(success) => success.into_response(),
            Err(failure) => failure.into_response(),
        }
    }
}

fn json_response(
    status: u16,
    description: &'static str,
    schema: poem_openapi::registry::MetaSchemaRef,
) -> MetaResponse {
    MetaResponse {
        description,
        status: Some(status),
        status_range: None,
        content: vec![MetaMediaType {
            content_type: "application/json",
            schema,
        }],
        headers: Vec::new(),
    }
}

impl<S: OAuthSuccess> ApiResponse for OAuthAnswer<S> {
    fn meta() -> MetaResponses {
        let error = ErrorBody::schema_ref;
        MetaResponses {
            responses: vec![
                S::meta(),
                json_response(
                    400,
                    "`invalid_request`, `invalid_grant`, `invalid_scope`, `invalid_target`, `unauthorized_client` or `unsupported_grant_type` (RFC 6749 §5.2).",
                    error(),
                ),
                json_response(
                    401,
                    "`invalid_client`: unknown, deleted or disabled client, or a wrong secret; hosts register again.",
                    error(),
                ),
                json_response(
                    500,
                    "`server_error`: fixed text; the cause is in the log.",
                    error(),
                ),
                json_response(
                    503,
                    "`temporarily_unavailable`: the upstream could not be reached (token exchange).",
                    error(),
                ),
            ],
        }
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
        ErrorBody::register(registry);
    }
}

/// What `/token` answers: tokens for the authorization code and refresh grants, or a token
/// exchange's upstream token.
#[derive(Debug, Union)]
#[oai(one_of)]
pub enum TokenAnswer {
    Tokens(TokenResponse),
    Exchange(ExchangeResponse),
}

/// A token request (RFC 6749 §4.1.3 and §6, RFC 8693 §2.1). Which fields apply depends on
/// `grant_type`; client credentials come in the body or as HTTP Basic.
#[derive(Debug, Object)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token` or `urn:ietf:params:oauth:grant-type:token-exchange`.
    pub grant_type: String,
    pub client_id: Option<String>,
    /// For `client_secret_post` clients.
    pub client_secret: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    /// Narrows the scope on a refresh.
    pub scope: Option<String>,
    /// RFC 8707: must be the resource the authorization is for.
    pub resource: Option<String>,
    /// Token exchange: a user's access token.
    pub subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
}

/// A revocation or introspection request (RFC 7009 §2.1, RFC 7662 §2.1).
#[derive(Debug, Object)]
pub struct TokenRequestByValue {
    pub token: String,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

pub struct OAuthApi {
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "OAuthTags::OAuth")]
impl OAuthApi {
    /// The token endpoint: authorization code with PKCE, refresh (rotating), and token
    /// exchange for resource servers.
    #[oai(path = "/token", method = "post")]
    async fn token(
        &self,
        request: &Request,
        body: FormBody<TokenRequest>,
    ) -> OAuthAnswer<JsonBody<TokenAnswer>> {
        token::token(&self.state, request, &body.raw).await.into()
    }

    /// Revoke a refresh token (its whole family) or an access token (RFC 7009).
    #[oai(path = "/revoke", method = "post")]
    async fn revoke(
        &self,
        request: &Request,
        body: FormBody<TokenRequestByValue>,
    ) -> OAuthAnswer<Revoked> {
        revocation::revoke(&self.state, request, &body.raw)
            .await
            .into()
    }

    /// Introspect an access token (RFC 7662), for resource-server clients.
    #[oai(path = "/introspect", method = "post")]
    async fn introspect(
        &self,
        request: &Request,
        body: FormBody<TokenRequestByValue>,
    ) -> OAuthAnswer<JsonBody<Introspection>> {
        revocation::introspect(&self.state, request, &body.raw)
            .await
            .into()
    }
}
