//! Shared by tests/admin_web.rs and tests/admin_browser.rs: a relay with
//! held mail and users, and a tiny HTTP/1.1 client for the admin server.

#![allow(dead_code)]

use crate::common;
use crate::common::smtp::{Relay, RelayOptions, Sink, read, send_mail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "correct horse battery staple";
pub const TEACHER: &str = "d.price@oakfield.sch.uk";
pub const HEAD: &str = "head@oakfield.sch.uk";
pub const NURSE: &str = "nurse@health-visitors.example.org";
pub const OFFICE: &str = "office@oakfield.sch.uk";

/// The message as Postfix hands it over after `login` authenticated.
pub fn from_login(raw: &[u8], login: &str, queue_id: &str, rcpt: &str) -> Vec<u8> {
    let mut out = format!(
        "Received: from laptop (unknown [192.0.2.10])\r\n\t(Authenticated sender: {login})\r\n\tby mx.oakfield.sch.uk (Postfix) with ESMTPSA id {queue_id}\r\n\tfor <{rcpt}>; Tue, 10 Mar 2026 09:15:01 +0000 (GMT)\r\n"
    )
    .into_bytes();
    out.extend_from_slice(raw);
    out
}

/// Replace the Subject of a fixture.
pub fn with_subject(raw: &[u8], subject: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with("Subject:") {
            out.push_str(&format!("Subject: {subject}\r\n"));
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

/// A running relay with a recording next hop.
pub struct Setup {
    pub sink: Sink,
    pub relay: Relay,
}

impl Setup {
    pub fn start() -> Setup {
        let sink = Sink::start();
        let relay = Relay::start(RelayOptions {
            listen: None,
            next_hop: sink.addr,
            clamd: common::clamd().address(),
            relay: vec![],
            limits: vec![],
        });
        wait_http(relay.admin);
        Setup { sink, relay }
    }

    pub fn admin(&self) -> SocketAddr {
        self.relay.admin
    }

    /// `hallmonitor user add NAME --role ROLE --password-stdin`.
    pub fn add_user(&self, name: &str, role: &str) {
        let mut child = Command::new(common::HALLMONITOR)
            .arg("--config")
            .arg(self.relay.config_path())
            .args(["user", "add", name, "--role", role, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run hallmonitor user add");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "user add {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Send `raw` through the relay and return the new quarantine id.
    pub fn hold(&self, from: &str, rcpt: &str, queue_id: &str, raw: &[u8]) -> String {
        let before = self.relay.quarantined();
        let reply = send_mail(self.relay.addr, from, &[rcpt], queue_id, raw);
        assert!(reply.starts_with("250"), "{reply}");
        let after = self.relay.quarantined();
        let new: Vec<&String> = after.iter().filter(|id| !before.contains(id)).collect();
        assert_eq!(new.len(), 1, "expected one newly held message: {after:?}");
        new[0].clone()
    }

    /// The NHS-number referral sent by a teacher (held: personal data).
    pub fn hold_pupil_data(&self, queue_id: &str, subject: &str) -> String {
        let raw = with_subject(&read(&common::mail("nhs-number-outbound.eml")), subject);
        let raw = from_login(&raw, "d.price", queue_id, NURSE);
        self.hold(TEACHER, NURSE, queue_id, &raw)
    }

    /// The same referral sent by the head teacher.
    pub fn hold_from_head(&self, queue_id: &str, subject: &str) -> String {
        let raw = read(&common::mail("nhs-number-outbound.eml"));
        let raw = String::from_utf8_lossy(&raw).replace(
            "From: \"Daniel Price\" <d.price@oakfield.sch.uk>",
            "From: \"Head Teacher\" <head@oakfield.sch.uk>",
        );
        let raw = with_subject(raw.as_bytes(), subject);
        let raw = from_login(&raw, "head", queue_id, NURSE);
        self.hold(HEAD, NURSE, queue_id, &raw)
    }

    /// Messages released to the sink (alerts to staff reach the sink too).
    pub fn released(&self) -> Vec<crate::common::smtp::Delivered> {
        self.sink
            .messages()
            .into_iter()
            .filter(|m| m.text().contains("X-Hallmonitor-Released:"))
            .collect()
    }

    /// EICAR in a zip from outside (held: virus).
    pub fn hold_virus(&self, queue_id: &str) -> String {
        let raw = read(&common::mail("eicar-zip.eml"));
        self.hold("someone@example.net", OFFICE, queue_id, &raw)
    }
}

/// Poll until the admin server answers.
pub fn wait_http(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "admin server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The value of `name=` in a `Set-Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers_named("set-cookie").into_iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 request (Connection: close).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    // Read the head, then exactly the body (some servers, like chromedriver,
    // keep the connection open despite `Connection: close`).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf).expect("read response");
        assert!(n > 0, "connection closed before the response head");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let length: Option<usize> = header("content-length").and_then(|v| v.parse().ok());
    let chunked = header("transfer-encoding").is_some_and(|v| v == "chunked");
    loop {
        let done = match length {
            Some(l) => body.len() >= l,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done || method == "HEAD" {
            break;
        }
        let n = s.read(&mut buf).expect("read response body");
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// `application/x-www-form-urlencoded`.
pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let enc = |s: &str| {
        let mut o = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                o.push(b as char);
            } else {
                o.push_str(&format!("%{b:02X}"));
            }
        }
        o
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// The value of the first hidden input `name`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// A signed-in user.
pub struct User {
    pub addr: SocketAddr,
    pub cookie: String,
    pub csrf: String,
}

/// Log in through the form; panics unless it succeeds.
pub fn login(addr: SocketAddr, name: &str) -> User {
    let r = try_login(addr, name, PASSWORD);
    assert_eq!(r.status, 303, "login {name}: {}", r.text());
    let cookie = r.cookie("hm_session").expect("session cookie");
    let mut user = User {
        addr,
        cookie,
        csrf: String::new(),
    };
    let home = user.get(r.header("location").unwrap_or("/"));
    user.csrf = hidden(&home.text(), "csrf").expect("csrf token on the page");
    user
}

/// One login attempt (GET the form, POST it back).
pub fn try_login(addr: SocketAddr, name: &str, password: &str) -> Resp {
    let page = request(addr, "GET", "/login", &[], b"");
    assert_eq!(page.status, 200);
    let token = hidden(&page.text(), "login_token").expect("login token");
    let cookie = page.cookie("hm_login").expect("login cookie");
    request(
        addr,
        "POST",
        "/login",
        &[
            ("Cookie", &format!("hm_login={cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &format!("http://{addr}")),
        ],
        &form(&[
            ("user", name),
            ("password", password),
            ("login_token", &token),
        ]),
    )
}

impl User {
    pub fn get(&self, path: &str) -> Resp {
        request(
            self.addr,
            "GET",
            path,
            &[("Cookie", &format!("hm_session={}", self.cookie))],
            b"",
        )
    }

    /// POST a form with extra headers, exactly as given (no CSRF added).
    pub fn post_raw(&self, path: &str, pairs: &[(&str, &str)], extra: &[(&str, &str)]) -> Resp {
        let cookie = format!("hm_session={}", self.cookie);
        let mut headers = vec![
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        headers.extend_from_slice(extra);
        request(self.addr, "POST", path, &headers, &form(pairs))
    }

    /// POST a form as the page would (with the CSRF token, same origin).
    pub fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(pairs);
        let origin = format!("http://{}", self.addr);
        self.post_raw(
            path,
            &all,
            &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
        )
    }
}

/// The audit rows as (actor, action, target, reason, remote, detail), newest
/// first, read from the admin's audit page.
pub fn audit_rows(admin: &User) -> Vec<Vec<String>> {
    let page = admin.get("/audit");
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    let Some(start) = text.find("<tbody>") else {
        return Vec::new();
    };
    let body = &text[start..];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td>")
                .skip(1)
                .map(|cell| {
                    let cell = cell.split("</td>").next().unwrap_or("");
                    strip_tags(cell)
                })
                .collect()
        })
        .collect()
}

pub fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Poll `f` until it returns Some or the deadline passes.
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
