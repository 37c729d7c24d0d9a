//! `hallmonitor serve`: the listener, the connection limit, configuration
//! reload and graceful shutdown around [`crate::inbound::smtp`].
//!
//! Shaped like tokio's mini-redis: a semaphore bounds the sessions (a client
//! beyond the limit gets `421 4.3.2` at once, so Postfix retries instead of
//! queueing on our socket), and a watch channel tells every session to stop.
//! On shutdown we stop accepting, let sessions finish the message they are
//! on up to a deadline, and then return; a session cut off there never sent
//! 250, so Postfix still has the message.
//!
//! # Postfix configuration (as used by `tests/relay_postfix.rs`)
//!
//! `main.cf`:
//!
//! ```text
//! content_filter = scan:[127.0.0.1]:10025
//! smtpd_sasl_authenticated_header = yes   # the login reaches the scanner via Received
//! ```
//!
//! `master.cf` (the `scan` maxproc should not exceed `relay.max_connections`):
//!
//! ```text
//! scan      unix  -  -  n  -  10  smtp
//!   -o smtp_send_xforward_command=yes
//!   -o disable_mime_output_conversion=yes
//!   -o smtp_generic_maps=
//! 127.0.0.1:10026 inet n  -  n  -  10  smtpd
//!   -o content_filter=
//!   -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
//!   -o smtpd_milters=
//!   -o smtpd_helo_restrictions=
//!   -o smtpd_client_restrictions=
//!   -o smtpd_sender_restrictions=
//!   -o smtpd_recipient_restrictions=permit_mynetworks,reject
//!   -o smtpd_relay_restrictions=permit_mynetworks,reject
//!   -o mynetworks=127.0.0.0/8
//!   -o smtpd_authorized_xforward_hosts=127.0.0.0/8
//! ```

use crate::config::Config;
use crate::incidents::Incidents;
use crate::quarantine::Store;
use crate::scan::Scanner;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{info, warn};

/// Everything a message needs, swapped as a whole on reload so a message is
/// always handled with one consistent configuration.
pub struct Settings {
    /// The configuration these settings were built from.
    pub config: Arc<Config>,
    pub scanner: Arc<Scanner>,
    pub relay: crate::config::Relay,
    pub next_hop: SocketAddr,
    pub max_message_bytes: usize,
    pub store: Store,
    /// The incident log (also holds the scan-failure counts).
    pub incidents: Incidents,
    /// clamd after the `HALLMONITOR_CLAMD` override; None when disabled.
    pub clamd: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("relay.next_hop `{0}` is not an IP address and port")]
    NextHop(String),
}

impl Settings {
    /// Settings from a config and a scanner built from that config.
    pub fn new(
        config: &Config,
        scanner: Scanner,
        incidents: Incidents,
    ) -> Result<Settings, SettingsError> {
        let next_hop = config
            .relay
            .next_hop
            .parse()
            .map_err(|_| SettingsError::NextHop(config.relay.next_hop.clone()))?;
        Ok(Settings {
            config: Arc::new(config.clone()),
            scanner: Arc::new(scanner),
            relay: config.relay.clone(),
            next_hop,
            max_message_bytes: config.limits.max_message_bytes,
            store: Store::new(&config.state_dir()),
            incidents,
            clamd: (!config.clamd.disabled).then(|| config.clamd_address()),
        })
    }
}

/// State shared by all sessions.
pub struct Shared {
    current: RwLock<Arc<Settings>>,
    /// Becomes true when the server is shutting down.
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub fn new(settings: Settings, shutdown: watch::Receiver<bool>) -> Arc<Shared> {
        Arc::new(Shared {
            current: RwLock::new(Arc::new(settings)),
            shutdown,
        })
    }

    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replace the settings (SIGHUP); sessions pick them up at their next message.
    pub fn replace(&self, settings: Settings) {
        let new = Arc::new(settings);
        match self.current.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// Accept connections until shutdown, then wait up to the grace period for
/// sessions in flight.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut limit = ConnectionLimit::new(shared.settings().relay.max_connections);
    let permits = limit.semaphore.clone();
    let mut sessions = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // A reload may have changed relay.max_connections.
                limit.resize(shared.settings().relay.max_connections);
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let shared = shared.clone();
                        sessions.spawn(async move {
                            crate::inbound::smtp::handle(stream, peer, shared).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        warn!(peer = %peer, limit = limit.current, "connection limit reached");
                        sessions.spawn(async move {
                            let _ = stream.set_nodelay(true);
                            let _ = stream
                                .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                                .await;
                        });
                    }
                }
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            () = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    let grace = shared.settings().relay.shutdown_grace();
    info!(
        sessions = sessions.len(),
        grace_secs = grace.as_secs(),
        "shutting down"
    );
    let drained = tokio::time::timeout(grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            sessions = sessions.len(),
            "grace period over; unfinished messages stay with Postfix"
        );
        sessions.abort_all();
    }
}

/// The session limit, resizable on reload: raising it adds permits at once;
/// lowering it takes free permits away now and the rest as sessions end.
struct ConnectionLimit {
    semaphore: Arc<Semaphore>,
    current: usize,
    /// Permits still to take away after a reduction.
    owed: usize,
}

impl ConnectionLimit {
    fn new(n: usize) -> ConnectionLimit {
        ConnectionLimit {
            semaphore: Arc::new(Semaphore::new(n)),
            current: n,
            owed: 0,
        }
    }

    fn resize(&mut self, want: usize) {
        if want > self.current {
            let add = want - self.current;
            let repaid = add.min(self.owed);
            self.owed -= repaid;
            self.semaphore.add_permits(add - repaid);
            info!(from = self.current, to = want, "connection limit raised");
        } else if want < self.current {
            self.owed += self.current - want;
            info!(from = self.current, to = want, "connection limit lowered");
        }
        self.current = want;
        if self.owed > 0 {
            self.owed -= self.semaphore.forget_permits(self.owed);
        }
    }
}

/// Resolves once shutdown is requested (or the sender is gone). The watch
/// guard is dropped here, so callers' futures stay `Send`.
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Ask clamd for `PONG`; the answer or the reason it failed, for the start-up line.
pub async fn ping_clamd(address: &str, timeout: Duration) -> Result<(), String> {
    let r = clamd_command(address, "PING", timeout).await?;
    if r.starts_with("PONG") {
        Ok(())
    } else {
        Err(format!("unexpected answer {r:?}"))
    }
}

/// Send one `z`-command (`PING`, `VERSION`) to clamd and return its answer.
pub async fn clamd_command(
    address: &str,
    command: &str,
    timeout: Duration,
) -> Result<String, String> {
    use crate::detect::virus::ClamdAddress;
    use tokio::io::AsyncReadExt;
    let line = format!("z{command}\0");
    let exchange = async {
        let mut reply = Vec::new();
        match ClamdAddress::parse(address) {
            ClamdAddress::Tcp(a) => {
                let mut s = tokio::net::TcpStream::connect(a).await?;
                s.write_all(line.as_bytes()).await?;
                s.take(4096).read_to_end(&mut reply).await?;
            }
            ClamdAddress::Socket(p) => {
                let mut s = tokio::net::UnixStream::connect(p).await?;
                s.write_all(line.as_bytes()).await?;
                s.take(4096).read_to_end(&mut reply).await?;
            }
        }
        Ok::<_, std::io::Error>(reply)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(r)) => Ok(String::from_utf8_lossy(&r)
            .trim_end_matches(['\0', '\n'])
            .to_string()),
    }
}
