//! The milter front-end: Postfix `smtpd_milters` / `non_smtpd_milters`
//! (protocol version 6), feeding the same scan pipeline, policy, quarantine
//! and incident log as the content filter.

use crate::config::MilterAddress;
use crate::serve::Shared;
use std::sync::Arc;

/// A bound milter socket.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

impl Listener {
    /// Bind the configured address (a stale unix socket file is replaced).
    pub async fn bind(addr: &MilterAddress) -> std::io::Result<Listener> {
        match addr {
            MilterAddress::Tcp(a) => Ok(Listener::Tcp(tokio::net::TcpListener::bind(a).await?)),
            MilterAddress::Unix(p) => {
                if p.exists() {
                    std::fs::remove_file(p)?;
                }
                Ok(Listener::Unix(
                    tokio::net::UnixListener::bind(p)?,
                    p.clone(),
                ))
            }
        }
    }

    /// What it listens on, for the start-up line.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("inet:{a}"))
                .unwrap_or_else(|_| "inet:?".into()),
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }
}

/// Serve milter sessions until shutdown.
pub async fn serve(listener: Listener, shared: Arc<Shared>) {
    let _ = (listener, shared);
    tracing::error!("the milter front-end is not built yet");
}
