//! When clamd is down, slow, confused or refuses a part, the message must never
//! be passed unscanned: a scan error is `tempfail` (the sending MTA keeps the
//! message and retries), and a part clamd will not take because of its size is
//! held as `banned_attachment/unscannable` (retrying would never help).

mod common;

use common::{Clamd, ClamdOptions, EICAR_RULE, Env, config_with, mail, scan_with, test_config};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A message with an attachment, so there is something to send to clamd.
const WITH_ATTACHMENT: &str = "config-json.eml";

fn env() -> Env {
    Env::inbound("helen.okafor@example.com")
}

fn assert_tempfail(s: &common::Scan) {
    assert_eq!(s.action(), "tempfail", "{}", s.explain());
    let err = s.json["error"].as_str().unwrap_or("");
    assert!(
        err.contains("clamd"),
        "the error should name clamd: {}",
        s.explain()
    );
}

#[test]
fn clamd_socket_missing_is_tempfail_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-clamd-here.sock");
    for name in [WITH_ATTACHMENT, "eicar-zip.eml"] {
        let s = scan_with(
            &test_config(),
            &missing.display().to_string(),
            &env(),
            &mail(name),
        );
        assert_tempfail(&s);
    }
}

#[test]
fn clamd_tcp_port_closed_is_tempfail_not_pass() {
    // Nothing listens there, and nothing else in this process is given it.
    let port = common::free_tcp_port();
    let s = scan_with(
        &test_config(),
        &format!("127.0.0.1:{port}"),
        &env(),
        &mail(WITH_ATTACHMENT),
    );
    assert_tempfail(&s);
}

/// A server that accepts, reads whatever comes and never says anything.
/// Returns its address and a flag to stop it.
fn silent_server() -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut held = Vec::new();
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_read_timeout(Some(Duration::from_millis(50)))
                        .unwrap();
                    let mut buf = [0u8; 65536];
                    // Drain what is sent (so the client is not merely blocked on
                    // a full buffer), then keep the connection open and silent.
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                    }
                    held.push(conn);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (addr, stop)
}

#[test]
fn clamd_that_never_answers_is_tempfail_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(dir.path(), "t.toml", "[clamd]\ntimeout_secs = 1\n");
    let (addr, stop) = silent_server();
    let s = scan_with(&config, &addr, &env(), &mail(WITH_ATTACHMENT));
    stop.store(true, Ordering::SeqCst);
    assert_tempfail(&s);
    assert!(
        s.run.elapsed >= Duration::from_millis(900),
        "gave up before the 1 s timeout: {:?}",
        s.run.elapsed
    );
    assert!(
        s.run.elapsed < Duration::from_secs(15),
        "took {:?} with a 1 s timeout",
        s.run.elapsed
    );
}

/// A server that answers every connection with `reply` and hangs up.
fn answering_server(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(reply);
        }
    });
    addr
}

#[test]
fn a_peer_that_is_not_clamd_is_tempfail() {
    for reply in [&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..], b"", b"PONG\0"] {
        let addr = answering_server(reply);
        let s = scan_with(&test_config(), &addr, &env(), &mail(WITH_ATTACHMENT));
        assert_tempfail(&s);
    }
}

#[test]
fn clamd_error_reply_is_tempfail_even_if_it_says_ok() {
    // clamav_client::clean() would call this clean: it contains "OK" and not "FOUND".
    let addr = answering_server(b"stream: OK? lstat() failed. ERROR\0");
    let s = scan_with(&test_config(), &addr, &env(), &mail(WITH_ATTACHMENT));
    assert_tempfail(&s);
}

/// A message with one attachment of `size` random-looking (incompressible) bytes.
fn big_attachment_message(dir: &Path, size: usize) -> std::path::PathBuf {
    let mut data = Vec::with_capacity(size);
    let mut x: u32 = 0x2545_F491;
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(size);
    let b64 = common::base64_lines(&data);
    let text = format!(
        "From: \"Helen Okafor\" <helen.okafor@example.com>\r\n\
         To: d.price@oakfield.sch.uk\r\n\
         Subject: Video of the school play\r\n\
         Date: Tue, 10 Mar 2026 09:15:00 +0000\r\n\
         Message-ID: <big@fixtures.oakfield.sch.uk>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n\
         --=_b\r\nContent-Type: text/plain\r\n\r\nThe video is attached.\r\n\
         --=_b\r\nContent-Type: video/mp4; name=\"play.mp4\"\r\n\
         Content-Disposition: attachment; filename=\"play.mp4\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--=_b--\r\n"
    );
    let path = dir.join("big.eml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn attachment_over_clamds_stream_limit_is_held_as_unscannable() {
    let clamd = Clamd::start(ClamdOptions {
        tcp: true,
        stream_max: "1M".into(),
        ..ClamdOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let msg = big_attachment_message(dir.path(), 3 * 1024 * 1024);
    for address in [clamd.address(), clamd.tcp_address()] {
        let s = scan_with(&test_config(), &address, &env(), &msg);
        assert!(
            s.has_rule("banned_attachment/unscannable"),
            "via {address}: {}\nclamd log:\n{}",
            s.explain(),
            clamd.logs()
        );
        assert_eq!(s.action(), "quarantine", "via {address}: {}", s.explain());
        assert!(!s.has_category("virus"), "{}", s.explain());
    }
}

#[test]
fn clamd_over_tcp_finds_eicar_too() {
    let clamd = Clamd::start(ClamdOptions {
        tcp: true,
        ..ClamdOptions::default()
    });
    let s = scan_with(
        &test_config(),
        &clamd.tcp_address(),
        &env(),
        &mail("eicar-pdf-base64.eml"),
    );
    assert!(s.has_rule(EICAR_RULE), "{}", s.explain());
    assert_eq!(s.action(), "quarantine");
}

#[test]
fn clamd_address_with_unix_prefix_works() {
    let clamd = common::clamd();
    let s = scan_with(
        &test_config(),
        &format!("unix:{}", clamd.address()),
        &env(),
        &mail("eicar-pdf-base64.eml"),
    );
    assert!(s.has_rule(EICAR_RULE), "{}", s.explain());
}
