//! Forwarding one MCP request to the backend with the user's upstream token, and its answer
//! back to the host, streamed chunk by chunk as the backend writes it (an SSE event reaches the
//! host as soon as the backend flushes it; the backend is read only as fast as the host reads,
//! so a slow host slows the backend instead of filling memory). Dropping the host's response
//! (the host disconnected) drops the backend's, which closes that backend request.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::{Body, Response};

use super::Gateway;
use super::authenticate::Caller;
use super::backend::Lease;
use super::resource::GatewayResource;
use super::respond::{Refusal, error, refuse};
use crate::grants::upstream_refresh::{UpstreamAccess, UpstreamTokenError};

/// What one proxied request came to: the host's answer and how long the backend took to
/// answer (its last attempt, up to the response head).
pub struct Forwarded {
    pub response: Response,
    pub backend: Option<Duration>,
}

/// A request as it will be sent (and, after a refused upstream token, sent again).
pub struct Outgoing<'a> {
    pub method: Method,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

/// The backend's answer (its body still to read, on the connection the lease holds).
struct Answer {
    response: hyper::Response<Incoming>,
    lease: Lease,
}

impl Answer {
    fn status(&self) -> StatusCode {
        self.response.status()
    }
}

enum Sent {
    Answer(Answer, Duration),
    Failed(Response, Option<Duration>),
}

impl Gateway {
    /// Sends `outgoing` with the caller's upstream token; when the backend answers 401 (its
    /// upstream refused the token), refreshes the token once and sends once more.
    pub(super) async fn forward(
        &self,
        resource: &GatewayResource,
        caller: &Caller,
        outgoing: Outgoing<'_>,
    ) -> Forwarded {
        let Some(sealed) = caller.sealed.as_deref() else {
            return failed(refuse(
                resource,
                Refusal::InvalidToken("the authorization has been revoked"),
            ));
        };
        let access = match self.keeper.usable(&caller.grant_id, sealed).await {
            Ok(access) => access,
            Err(error) => return failed(self.token_failure(resource, caller, error)),
        };
        let (answer, latency) = match self.send(resource, caller, &outgoing, &access).await {
            Sent::Answer(answer, latency) => (answer, latency),
            Sent::Failed(response, latency) => {
                return Forwarded {
                    response,
                    backend: latency,
                };
            }
        };
        if answer.status() != StatusCode::UNAUTHORIZED {
            return Forwarded {
                response: relay(resource, answer),
                backend: Some(latency),
            };
        }
        drop(answer);
        tracing::info!(grant_id = %caller.grant_id, "the backend refused the upstream token: refreshing it once");
        let access = match self.keeper.replace_refused(&caller.grant_id, access).await {
            Ok(access) => access,
            Err(error) => return failed(self.token_failure(resource, caller, error)),
        };
        match self.send(resource, caller, &outgoing, &access).await {
            Sent::Answer(answer, latency) if answer.status() == StatusCode::UNAUTHORIZED => {
                tracing::warn!(grant_id = %caller.grant_id, "the backend refused a freshly refreshed upstream token");
                Forwarded {
                    response: error(
                        StatusCode::BAD_GATEWAY,
                        "bad_gateway",
                        "the MCP server refused the user's upstream token",
                    ),
                    backend: Some(latency),
                }
            }
            Sent::Answer(answer, latency) => Forwarded {
                response: relay(resource, answer),
                backend: Some(latency),
            },
            Sent::Failed(response, latency) => Forwarded {
                response,
                backend: latency,
            },
        }
    }

    async fn send(
        &self,
        resource: &GatewayResource,
        caller: &Caller,
        outgoing: &Outgoing<'_>,
        access: &UpstreamAccess,
    ) -> Sent {
        let mut headers = HeaderMap::new();
        for name in &resource.request_headers {
            for value in outgoing.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let bearer = format!("Bearer {}", access.tokens.access_token);
        let Ok(mut bearer) = HeaderValue::from_str(&bearer) else {
            return Sent::Failed(
                error(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    "the upstream token cannot be sent in a header",
                ),
                None,
            );
        };
        bearer.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, bearer);
        for (name, value) in [
            (&resource.subject_header, caller.subject()),
            (&resource.client_id_header, caller.client_id()),
        ] {
            if let (Some(name), Ok(value)) = (name, HeaderValue::from_str(value)) {
                headers.insert(name.clone(), value);
            }
        }
        headers.insert(header::HOST, resource.backend_host.clone());
        let body = if outgoing.method == Method::POST {
            outgoing.body.clone()
        } else {
            Bytes::new()
        };
        let mut request = hyper::Request::new(Full::new(body));
        *request.method_mut() = outgoing.method.clone();
        *request.uri_mut() = resource.backend_target.clone();
        *request.headers_mut() = headers;
        let started = Instant::now();
        match tokio::time::timeout(resource.response_timeout, resource.backend.send(request)).await
        {
            Ok(Ok((response, lease))) => {
                Sent::Answer(Answer { response, lease }, started.elapsed())
            }
            Ok(Err(cause)) => {
                tracing::warn!(resource = %resource.uri, error = %cause, "the MCP server could not be reached");
                Sent::Failed(
                    error(
                        StatusCode::BAD_GATEWAY,
                        "bad_gateway",
                        "the MCP server could not be reached",
                    ),
                    Some(started.elapsed()),
                )
            }
            Err(_) => Sent::Failed(
                error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "gateway_timeout",
                    "the MCP server did not answer in time",
                ),
                Some(started.elapsed()),
            ),
        }
    }

    /// The host's answer when no usable upstream token could be had.
    fn token_failure(
        &self,
        resource: &GatewayResource,
        caller: &Caller,
        failure: UpstreamTokenError,
    ) -> Response {
        match failure {
            UpstreamTokenError::GrantRevoked
            | UpstreamTokenError::AuthorizationGone
            | UpstreamTokenError::NotRefreshable => refuse(
                resource,
                Refusal::InvalidToken("the user must sign in again"),
            ),
            UpstreamTokenError::Unavailable => {
                let mut response = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the upstream is unavailable; retry shortly",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
            UpstreamTokenError::Unreadable(cause) => {
                tracing::error!(grant_id = %caller.grant_id, %cause, "could not open the upstream tokens");
                server_error()
            }
            UpstreamTokenError::Store(cause) => {
                tracing::error!(error = %cause, "gateway storage failure");
                server_error()
            }
        }
    }
}

pub fn server_error() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the server could not complete the request",
    )
}

fn failed(response: Response) -> Forwarded {
    Forwarded {
        response,
        backend: None,
    }
}

/// The backend's answer as the host's: its status, the allowed headers, and its body streamed.
fn relay(resource: &GatewayResource, answer: Answer) -> Response {
    let Answer {
        response: backend,
        lease,
    } = answer;
    let (parts, body) = backend.into_parts();
    let mut response = Response::builder().status(parts.status).finish();
    let headers = response.headers_mut();
    for name in &resource.response_headers {
        for value in parts.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let is_stream = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().starts_with("text/event-stream"));
    if is_stream {
        // Nothing in between may buffer or compress an event stream.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    response.set_body(Body::from_bytes_stream(chunks(body, lease)));
    response
}

/// The body's data as it arrives. Read to the end, the connection is released for reuse;
/// dropped before (the host went away), the lease closes it.
fn chunks(
    body: Incoming,
    lease: Lease,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some((body, lease)), |state| async move {
        let (mut body, lease) = state?;
        loop {
            match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => return Some((Ok(data), Some((body, lease)))),
                    // Trailers are not relayed.
                    Err(_) => continue,
                },
                None => {
                    lease.release();
                    return None;
                }
                Some(Err(cause)) => return Some((Err(std::io::Error::other(cause)), None)),
            }
        }
    })
}
