//! Alerts, sender notices and operational alerts, end to end: the real
//! `hallmonitor serve` with the test clamd, real mail sent to it over SMTP,
//! and the alerts it sends captured by a loopback SMTP sink and parsed.
//!
//! By default alerts go to the relay's next hop, so the recording `Sink`
//! that receives the scanned mail also receives the alerts; they are told
//! apart by `X-Hallmonitor-Alert: 1`.

mod common;

use common::smtp::{Delivered, Sink, free_addr, read, send_mail};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARENT: &str = "helen.okafor@example.com";
const OFFICE: &str = "office@oakfield.sch.uk";
const TEACHER: &str = "d.price@oakfield.sch.uk";
const HEAD: &str = "head@oakfield.sch.uk";
const CHAIR: &str = "chair@oakfield.sch.uk";
const DSL: &str = "dsl@oakfield.sch.uk";
const ICT: &str = "ict@oakfield.sch.uk";
const BASE_URL: &str = "https://hallmonitor.oakfield.test";

/// Identifiers in the personal-data message; none may appear in clear in
/// any alert or notice.
const CLEAR: &[&str] = &[
    "AB123456C",
    "AB 12 34 56 C",
    "703 219 8643",
    "7032198643",
    "4111 1111 1111 1111",
    "4111111111111111",
];

/// `hallmonitor serve` with a `[notify]` section of the test's choosing.
struct Server {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Child,
}

impl Server {
    fn start(next_hop: SocketAddr, clamd: &str, notify: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::read_to_string(common::test_config()).unwrap();
        let base = without_table(&base, "notify");
        let admin = free_addr();
        let config = format!(
            "[state]\ndir = \"state\"\n\n[admin]\nlisten = \"{admin}\"\nbase_url = \"{BASE_URL}\"\n\n\
             [notify]\n{}\n\n{base}",
            notify.join("\n")
        );
        let path = dir.path().join("hallmonitor.toml");
        std::fs::write(&path, config).unwrap();
        let addr = free_addr();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(common::HALLMONITOR)
            .arg("--config")
            .arg(&path)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--next-hop")
            .arg(next_hop.to_string())
            .env("HALLMONITOR_CLAMD", clamd)
            .env("HALLMONITOR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let s = Server { addr, dir, child };
        wait_until(20, "the relay to listen", || {
            TcpStream::connect(addr).is_ok()
        });
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("state/hallmonitor.db")
    }

    /// One value from the incident log (through the sqlite3 command).
    fn sql(&self, query: &str) -> String {
        let out = Command::new("sqlite3")
            .arg("-cmd")
            .arg(".timeout 5000")
            .arg(self.db())
            .arg(query)
            .output()
            .expect("sqlite3 (Debian package sqlite3) must be installed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The config text without one `[table]` (the shared test config may switch
/// alerts off for the other tests).
fn without_table(text: &str, table: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            skipping = t == format!("[{table}]");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The message as Postfix hands it over after `login` authenticated.
fn with_login(raw: &[u8], queue_id: &str, rcpt: &str, login: &str) -> Vec<u8> {
    let mut out = format!(
        "Received: from laptop (unknown [192.0.2.10])\r\n\t(Authenticated sender: {login})\r\n\tby mx.oakfield.sch.uk (Postfix) with ESMTPSA id {queue_id}\r\n\tfor <{rcpt}>; Tue, 10 Mar 2026 09:15:01 +0000 (GMT)\r\n"
    )
    .into_bytes();
    out.extend_from_slice(raw);
    out
}

fn message(from: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@test>\r\nDate: Tue, 10 Mar 2026 09:15:00 +0000\r\n\r\n{body}\r\n",
        subject.replace(' ', ".")
    )
    .into_bytes()
}

const PERSONAL: &str = "Pupil: Ethan Marsh\r\nNI number: AB 12 34 56 C\r\nNHS number: 703 219 8643\r\nCard: 4111 1111 1111 1111";
const THREAT: &str = "I know where you live. Watch your back.";
const CHAIN: &str = "Forward this message to 10 people within the next hour or you will have bad luck for seven years.\r\nThis is not a joke. Send it to everyone you know. Don't break the chain!";

/// A mail hallmonitor sent (alert, digest, notice or ops alert), parsed.
#[derive(Debug, Clone)]
struct Alert {
    to: String,
    raw: String,
    subject: String,
    kind: String,
    text: String,
}

fn alerts(sink: &Sink) -> Vec<Alert> {
    sink.messages().iter().filter_map(parse_alert).collect()
}

fn parse_alert(d: &Delivered) -> Option<Alert> {
    let msg = mail_parser::MessageParser::default().parse(&d.data)?;
    msg.header_raw("X-Hallmonitor-Alert")?;
    let to = d
        .rcpts
        .first()?
        .trim_start_matches("RCPT TO:<")
        .trim_end_matches('>')
        .to_ascii_lowercase();
    Some(Alert {
        to,
        raw: d.text(),
        subject: msg.subject().unwrap_or_default().to_string(),
        kind: msg
            .header_raw("X-Hallmonitor-Kind")
            .unwrap_or_default()
            .trim()
            .to_string(),
        text: msg.body_text(0).unwrap_or_default().into_owned(),
    })
}

fn quarantine_id(reply: &str) -> String {
    reply
        .trim()
        .rsplit(' ')
        .next()
        .expect("quarantine id in the reply")
        .to_string()
}

fn held(reply: &str) -> String {
    assert!(
        reply.starts_with("250 2.0.0 Ok: quarantined as "),
        "{reply}"
    );
    quarantine_id(reply)
}

fn assert_masked(a: &Alert) {
    for clear in CLEAR {
        assert!(
            !a.raw.contains(clear) && !a.text.contains(clear),
            "{clear} in clear in the mail to {}:\n{}",
            a.to,
            a.text
        );
    }
}

#[test]
fn alerts_reach_head_chair_and_dsl_as_the_verdict_says_masked_and_marked() {
    let sink = Sink::start();
    let s = Server::start(
        sink.addr,
        &common::clamd().address(),
        &["batch_threshold = 20"],
    );
    // 1. A virus from a parent: the head teacher.
    let virus = held(&send_mail(
        s.addr,
        PARENT,
        &[OFFICE],
        "4QNVIR1",
        &read(&common::mail("eicar-zip.eml")),
    ));
    // 2. Pupil data sent out by a teacher: the head teacher; a notice to the teacher.
    let pd = with_login(
        &message(
            TEACHER,
            "nurse@example.org",
            "Pupil details AB123456C",
            PERSONAL,
        ),
        "4QNPD1",
        "nurse@example.org",
        "d.price",
    );
    let pd = held(&send_mail(
        s.addr,
        TEACHER,
        &["nurse@example.org"],
        "4QNPD1",
        &pd,
    ));
    // 3. A threat from a teacher: the head teacher and the DSL.
    let threat = with_login(
        &message(TEACHER, OFFICE, "Teacher threat", THREAT),
        "4QNTH1",
        OFFICE,
        "d.price",
    );
    let threat = held(&send_mail(s.addr, TEACHER, &[OFFICE], "4QNTH1", &threat));
    // 4. A threat from the head teacher: the Chair and the DSL, never the head.
    let head_threat = with_login(
        &message(HEAD, OFFICE, "Head threat", THREAT),
        "4QNTH2",
        OFFICE,
        HEAD,
    );
    let head_threat = held(&send_mail(s.addr, HEAD, &[OFFICE], "4QNTH2", &head_threat));

    // Head teacher 3 (virus, pupil data, threat), DSL 2, Chair 1, notice 1.
    wait_until(30, "seven mails from hallmonitor", || {
        alerts(&sink).len() >= 7
    });
    wait_until(10, "an empty outbox", || {
        s.sql("SELECT count(*) FROM outbox WHERE status != 'sent'") == "0"
    });
    let all = alerts(&sink);
    assert_eq!(all.len(), 7, "{all:#?}");
    let to = |who: &str| -> Vec<Alert> { all.iter().filter(|a| a.to == who).cloned().collect() };
    let link = |id: &str| format!("{BASE_URL}/message/{id}");

    let head = to(HEAD);
    assert_eq!(head.len(), 3, "{head:#?}");
    assert!(head.iter().all(|a| a.kind == "alert"));
    assert!(head.iter().any(|a| a.text.contains(&link(&virus))));
    assert!(head.iter().any(|a| a.text.contains(&link(&pd))));
    assert!(head.iter().any(|a| a.text.contains(&link(&threat))));
    assert!(
        !head.iter().any(|a| a.text.contains(&link(&head_threat))),
        "the head teacher must not be told about their own message"
    );
    let dsl = to(DSL);
    assert_eq!(dsl.len(), 2, "{dsl:#?}");
    assert!(dsl.iter().any(|a| a.text.contains(&link(&threat))));
    assert!(dsl.iter().any(|a| a.text.contains(&link(&head_threat))));
    let chair = to(CHAIR);
    assert_eq!(chair.len(), 1, "{chair:#?}");
    assert!(chair[0].text.contains(&link(&head_threat)));
    assert!(
        chair[0].text.contains("Chair of Governors"),
        "{}",
        chair[0].text
    );
    let notices = to(TEACHER);
    assert_eq!(notices.len(), 1, "{notices:#?}");
    assert_eq!(notices[0].kind, "notice");

    // What the pupil-data alert says: what, where, clause, action, who, link.
    let pd_alert = head.iter().find(|a| a.text.contains(&link(&pd))).unwrap();
    let t = &pd_alert.text;
    assert!(t.contains("personal data"), "{t}");
    assert!(t.contains("AB12****C"), "masked evidence is shown: {t}");
    assert!(t.contains("in body"), "{t}");
    assert!(t.contains("Do not reveal personal information"), "{t}");
    assert!(t.contains("held in quarantine"), "{t}");
    assert!(t.contains(&format!("Sender: {TEACHER}")), "{t}");
    assert!(t.contains("Recipients: nurse@example.org"), "{t}");
    assert!(t.contains("identified as d.price"), "{t}");

    for a in &all {
        assert!(
            a.raw.contains("\r\nAuto-Submitted: auto-generated\r\n")
                || a.raw.starts_with("Auto-Submitted: auto-generated\r\n"),
            "{}",
            a.raw
        );
        assert!(a.raw.contains("X-Hallmonitor-Alert: 1\r\n"), "{}", a.raw);
        assert!(
            !a.raw.contains("EICAR-STANDARD"),
            "the offending attachment is never sent on"
        );
        assert!(
            !a.raw
                .to_ascii_lowercase()
                .contains("content-disposition: attachment")
        );
        assert_masked(a);
    }
    // The scanned mail itself was not delivered: the sink only has alerts.
    assert_eq!(sink.messages().len(), all.len());
}

#[test]
fn sender_notices_go_to_identified_school_senders_only() {
    let sink = Sink::start();
    let s = Server::start(sink.addr, &common::clamd().address(), &[]);
    // A chain letter from a logged-in teacher: notice (on by default for chain letters).
    let staff = with_login(
        &message(TEACHER, "friend@example.org", "FW: FW: luck", CHAIN),
        "4QNCH1",
        "friend@example.org",
        "d.price",
    );
    held(&send_mail(
        s.addr,
        TEACHER,
        &["friend@example.org"],
        "4QNCH1",
        &staff,
    ));
    // The same from an external sender: alert, never a notice.
    let ext = message(PARENT, OFFICE, "FW: FW: luck again", CHAIN);
    held(&send_mail(s.addr, PARENT, &[OFFICE], "4QNCH2", &ext));
    // Pupil data from a teacher's address without a login (not identified): no notice.
    let anon = message(
        TEACHER,
        "nurse@example.org",
        "Unidentified details",
        PERSONAL,
    );
    let reply = send_mail(s.addr, TEACHER, &["nurse@example.org"], "4QNPD2", &anon);
    assert!(reply.starts_with("250"), "{reply}");
    // A threat from a teacher: held, but notices are off for profanity by default.
    let threat = with_login(
        &message(TEACHER, OFFICE, "Threat again", THREAT),
        "4QNTH3",
        OFFICE,
        "d.price",
    );
    held(&send_mail(s.addr, TEACHER, &[OFFICE], "4QNTH3", &threat));

    wait_until(30, "alerts and notices", || {
        alerts(&sink).iter().any(|a| a.kind == "notice")
            && s.sql("SELECT count(*) FROM outbox") != "0"
            && s.sql("SELECT count(*) FROM outbox WHERE status != 'sent'") == "0"
    });
    let all = alerts(&sink);
    let notices: Vec<&Alert> = all.iter().filter(|a| a.kind == "notice").collect();
    assert_eq!(notices.len(), 1, "{all:#?}");
    let n = notices[0];
    assert_eq!(n.to, TEACHER);
    assert!(
        n.text.starts_with("Your message to friend@example.org (\"FW: FW: luck\") was held for review because it appears to contain a chain letter; the head teacher has been told."),
        "{}",
        n.text
    );
    assert!(n.raw.contains("X-Hallmonitor-Alert: 1\r\n"));
    assert!(
        !all.iter().any(|a| a.to == PARENT),
        "never to external senders"
    );
    for a in &all {
        assert_masked(a);
    }
}

#[test]
fn a_burst_of_alerts_to_one_person_becomes_one_digest() {
    let sink = Sink::start();
    let s = Server::start(
        sink.addr,
        &common::clamd().address(),
        &["batch_threshold = 2", "batch_window = \"8s\""],
    );
    let mut ids = Vec::new();
    for n in 0..5 {
        let started = Instant::now();
        let reply = send_mail(
            s.addr,
            PARENT,
            &[OFFICE],
            &format!("4QNBUR{n}"),
            &read(&common::mail("eicar-zip.eml")),
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        ids.push(held(&reply));
    }
    wait_until(30, "the digest", || {
        alerts(&sink).iter().any(|a| a.kind == "digest")
            && s.sql("SELECT count(*) FROM outbox WHERE status IN ('pending', 'batched')") == "0"
    });
    let head: Vec<Alert> = alerts(&sink).into_iter().filter(|a| a.to == HEAD).collect();
    let single: Vec<&Alert> = head.iter().filter(|a| a.kind == "alert").collect();
    let digests: Vec<&Alert> = head.iter().filter(|a| a.kind == "digest").collect();
    let outbox =
        s.sql("SELECT id, created_at, kind, status, attempts, digest_id, sent_at FROM outbox");
    let subjects: Vec<&str> = head.iter().map(|a| a.subject.as_str()).collect();
    assert_eq!(single.len(), 2, "{subjects:?}\n{outbox}");
    assert_eq!(digests.len(), 1, "{subjects:?}\n{outbox}");
    let d = digests[0];
    assert_eq!(
        d.subject, "[hallmonitor] Digest: 3 alerts",
        "{subjects:?}\n{outbox}"
    );
    let in_digest = ids
        .iter()
        .filter(|id| d.text.contains(&format!("{BASE_URL}/message/{id}")))
        .count();
    let alone = ids
        .iter()
        .filter(|id| {
            single
                .iter()
                .any(|a| a.text.contains(&format!("{BASE_URL}/message/{id}")))
        })
        .count();
    assert_eq!((alone, in_digest), (2, 3), "{}", d.text);
    assert!(d.raw.contains("Auto-Submitted: auto-generated\r\n"));
}

/// A tiny SMTP server on a given address, started late.
fn late_sink(addr: SocketAddr) -> Arc<Mutex<Vec<String>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let listener = TcpListener::bind(addr).expect("bind the late sink");
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                let _ = w.write_all(b"220 late ESMTP\r\n");
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let up = line.to_ascii_uppercase();
                    if up.starts_with("DATA") {
                        let _ = w.write_all(b"354 go\r\n");
                        loop {
                            let mut l = String::new();
                            if r.read_line(&mut l).unwrap_or(0) == 0 {
                                return;
                            }
                            if l == ".\r\n" {
                                break;
                            }
                            data.push_str(&l);
                        }
                        g.lock().unwrap().push(std::mem::take(&mut data));
                        let _ = w.write_all(b"250 2.0.0 queued\r\n");
                    } else if up.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        return;
                    } else if up.starts_with("EHLO") {
                        let _ = w.write_all(b"250-late\r\n250 8BITMIME\r\n");
                    } else {
                        let _ = w.write_all(b"250 ok\r\n");
                    }
                }
            });
        }
    });
    got
}

#[test]
fn a_failed_alert_is_retried_and_never_holds_up_mail() {
    let sink = Sink::start();
    let alert_server = free_addr();
    let s = Server::start(
        sink.addr,
        &common::clamd().address(),
        &[
            &format!("smtp = \"{alert_server}\""),
            "retry = [\"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\"]",
        ],
    );
    let started = Instant::now();
    let id = held(&send_mail(
        s.addr,
        PARENT,
        &[OFFICE],
        "4QNRET1",
        &read(&common::mail("eicar-zip.eml")),
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "mail flow waited for the alert: {:?}",
        started.elapsed()
    );
    // A clean message right after is relayed while the alert keeps failing.
    let clean = with_login(
        &read(&common::mail("clean-text.eml")),
        "4QNRET2",
        OFFICE,
        "d.price",
    );
    let reply = send_mail(s.addr, TEACHER, &[OFFICE], "4QNRET2", &clean);
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(sink.messages().len(), 1);
    wait_until(30, "two failed attempts", || {
        s.sql("SELECT attempts >= 2 AND status = 'pending' AND last_error IS NOT NULL FROM outbox WHERE recipient = 'head@oakfield.sch.uk'")
            == "1"
    });
    // The alert server comes back: the alert is delivered.
    let got = late_sink(alert_server);
    wait_until(30, "the alert after the retry", || {
        got.lock().unwrap().iter().any(|m| {
            mail_parser::MessageParser::default()
                .parse(m.as_bytes())
                .and_then(|p| p.body_text(0).map(|t| t.contains(&id)))
                .unwrap_or(false)
        })
    });
    wait_until(10, "the outbox row marked sent", || {
        s.sql("SELECT status FROM outbox WHERE recipient = 'head@oakfield.sch.uk'") == "sent"
    });
    assert!(s.log().contains("send failed"), "{}", s.log());
}

#[test]
fn clamd_unreachable_is_mailed_to_the_ict_admin_once_per_interval() {
    let sink = Sink::start();
    let dead = free_addr();
    let s = Server::start(
        sink.addr,
        &dead.to_string(),
        &["ops_check_every = \"1s\"", "ops_interval = \"1h\""],
    );
    wait_until(30, "the operational alert", || {
        alerts(&sink)
            .iter()
            .any(|a| a.to == ICT && a.subject.contains("clamd"))
    });
    // Several more checks find the same problem; it is not mailed again.
    wait_until(30, "three more checks", || {
        s.log().matches("operational check").count() >= 4
    });
    wait_until(10, "an empty outbox", || {
        s.sql("SELECT count(*) FROM outbox WHERE status != 'sent'") == "0"
    });
    let ops: Vec<Alert> = alerts(&sink)
        .into_iter()
        .filter(|a| a.to == ICT && a.subject.contains("clamd"))
        .collect();
    assert_eq!(ops.len(), 1, "{ops:#?}");
    assert_eq!(ops[0].kind, "ops");
    assert!(ops[0].text.contains("unreachable"), "{}", ops[0].text);
    assert!(ops[0].text.contains(&dead.to_string()), "{}", ops[0].text);
    assert!(ops[0].raw.contains("Auto-Submitted: auto-generated\r\n"));
}
