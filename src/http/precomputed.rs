//! A JSON response serialised once and served from memory, documented in OpenAPI with the
//! schema of the type it was serialised from.

use std::marker::PhantomData;

use bytes::Bytes;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::types::ToJSON;

#[derive(Clone)]
pub struct PrecomputedJson<T> {
    body: Bytes,
    cache_control: &'static str,
    schema: PhantomData<fn() -> T>,
}

impl<T> PrecomputedJson<T> {
    pub fn new(body: Bytes, cache_control: &'static str) -> Self {
        Self {
            body,
            cache_control,
            schema: PhantomData,
        }
    }
}

impl<T: Send> IntoResponse for PrecomputedJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type("application/json")
            .header("cache-control", self.cache_control)
            .body(self.body)
    }
}

impl<T: ToJSON + Send> ApiResponse for PrecomputedJson<T> {
    fn meta() -> MetaResponses {
        Json::<T>::meta()
    }

    fn register(registry: &mut Registry) {
        Json::<T>::register(registry);
    }
}
