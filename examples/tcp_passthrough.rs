//! The cheapest possible after-queue "filter", for the load benchmark's
//! scenario (t): every connection from Postfix's `scan` transport is joined
//! byte for byte to a connection to the re-injection smtpd, with nothing
//! parsed, scanned or changed (`benches/load.sh --only a,t`). Whatever a
//! real filter does costs at least this much, so b/a can never beat t/a.
//!
//!     cargo run --release --example tcp_passthrough -- LISTEN NEXT_HOP
//!
//! One runtime thread, TCP_NODELAY on both sides, as hallmonitor serve.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |s: Option<&String>| -> std::io::Result<SocketAddr> {
        s.and_then(|s| s.parse().ok()).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "usage: tcp_passthrough LISTEN_ADDR NEXT_HOP_ADDR",
            )
        })
    };
    let (listen, next_hop) = (parse(args.first())?, parse(args.get(1))?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (mut inbound, _) = listener.accept().await?;
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(next_hop).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    })
}
