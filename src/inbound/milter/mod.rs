//! The milter front-end: Postfix `smtpd_milters` / `non_smtpd_milters`
//! (protocol version 6), feeding the same scan pipeline, policy, quarantine
//! and incident log as the content filter.
//!
//! The framing is miltr-server's (MIT); [`session`] implements its callbacks,
//! [`envelope`] turns Postfix's macros into the scanner's envelope,
//! [`edits`] rebuilds the message and computes the header changes, and
//! [`decide`] scans and acts through [`crate::disposition`].
//!
//! Each connection is one task; the scan runs on the blocking pool, so a
//! slow message never holds a tokio worker. On shutdown we stop accepting;
//! a connection between messages is closed at once (Postfix applies
//! `milter_default_action = tempfail` to anything later in that SMTP
//! session), and one in the middle of a message may finish it within
//! `relay.shutdown_grace_secs`. A message cut off there was never accepted.

pub mod conn;
pub mod decide;
pub mod edits;
pub mod envelope;
pub mod session;

use crate::config::MilterAddress;
use crate::serve::Shared;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};
/// A bound milter socket.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

impl Listener {
    /// Bind the configured address (a stale unix socket file is replaced,
    /// and a new one gets the permissions `mode`).
    pub async fn bind(addr: &MilterAddress, mode: u32) -> std::io::Result<Listener> {
        match addr {
            MilterAddress::Tcp(a) => Ok(Listener::Tcp(tokio::net::TcpListener::bind(a).await?)),
            MilterAddress::Unix(p) => {
                if p.exists() {
                    std::fs::remove_file(p)?;
                }
                let listener = tokio::net::UnixListener::bind(p)?;
                // Our umask (systemd's UMask=0077) would leave it 0600, and
                // Postfix's smtpd (user postfix) could not connect.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
                Ok(Listener::Unix(listener, p.clone()))
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
    let mut sessions = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    let mut next_id: u64 = 0;
    loop {
        tokio::select! {
            accepted = accept(&listener) => match accepted {
                Ok((stream, peer)) => {
                    next_id += 1;
                    let span = info_span!("milter", conn = next_id, peer = %peer);
                    sessions.spawn(handle(stream, shared.clone()).instrument(span));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "milter accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            () = crate::serve::stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    let grace = shared.settings().relay.shutdown_grace();
    info!(sessions = sessions.len(), "milter shutting down");
    let drained = tokio::time::timeout(grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            sessions = sessions.len(),
            "grace period over; unfinished milter messages are deferred by Postfix"
        );
        sessions.abort_all();
    }
}

/// A stream from either kind of listener.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn accept(listener: &Listener) -> std::io::Result<(Box<dyn Stream>, String)> {
    match listener {
        Listener::Tcp(l) => {
            let (s, peer) = l.accept().await?;
            // Small request/reply packets: never wait for a delayed ACK.
            let _ = s.set_nodelay(true);
            Ok((Box::new(s), peer.to_string()))
        }
        Listener::Unix(l, p) => {
            let (s, _) = l.accept().await?;
            Ok((Box::new(s), p.display().to_string()))
        }
    }
}

/// One connection until Postfix closes it, or shutdown when no message is
/// in progress.
async fn handle(mut stream: Box<dyn Stream>, shared: Arc<Shared>) {
    let mut milter = session::Session::new(shared.clone());
    let busy = milter.busy.clone();
    let mut shutdown = shared.shutdown.clone();
    let conn = conn::run(&mut stream, &mut milter);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = &mut conn => Some(r),
        () = crate::serve::stopped(&mut shutdown) => None,
    };
    let result = match result {
        Some(r) => r,
        None => {
            // Finish the message in progress, if any (bounded by the grace
            // period in `serve`), then close.
            loop {
                if !busy.load(Ordering::Acquire) {
                    debug!("closing idle milter connection for shutdown");
                    return;
                }
                tokio::select! {
                    r = &mut conn => break r,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    };
    match result {
        Ok(()) => debug!("milter connection closed"),
        Err(e) => debug!(error = %e, "milter connection ended"),
    }
}
