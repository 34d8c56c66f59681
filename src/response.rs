//! The success envelope (`{"success": true, "data": ..., "meta": ...}`) and list paging meta.
//! Handlers return [`ApiResponse`]; errors go through `crate::error::AppError` instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::AppError;

#[derive(Serialize)]
struct Envelope<'a, T: Serialize, M: Serialize> {
    success: bool,
    data: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a M>,
}

/// Meta of a cursor-paged list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    pub limit: u32,
    pub next_cursor: Option<String>,
}

/// A success response: the envelope serialized straight to bytes.
pub struct ApiResponse {
    status: StatusCode,
    body: Result<Vec<u8>, AppError>,
}

impl ApiResponse {
    /// 200 with `data`.
    pub fn ok<T: Serialize>(data: &T) -> Self {
        Self::build(StatusCode::OK, data, None::<&()>)
    }

    /// 200 with `data` and `meta`.
    pub fn with_meta<T: Serialize, M: Serialize>(data: &T, meta: &M) -> Self {
        Self::build(StatusCode::OK, data, Some(meta))
    }

    /// 201 with the created resource.
    pub fn created<T: Serialize>(data: &T) -> Self {
        Self::build(StatusCode::CREATED, data, None::<&()>)
    }

    /// 200 with `data` already serialized (a JSON value) and `meta`: for lists written
    /// straight from the database rows.
    pub fn raw_with_meta<M: Serialize>(data_json: &[u8], meta: &M) -> Self {
        let mut buf = Vec::with_capacity(data_json.len() + 96);
        buf.extend_from_slice(b"{\"success\":true,\"data\":");
        buf.extend_from_slice(data_json);
        buf.extend_from_slice(b",\"meta\":");
        let body = serde_json::to_writer(&mut buf, meta)
            .map(|()| {
                buf.push(b'}');
                buf
            })
            .map_err(|e| AppError::internal(format!("serialize response: {e}")));
        Self {
            status: StatusCode::OK,
            body,
        }
    }

    /// Changes the status (e.g. 202).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn build<T: Serialize, M: Serialize>(status: StatusCode, data: &T, meta: Option<&M>) -> Self {
        let mut buf = Vec::with_capacity(128);
        let body = serde_json::to_writer(
            &mut buf,
            &Envelope {
                success: true,
                data,
                meta,
            },
        )
        .map(|()| buf)
        .map_err(|e| AppError::internal(format!("serialize response: {e}")));
        Self { status, body }
    }
}

impl IntoResponse for ApiResponse {
    fn into_response(self) -> Response {
        match self.body {
            Ok(bytes) => (
                self.status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                bytes,
            )
                .into_response(),
            Err(e) => e.into_response(),
        }
    }
}

/// Serializes a value as JSON bytes with the JSON content type, outside the envelope
/// (for `/health`, whose shape is fixed by container health checks).
pub fn plain_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => AppError::internal(format!("serialize: {e}")).into_response(),
    }
}
