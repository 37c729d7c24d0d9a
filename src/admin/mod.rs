//! The admin web UI and health endpoint, started by `hallmonitor serve` on
//! `admin.listen`: server-rendered HTML that works without JavaScript.
//!
//! | Route | Who |
//! |---|---|
//! | `GET /login`, `POST /login`, `POST /logout` | anyone / signed in |
//! | `GET /` held list (filters, counts per category) | admin, head, dsl, chair (per item) |
//! | `GET /message/{id}`; `POST …/release`, `POST …/delete` | per item, see `crate::access` |
//! | `GET`/`POST /message/{id}/attachment/{n}` | admin |
//! | `GET /audit` | admin |
//! | `GET /incidents` | admin, head, dsl, chair (per item) |
//! | `GET /summaries`, `/summaries/{id}` | everyone signed in |
//! | `GET /health`, `GET /static/style.css` | anyone |
//!
//! Security: see [`security`] (headers, cross-site check, ids) and
//! [`session`] (cookies, CSRF tokens, idle expiry, login rate limit).

mod attachment;
mod auth;
pub mod health;
mod held;
mod html;
mod message;
mod pages;
pub mod security;
pub mod session;

use crate::serve::Shared;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Largest request body accepted (forms are small).
const MAX_BODY: usize = 64 * 1024;

const STYLE: &str = include_str!("static/style.css");

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

async fn not_found() -> Response {
    html::error(StatusCode::NOT_FOUND, None, "Not found.")
}

/// All routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/static/style.css", get(style))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", axum::routing::post(auth::logout))
        .route("/", get(held::list))
        .route("/message/{id}", get(message::show))
        .route(
            "/message/{id}/release",
            axum::routing::post(message::release),
        )
        .route("/message/{id}/delete", axum::routing::post(message::delete))
        .route(
            "/message/{id}/attachment/{n}",
            get(attachment::warn).post(attachment::download),
        )
        .route("/audit", get(pages::audit))
        .route("/incidents", get(pages::incidents))
        .route("/summaries", get(pages::summaries))
        .route("/summaries/{id}", get(pages::summary))
        .route("/summaries/{id}/chart.png", get(pages::summary_chart))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(security::layer))
        .with_state(shared)
}

/// Serve until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.shutdown.clone();
    let app = router(shared).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { crate::serve::stopped(&mut stop).await })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "admin server stopped");
    }
}
