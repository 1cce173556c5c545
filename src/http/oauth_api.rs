//! The form-encoded OAuth endpoints (`/token`, `/revoke`, `/introspect`) in the OpenAPI
//! document. Their handlers read the raw form themselves, so that *they* choose the RFC error
//! for every bad input (a repeated parameter, a wrong content type); this module only
//! describes them: a form body of a documented shape in, RFC JSON out.

use std::marker::PhantomData;
use std::sync::Arc;

use poem::{IntoResponse, Request, RequestBody, Response};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi, Tags,
};

use super::errors::ErrorBody;
use super::{AppState, revocation, token};

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

/// An answer the handler built, documented as `T` on success and RFC errors otherwise.
pub struct OAuthAnswer<T> {
    response: Response,
    schema: PhantomData<fn() -> T>,
}

impl<T> OAuthAnswer<T> {
    fn new(response: Response) -> Self {
        Self {
            response,
            schema: PhantomData,
        }
    }
}

impl<T: Send> IntoResponse for OAuthAnswer<T> {
    fn into_response(self) -> Response {
        self.response
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

impl<T: Type> ApiResponse for OAuthAnswer<T> {
    fn meta() -> MetaResponses {
        let error = ErrorBody::schema_ref;
        MetaResponses {
            responses: vec![
                json_response(200, "Success (`Cache-Control: no-store`).", T::schema_ref()),
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
                    503,
                    "`temporarily_unavailable`: the upstream could not be reached (token exchange).",
                    error(),
                ),
            ],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
        ErrorBody::register(registry);
    }
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

/// A token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Object)]
pub struct TokenResponseBody {
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    pub expires_in: Option<i64>,
    /// Not in token-exchange answers.
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    /// Token exchange only.
    pub issued_token_type: Option<String>,
}

/// A revocation or introspection request (RFC 7009 §2.1, RFC 7662 §2.1).
#[derive(Debug, Object)]
pub struct TokenRequestByValue {
    pub token: String,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// An introspection answer (RFC 7662 §2.2): `{"active": false}` or the token's claims.
#[derive(Debug, Object)]
pub struct Introspection {
    pub active: bool,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<String>,
    pub iss: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    pub token_type: Option<String>,
}

/// Revocation answers 200 with no body, whatever the token (RFC 7009 §2.2).
#[derive(Debug, Object)]
pub struct Revoked {}

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
    ) -> OAuthAnswer<TokenResponseBody> {
        OAuthAnswer::new(token::token(&self.state, request, &body.raw).await)
    }

    /// Revoke a refresh token (its whole family) or an access token (RFC 7009).
    #[oai(path = "/revoke", method = "post")]
    async fn revoke(
        &self,
        request: &Request,
        body: FormBody<TokenRequestByValue>,
    ) -> OAuthAnswer<Revoked> {
        OAuthAnswer::new(revocation::revoke(&self.state, request, &body.raw).await)
    }

    /// Introspect an access token (RFC 7662), for resource-server clients.
    #[oai(path = "/introspect", method = "post")]
    async fn introspect(
        &self,
        request: &Request,
        body: FormBody<TokenRequestByValue>,
    ) -> OAuthAnswer<Introspection> {
        OAuthAnswer::new(revocation::introspect(&self.state, request, &body.raw).await)
    }
}
