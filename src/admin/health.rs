//! `GET /health`: the same figures as `hallmonitor status`, as JSON.
//! 200 when healthy, 503 when something needs attention, so a monitoring
//! system can poll it.

use crate::serve::Shared;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let settings = shared.settings();
    let status = crate::status::gather(&settings.config, Some(&settings.incidents)).await;
    let code = if status.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_string_pretty(&status).unwrap_or_else(|_| "{}".into());
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
