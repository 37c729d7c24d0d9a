//! `hallmonitor status` and the admin server's `/health`, against a running
//! relay: what an ICT technician checking the installation would see.

mod common;

use common::smtp::{Relay, RelayOptions, Sink, free_addr, read, send_mail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

fn relay(sink: &Sink, clamd: String) -> Relay {
    Relay::start(RelayOptions {
        listen: None,
        next_hop: sink.addr,
        clamd,
        relay: Vec::new(),
        limits: Vec::new(),
    })
}

/// GET a path; (status code, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, body.to_string())
}

fn status(r: &Relay, clamd: &str, json: bool) -> (i32, String) {
    let mut c = Command::new(common::HALLMONITOR);
    c.arg("status").arg("--config").arg(r.config_path());
    if json {
        c.arg("--json");
    }
    let out = c.env("HALLMONITOR_CLAMD", clamd).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn healthy_relay_reports_clamd_and_counts_held_mail() {
    let sink = Sink::start();
    let clamd = common::clamd().address();
    let r = relay(&sink, clamd.clone());
    assert!(
        r.banner
            .contains(&format!("health at http://{}/health", r.admin)),
        "{}",
        r.banner
    );
    let (code, body) = get(r.admin, "/health");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["healthy"], true, "{body}");
    assert_eq!(v["clamd"]["reachable"], true, "{body}");
    assert!(
        v["clamd"]["version"]
            .as_str()
            .unwrap()
            .starts_with("ClamAV"),
        "{body}"
    );
    assert_eq!(v["held"], 0);

    let raw = read(&common::mail("eicar-zip.eml"));
    let reply = send_mail(
        r.addr,
        "parent@example.com",
        &["office@oakfield.sch.uk"],
        "4QHEALTH1",
        &raw,
    );
    assert!(reply.starts_with("250 2.0.0 Ok: quarantined"), "{reply}");

    let (code, text) = status(&r, &clamd, false);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(": OK"), "{text}");
    assert!(text.contains("held for review:  1"), "{text}");
    assert!(text.contains("clamd:            reachable"), "{text}");
    let (_, json) = status(&r, &clamd, true);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["held"], 1, "{json}");
    assert!(v["disk"]["total_bytes"].as_u64().unwrap() > 0, "{json}");
}

#[test]
fn clamd_down_makes_health_503_and_status_exit_1() {
    let sink = Sink::start();
    // Nothing listens here.
    let dead = free_addr().to_string();
    let r = relay(&sink, dead.clone());
    assert!(r.banner.contains("did NOT answer"), "{}", r.banner);
    let (code, body) = get(r.admin, "/health");
    assert_eq!(code, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["healthy"], false);
    assert!(
        v["problems"][0].as_str().unwrap().contains("not answering"),
        "{body}"
    );

    // Each deferred attempt of a message is counted as a failing scan only
    // while clamd is healthy; here clamd is down, so the count stays 0 and
    // the problem named is clamd.
    let raw = read(&common::mail("clean-text.eml"));
    let reply = send_mail(
        r.addr,
        "parent@example.com",
        &["office@oakfield.sch.uk"],
        "4QHEALTH2",
        &raw,
    );
    assert!(reply.starts_with("451"), "{reply}");
    let (code, text) = status(&r, &dead, false);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("NEEDS ATTENTION"), "{text}");
    assert!(text.contains("NOT reachable"), "{text}");
    assert!(text.contains("0 messages (0 attempts)"), "{text}");
}

#[test]
fn bad_admin_address_is_refused_at_start_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("h.toml");
    std::fs::write(&cfg, "[admin]\nlisten = \"localhost\"\n").unwrap();
    let out = Command::new(common::HALLMONITOR)
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("h.toml:2") && err.contains("admin.listen"),
        "{err}"
    );
}
