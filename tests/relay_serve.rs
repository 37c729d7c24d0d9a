//! `hallmonitor serve` as Postfix's content filter, driven over real sockets:
//! the real binary, the private test clamd, a recording next hop on
//! 127.0.0.1, and an SMTP client speaking as Postfix's `scan` transport does
//! (EHLO, XFORWARD, MAIL, RCPT, DATA). Each test checks what the school would
//! notice: mail arriving (once, unchanged), held, or left with Postfix (4xx).

mod common;
// Only some of its helpers are used here.
#[allow(dead_code)]
#[path = "common/postfix.rs"]
mod postfix;

use common::smtp::{Client, Relay, RelayOptions, Sink, free_addr, read, send_mail};
use postfix::Postfix;
use std::time::Duration;

const PARENT: &str = "helen.okafor@example.com";
const OFFICE: &str = "office@oakfield.sch.uk";

fn relay_with(sink: &Sink, relay: &[&str], limits: &[&str]) -> Relay {
    Relay::start(RelayOptions {
        listen: None,
        next_hop: sink.addr,
        clamd: common::clamd().address(),
        relay: relay.iter().map(|s| s.to_string()).collect(),
        limits: limits.iter().map(|s| s.to_string()).collect(),
    })
}

/// The message as Postfix hands it over after a staff member logged in: with
/// the Received header Postfix adds (`smtpd_sasl_authenticated_header = yes`)
/// whose queue id is the XFORWARD IDENT.
fn from_staff(raw: &[u8], queue_id: &str, rcpt: &str) -> Vec<u8> {
    let mut out = format!(
        "Received: from laptop (unknown [192.0.2.10])\r\n\t(Authenticated sender: d.price)\r\n\tby mx.oakfield.sch.uk (Postfix) with ESMTPSA id {queue_id}\r\n\tfor <{rcpt}>; Tue, 10 Mar 2026 09:15:01 +0000 (GMT)\r\n"
    )
    .into_bytes();
    out.extend_from_slice(raw);
    out
}

const TEACHER: &str = "d.price@oakfield.sch.uk";

fn relay(sink: &Sink) -> Relay {
    relay_with(sink, &[], &[])
}

/// Our three headers, then the message exactly as sent.
fn assert_passed_unchanged(delivered: &[u8], sent: &[u8], verdict: &str) {
    let text = String::from_utf8_lossy(delivered);
    let expected_head = format!(
        "X-Hallmonitor-Verdict: {verdict}\r\nX-Hallmonitor-Categories: none\r\nX-Hallmonitor-Version: {}\r\n",
        hallmonitor::VERSION
    );
    assert!(text.starts_with(&expected_head), "{text}");
    assert_eq!(&delivered[expected_head.len()..], sent, "{text}");
}

#[test]
fn clean_message_arrives_once_byte_identical_with_our_headers() {
    let sink = Sink::start();
    let r = relay(&sink);
    assert!(r.banner.contains("answered PING"), "{}", r.banner);
    let raw = from_staff(&read(&common::mail("clean-text.eml")), "4QCLEAN1", OFFICE);
    let reply = send_mail(r.addr, TEACHER, &[OFFICE], "4QCLEAN1", &raw);
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert_passed_unchanged(&got[0].data, &raw, "pass");
    // Postfix's client attributes and the queue id reach the next hop.
    let xf = got[0].xforward.join(" ");
    assert!(
        xf.contains("ADDR=192.0.2.10") && xf.contains("IDENT=4QCLEAN1"),
        "{xf}"
    );
    assert_eq!(got[0].mail, "MAIL FROM:<d.price@oakfield.sch.uk>");
    assert!(r.quarantined().is_empty());
}

#[test]
fn forged_hallmonitor_headers_are_removed() {
    let sink = Sink::start();
    let r = relay(&sink);
    let clean = from_staff(&read(&common::mail("clean-text.eml")), "4QFORGE1", OFFICE);
    let mut raw = b"X-Hallmonitor-Verdict: pass\r\nx-hallmonitor-categories: none\r\n".to_vec();
    raw.extend_from_slice(&clean);
    let reply = send_mail(r.addr, TEACHER, &[OFFICE], "4QFORGE1", &raw);
    assert!(reply.starts_with("250"), "{reply}");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    // Only our own headers remain, and the rest is the original message.
    assert_passed_unchanged(&got[0].data, &clean, "pass");
}

#[test]
fn profane_message_arrives_tagged_in_the_subject() {
    let sink = Sink::start();
    let r = relay(&sink);
    let raw = b"From: Sam <sam@example.com>\r\nTo: office@oakfield.sch.uk\r\nSubject: The trip\r\nMessage-ID: <p1@example.com>\r\n\r\nThis trip was shit and the coach was shit.\r\n".to_vec();
    let reply = send_mail(r.addr, "sam@example.com", &[OFFICE], "4QPROF1", &raw);
    assert!(reply.starts_with("250"), "{reply}");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    let text = got[0].text();
    assert!(text.starts_with("X-Hallmonitor-Verdict: tag\r\n"), "{text}");
    assert!(
        text.contains("X-Hallmonitor-Categories: profanity\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nSubject: [Flagged: profanity] The trip\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nThis trip was shit and the coach was shit.\r\n"));
    // Recorded as a tagged incident with masked evidence, nothing held.
    assert_eq!(
        sql(
            &r,
            "SELECT action, categories, message_id, sender_group FROM incidents"
        ),
        "tag|profanity|p1@example.com|external"
    );
    let evidence = sql(&r, "SELECT evidence FROM findings");
    assert!(
        !evidence.is_empty() && !evidence.contains("shit"),
        "{evidence}"
    );
    assert_eq!(sql(&r, "SELECT count(*) FROM quarantine"), "0");
}

#[test]
fn eicar_is_quarantined_durably_and_never_delivered() {
    let sink = Sink::start();
    let r = relay(&sink);
    let raw = read(&common::mail("eicar-zip.eml"));
    let reply = send_mail(r.addr, PARENT, &[OFFICE], "4QVIRUS1", &raw);
    assert!(
        reply.starts_with("250 2.0.0 Ok: quarantined as "),
        "{reply}"
    );
    assert!(sink.messages().is_empty());
    let ids = r.quarantined();
    assert_eq!(ids.len(), 1);
    assert!(reply.contains(&ids[0]), "{reply} {ids:?}");
    let dir = r.state_dir().join("messages");
    assert_eq!(read(&dir.join(format!("{}.eml", ids[0]))), raw);
    let meta: serde_json::Value =
        serde_json::from_slice(&read(&dir.join(format!("{}.json", ids[0])))).unwrap();
    assert_eq!(meta["queue_id"], "4QVIRUS1");
    assert_eq!(meta["report"]["action"], "quarantine");
    assert_eq!(meta["envelope"]["rcpt_to"][0], OFFICE);
    assert_eq!(meta["envelope"]["client_ip"], "192.0.2.10");
    assert!(meta["next_hop"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(meta.to_string().contains(common::EICAR_RULE), "{meta}");
    // Indexed in the incident log, as held, with the rule that held it.
    let row = sql(
        &r,
        "SELECT q.status, i.action, i.categories, i.queue_id, f.rule FROM quarantine q \
         JOIN incidents i ON i.id = q.incident_id JOIN findings f ON f.incident_id = i.id",
    );
    assert_eq!(
        row,
        format!("held|quarantine|virus|4QVIRUS1|{}", common::EICAR_RULE)
    );
    assert_eq!(sql(&r, "SELECT id FROM quarantine"), ids[0]);
}

/// One query against the relay's incident log, via the sqlite3 CLI (rows
/// joined by newlines, columns by `|`).
fn sql(r: &Relay, query: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(r.state_dir().join("hallmonitor.db"))
        .arg(query)
        .output()
        .expect("sqlite3 (apt-get install sqlite3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn clamd_down_gives_451_and_delivers_nothing() {
    let sink = Sink::start();
    let r = Relay::start(RelayOptions {
        listen: None,
        next_hop: sink.addr,
        clamd: "/nonexistent/hallmonitor/clamd.sock".into(),
        relay: vec![],
        limits: vec![],
    });
    assert!(r.banner.contains("did NOT answer"), "{}", r.banner);
    let raw = read(&common::mail("clean-text.eml"));
    let reply = send_mail(r.addr, PARENT, &[OFFICE], "4QCLAM1", &raw);
    assert!(reply.starts_with("451 4."), "{reply}");
    assert!(sink.messages().is_empty());
    assert!(r.quarantined().is_empty());
}

#[test]
fn next_hop_down_gives_451() {
    let nowhere = free_addr();
    let r = Relay::start(RelayOptions {
        listen: None,
        next_hop: nowhere,
        clamd: common::clamd().address(),
        relay: vec![],
        limits: vec![],
    });
    let mut c = Client::connect(r.addr);
    c.reply();
    assert!(c.cmd("EHLO postfix.test").starts_with("250"));
    // MAIL FROM goes to the next hop with the first RCPT TO, so that is
    // where the failure shows, on every recipient: Postfix defers them all.
    assert!(c.cmd(&format!("MAIL FROM:<{PARENT}>")).starts_with("250"));
    for rcpt in [OFFICE, "head@oakfield.sch.uk"] {
        let reply = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(reply.starts_with("451 4.4.1"), "{reply}");
    }
    assert!(c.cmd("DATA").starts_with("554"));
}

#[test]
fn recipient_refused_by_next_hop_is_refused_alone() {
    let sink = Sink::start();
    let r = relay(&sink);
    let mut c = Client::connect(r.addr);
    c.reply();
    c.cmd("EHLO postfix.test");
    assert!(
        c.cmd("XFORWARD ADDR=192.0.2.10 IDENT=4QREF1")
            .starts_with("250")
    );
    assert!(
        c.cmd("MAIL FROM:<d.price@oakfield.sch.uk> RET=HDRS ENVID=q1")
            .starts_with("250")
    );
    let ok = c.cmd("RCPT TO:<office@oakfield.sch.uk> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;office@oakfield.sch.uk");
    assert!(ok.starts_with("250 2.1.5"), "{ok}");
    let refused = c.cmd("RCPT TO:<refuse.me@oakfield.sch.uk>");
    assert_eq!(refused, "550 5.1.1 No such user here\r\n");
    assert!(c.cmd("DATA").starts_with("354"));
    let reply = c.data(&from_staff(
        &read(&common::mail("clean-text.eml")),
        "4QREF1",
        OFFICE,
    ));
    assert!(reply.starts_with("250 2.0.0 Ok: 4QREF1 relayed"), "{reply}");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].rcpts,
        vec![
            "RCPT TO:<office@oakfield.sch.uk> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;office@oakfield.sch.uk"
        ]
    );
    assert_eq!(
        got[0].mail,
        "MAIL FROM:<d.price@oakfield.sch.uk> RET=HDRS ENVID=q1"
    );
}

#[test]
fn pipelined_session_with_two_messages_in_one_connection() {
    let sink = Sink::start();
    let r = relay(&sink);
    let clean = read(&common::mail("clean-text.eml"));
    let mut c = Client::connect(r.addr);
    c.reply();
    let ehlo = c.cmd("EHLO postfix.test");
    for ext in [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "SIZE ",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "XFORWARD NAME ADDR PROTO HELO IDENT SOURCE",
    ] {
        assert!(ehlo.contains(ext), "{ext}: {ehlo}");
    }
    for n in 0..2 {
        c.send(
            format!(
                "XFORWARD ADDR=192.0.2.{n} IDENT=4QPIPE{n}\r\nMAIL FROM:<d.price@oakfield.sch.uk> BODY=8BITMIME\r\nRCPT TO:<office@oakfield.sch.uk>\r\nRCPT TO:<head@oakfield.sch.uk>\r\nDATA\r\n"
            )
            .as_bytes(),
        );
        let replies: Vec<String> = (0..5).map(|_| c.reply()).collect();
        assert!(
            replies[..4].iter().all(|r| r.starts_with("250")),
            "{replies:?}"
        );
        assert!(replies[4].starts_with("354"), "{replies:?}");
        let raw = from_staff(&clean, &format!("4QPIPE{n}"), OFFICE);
        let end = c.data(&raw);
        assert!(
            end.starts_with(&format!("250 2.0.0 Ok: 4QPIPE{n} relayed")),
            "{end}"
        );
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    let got = sink.messages();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].rcpts.len(), 2);
    assert!(got[1].xforward.join(" ").contains("IDENT=4QPIPE1"));
    assert_eq!(
        got[1].mail,
        "MAIL FROM:<d.price@oakfield.sch.uk> BODY=8BITMIME"
    );
    // Both went over one next-hop connection, each with its own XFORWARD.
    assert_eq!(sink.connections(), 1);
    assert!(got[0].xforward.join(" ").contains("IDENT=4QPIPE0"));
}

#[test]
fn protocol_errors_get_the_right_codes() {
    let sink = Sink::start();
    let r = relay_with(&sink, &[], &["max_message_bytes = 2000"]);
    let mut c = Client::connect(r.addr);
    c.reply();
    assert!(c.cmd("MAIL FROM:<a@example.com>").starts_with("503 5.5.1"));
    assert!(c.cmd("EHLO postfix.test").contains("SIZE 2000"));
    assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("503 5.5.1"));
    assert!(c.cmd("DATA").starts_with("503 5.5.1"));
    assert!(c.cmd("FOO bar").starts_with("500 5.5.1"));
    let long = format!("NOOP {}", "x".repeat(600));
    assert!(c.cmd(&long).starts_with("500 5.5.2"));
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(
        c.cmd("MAIL FROM:<a@example.com> SIZE=5000")
            .starts_with("552 5.3.4")
    );
    assert!(c.cmd("MAIL FROM:<a@example.com>").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@example.com>").starts_with("503 5.5.1"));
    assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let big = format!("Subject: big\r\n\r\n{}", "0123456789abcdef\r\n".repeat(200));
    assert!(c.data(big.as_bytes()).starts_with("552 5.3.4"));
    // The session is still in step after the refused message.
    assert!(c.cmd("RSET").starts_with("250"));
    assert!(c.cmd("QUIT").starts_with("221"));
    assert!(sink.messages().is_empty());
}

#[test]
fn idle_client_is_dropped_with_421() {
    let sink = Sink::start();
    let r = relay_with(&sink, &["idle_timeout_secs = 1"], &[]);
    let mut c = Client::connect(r.addr);
    c.reply();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(c.reply().starts_with("421 4.4.2"));
}

#[test]
fn connections_over_the_limit_get_421() {
    let sink = Sink::start();
    let r = relay_with(&sink, &["max_connections = 1"], &[]);
    // Relay::start's readiness probe may still hold the one slot for a moment.
    std::thread::sleep(Duration::from_millis(300));
    let mut first = Client::connect(r.addr);
    assert!(first.reply().starts_with("220"));
    let mut second = Client::connect(r.addr);
    assert!(second.reply().starts_with("421 4.3.2"));
    assert!(first.cmd("QUIT").starts_with("221"));
}

#[test]
fn outbound_mail_loses_the_login_comment_but_keeps_its_received_header() {
    let sink = Sink::start();
    let r = relay(&sink);
    let raw = from_staff(&read(&common::mail("clean-text.eml")), "4QOUT1", PARENT);
    let reply = send_mail(r.addr, TEACHER, &[PARENT], "4QOUT1", &raw);
    assert!(reply.starts_with("250 2.0.0 Ok: 4QOUT1 relayed"), "{reply}");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    let text = got[0].text();
    assert!(!text.contains("Authenticated sender"), "{text}");
    assert!(
        text.contains("Received: from laptop (unknown [192.0.2.10])\r\n\tby mx.oakfield.sch.uk (Postfix) with ESMTPSA id 4QOUT1\r\n"),
        "{text}"
    );
}

#[test]
fn eight_bit_smtputf8_and_leading_dots_pass_through_unchanged() {
    let sink = Sink::start();
    let r = relay(&sink);
    let body = "From: Zoë <d.price@oakfield.sch.uk>\r\nTo: office@oakfield.sch.uk\r\nSubject: Café trip\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nThe café opens at 9.\r\n.\r\n..two dots\r\n.leading dot\r\nEnd — thanks\r\n";
    let raw = from_staff(body.as_bytes(), "4QUTF1", OFFICE);
    let mut c = Client::connect(r.addr);
    c.reply();
    c.cmd("EHLO postfix.test");
    assert!(
        c.cmd("XFORWARD ADDR=192.0.2.10 IDENT=4QUTF1")
            .starts_with("250")
    );
    let mail = c.cmd("MAIL FROM:<d.price@oakfield.sch.uk> BODY=8BITMIME SMTPUTF8");
    assert!(mail.starts_with("250"), "{mail}");
    let rcpt = c.cmd("RCPT TO:<zoë@oakfield.sch.uk>");
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert!(c.cmd("XFORWARD ADDR=192.0.2.99").starts_with("503 5.5.1"));
    assert!(c.cmd("DATA").starts_with("354"));
    let reply = c.data(&raw);
    assert!(reply.starts_with("250 2.0.0 Ok: 4QUTF1 relayed"), "{reply}");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert_passed_unchanged(&got[0].data, &raw, "pass");
    assert_eq!(
        got[0].mail,
        "MAIL FROM:<d.price@oakfield.sch.uk> BODY=8BITMIME SMTPUTF8"
    );
    assert_eq!(got[0].rcpts, vec!["RCPT TO:<zoë@oakfield.sch.uk>"]);
}

#[test]
fn sighup_resizes_the_connection_limit() {
    let sink = Sink::start();
    let r = relay_with(&sink, &["max_connections = 1"], &[]);
    std::thread::sleep(Duration::from_millis(300));
    let mut first = Client::connect(r.addr);
    assert!(first.reply().starts_with("220"));
    assert!(Client::connect(r.addr).reply().starts_with("421 4.3.2"));

    let cfg = std::fs::read_to_string(r.config_path()).unwrap();
    std::fs::write(
        r.config_path(),
        cfg.replace("max_connections = 1", "max_connections = 3"),
    )
    .unwrap();
    r.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !r.log().contains("configuration and rules reloaded") {
        assert!(std::time::Instant::now() < deadline, "{}", r.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Raised: two more sessions fit beside the first; a fourth does not.
    let mut second = Client::connect(r.addr);
    assert!(second.reply().starts_with("220"));
    let mut third = Client::connect(r.addr);
    assert!(third.reply().starts_with("220"));
    assert!(Client::connect(r.addr).reply().starts_with("421 4.3.2"));

    // Lowered to 1 while three sessions run: nobody is cut off, and a new
    // session only fits once two of them have ended.
    std::fs::write(r.config_path(), &cfg).unwrap();
    r.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while r.log().matches("configuration and rules reloaded").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", r.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(second.cmd("NOOP").starts_with("250"));
    assert!(second.cmd("QUIT").starts_with("221"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(Client::connect(r.addr).reply().starts_with("421 4.3.2"));
    assert!(third.cmd("QUIT").starts_with("221"));
    assert!(first.cmd("QUIT").starts_with("221"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Client::connect(r.addr);
        let greeting = c.reply();
        if greeting.starts_with("220") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{greeting}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_reloads_a_good_config_and_keeps_the_old_one_on_error() {
    let sink = Sink::start();
    let r = relay(&sink);
    let profane = b"From: Sam <sam@example.com>\r\nTo: office@oakfield.sch.uk\r\nSubject: The trip\r\n\r\nThis trip was shit.\r\n";
    let good = std::fs::read_to_string(r.config_path()).unwrap();

    std::fs::write(r.config_path(), "[relay]\nlisten = \"nonsense\"\n").unwrap();
    r.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !r.log().contains("reload refused") {
        assert!(std::time::Instant::now() < deadline, "{}", r.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(r.log().contains("relay.listen"), "{}", r.log());
    let reply = send_mail(r.addr, "sam@example.com", &[OFFICE], "4QHUP1", profane);
    assert!(reply.starts_with("250"), "{reply}");
    assert!(
        sink.messages()[0]
            .text()
            .contains("Subject: [Flagged: profanity] The trip")
    );

    let changed = good.replace(
        "[relay]\n",
        "[relay]\ntag_subject_prefix = \"[Check: {categories}]\"\n",
    );
    std::fs::write(r.config_path(), changed).unwrap();
    r.signal(libc::SIGHUP);
    while !r.log().contains("configuration and rules reloaded") {
        assert!(std::time::Instant::now() < deadline, "{}", r.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let reply = send_mail(r.addr, "sam@example.com", &[OFFICE], "4QHUP2", profane);
    assert!(reply.starts_with("250"), "{reply}");
    let got = sink.messages();
    assert_eq!(got.len(), 2);
    assert!(
        got[1]
            .text()
            .contains("Subject: [Check: profanity] The trip"),
        "{}",
        got[1].text()
    );
}

#[test]
fn sigterm_stops_cleanly() {
    let sink = Sink::start();
    let mut r = relay(&sink);
    let status = r.stop().expect("exits within the grace period");
    assert!(status.success(), "{status:?}");
}

#[test]
fn message_failing_three_times_while_clamd_is_healthy_is_held_as_unscannable() {
    let sink = Sink::start();
    let r = Relay::start(RelayOptions {
        listen: None,
        next_hop: sink.addr,
        clamd: common::confused_clamd().to_string(),
        relay: vec![],
        limits: vec![],
    });
    let raw = read(&common::mail("config-json.eml"));
    for attempt in 1..=2 {
        let reply = send_mail(r.addr, PARENT, &[OFFICE], "4QSTUCK1", &raw);
        assert!(reply.starts_with("451 4.7.1"), "attempt {attempt}: {reply}");
    }
    // Another message's failure does not count towards this one.
    let other = send_mail(r.addr, PARENT, &[OFFICE], "4QOTHER1", &raw);
    assert!(other.starts_with("451"), "{other}");
    let reply = send_mail(r.addr, PARENT, &[OFFICE], "4QSTUCK1", &raw);
    assert!(
        reply.starts_with("250 2.0.0 Ok: quarantined as "),
        "{reply}"
    );
    assert!(sink.messages().is_empty());
    let ids = r.quarantined();
    assert_eq!(ids.len(), 1);
    let meta = std::fs::read_to_string(
        r.state_dir()
            .join("messages")
            .join(format!("{}.json", ids[0])),
    )
    .unwrap();
    assert!(meta.contains("banned_attachment/unscannable"), "{meta}");
    assert!(meta.contains("4QSTUCK1"), "{meta}");
}

#[test]
fn clamd_outage_is_never_counted_as_a_failing_message() {
    let sink = Sink::start();
    let r = Relay::start(RelayOptions {
        listen: None,
        next_hop: sink.addr,
        clamd: "/nonexistent/hallmonitor/clamd.sock".into(),
        relay: vec![],
        limits: vec![],
    });
    let raw = read(&common::mail("config-json.eml"));
    for attempt in 1..=4 {
        let reply = send_mail(r.addr, PARENT, &[OFFICE], "4QOUTAGE", &raw);
        assert!(reply.starts_with("451"), "attempt {attempt}: {reply}");
    }
    assert!(r.quarantined().is_empty());
}

#[test]
fn busy_session_is_ended_at_the_total_time_limit() {
    let sink = Sink::start();
    let r = relay_with(&sink, &["total_timeout_secs = 1"], &[]);
    let mut c = Client::connect(r.addr);
    c.reply();
    let start = std::time::Instant::now();
    loop {
        let reply = c.cmd("NOOP");
        if reply.starts_with("421 4.4.2") {
            break;
        }
        assert!(reply.starts_with("250"), "{reply}");
        assert!(start.elapsed() < Duration::from_secs(10), "never limited");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn shutdown_tells_a_waiting_client_to_come_back_later() {
    let sink = Sink::start();
    let mut r = relay(&sink);
    let mut c = Client::connect(r.addr);
    c.reply();
    assert!(c.cmd("EHLO postfix.test").starts_with("250"));
    r.signal(libc::SIGTERM);
    assert!(c.reply().starts_with("421 4.3.2"));
    assert!(r.stop().expect("exits").success());
}

/// The relay with Postfix's own re-injection smtpd as its next hop (which
/// offers PIPELINING and CHUNKING, unlike our recording sink and Postfix's
/// smtp-sink), relaying on to the recording sink. The relay is driven
/// directly; Postfix's front smtpd is not used.
fn relay_into_postfix() -> (Sink, Relay, Postfix) {
    let sink = Sink::start();
    let reinject = free_addr();
    let relay = Relay::start(RelayOptions {
        listen: None,
        next_hop: reinject,
        clamd: common::clamd().address(),
        relay: vec![],
        limits: vec![],
    });
    let pf = Postfix::start(relay.addr, reinject, sink.addr);
    (sink, relay, pf)
}

/// The re-injection smtpd's command counts for each connection hallmonitor
/// made (Postfix logs them when the connection ends, e.g. `ehlo=1 xforward=2
/// mail=1 rcpt=1 bdat=1 quit=1 commands=7`).
fn next_hop_sessions(pf: &Postfix) -> Vec<String> {
    pf.log()
        .lines()
        .filter_map(|l| l.split_once(" disconnect from ").map(|(_, r)| r))
        .filter_map(|r| r.split_once("] ").map(|(_, counts)| counts.to_string()))
        // Not the start-up probes (connect, then close).
        .filter(|counts| counts != "commands=0/0")
        .collect()
}

/// A message as the sink got it from Postfix, without the Received header
/// the re-injection smtpd added on top.
fn without_first_header(data: &[u8]) -> &[u8] {
    let mut pos = 0;
    while let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') {
        pos += nl + 1;
        if !matches!(data.get(pos), Some(b' ' | b'\t')) {
            break;
        }
    }
    &data[pos..]
}

#[test]
fn messages_relayed_over_bdat_arrive_byte_identical() {
    let (sink, r, pf) = relay_into_postfix();
    let clean = read(&common::mail("clean-text.eml"));
    // What DATA would have to escape: a lone "." line and leading dots (BDAT
    // sends them as they are), 8-bit text, and no line break at the end (CRLF
    // is added, as over DATA).
    let mut tricky = from_staff(&clean, "4QBDAT2", OFFICE);
    tricky.extend_from_slice(
        ".\r\n..two dots\r\n.leading dot\r\nCaf\u{e9} at 9 \u{2014} no line break at the end"
            .as_bytes(),
    );
    let plain = from_staff(&clean, "4QBDAT1", OFFICE);
    let mut c = Client::connect(r.addr);
    c.reply();
    assert!(c.cmd("EHLO postfix.test").starts_with("250"));
    for (queue_id, raw) in [("4QBDAT1", &plain), ("4QBDAT2", &tricky)] {
        let xf = c.cmd(&format!("XFORWARD ADDR=192.0.2.10 IDENT={queue_id}"));
        assert!(xf.starts_with("250"), "{xf}");
        assert!(c.cmd(&format!("MAIL FROM:<{TEACHER}>")).starts_with("250"));
        let rcpt = c.cmd(&format!("RCPT TO:<{OFFICE}>"));
        assert!(rcpt.starts_with("250"), "{rcpt}\n{}", pf.log());
        assert!(c.cmd("DATA").starts_with("354"));
        let end = c.data(raw);
        assert!(
            end.starts_with(&format!("250 2.0.0 Ok: {queue_id} relayed")),
            "{end}\n{}",
            r.log()
        );
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    pf.wait_for(30, "both messages at the sink", || {
        sink.messages().len() == 2
    });
    pf.wait_for(10, "the next-hop session to end", || {
        !next_hop_sessions(&pf).is_empty()
    });
    let mut got = sink.messages();
    got.sort_by_key(|m| m.text().contains("4QBDAT2"));
    assert_passed_unchanged(without_first_header(&got[0].data), &plain, "pass");
    let mut expected = tricky.clone();
    expected.extend_from_slice(b"\r\n");
    assert_passed_unchanged(without_first_header(&got[1].data), &expected, "pass");
    // Both over one next-hop connection, each as one BDAT, none over DATA.
    let sessions = next_hop_sessions(&pf);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(
        sessions[0].contains("mail=2 rcpt=2 bdat=2 ") && !sessions[0].contains("data="),
        "{sessions:?}"
    );
}

#[test]
fn pipelined_next_hop_refusing_one_of_three_recipients_refuses_it_alone() {
    let (sink, r, pf) = relay_into_postfix();
    let raw = from_staff(&read(&common::mail("clean-text.eml")), "4QPIPEREF", OFFICE);
    let mut c = Client::connect(r.addr);
    c.reply();
    assert!(c.cmd("EHLO postfix.test").starts_with("250"));
    // As Postfix's scan transport sends it: the whole envelope in one go.
    // Postfix's smtpd refuses a domain name no host can have; we do not check
    // that, so the refusal is the next hop's.
    c.send(
        format!(
            "XFORWARD ADDR=192.0.2.10 IDENT=4QPIPEREF\r\nMAIL FROM:<{TEACHER}>\r\n\
             RCPT TO:<{OFFICE}>\r\nRCPT TO:<pupil@-oakfield-.sch.uk>\r\n\
             RCPT TO:<head@oakfield.sch.uk>\r\nDATA\r\n"
        )
        .as_bytes(),
    );
    let replies: Vec<String> = (0..6).map(|_| c.reply()).collect();
    assert!(
        replies[..3].iter().all(|r| r.starts_with("250")),
        "{replies:?}"
    );
    assert_eq!(replies[3], "501 5.1.3 Bad recipient address syntax\r\n");
    assert!(replies[4].starts_with("250"), "{replies:?}");
    assert!(replies[5].starts_with("354"), "{replies:?}");
    let end = c.data(&raw);
    assert!(end.starts_with("250 2.0.0 Ok: 4QPIPEREF relayed"), "{end}");
    assert!(c.cmd("QUIT").starts_with("221"));
    pf.wait_for(30, "delivery at the sink", || sink.messages().len() == 1);
    let got = sink.messages();
    let rcpts = got[0].rcpts.join(" ");
    assert!(
        got[0].rcpts.len() == 2 && rcpts.contains(OFFICE) && rcpts.contains("head@"),
        "{rcpts}"
    );
    assert_passed_unchanged(without_first_header(&got[0].data), &raw, "pass");
    pf.wait_for(10, "the next-hop session to end", || {
        !next_hop_sessions(&pf).is_empty()
    });
    let sessions = next_hop_sessions(&pf);
    assert!(
        sessions[0].contains("mail=1 rcpt=2/3 bdat=1 "),
        "{sessions:?}"
    );
    // Our pipelining is within what the next hop offered.
    assert!(
        !pf.log().contains("improper command pipelining"),
        "{}",
        pf.log()
    );
}

#[test]
fn sender_refused_by_the_next_hop_is_refused_on_every_recipient() {
    let (sink, r, pf) = relay_into_postfix();
    let raw = from_staff(&read(&common::mail("clean-text.eml")), "4QSENDER2", OFFICE);
    let mut c = Client::connect(r.addr);
    c.reply();
    assert!(c.cmd("EHLO postfix.test").starts_with("250"));
    assert!(c.cmd("XFORWARD IDENT=4QSENDER1").starts_with("250"));
    // Postfix's smtpd refuses a sender domain no host can have.
    assert!(
        c.cmd("MAIL FROM:<pupil@-oakfield-.sch.uk>")
            .starts_with("250")
    );
    for rcpt in [OFFICE, "head@oakfield.sch.uk"] {
        let reply = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert_eq!(reply, "501 5.1.7 Bad sender address syntax\r\n");
    }
    assert!(c.cmd("DATA").starts_with("554"));
    assert!(c.cmd("RSET").starts_with("250"));
    // The next transaction in the session goes through, on the same
    // next-hop connection.
    assert!(c.cmd("XFORWARD IDENT=4QSENDER2").starts_with("250"));
    assert!(c.cmd(&format!("MAIL FROM:<{TEACHER}>")).starts_with("250"));
    assert!(c.cmd(&format!("RCPT TO:<{OFFICE}>")).starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let end = c.data(&raw);
    assert!(end.starts_with("250 2.0.0 Ok: 4QSENDER2 relayed"), "{end}");
    assert!(c.cmd("QUIT").starts_with("221"));
    pf.wait_for(30, "delivery at the sink", || sink.messages().len() == 1);
    assert_eq!(sink.messages()[0].mail, format!("MAIL FROM:<{TEACHER}>"));
    pf.wait_for(10, "the next-hop session to end", || {
        !next_hop_sessions(&pf).is_empty()
    });
    let sessions = next_hop_sessions(&pf);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].contains("mail=1/2 "), "{sessions:?}");
}
