//! The admin HTTP server started by `hallmonitor serve` on `admin.listen`.
//! For now it serves the health endpoint; the quarantine UI joins it.

pub mod health;

use crate::serve::Shared;
use axum::Router;
use std::sync::Arc;
use tokio::net::TcpListener;

/// All routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", axum::routing::get(health::health))
        .with_state(shared)
}

/// Serve until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.shutdown.clone();
    let app = router(shared);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { crate::serve::stopped(&mut stop).await })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "admin server stopped");
    }
}
