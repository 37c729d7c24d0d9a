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

/// What the sink received, without hallmonitor's own alerts and notices
/// (`X-Hallmonitor-Alert: 1`, sent in the background after a quarantine).
fn delivered(sink: &Sink) -> Vec<common::smtp::Delivered> {
    sink.messages()
        .into_iter()
        .filter(|m| !is_alert(m))
        .collect()
}

fn is_alert(m: &common::smtp::Delivered) -> bool {
    let header = &m.data[..m.data.len() - body_of(&m.data).len()];
    format!("\r\n{}", String::from_utf8_lossy(header)).contains("\r\nX-Hallmonitor-Alert: 1\r\n")
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
        .wait_for(30, "delivery at the sink", || delivered(&r.sink).len() == 1);
    let got = delivered(&r.sink);
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
    assert_eq!(delivered(&r.sink).len(), 1, "the virus must never arrive");
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
    assert!(delivered(&sink).is_empty());
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
        delivered(&sink).len() == 1 && pf.queue().is_empty()
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(delivered(&sink).len(), 1, "delivered exactly once");
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
        delivered(&r.sink).len() == 2 && r.postfix.queue().is_empty()
    });
    let got = delivered(&r.sink);
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
    assert!(delivered(&sink).is_empty());
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
        delivered(&sink).len() == 1 && pf.queue().is_empty()
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let got = delivered(&sink);
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
    assert!(delivered(&sink).is_empty(), "nothing may be delivered yet");
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
        delivered(&sink).len() == 1 && pf.queue().is_empty()
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(delivered(&sink).len(), 1, "delivered exactly once");
    drop(stuck);
}

// ---- verdicts, quarantine and the incident log behind Postfix ---------------

/// Rows of a query against the relay's incident log (`STATE/hallmonitor.db`),
/// one string per row, columns separated by `|` (the sqlite3 CLI).
fn db(relay: &Relay, sql: &str) -> Vec<String> {
    let out = std::process::Command::new("sqlite3")
        .arg(relay.state_dir().join("hallmonitor.db"))
        .arg(sql)
        .output()
        .expect("sqlite3 (apt-get install sqlite3)");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Submit a message through Postfix's `sendmail` (pickup): a local program
/// on the mail server, which the test school trusts as an identified sender.
fn sendmail(pf: &Postfix, from: &str, to: &str, raw: &[u8]) {
    use std::io::Write;
    let mut child = std::process::Command::new("/usr/sbin/sendmail")
        .arg("-C")
        .arg(pf.etc())
        .arg("-f")
        .arg(from)
        .arg("--")
        .arg(to)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sendmail");
    child.stdin.take().unwrap().write_all(raw).unwrap();
    assert!(child.wait().unwrap().success(), "sendmail failed");
}

/// Every file under `dir` (recursively) and its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A staff member's list of pupils' NI and NHS numbers, sent to an outside
/// address as a CSV attachment.
fn pupil_records_mail() -> Vec<u8> {
    let csv = "Forename,Surname,Form,NI number,NHS number\r\n\
               Tamsin,Wobblecourt,7B,JK 48 27 19 A,943 476 5919\r\n\
               Oswin,Quillfeather,7C,JR 55 10 82 C,401 023 2137\r\n\
               Marigold,Pennywhistle,8A,PL 37 64 20 B,943 476 5870\r\n\
               Bartholomew,Fennimore,8B,NE 91 28 46 D,450 557 7104\r\n";
    let b64 = base64(csv.as_bytes());
    let mut lines = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        lines.push_str(std::str::from_utf8(chunk).unwrap());
        lines.push_str("\r\n");
    }
    format!(
        "From: \"Daniel Price\" <d.price@oakfield.sch.uk>\r\n\
         To: nurse@health-visitors.example.org\r\n\
         Subject: Year 7 and 8 health records\r\n\
         Message-ID: <pd-outbound@oakfield.sch.uk>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Dear Nurse Adeyemi,\r\n\r\nThe list you asked for is attached.\r\n\r\nDaniel\r\n\
         --b1\r\n\
         Content-Type: text/csv; name=\"health.csv\"\r\n\
         Content-Disposition: attachment; filename=\"health.csv\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {lines}--b1--\r\n"
    )
    .into_bytes()
}

#[test]
fn profane_mail_is_tagged_and_pupil_records_going_out_are_held_with_masked_evidence() {
    let r = rig(common::clamd().address());
    let profane = format!(
        "From: Helen Okafor <{PARENT}>\r\nTo: {OFFICE}\r\nSubject: Parking again\r\n\
         Message-ID: <parking@example.com>\r\n\r\n\
         The parking outside the gate this morning was crap again. Please sort it out.\r\n"
    );
    assert!(submit(&r.postfix, PARENT, OFFICE, profane.as_bytes()).starts_with("250"));
    r.postfix
        .wait_for(30, "delivery at the sink", || delivered(&r.sink).len() == 1);
    let got = delivered(&r.sink);
    let text = got[0].text();
    assert!(
        text.contains("Subject: [Flagged: profanity] Parking again\r\n"),
        "{text}"
    );
    assert!(text.contains("X-Hallmonitor-Verdict: tag\r\n"), "{text}");
    assert_eq!(body_of(&got[0].data), body_of(profane.as_bytes()));
    assert_eq!(
        db(
            &r.relay,
            "SELECT action, categories FROM incidents WHERE subject = 'Parking again'"
        ),
        vec!["tag|profanity".to_string()]
    );
    assert!(r.relay.quarantined().is_empty());

    // Outbound, from a program on the mail server (identified staff).
    sendmail(
        &r.postfix,
        "d.price@oakfield.sch.uk",
        "nurse@health-visitors.example.org",
        &pupil_records_mail(),
    );
    r.postfix
        .wait_for(30, "the quarantine", || r.relay.quarantined().len() == 1);
    r.postfix
        .wait_for(30, "an empty queue", || r.postfix.queue().is_empty());
    assert_eq!(delivered(&r.sink).len(), 1, "the records must never leave");
    assert!(
        r.sink
            .messages()
            .iter()
            .all(|m| !m.rcpts.iter().any(|r| r.contains("health-visitors"))),
        "the records must never leave"
    );
    let incident = db(
        &r.relay,
        "SELECT action, categories, direction, sender_group FROM incidents \
         WHERE subject = 'Year 7 and 8 health records'",
    );
    assert_eq!(incident.len(), 1, "{incident:?}");
    assert!(
        incident[0].starts_with("quarantine|") && incident[0].contains("personal_data"),
        "{incident:?}"
    );
    assert!(incident[0].ends_with("|outbound|staff"), "{incident:?}");
    let held = db(&r.relay, "SELECT id, status FROM quarantine");
    assert_eq!(held, vec![format!("{}|held", r.relay.quarantined()[0])]);
    let evidence = db(
        &r.relay,
        "SELECT evidence FROM findings WHERE category = 'personal_data'",
    );
    assert!(
        evidence.iter().any(|e| e.contains("4 NI numbers")),
        "{evidence:?}"
    );
    // No full number in the database (with its WAL) or the metadata file.
    let state = r.relay.state_dir();
    let mut checked = 0;
    for (path, bytes) in files_under(&state) {
        if path.extension().is_some_and(|e| e == "eml") {
            continue; // the held message itself, as it was sent
        }
        checked += 1;
        let text = String::from_utf8_lossy(&bytes);
        for full in [
            "JK 48 27 19 A",
            "JK482719A",
            "PL 37 64 20 B",
            "PL376420B",
            "943 476 5919",
            "9434765919",
            "401 023 2137",
            "4010232137",
        ] {
            assert!(
                !text.contains(full),
                "{full} in {}: masked evidence only",
                path.display()
            );
        }
    }
    assert!(checked >= 2, "the database and the .json were checked");
    // Nor in any alert that went out about it.
    for m in r.sink.messages() {
        let text = m.text();
        for full in ["JK 48 27 19 A", "JK482719A", "943 476 5919", "9434765919"] {
            assert!(!text.contains(full), "{full} in a mail: {text}");
        }
    }
}

/// A policy that refuses chain letters outright, in a rules directory that
/// overrides the shipped `policy.toml` by name.
fn rejecting_rules_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/policy.toml"),
    )
    .unwrap();
    let block = "[[rule]]\nmatch = \"chain_letter\"\naction = \"quarantine\"\n";
    assert!(
        shipped.contains(block),
        "the shipped chain-letter rule moved"
    );
    let policy = shipped.replace(
        block,
        "[[rule]]\nmatch = \"chain_letter\"\naction = \"reject\"\n",
    );
    std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
    dir
}

#[test]
fn rejected_chain_letter_bounces_to_the_sender_with_the_policy_clause() {
    let sink = Sink::start();
    let reinject = free_addr();
    let rules = rejecting_rules_dir();
    let relay = Relay::start(RelayOptions {
        listen: None,
        next_hop: reinject,
        clamd: common::clamd().address(),
        relay: vec![],
        // The harness has no [rules] option: open that table after [limits].
        limits: vec![
            "[rules]".into(),
            format!("dir = \"{}\"", rules.path().display()),
        ],
    });
    let pf = Postfix::start(relay.addr, reinject, sink.addr);
    let chain = format!(
        "From: Helen Okafor <{PARENT}>\r\nTo: {OFFICE}\r\nSubject: FW: FW: send this on\r\n\
         Message-ID: <chain@example.com>\r\n\r\n\
         Forward this to 10 people within the next hour or you will have bad luck for seven years.\r\n\
         This is not a joke. Pass it on and make a wish! Do not break the chain.\r\n"
    );
    assert!(submit(&pf, PARENT, OFFICE, chain.as_bytes()).starts_with("250"));
    pf.wait_for(30, "the bounce", || {
        delivered(&sink).len() == 1 && pf.queue().is_empty()
    });
    let got = delivered(&sink);
    assert!(got[0].mail.starts_with("MAIL FROM:<>"), "{:?}", got[0].mail);
    assert!(got[0].rcpts[0].contains(PARENT), "{:?}", got[0].rcpts);
    let dsn = got[0].text();
    assert!(
        dsn.contains("Forwarding chain letters is not permitted."),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5."), "{dsn}");
    assert!(pf.log().contains("status=bounced"), "{}", pf.log());
    assert_eq!(
        db(&relay, "SELECT action, categories FROM incidents"),
        vec!["reject|chain_letter".to_string()]
    );
    assert!(relay.quarantined().is_empty());
}

#[test]
fn oversize_message_is_refused_by_the_relay_and_bounced_by_postfix() {
    let sink = Sink::start();
    let reinject = free_addr();
    let relay = Relay::start(RelayOptions {
        listen: None,
        next_hop: reinject,
        clamd: common::clamd().address(),
        relay: vec![],
        limits: vec!["max_message_bytes = 100000".into()],
    });
    let pf = Postfix::start(relay.addr, reinject, sink.addr);
    let mut raw =
        format!("From: Helen Okafor <{PARENT}>\r\nTo: {OFFICE}\r\nSubject: Holiday photos\r\n\r\n");
    while raw.len() < 300_000 {
        raw.push_str("Lots of words about the school trip to the seaside, line after line.\r\n");
    }
    // Postfix itself takes it (its limit is 50 MB): the relay's is smaller.
    assert!(submit(&pf, PARENT, OFFICE, raw.as_bytes()).starts_with("250"));
    pf.wait_for(30, "the bounce", || {
        delivered(&sink).len() == 1 && pf.queue().is_empty()
    });
    let got = delivered(&sink);
    assert!(got[0].mail.starts_with("MAIL FROM:<>"), "{:?}", got[0].mail);
    assert!(got[0].rcpts[0].contains(PARENT), "{:?}", got[0].rcpts);
    let dsn = got[0].text();
    assert!(dsn.contains("5.3.4"), "{dsn}");
    assert!(pf.log().contains("status=bounced"), "{}", pf.log());
    assert!(relay.quarantined().is_empty());
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(delivered(&sink).len(), 1, "the office never gets it");
}

#[test]
fn eight_bit_and_smtputf8_mail_arrives_with_the_body_unchanged() {
    let r = rig(common::clamd().address());
    let utf8_rcpt = "jürgen.müller@oakfield.sch.uk";
    let utf8 = format!(
        "From: Zoë Ångström <zoë@example.com>\r\nTo: Jürgen <{utf8_rcpt}>\r\n\
         Subject: Schöne Grüße — 日本の学校\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße aus Köln! Café, naïve, façade — 日本語のテキスト.\r\n.leading dot line\r\n"
    );
    let mut c = Client::connect(r.postfix.smtp);
    c.reply();
    assert!(c.cmd("EHLO client.example").contains("SMTPUTF8"));
    let mail = c.cmd("MAIL FROM:<zoë@example.com> SMTPUTF8 BODY=8BITMIME");
    assert!(mail.starts_with("250"), "{mail}");
    assert!(c.cmd(&format!("RCPT TO:<{utf8_rcpt}>")).starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.data(utf8.as_bytes()).starts_with("250"));
    // Latin-1 8-bit text, not UTF-8 at all.
    let mut latin1 = format!(
        "From: Helen Okafor <{PARENT}>\r\nTo: {OFFICE}\r\nSubject: Menu\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    .into_bytes();
    latin1.extend_from_slice(b"Cr\xe8me br\xfbl\xe9e and caf\xe9 au lait, \xa35.\r\n");
    assert!(
        c.cmd(&format!("MAIL FROM:<{PARENT}> BODY=8BITMIME"))
            .starts_with("250")
    );
    assert!(c.cmd(&format!("RCPT TO:<{OFFICE}>")).starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.data(&latin1).starts_with("250"));
    let _ = c.cmd("QUIT");
    r.postfix.wait_for(30, "both at the sink", || {
        delivered(&r.sink).len() == 2 && r.postfix.queue().is_empty()
    });
    let got = delivered(&r.sink);
    let u = got
        .iter()
        .find(|m| m.mail.contains("zoë@example.com"))
        .expect("the UTF-8 message");
    assert!(u.mail.contains("SMTPUTF8"), "{}", u.mail);
    assert!(u.rcpts[0].contains(utf8_rcpt), "{:?}", u.rcpts);
    assert!(
        u.text().contains("Subject: Schöne Grüße — 日本の学校\r\n"),
        "{}",
        u.text()
    );
    assert_eq!(body_of(&u.data), body_of(utf8.as_bytes()));
    let l = got
        .iter()
        .find(|m| m.mail.contains(PARENT))
        .expect("the Latin-1 message");
    assert_eq!(body_of(&l.data), body_of(&latin1));
}

// ---- crashes in the middle of things ----------------------------------------

/// A TCP proxy between Postfix and the relay that passes everything, except
/// that the first session stops forwarding (holds the rest of the message)
/// once `hold_after` bytes from Postfix have passed, and says so on the
/// channel. When the relay's side closes, Postfix's side is closed too.
fn holding_proxy(
    to: std::net::SocketAddr,
    hold_after: usize,
) -> (std::net::SocketAddr, std::sync::mpsc::Receiver<usize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let held = std::sync::Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut relay) = std::net::TcpStream::connect(to) else {
                continue; // the relay is down: Postfix sees the close
            };
            let (tx, held) = (tx.clone(), held.clone());
            let (mut c2, mut r2) = (client.try_clone().unwrap(), relay.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut r2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let mut passed = 0usize;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if relay.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    passed += n;
                    if passed >= hold_after && !held.swap(true, Ordering::SeqCst) {
                        let _ = tx.send(passed);
                        return; // hold the rest until the relay goes away
                    }
                }
                let _ = relay.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (addr, rx)
}

#[test]
fn relay_killed_in_the_middle_of_data_defers_and_delivers_once_after_restart() {
    let sink = Sink::start();
    let reinject = free_addr();
    let listen = free_addr();
    let first = Relay::start(RelayOptions {
        listen: Some(listen),
        next_hop: reinject,
        clamd: common::clamd().address(),
        relay: vec![],
        limits: vec![],
    });
    let (proxy, holding) = holding_proxy(listen, 1024 * 1024);
    let pf = Postfix::start(proxy, reinject, sink.addr);
    let mut raw = format!(
        "From: Helen Okafor <{PARENT}>\r\nTo: {OFFICE}\r\nSubject: Minutes of every meeting\r\n\r\n"
    );
    let mut n = 0u32;
    while raw.len() < 4 * 1024 * 1024 {
        n += 1;
        raw.push_str(&format!(
            "Line {n}: the governors approved the minutes of the previous meeting.\r\n"
        ));
    }
    assert!(submit(&pf, PARENT, OFFICE, raw.as_bytes()).starts_with("250"));
    // The relay has the first megabyte of the 4 MB message, no more.
    let passed = holding
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("Postfix sent the message to the relay");
    assert!(passed < raw.len(), "{passed}");
    first.signal(libc::SIGKILL);
    pf.wait_for(30, "a deferral after the kill", || {
        pf.log().contains("status=deferred") && !pf.queue().is_empty()
    });
    let deferred: Vec<String> = pf
        .log()
        .lines()
        .filter(|l| l.contains("status=deferred"))
        .map(str::to_string)
        .collect();
    assert!(
        deferred.iter().any(|l| l.contains("lost connection")),
        "{deferred:?}"
    );
    assert!(delivered(&sink).is_empty(), "nothing may be delivered yet");
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
        delivered(&sink).len() == 1 && pf.queue().is_empty()
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let got = delivered(&sink);
    assert_eq!(got.len(), 1, "delivered exactly once");
    assert!(
        body_of(&got[0].data) == body_of(raw.as_bytes()),
        "body changed"
    );
    drop(first);
}

/// `hallmonitor serve` on a config of our own, so that a restarted relay
/// keeps its state directory (the harness gives each relay a new one).
struct Serve {
    child: std::process::Child,
}

impl Serve {
    fn start(
        config: &std::path::Path,
        listen: std::net::SocketAddr,
        next_hop: std::net::SocketAddr,
        clamd: &str,
    ) -> Serve {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_extension("log"))
            .unwrap();
        let child = std::process::Command::new(common::HALLMONITOR)
            .arg("--config")
            .arg(config)
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--next-hop")
            .arg(next_hop.to_string())
            .env("HALLMONITOR_CLAMD", clamd)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("hallmonitor serve");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(listen).is_err() {
            assert!(std::time::Instant::now() < deadline, "serve did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Serve { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

#[test]
fn scan_failure_count_survives_a_restart_and_the_third_attempt_is_held() {
    let sink = Sink::start();
    let reinject = free_addr();
    let listen = free_addr();
    let clamd = common::confused_clamd().to_string();
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(common::test_config()).unwrap();
    let config = dir.path().join("hallmonitor.toml");
    std::fs::write(
        &config,
        format!("[state]\ndir = \"state\"\n\n[admin]\nlisten = \"\"\n\n{base}"),
    )
    .unwrap();
    let sqlite = |sql: &str| -> Vec<String> {
        let out = std::process::Command::new("sqlite3")
            .arg(dir.path().join("state/hallmonitor.db"))
            .arg(sql)
            .output()
            .expect("sqlite3");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let mut first = Serve::start(&config, listen, reinject, &clamd);
    let pf = Postfix::start(listen, reinject, sink.addr);
    let clean = read(&common::mail("clean-text.eml"));
    let raw = String::from_utf8_lossy(&clean).replace("d.price@oakfield.sch.uk", PARENT);
    assert!(submit(&pf, PARENT, OFFICE, raw.as_bytes()).starts_with("250"));
    let queue = pf.queue();
    assert_eq!(queue.len(), 1, "{queue:?}");
    let qid = queue[0]["queue_id"].as_str().unwrap().to_string();
    // Two failed attempts (451 each; Postfix retries after its backoff),
    // then the relay dies before Postfix's third.
    let count = format!("SELECT attempts FROM scan_failures WHERE queue_id = '{qid}'");
    pf.wait_for(30, "two failed attempts", || sqlite(&count) == ["2"]);
    first.kill();
    assert_eq!(sqlite(&count), ["2"], "{}", pf.log());
    assert!(pf.log().contains("451 4.7.1"), "{}", pf.log());
    let _second = Serve::start(&config, listen, reinject, &clamd);
    let mut polls = 0u32;
    let messages = dir.path().join("state/messages");
    let held = || {
        std::fs::read_dir(&messages)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    };
    pf.wait_for(60, "the third attempt held", || {
        if polls.is_multiple_of(20) {
            pf.flush();
        }
        polls += 1;
        held() == 1 && pf.queue().is_empty()
    });
    assert!(
        delivered(&sink).is_empty(),
        "an unscanned message never passes"
    );
    let incident = sqlite("SELECT action, categories, rules, queue_id FROM incidents");
    assert_eq!(incident.len(), 1, "{incident:?}");
    assert!(
        incident[0].starts_with("quarantine|banned_attachment|")
            && incident[0].contains("banned_attachment/unscannable")
            && incident[0].ends_with(&format!("|{qid}")),
        "{incident:?}"
    );
    assert_eq!(sqlite("SELECT status FROM quarantine"), ["held"]);
}
