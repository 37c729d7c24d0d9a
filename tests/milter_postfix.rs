//! hallmonitor as Postfix's milter: a real Postfix (`smtpd_milters =
//! inet:…` or `unix:…`, protocol 6, `milter_default_action = tempfail`) calls
//! `hallmonitor serve --milter …` during the SMTP dialogue; a plain SMTP
//! client submits mail; what arrives is checked at a recording sink (Postfix's
//! relayhost), in hallmonitor's quarantine and in Postfix's queue.

mod common;
#[path = "common/postfix.rs"]
#[allow(dead_code)]
mod postfix;

use common::smtp::{Client, Sink, free_addr, read};
use postfix::Postfix;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PARENT: &str = "helen.okafor@example.com";
const OFFICE: &str = "office@oakfield.sch.uk";
const TEACHER: &str = "d.price@oakfield.sch.uk";
const TEACHER_PASSWORD: &str = "correct horse battery";

/// Where the milter listens.
#[derive(Clone)]
enum MilterSocket {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl MilterSocket {
    /// As `--milter` and Postfix's `smtpd_milters` take it.
    fn spec(&self) -> String {
        match self {
            MilterSocket::Inet(a) => format!("inet:{a}"),
            MilterSocket::Unix(p) => format!("unix:{}", p.display()),
        }
    }

    fn answers(&self) -> bool {
        match self {
            MilterSocket::Inet(a) => TcpStream::connect(a).is_ok(),
            MilterSocket::Unix(p) => std::os::unix::net::UnixStream::connect(p).is_ok(),
        }
    }
}

/// `hallmonitor serve` with the milter on; SIGTERM on drop.
struct Hallmonitor {
    dir: tempfile::TempDir,
    milter: MilterSocket,
    child: Child,
}

impl Hallmonitor {
    /// `milter` and `limits` are extra lines for those config sections.
    fn start(clamd: &str, milter: &[&str], limits: &[&str]) -> Hallmonitor {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, MilterSocket::Inet(free_addr()), clamd, milter, limits)
    }

    fn start_in(
        dir: tempfile::TempDir,
        socket: MilterSocket,
        clamd: &str,
        milter: &[&str],
        limits: &[&str],
    ) -> Hallmonitor {
        let base = std::fs::read_to_string(common::test_config()).unwrap();
        let config = format!(
            "[state]\ndir = \"state\"\n\n[admin]\nlisten = \"{}\"\n\n[milter]\n{}\n\n[limits]\n{}\n\n{base}",
            free_addr(),
            milter.join("\n"),
            limits.join("\n")
        );
        let path = dir.path().join("hallmonitor.toml");
        std::fs::write(&path, config).unwrap();
        Self::spawn(dir, socket, clamd)
    }

    fn spawn(dir: tempfile::TempDir, milter: MilterSocket, clamd: &str) -> Hallmonitor {
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut child = Command::new(common::HALLMONITOR)
            .arg("--config")
            .arg(dir.path().join("hallmonitor.toml"))
            .arg("serve")
            .arg("--listen")
            .arg(free_addr().to_string())
            .arg("--next-hop")
            .arg(free_addr().to_string())
            .arg("--milter")
            .arg(milter.spec())
            .env("HALLMONITOR_CLAMD", clamd)
            .env("HALLMONITOR_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("hallmonitor serve");
        let mut banner = String::new();
        if let Some(out) = child.stdout.take() {
            let mut r = BufReader::new(out);
            let _ = r.read_line(&mut banner);
            std::thread::spawn(move || {
                let mut rest = Vec::new();
                let _ = r.read_to_end(&mut rest);
            });
        }
        assert!(
            banner.contains(&format!("milter on {}", milter.spec())),
            "{banner}"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !milter.answers() {
            assert!(Instant::now() < deadline, "milter did not start: {banner}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Hallmonitor { dir, milter, child }
    }

    /// The log, without terminal colour codes.
    fn log(&self) -> String {
        let raw = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn messages_dir(&self) -> PathBuf {
        self.dir.path().join("state").join("messages")
    }

    /// Metadata (`ID.json`) of each held message.
    fn held(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.messages_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    fn held_raw(&self) -> Vec<Vec<u8>> {
        std::fs::read_dir(self.messages_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                    .filter_map(|e| std::fs::read(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn stop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Hallmonitor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

struct Rig {
    sink: Sink,
    hm: Hallmonitor,
    postfix: Postfix,
}

fn rig(clamd: &str, milter: &[&str], limits: &[&str]) -> Rig {
    let sink = Sink::start();
    let hm = Hallmonitor::start(clamd, milter, limits);
    let postfix =
        Postfix::start_milter(&hm.milter.spec(), sink.addr, &[(TEACHER, TEACHER_PASSWORD)]);
    Rig { sink, hm, postfix }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Submit `raw` locally with Postfix's `sendmail` (pickup, then cleanup and
/// its `non_smtpd_milters`); panics unless sendmail accepts it.
fn sendmail(pf: &Postfix, from: &str, to: &str, raw: &[u8]) {
    use std::io::Write;
    let mut child = Command::new("/usr/sbin/sendmail")
        .arg("-C")
        .arg(pf.etc())
        .arg("-f")
        .arg(from)
        .arg(to)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sendmail");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(raw).unwrap();
    }
    assert!(child.wait().unwrap().success(), "sendmail failed");
}

/// One SMTP transaction at Postfix's smtpd, optionally after AUTH PLAIN.
/// Returns the first reply that is not a success (the reply to the end of
/// data when everything before it succeeded).
fn submit(pf: &Postfix, login: Option<(&str, &str)>, from: &str, to: &str, raw: &[u8]) -> String {
    let mut c = Client::connect(pf.smtp);
    let greeting = c.reply();
    if !greeting.starts_with("220") {
        return greeting;
    }
    let ehlo = c.cmd("EHLO client.example");
    if !ehlo.starts_with("250") {
        return ehlo;
    }
    if let Some((user, password)) = login {
        let token = base64(format!("\0{user}\0{password}").as_bytes());
        let auth = c.cmd(&format!("AUTH PLAIN {token}"));
        assert!(auth.starts_with("235"), "AUTH: {auth}\n{}", pf.log());
    }
    for (cmd, ok) in [
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
    ] {
        let reply = c.cmd(&cmd);
        if !reply.starts_with(ok) {
            return reply;
        }
    }
    let reply = c.data(raw);
    let _ = c.cmd("QUIT");
    reply
}

/// The body after the header's blank line.
fn body_of(raw: &[u8]) -> &[u8] {
    let pos = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    &raw[pos..]
}

/// Send a clean marker message and wait until it is at the sink: anything
/// submitted before it that was going to be delivered has had its chance.
fn deliver_marker(r: &Rig, tag: &str) {
    deliver_marker_to(&r.postfix, &r.sink, tag);
}

fn deliver_marker_to(postfix: &Postfix, sink: &Sink, tag: &str) {
    let raw = format!(
        "From: Helen Okafor <{PARENT}>\r\nTo: {OFFICE}\r\nSubject: marker {tag}\r\nMessage-ID: <{tag}@example.com>\r\n\r\nJust checking.\r\n"
    );
    let reply = submit(postfix, None, PARENT, OFFICE, raw.as_bytes());
    assert!(reply.starts_with("250"), "{reply}");
    postfix.wait_for(30, "the marker at the sink", || {
        sink.messages()
            .iter()
            .any(|m| m.text().contains(&format!("Subject: marker {tag}")))
    });
}

#[test]
fn clean_mail_is_delivered_with_headers_and_profane_mail_tagged() {
    let r = rig(&common::clamd().address(), &[], &[]);
    let clean = read(&common::mail("clean-text.eml"));
    let clean = String::from_utf8_lossy(&clean).replace("d.price@oakfield.sch.uk", PARENT);
    // A forged verdict header must not survive.
    let forged = format!("X-Hallmonitor-Verdict: pass\r\n{clean}");
    let reply = submit(&r.postfix, None, PARENT, OFFICE, forged.as_bytes());
    assert!(reply.starts_with("250 2.0.0 Ok"), "{reply}\n{}", r.hm.log());
    r.postfix
        .wait_for(30, "delivery at the sink", || r.sink.messages().len() == 1);
    let got = &r.sink.messages()[0];
    let text = got.text();
    assert_eq!(text.matches("X-Hallmonitor-Verdict:").count(), 1, "{text}");
    assert!(text.contains("X-Hallmonitor-Verdict: pass\r\n"), "{text}");
    assert!(
        text.contains("X-Hallmonitor-Categories: none\r\n"),
        "{text}"
    );
    assert!(text.contains("X-Hallmonitor-Version: "), "{text}");
    assert_eq!(body_of(&got.data), body_of(clean.as_bytes()));

    let profane = "From: Sam <sam@example.com>\r\nTo: office@oakfield.sch.uk\r\nSubject: The trip\r\nMessage-ID: <trip@example.com>\r\n\r\nThis trip was shit.\r\n";
    let reply = submit(
        &r.postfix,
        None,
        "sam@example.com",
        OFFICE,
        profane.as_bytes(),
    );
    assert!(reply.starts_with("250"), "{reply}");
    r.postfix
        .wait_for(30, "the tagged message", || r.sink.messages().len() == 2);
    let text = r.sink.messages()[1].text();
    assert!(
        text.contains("\r\nSubject: [Flagged: profanity] The trip\r\n"),
        "{text}"
    );
    assert!(!text.contains("Subject: The trip"), "{text}");
    assert!(text.contains("X-Hallmonitor-Verdict: tag\r\n"), "{text}");
    assert!(
        text.contains("X-Hallmonitor-Categories: profanity\r\n"),
        "{text}"
    );
    // The scan saw Postfix's envelope: the queue id came as {i}.
    let log = r.hm.log();
    assert!(log.contains("queue_id="), "{log}");
    assert!(!log.contains("configuration error"), "{log}");
    // Postfix had nothing to say about the milter's protocol.
    let maillog = r.postfix.log();
    assert!(
        !maillog
            .lines()
            .any(|l| l.contains("warning:") && l.contains("milter")),
        "{maillog}"
    );
    assert!(r.hm.held().is_empty());
}

#[test]
fn pupil_data_and_eicar_are_held_and_discarded_never_delivered() {
    let r = rig(&common::clamd().address(), &[], &[]);
    let nhs = read(&common::mail("nhs-number-outbound.eml"));
    let to = "nurse@health-visitors.example.org";
    let reply = submit(&r.postfix, None, TEACHER, to, &nhs);
    assert!(reply.starts_with("250"), "{reply}\n{}", r.hm.log());
    let eicar = read(&common::mail("eicar-zip.eml"));
    let reply = submit(&r.postfix, None, PARENT, OFFICE, &eicar);
    assert!(reply.starts_with("250"), "{reply}\n{}", r.hm.log());
    deliver_marker(&r, "after-held");
    let delivered = r.sink.messages();
    assert_eq!(delivered.len(), 1, "only the marker is delivered");
    assert!(r.postfix.queue().is_empty(), "{:?}", r.postfix.queue());
    let held = r.hm.held();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.iter().any(|m| m.contains("personal_data")), "{held:?}");
    assert!(
        held.iter().any(|m| m.contains(common::EICAR_RULE)),
        "{held:?}"
    );
    assert!(
        held.iter().all(|m| m.contains("\"front_end\": \"milter\"")),
        "{held:?}"
    );
    // The copy is the message as received, NHS number and all (masked only
    // in what is shown); the EICAR message's body is byte-identical.
    let raws = r.hm.held_raw();
    assert!(
        raws.iter().any(|m| body_of(m) == body_of(&eicar)),
        "quarantined EICAR body differs"
    );
}

#[test]
fn quarantine_reply_reject_answers_550_and_still_holds_the_message() {
    let r = rig(
        &common::clamd().address(),
        &["quarantine_reply = \"reject\""],
        &[],
    );
    let eicar = read(&common::mail("eicar-zip.eml"));
    let reply = submit(&r.postfix, None, PARENT, OFFICE, &eicar);
    assert!(reply.starts_with("550 5.7.1 "), "{reply}\n{}", r.hm.log());
    let nhs = read(&common::mail("nhs-number-outbound.eml"));
    let reply = submit(
        &r.postfix,
        None,
        TEACHER,
        "nurse@health-visitors.example.org",
        &nhs,
    );
    assert!(reply.starts_with("550 5.7.1 "), "{reply}");
    assert!(
        !reply.contains("703 219 8643") && !reply.contains("7032198643"),
        "{reply}"
    );
    deliver_marker(&r, "after-reject");
    assert_eq!(r.sink.messages().len(), 1);
    assert_eq!(r.hm.held().len(), 2);
    assert!(r.postfix.queue().is_empty());
}

#[test]
fn hallmonitor_stopped_means_4xx_and_nothing_is_lost() {
    let mut r = rig(&common::clamd().address(), &[], &[]);
    r.hm.stop();
    let clean = read(&common::mail("clean-text.eml"));
    let clean = String::from_utf8_lossy(&clean).replace("d.price@oakfield.sch.uk", PARENT);
    let reply = submit(&r.postfix, None, PARENT, OFFICE, clean.as_bytes());
    assert!(reply.starts_with('4'), "{reply}\n{}", r.postfix.log());
    // Postfix took no responsibility: nothing queued, nothing delivered.
    assert!(r.postfix.queue().is_empty(), "{:?}", r.postfix.queue());
    assert!(r.sink.messages().is_empty());

    // Back up: the client's retry goes through.
    let dir = std::mem::replace(&mut r.hm.dir, tempfile::tempdir().unwrap());
    let milter = r.hm.milter.clone();
    let hm = Hallmonitor::spawn(dir, milter, &common::clamd().address());
    let reply = submit(&r.postfix, None, PARENT, OFFICE, clean.as_bytes());
    assert!(reply.starts_with("250"), "{reply}\n{}", hm.log());
    r.postfix.wait_for(30, "delivery after restart", || {
        r.sink.messages().len() == 1
    });
}

#[test]
fn staff_login_from_auth_authen_is_not_anonymous() {
    let r = rig(&common::clamd().address(), &[], &[]);
    let note = format!(
        "From: Daniel Price <{TEACHER}>\r\nTo: {PARENT}\r\nSubject: Trip letter\r\nMessage-ID: <trip-letter@oakfield.sch.uk>\r\n\r\nThe trip letter is attached to the newsletter.\r\n"
    );
    // Without a login, a school From address from an unidentified client is
    // impersonation (anonymous_sender), held.
    let reply = submit(&r.postfix, None, TEACHER, PARENT, note.as_bytes());
    assert!(reply.starts_with("250"), "{reply}");
    r.postfix
        .wait_for(30, "the unauthenticated message held", || {
            r.hm.held().len() == 1
        });
    assert!(
        r.hm.held()[0].contains("anonymous_sender/"),
        "{:?}",
        r.hm.held()
    );
    // With SMTP AUTH the login arrives as {auth_authen} and identifies her.
    let note2 = note.replace("trip-letter@", "trip-letter-2@");
    let reply = submit(
        &r.postfix,
        Some((TEACHER, TEACHER_PASSWORD)),
        TEACHER,
        PARENT,
        note2.as_bytes(),
    );
    assert!(reply.starts_with("250"), "{reply}\n{}", r.postfix.log());
    r.postfix.wait_for(30, "the authenticated message", || {
        r.sink.messages().len() == 1
    });
    let text = r.sink.messages()[0].text();
    assert!(text.contains("X-Hallmonitor-Verdict: pass\r\n"), "{text}");
    assert!(
        text.contains("X-Hallmonitor-Categories: none\r\n"),
        "{text}"
    );
    assert_eq!(r.hm.held().len(), 1);
    assert!(
        r.hm.log().contains("sender_group=\"staff\""),
        "{}",
        r.hm.log()
    );
}

/// A clamd that answers PING at once and never answers a scan; counts the
/// scans it was asked for.
fn stalling_clamd() -> (SocketAddr, Arc<AtomicUsize>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let scans = Arc::new(AtomicUsize::new(0));
    let counter = scans.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut cmd = [0u8; 5];
                if conn.read_exact(&mut cmd).is_err() {
                    return;
                }
                if &cmd == b"zPING" {
                    // Read the NUL too: closing with unread data is a reset.
                    let _ = conn.read_exact(&mut cmd[..1]);
                    let _ = conn.write_all(b"PONG\0");
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                // Swallow the stream and never answer.
                let mut buf = [0u8; 4096];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    (addr, scans)
}

#[test]
fn slow_scan_tempfails_and_is_held_as_unscannable_on_the_third_attempt() {
    let r = rig(
        &stalling_clamd().0.to_string(),
        &["message_timeout_secs = 1"],
        &[],
    );
    let raw = read(&common::mail("eicar-zip.eml"));
    for attempt in 1..=2 {
        let started = Instant::now();
        let reply = submit(&r.postfix, None, PARENT, OFFICE, &raw);
        assert!(
            reply.starts_with("451 4.7.1"),
            "attempt {attempt}: {reply}\n{}",
            r.hm.log()
        );
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(r.hm.held().is_empty());
    let reply = submit(&r.postfix, None, PARENT, OFFICE, &raw);
    assert!(reply.starts_with("250"), "{reply}\n{}", r.hm.log());
    let held = r.hm.held();
    assert_eq!(held.len(), 1);
    assert!(
        held[0].contains("banned_attachment/unscannable"),
        "{held:?}"
    );
    assert!(r.sink.messages().is_empty());
    assert!(r.postfix.queue().is_empty());
}

#[test]
fn oversized_message_tempfails_and_is_held_as_unscannable_on_the_third_attempt() {
    let r = rig(
        &common::clamd().address(),
        &[],
        &["max_message_bytes = 4096"],
    );
    let mut raw = format!(
        "From: Helen Okafor <{PARENT}>\r\nTo: {OFFICE}\r\nSubject: Big\r\nMessage-ID: <big@example.com>\r\n\r\n"
    );
    // Over the scan limit, under twice it (what is kept for the quarantine).
    while raw.len() < 6_000 {
        raw.push_str("All the photographs from sports day, as promised.\r\n");
    }
    for attempt in 1..=2 {
        let reply = submit(&r.postfix, None, PARENT, OFFICE, raw.as_bytes());
        assert!(
            reply.starts_with("451 4.7.1"),
            "attempt {attempt}: {reply}\n{}",
            r.hm.log()
        );
    }
    let reply = submit(&r.postfix, None, PARENT, OFFICE, raw.as_bytes());
    assert!(reply.starts_with("250"), "{reply}\n{}", r.hm.log());
    let held = r.hm.held();
    assert_eq!(held.len(), 1);
    assert!(
        held[0].contains("banned_attachment/unscannable"),
        "{held:?}"
    );
    let copy = &r.hm.held_raw()[0];
    assert_eq!(body_of(copy), body_of(raw.as_bytes()));
    deliver_marker(&r, "after-big");
    assert_eq!(r.sink.messages().len(), 1);
}

#[test]
fn locally_submitted_mail_goes_through_non_smtpd_milters() {
    let r = rig(&common::clamd().address(), &[], &[]);
    let raw = format!(
        "From: Office <{OFFICE}>\r\nTo: {PARENT}\r\nSubject: Parents evening\r\nMessage-ID: <local@oakfield.sch.uk>\r\n\r\nParents evening is on Thursday.\r\n"
    );
    sendmail(&r.postfix, OFFICE, PARENT, raw.as_bytes());
    // Trusted as local submission (senders.trust_local_submission), the
    // office's own address is not impersonation: delivered, marked.
    r.postfix
        .wait_for(30, "the local message", || r.sink.messages().len() == 1);
    let text = r.sink.messages()[0].text();
    assert!(text.contains("X-Hallmonitor-Verdict: pass\r\n"), "{text}");
    assert!(r.hm.held().is_empty());
    assert!(
        r.hm.log().contains("direction=\"outbound\""),
        "{}",
        r.hm.log()
    );
}

#[test]
fn forty_concurrent_smtp_sessions_are_all_scanned_and_delivered() {
    let r = rig(&common::clamd().address(), &[], &[]);
    let started = Instant::now();
    let replies: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let pf = &r.postfix;
                s.spawn(move || {
                    let raw = format!(
                        "From: Helen Okafor <{PARENT}>\r\nTo: {OFFICE}\r\nSubject: Note {i}\r\nMessage-ID: <note-{i}@example.com>\r\n\r\nNote number {i} about the trip.\r\n"
                    );
                    submit(pf, None, PARENT, OFFICE, raw.as_bytes())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let answered = started.elapsed();
    for reply in &replies {
        assert!(reply.starts_with("250"), "{reply}\n{}", r.hm.log());
    }
    r.postfix.wait_for(60, "all forty at the sink", || {
        r.sink.messages().len() == 40
    });
    let mut subjects: Vec<String> = r
        .sink
        .messages()
        .iter()
        .map(|m| {
            let text = m.text();
            assert!(text.contains("X-Hallmonitor-Verdict: pass\r\n"), "{text}");
            text.lines()
                .find(|l| l.starts_with("Subject: "))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 40);
    eprintln!("40 concurrent sessions answered in {answered:?}");
}

#[test]
fn shutdown_finishes_the_message_in_flight_and_then_defers_new_mail() {
    let (clamd, scans) = stalling_clamd();
    let mut r = rig(&clamd.to_string(), &["message_timeout_secs = 3"], &[]);
    let raw = read(&common::mail("eicar-zip.eml"));
    let in_flight = std::thread::scope(|s| {
        let pf = &r.postfix;
        let raw = &raw;
        let h = s.spawn(move || submit(pf, None, PARENT, OFFICE, raw));
        // Wait until the scan has started (clamd was asked).
        let deadline = Instant::now() + Duration::from_secs(20);
        while scans.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "{}", r.hm.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        r.hm.stop();
        h.join().unwrap()
    });
    // The scan could not finish in time: deferred, not accepted, not lost.
    assert!(
        in_flight.starts_with("451 4.7.1"),
        "{in_flight}\n{}",
        r.hm.log()
    );
    assert!(
        r.hm.log().contains("milter shutting down"),
        "{}",
        r.hm.log()
    );
    let clean = format!(
        "From: Helen Okafor <{PARENT}>\r\nTo: {OFFICE}\r\nSubject: Later\r\n\r\nLater.\r\n"
    );
    let reply = submit(&r.postfix, None, PARENT, OFFICE, clean.as_bytes());
    assert!(reply.starts_with('4'), "{reply}");
    assert!(r.sink.messages().is_empty());
    assert!(r.postfix.queue().is_empty());
}

/// `smtpd_milters = unix:PATH`: the socket gets `milter.socket_mode`, so
/// Postfix's smtpd (user postfix) can connect, and mail is scanned as over
/// TCP: clean mail delivered with our headers, EICAR held and never delivered.
#[test]
fn milter_over_a_unix_socket_scans_and_holds() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Postfix's smtpd must be able to reach the socket.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("milter.sock");
    let sink = Sink::start();
    let hm = Hallmonitor::start_in(
        dir,
        MilterSocket::Unix(socket.clone()),
        &common::clamd().address(),
        &["socket_mode = \"0666\""],
        &[],
    );
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "socket mode {mode:o}");
    let postfix = Postfix::start_milter(&hm.milter.spec(), sink.addr, &[]);
    let main_cf = std::fs::read_to_string(postfix.etc().join("main.cf")).unwrap();
    assert!(main_cf.contains(&format!("smtpd_milters = unix:{}", socket.display())));

    let clean = read(&common::mail("clean-text.eml"));
    let clean = String::from_utf8_lossy(&clean).replace("d.price@oakfield.sch.uk", PARENT);
    let reply = submit(&postfix, None, PARENT, OFFICE, clean.as_bytes());
    assert!(reply.starts_with("250 2.0.0 Ok"), "{reply}\n{}", hm.log());
    postfix.wait_for(30, "delivery at the sink", || sink.messages().len() == 1);
    let text = sink.messages()[0].text();
    assert!(text.contains("X-Hallmonitor-Verdict: pass\r\n"), "{text}");

    let eicar = read(&common::mail("eicar-zip.eml"));
    let reply = submit(&postfix, None, PARENT, OFFICE, &eicar);
    assert!(reply.starts_with("250"), "{reply}\n{}", hm.log());
    let deadline = Instant::now() + Duration::from_secs(20);
    while hm.held().is_empty() {
        assert!(Instant::now() < deadline, "not held: {}", hm.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(hm.held()[0].contains("virus/"), "{:?}", hm.held());
    deliver_marker_to(&postfix, &sink, "unix");
    assert_eq!(sink.messages().len(), 2, "EICAR must never arrive");
}

/// The README's set-up for Debian, whose Postfix runs smtpd and cleanup
/// chrooted in /var/spool/postfix: the socket lives in a setgid directory of
/// group postfix inside the queue directory, so it is created with group
/// postfix and the default `socket_mode` 0660, and Postfix names it by its
/// path inside the chroot (`unix:/hallmonitor/milter.sock`).
#[test]
fn milter_socket_inside_postfix_chroot_as_the_readme_sets_it_up() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let sink = Sink::start();
    let postfix = Postfix::start_milter_chrooted("unix:/hallmonitor/milter.sock", sink.addr);
    let master_cf = std::fs::read_to_string(postfix.etc().join("master.cf")).unwrap();
    assert!(
        master_cf.contains("cleanup unix n - y - 0 cleanup"),
        "{master_cf}"
    );

    // install -d -o hallmonitor -g postfix -m 2750 /var/spool/postfix/hallmonitor
    let group = Command::new("getent")
        .args(["group", "postfix"])
        .output()
        .unwrap();
    let gid: u32 = String::from_utf8_lossy(&group.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .expect("group postfix (Debian's postfix package creates it)");
    let dir = postfix.queue_dir().join("hallmonitor");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, None, Some(gid)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2750)).unwrap();
    let socket = dir.join("milter.sock");
    let hm = Hallmonitor::start_in(
        tempfile::tempdir().unwrap(),
        MilterSocket::Unix(socket.clone()),
        &common::clamd().address(),
        &[],
        &[],
    );
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid, "the socket takes the directory's group");

    let clean = read(&common::mail("clean-text.eml"));
    let clean = String::from_utf8_lossy(&clean).replace("d.price@oakfield.sch.uk", PARENT);
    let reply = submit(&postfix, None, PARENT, OFFICE, clean.as_bytes());
    assert!(
        reply.starts_with("250 2.0.0 Ok"),
        "{reply}\n{}\n{}",
        hm.log(),
        postfix.log()
    );
    postfix.wait_for(30, "delivery at the sink", || sink.messages().len() == 1);
    let text = sink.messages()[0].text();
    assert!(text.contains("X-Hallmonitor-Verdict: pass\r\n"), "{text}");

    // Mail submitted with sendmail (pickup, then cleanup: non_smtpd_milters)
    // goes through the same socket from the chrooted cleanup.
    sendmail(
        &postfix,
        OFFICE,
        PARENT,
        b"From: office@oakfield.sch.uk\nTo: helen.okafor@example.com\nSubject: Trip\n\nThe trip is on Friday.\n",
    );
    postfix.wait_for(30, "the local submission at the sink", || {
        sink.messages().len() == 2
    });
    let text = sink.messages()[1].text();
    assert!(text.contains("X-Hallmonitor-Verdict: pass\r\n"), "{text}");
}
