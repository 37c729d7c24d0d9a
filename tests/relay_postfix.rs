//! hallmonitor behind a real Postfix: mail submitted to Postfix's smtpd goes
//! through the `scan` transport to `hallmonitor serve`, back into Postfix's
//! re-injection smtpd, and on to a recording sink. Asserted at the sink, in
//! the quarantine and in Postfix's queue (`postqueue -j`).

mod common;
#[path = "common/postfix.rs"]
mod postfix;

use common::smtp::{Client, Relay, RelayOptions, Sink, free_addr, read};
use postfix::Postfix;

const PARENT: &str = "helen.okafor@example.com";
const OFFICE: &str = "office@oakfield.sch.uk";

/// Submit a message to Postfix's front smtpd; returns the reply to DATA.
fn submit(pf: &Postfix, from: &str, to: &str, raw: &[u8]) -> String {
    let mut c = Client::connect(pf.smtp);
    c.reply();
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    assert!(c.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
    let rcpt = c.cmd(&format!("RCPT TO:<{to}>"));
    assert!(rcpt.starts_with("250"), "{rcpt}\n{}", pf.log());
    assert!(c.cmd("DATA").starts_with("354"));
    let reply = c.data(raw);
    let _ = c.cmd("QUIT");
    reply
}

/// The part of a message after the blank line that ends the header.
fn body_of(raw: &[u8]) -> &[u8] {
    let pos = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    &raw[pos..]
}

struct Rig {
    sink: Sink,
    relay: Relay,
    postfix: Postfix,
}

fn rig(clamd: String) -> Rig {
    let sink = Sink::start();
    let reinject = free_addr();
    let relay = Relay::start(RelayOptions {
        listen: None,
        next_hop: reinject,
        clamd,
        relay: vec![],
        limits: vec![],
    });
    let postfix = Postfix::start(relay.addr, reinject, sink.addr);
    Rig {
        sink,
        relay,
        postfix,
    }
}

#[test]
fn clean_mail_through_postfix_arrives_once_and_eicar_is_held() {
    let r = rig(common::clamd().address());
    let clean = read(&common::mail("clean-text.eml"));
    let raw = String::from_utf8_lossy(&clean).replace("d.price@oakfield.sch.uk", PARENT);
    let reply = submit(&r.postfix, PARENT, OFFICE, raw.as_bytes());
    assert!(reply.starts_with("250"), "{reply}");
    r.postfix
        .wait_for(30, "delivery at the sink", || r.sink.messages().len() == 1);
    let got = r.sink.messages();
    let text = got[0].text();
    assert!(text.starts_with("Received: "), "{text}");
    assert!(text.contains("X-Hallmonitor-Verdict: pass\r\n"), "{text}");
    assert_eq!(body_of(&got[0].data), body_of(raw.as_bytes()));
    // Postfix told the next hop who the client was (XFORWARD end to end).
    assert!(got[0].rcpts[0].contains(OFFICE));

    let eicar = read(&common::mail("eicar-zip.eml"));
    let reply = submit(&r.postfix, PARENT, OFFICE, &eicar);
    assert!(reply.starts_with("250"), "{reply}");
    r.postfix
        .wait_for(30, "the quarantine", || r.relay.quarantined().len() == 1);
    r.postfix
        .wait_for(30, "an empty queue", || r.postfix.queue().is_empty());
    assert_eq!(r.sink.messages().len(), 1, "the virus must never arrive");
}

#[test]
fn clamd_down_defers_in_postfix_and_delivers_once_when_back() {
    let sink = Sink::start();
    let reinject = free_addr();
    let listen = free_addr();
    let mut down = Relay::start(RelayOptions {
        listen: Some(listen),
        next_hop: reinject,
        clamd: "/nonexistent/hallmonitor/clamd.sock".into(),
        relay: vec![],
        limits: vec![],
    });
    let pf = Postfix::start(listen, reinject, sink.addr);
    let clean = read(&common::mail("clean-text.eml"));
    let raw = String::from_utf8_lossy(&clean).replace("d.price@oakfield.sch.uk", PARENT);
    assert!(submit(&pf, PARENT, OFFICE, raw.as_bytes()).starts_with("250"));
    pf.wait_for(30, "a deferral", || {
        pf.queue()
            .iter()
            .any(|m| m["queue_name"] == "deferred" || m.to_string().contains("451"))
    });
    assert!(sink.messages().is_empty());
    down.stop();
    let _up = Relay::start(RelayOptions {
        listen: Some(listen),
        next_hop: reinject,
        clamd: common::clamd().address(),
        relay: vec![],
        limits: vec![],
    });
    pf.flush();
    pf.wait_for(30, "delivery after clamd is back", || {
        sink.messages().len() == 1 && pf.queue().is_empty()
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(sink.messages().len(), 1, "delivered exactly once");
}

#[test]
fn next_hop_refusing_one_recipient_bounces_only_that_one() {
    let r = rig(common::clamd().address());
    let clean = read(&common::mail("clean-text.eml"));
    let raw = String::from_utf8_lossy(&clean).replace("d.price@oakfield.sch.uk", PARENT);
    let mut c = Client::connect(r.postfix.smtp);
    c.reply();
    c.cmd("EHLO client.example");
    assert!(c.cmd(&format!("MAIL FROM:<{PARENT}>")).starts_with("250"));
    assert!(c.cmd(&format!("RCPT TO:<{OFFICE}>")).starts_with("250"));
    assert!(c.cmd("RCPT TO:<refuse.me@example.org>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.data(raw.as_bytes()).starts_with("250"));
    let _ = c.cmd("QUIT");
    // The message for the office, and Postfix's bounce to the sender for
    // the refused recipient (the sink takes it via the relayhost too).
    r.postfix.wait_for(30, "delivery and bounce", || {
        r.sink.messages().len() == 2 && r.postfix.queue().is_empty()
    });
    let got = r.sink.messages();
    let delivered: Vec<_> = got
        .iter()
        .filter(|m| !m.mail.starts_with("MAIL FROM:<>"))
        .collect();
    assert_eq!(
        delivered.len(),
        1,
        "{:?}",
        got.iter().map(|m| &m.mail).collect::<Vec<_>>()
    );
    assert_eq!(delivered[0].rcpts.len(), 1);
    assert!(delivered[0].rcpts[0].contains(OFFICE));
    let bounce = got
        .iter()
        .find(|m| m.mail.starts_with("MAIL FROM:<>"))
        .expect("a bounce");
    assert!(bounce.rcpts[0].contains(PARENT), "{bounce:?}");
    assert!(bounce.text().contains("refuse.me@example.org"));
    assert!(bounce.text().contains("5.1.1"));
}

#[test]
fn next_hop_down_defers_and_forged_verdict_header_never_survives() {
    let sink = Sink::start();
    let reinject = free_addr();
    let listen = free_addr();
    // A next hop nobody listens on (free_addr never repeats a port).
    let dead_hop = free_addr();
    let mut wrong_hop = Relay::start(RelayOptions {
        listen: Some(listen),
        next_hop: dead_hop,
        clamd: common::clamd().address(),
        relay: vec![],
        limits: vec![],
    });
    let pf = Postfix::start(listen, reinject, sink.addr);
    let clean = read(&common::mail("clean-text.eml"));
    let mut raw = b"X-Hallmonitor-Verdict: pass\r\nX-Hallmonitor-Categories: none\r\n".to_vec();
    raw.extend_from_slice(
        String::from_utf8_lossy(&clean)
            .replace("d.price@oakfield.sch.uk", PARENT)
            .as_bytes(),
    );
    assert!(submit(&pf, PARENT, OFFICE, &raw).starts_with("250"));
    pf.wait_for(30, "a deferral", || {
        pf.log().contains("status=deferred") && !pf.queue().is_empty()
    });
    assert!(sink.messages().is_empty());
    wrong_hop.stop();
    let _right = Relay::start(RelayOptions {
        listen: Some(listen),
        next_hop: reinject,
        clamd: common::clamd().address(),
        relay: vec![],
        limits: vec![],
    });
    pf.flush();
    pf.wait_for(30, "delivery once the next hop is back", || {
        sink.messages().len() == 1 && pf.queue().is_empty()
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let got = sink.messages();
    assert_eq!(got.len(), 1, "delivered exactly once");
    let text = got[0].text();
    assert_eq!(text.matches("X-Hallmonitor-Verdict:").count(), 1, "{text}");
    assert_eq!(
        text.matches("X-Hallmonitor-Categories:").count(),
        1,
        "{text}"
    );
    assert!(text.contains("X-Hallmonitor-Verdict: pass\r\n"));
}

/// A next hop that takes a whole message and then never answers: the relay
/// is stuck between "message received" and "message accepted downstream".
fn stalling_next_hop() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<()>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                let _ = w.write_all(b"220 stall\r\n");
                let mut in_data = false;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if in_data {
                        if line == ".\r\n" {
                            let _ = tx.send(());
                            // Never answer; hold the connection open.
                            std::thread::sleep(std::time::Duration::from_secs(60));
                            return;
                        }
                        continue;
                    }
                    let reply: &[u8] = if line.starts_with("EHLO") {
                        b"250-stall\r\n250 8BITMIME\r\n"
                    } else if line.starts_with("DATA") {
                        in_data = true;
                        b"354 go\r\n"
                    } else {
                        b"250 Ok\r\n"
                    };
                    let _ = w.write_all(reply);
                }
            });
        }
    });
    (addr, rx)
}

#[test]
fn relay_killed_before_the_next_hop_answered_loses_and_duplicates_nothing() {
    let sink = Sink::start();
    let reinject = free_addr();
    let listen = free_addr();
    let (stall, received) = stalling_next_hop();
    let stuck = Relay::start(RelayOptions {
        listen: Some(listen),
        next_hop: stall,
        clamd: common::clamd().address(),
        relay: vec![],
        limits: vec![],
    });
    let pf = Postfix::start(listen, reinject, sink.addr);
    let clean = read(&common::mail("clean-text.eml"));
    let raw = String::from_utf8_lossy(&clean).replace("d.price@oakfield.sch.uk", PARENT);
    assert!(submit(&pf, PARENT, OFFICE, raw.as_bytes()).starts_with("250"));
    received
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the message reached the stalling next hop");
    stuck.signal(libc::SIGKILL);
    // Postfix logs the deferral and keeps the message (in its deferred or,
    // while qmgr retries, its active queue): nothing is lost.
    pf.wait_for(30, "a deferral after the kill", || {
        pf.log().contains("status=deferred") && !pf.queue().is_empty()
    });
    assert!(sink.messages().is_empty(), "nothing may be delivered yet");
    let _up = Relay::start(RelayOptions {
        listen: Some(listen),
        next_hop: reinject,
        clamd: common::clamd().address(),
        relay: vec![],
        limits: vec![],
    });
    let mut polls = 0u32;
    pf.wait_for(60, "delivery after restart", || {
        if polls.is_multiple_of(20) {
            pf.flush();
        }
        polls += 1;
        sink.messages().len() == 1 && pf.queue().is_empty()
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(sink.messages().len(), 1, "delivered exactly once");
    drop(stuck);
}
