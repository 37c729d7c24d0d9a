//! `hallmonitor quarantine …` and `hallmonitor user …` against a running
//! relay: messages are held by the real `hallmonitor serve` (real clamd), then
//! the CLI is run as a separate process on the same state directory while the
//! relay keeps running (SQLite WAL + busy timeout). Releases are checked at a
//! real SMTP sink, refusals by exit status and message, purge by the files
//! and rows that are gone.

mod common;

use common::smtp::{Relay, RelayOptions, Sink, free_addr, read, send_mail};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const PARENT: &str = "helen.okafor@example.com";
const OFFICE: &str = "office@oakfield.sch.uk";
const TEACHER: &str = "d.price@oakfield.sch.uk";
const HEAD: &str = "head@oakfield.sch.uk";
const NURSE: &str = "nurse@health-visitors.example.org";

fn relay(sink: &Sink) -> Relay {
    Relay::start(RelayOptions {
        listen: None,
        next_hop: sink.addr,
        clamd: common::clamd().address(),
        relay: Vec::new(),
        limits: Vec::new(),
    })
}

/// A message as Postfix hands it over after `login` authenticated.
fn submitted_by(login: &str, raw: &[u8], queue_id: &str, rcpt: &str) -> Vec<u8> {
    let mut out = format!(
        "Received: from laptop (unknown [192.0.2.10])\r\n\t(Authenticated sender: {login})\r\n\tby mx.oakfield.sch.uk (Postfix) with ESMTPSA id {queue_id}\r\n\tfor <{rcpt}>; Tue, 10 Mar 2026 09:15:01 +0000 (GMT)\r\n"
    )
    .into_bytes();
    out.extend_from_slice(raw);
    out
}

/// Hold a message and return its quarantine id (from the relay's reply).
fn hold(r: &Relay, from: &str, rcpt: &str, queue_id: &str, raw: &[u8]) -> String {
    let reply = send_mail(r.addr, from, &[rcpt], queue_id, raw);
    let id = reply
        .trim_end()
        .strip_prefix("250 2.0.0 Ok: quarantined as ")
        .unwrap_or_else(|| panic!("not held: {reply}"));
    id.to_string()
}

/// The teacher sends a pupil's NHS number outside the school: held.
fn hold_pupil_data(r: &Relay, queue_id: &str) -> String {
    let raw = submitted_by(
        TEACHER,
        &read(&common::mail("nhs-number-outbound.eml")),
        queue_id,
        NURSE,
    );
    hold(r, TEACHER, NURSE, queue_id, &raw)
}

/// The same, sent by the head teacher.
fn hold_head_pupil_data(r: &Relay, queue_id: &str) -> String {
    let original = String::from_utf8(read(&common::mail("nhs-number-outbound.eml"))).unwrap();
    let raw = original.replace(
        "From: \"Daniel Price\" <d.price@oakfield.sch.uk>",
        "From: \"Ruth Ellis\" <head@oakfield.sch.uk>",
    );
    assert_ne!(raw, original);
    let raw = submitted_by(HEAD, raw.as_bytes(), queue_id, NURSE);
    hold(r, HEAD, NURSE, queue_id, &raw)
}

fn hold_virus(r: &Relay, queue_id: &str) -> String {
    hold(
        r,
        PARENT,
        OFFICE,
        queue_id,
        &read(&common::mail("eicar-zip.eml")),
    )
}

/// Run `hallmonitor ARGS` with `--config` (placed as given in `args`, or
/// appended when absent) and optional standard input.
fn cli(r: &Relay, args: &[&str], stdin: Option<&str>) -> Output {
    let config = r.config_path();
    let mut cmd = Command::new(common::HALLMONITOR);
    let mut has_config = false;
    for a in args {
        if *a == "CONFIG" {
            cmd.arg(&config);
            has_config = true;
        } else {
            cmd.arg(a);
        }
    }
    if !has_config {
        cmd.arg("--config").arg(&config);
    }
    cmd.env("USER", "it.tech")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run hallmonitor");
    if let Some(input) = stdin {
        // The command may refuse (and exit) before reading its input.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait for hallmonitor")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a non-zero exit and returns stderr.
fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON output")
}

fn ids(list: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn sql(r: &Relay, query: &str) -> String {
    let out = Command::new("sqlite3")
        .args(["-cmd", ".timeout 5000"])
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

fn add_user(r: &Relay, name: &str, role: &str) {
    ok(&cli(
        r,
        &[
            "--config",
            "CONFIG",
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
        ],
        Some("a long passphrase\n"),
    ));
}

/// What the sink received for the held messages' own recipients (the sink
/// also gets the relay's alert mails to the head teacher and others).
fn released(sink: &Sink) -> Vec<common::smtp::Delivered> {
    sink.messages()
        .into_iter()
        .filter(|m| {
            m.rcpts
                .iter()
                .any(|r| r.contains(NURSE) || r.contains(OFFICE))
        })
        .collect()
}

fn header_block(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

#[test]
fn list_filters_show_and_roles_are_enforced_per_item() {
    let sink = Sink::start();
    let r = relay(&sink);
    let virus = hold_virus(&r, "4QLVIR1");
    let pupil = hold_pupil_data(&r, "4QLPUP1");
    let head = hold_head_pupil_data(&r, "4QLHEAD1");

    // Admin (no --as): every item, with categories and status.
    let all = json(&cli(&r, &["quarantine", "list", "--json"], None));
    let mut expected = vec![virus.clone(), pupil.clone(), head.clone()];
    expected.sort();
    assert_eq!(ids(&all), expected);
    for item in all.as_array().unwrap() {
        assert_eq!(item["status"], "held");
        let cats: Vec<&str> = item["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let want = if item["id"] == virus.as_str() {
            "virus"
        } else {
            "personal_data"
        };
        assert!(cats.contains(&want), "{item}");
    }
    let head_item = all
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == head.as_str())
        .unwrap();
    assert_eq!(head_item["sender_is_head"], true, "{head_item}");

    // Filters; --config before the subcommand works too.
    let by = |args: &[&str]| {
        let mut a = vec!["--config", "CONFIG", "quarantine", "list", "--json"];
        a.extend_from_slice(args);
        ids(&json(&cli(&r, &a, None)))
    };
    assert_eq!(by(&["--category", "virus"]), vec![virus.clone()]);
    assert_eq!(by(&["--direction", "inbound"]), vec![virus.clone()]);
    assert_eq!(by(&["--sender", "HEAD@"]), vec![head.clone()]);
    assert_eq!(by(&["--since", "1d"]).len(), 3);
    assert!(by(&["--until", "2020-01-01"]).is_empty());
    assert!(by(&["--status", "released"]).is_empty());
    assert!(
        refused(&cli(
            &r,
            &["quarantine", "list", "--category", "spam"],
            None
        ))
        .contains("spam")
    );
    let table = ok(&cli(&r, &["quarantine", "list"], None));
    assert!(
        table.contains(&pupil) && table.contains("Referral for Year 7 pupil"),
        "{table}"
    );

    // Users: the head teacher and the Chair of Governors.
    add_user(&r, "r.ellis", "head");
    add_user(&r, "chair", "chair");
    add_user(&r, "gov", "governor");
    let users = ok(&cli(&r, &["user", "list"], None));
    assert!(
        users.contains("r.ellis") && users.contains("head"),
        "{users}"
    );
    let phc = sql(&r, "SELECT password_hash FROM users WHERE name = 'r.ellis'");
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(
        refused(&cli(
            &r,
            &["user", "add", "x", "--role", "root", "--password-stdin"],
            Some("p\n")
        ))
        .contains("unknown role")
    );

    // The head cannot see mail the head sent: not listed, show refused.
    let as_head = ids(&json(&cli(
        &r,
        &["quarantine", "list", "--json", "--as", "r.ellis"],
        None,
    )));
    assert_eq!(as_head, {
        let mut v = vec![virus.clone(), pupil.clone()];
        v.sort();
        v
    });
    let err = refused(&cli(
        &r,
        &["quarantine", "--as", "r.ellis", "show", &head],
        None,
    ));
    assert!(err.contains("not visible to role head"), "{err}");
    let err = refused(&cli(
        &r,
        &[
            "quarantine",
            "release",
            &head,
            "--reason",
            "mine",
            "--as",
            "r.ellis",
        ],
        None,
    ));
    assert!(err.contains("not visible"), "{err}");
    // Governors see no items at all.
    assert!(
        ids(&json(&cli(
            &r,
            &["quarantine", "list", "--json", "--as", "gov"],
            None
        )))
        .is_empty()
    );

    // The Chair can read it: headers, findings with masked evidence, the AUP
    // clause and the plain-text body; the view is audited.
    let shown = json(&cli(
        &r,
        &["quarantine", "show", &head, "--json", "--as", "chair"],
        None,
    ));
    assert_eq!(shown["id"], head.as_str());
    let findings = shown["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["category"] == "personal_data"),
        "{shown}"
    );
    for f in findings {
        let ev = f["evidence"].as_str().unwrap();
        assert!(
            !ev.contains("703 219 8643") && !ev.contains("7032198643"),
            "{ev}"
        );
    }
    assert!(
        shown["clauses"][0]
            .as_str()
            .unwrap()
            .contains("personal information"),
        "{shown}"
    );
    assert!(
        shown["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Following our call"),
        "{shown}"
    );
    assert_eq!(
        sql(
            &r,
            &format!("SELECT actor || '|' || action FROM audit WHERE target = '{head}'")
        ),
        "chair|view"
    );

    // Text view for the admin: metadata, masked findings, clause, body.
    let text = ok(&cli(&r, &["quarantine", "show", &pupil], None));
    for want in [
        "Referral for Year 7 pupil",
        "personal_data",
        "Do not reveal personal information",
        "Following our call",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }

    // Nobody releases a virus, not even the CLI's admin.
    let err = refused(&cli(
        &r,
        &[
            "quarantine",
            "release",
            &virus,
            "--reason",
            "parent insists",
        ],
        None,
    ));
    assert!(err.contains("virus"), "{err}");
    // A reason is mandatory; ids cannot reach outside the quarantine.
    refused(&cli(&r, &["quarantine", "release", &pupil], None));
    let err = refused(&cli(
        &r,
        &["quarantine", "release", &pupil, "--reason", " \t"],
        None,
    ));
    assert!(err.contains("reason"), "{err}");
    let err = refused(&cli(&r, &["quarantine", "show", "../../hallmonitor"], None));
    assert!(err.contains("not a quarantine id"), "{err}");
    assert!(released(&sink).is_empty());
    assert_eq!(
        sql(&r, "SELECT count(*) FROM quarantine WHERE status = 'held'"),
        "3"
    );
}

#[test]
fn release_delivers_once_with_the_release_header_and_is_audited() {
    let sink = Sink::start();
    let r = relay(&sink);
    let id = hold_pupil_data(&r, "4QREL1");
    let stored = read(&r.state_dir().join("messages").join(format!("{id}.eml")));
    let reason = "Checked with the school nurse — referral agreed by parent";

    let out = ok(&cli(
        &r,
        &[
            "quarantine",
            "release",
            &id,
            "--reason",
            reason,
            "--as",
            "ict.admin",
        ],
        None,
    ));
    assert!(out.contains("released"), "{out}");
    // Twice does not deliver twice.
    let again = ok(&cli(
        &r,
        &[
            "quarantine",
            "release",
            &id,
            "--reason",
            reason,
            "--as",
            "ict.admin",
        ],
        None,
    ));
    assert!(again.contains("already released"), "{again}");

    let msgs = released(&sink);
    assert_eq!(msgs.len(), 1, "delivered more than once");
    let m = &msgs[0];
    assert!(m.mail.contains(TEACHER), "{}", m.mail);
    assert_eq!(m.rcpts.len(), 1);
    assert!(m.rcpts[0].contains(NURSE), "{:?}", m.rcpts);
    let head = header_block(&m.data);
    assert!(
        head.starts_with("X-Hallmonitor-Released: by=ict.admin; at="),
        "{head}"
    );
    assert!(head.contains("reason=\r\n =?UTF-8?B?"), "{head}");
    assert!(
        head.contains("\r\nX-Hallmonitor-Release-Token: v1; id="),
        "{head}"
    );
    assert!(!head.contains("X-Hallmonitor-Verdict"), "{head}");
    // The original bytes follow our two headers unchanged.
    let text = m.text();
    let token_end = text.find("X-Hallmonitor-Release-Token:").unwrap();
    let after = &m.data[token_end + text[token_end..].find("\r\n").unwrap() + 2..];
    assert_eq!(after, &stored[..]);
    // The reason decodes back (as a mail reader would show it).
    let released_value = head
        .split("X-Hallmonitor-Released:")
        .nth(1)
        .unwrap()
        .split("\r\nX-")
        .next()
        .unwrap();
    let as_subject = format!("Subject:{released_value}\r\n\r\nx");
    let parsed = mail_parser::MessageParser::default()
        .parse(as_subject.as_bytes())
        .unwrap();
    assert!(parsed.subject().unwrap().contains(reason), "{head}");

    // The index and the audit log.
    let item = json(&cli(
        &r,
        &["quarantine", "list", "--status", "all", "--json"],
        None,
    ));
    let item = &item[0];
    assert_eq!(item["status"], "released");
    assert_eq!(item["reviewed_by"], "ict.admin");
    assert_eq!(item["review_reason"], reason);
    assert_eq!(
        sql(
            &r,
            &format!(
                "SELECT actor || '|' || reason FROM audit WHERE action = 'release' AND target = '{id}'"
            )
        ),
        format!("ict.admin|{reason}")
    );
    let remote = sql(&r, "SELECT remote FROM audit WHERE action = 'release'");
    assert!(remote.starts_with("cli uid="), "{remote}");

    // A failed delivery leaves the item held and shows the error.
    let second = hold_pupil_data(&r, "4QREL2");
    let dead = free_addr().to_string();
    let err = refused(&cli(
        &r,
        &[
            "quarantine",
            "release",
            &second,
            "--reason",
            "ok",
            "--next-hop",
            &dead,
        ],
        None,
    ));
    assert!(err.contains("stays held"), "{err}");
    let shown = json(&cli(&r, &["quarantine", "show", &second, "--json"], None));
    assert_eq!(shown["status"], "held");
    assert!(
        shown["last_error"].as_str().unwrap().contains(&dead),
        "{shown}"
    );
    assert_eq!(released(&sink).len(), 1);
    // And a later release to the right next hop goes through.
    ok(&cli(
        &r,
        &["quarantine", "release", &second, "--reason", "retry"],
        None,
    ));
    assert_eq!(released(&sink).len(), 2);
}

#[test]
fn a_released_message_is_not_scanned_again_but_a_forged_token_is() {
    let sink = Sink::start();
    let r = relay(&sink);
    let id = hold_pupil_data(&r, "4QTOK1");
    // Release back through the relay itself (as a next hop that is Postfix
    // with the content filter would): it must come out unscanned.
    let via_relay = r.addr.to_string();
    ok(&cli(
        &r,
        &[
            "quarantine",
            "release",
            &id,
            "--reason",
            "approved",
            "--next-hop",
            &via_relay,
        ],
        None,
    ));
    let msgs = released(&sink);
    assert_eq!(msgs.len(), 1);
    let head = header_block(&msgs[0].data);
    assert!(
        head.contains("X-Hallmonitor-Released: by=it.tech;"),
        "{head}"
    );
    assert!(!head.contains("X-Hallmonitor-Verdict"), "{head}");
    assert_eq!(r.quarantined().len(), 1, "held again");
    assert!(
        r.log()
            .contains("released message relayed without scanning")
    );

    // The same message with its token altered is scanned: held again, and the
    // forged headers are gone from the stored copy's verdict path.
    let text = msgs[0].text();
    let mac_at = text.find("mac=").unwrap() + 4;
    let mut forged = text.clone().into_bytes();
    forged[mac_at] = if forged[mac_at] == b'0' { b'1' } else { b'0' };
    let forged = submitted_by(TEACHER, &forged, "4QTOK2", NURSE);
    let reply = send_mail(r.addr, TEACHER, &[NURSE], "4QTOK2", &forged);
    assert!(
        reply.starts_with("250 2.0.0 Ok: quarantined as "),
        "{reply}"
    );
    assert_eq!(released(&sink).len(), 1);
    assert_eq!(r.quarantined().len(), 2);

    // A token copied onto a different message is scanned too.
    let token_line = text
        .lines()
        .find(|l| l.starts_with("X-Hallmonitor-Release-Token:"))
        .unwrap();
    let other = format!(
        "{token_line}\r\n{}",
        String::from_utf8(read(&common::mail("nhs-number-outbound.eml")))
            .unwrap()
            .replace("Ethan Marsh", "Ethan Marsh and his sister")
    );
    let other = submitted_by(TEACHER, other.as_bytes(), "4QTOK3", NURSE);
    let reply = send_mail(r.addr, TEACHER, &[NURSE], "4QTOK3", &other);
    assert!(
        reply.starts_with("250 2.0.0 Ok: quarantined as "),
        "{reply}"
    );
    assert_eq!(released(&sink).len(), 1);
}

#[test]
fn delete_and_purge_remove_files_and_index_rows() {
    let sink = Sink::start();
    let r = relay(&sink);
    let old = hold_virus(&r, "4QPUR1");
    let recent = hold_pupil_data(&r, "4QPUR2");
    let doomed = hold_pupil_data(&r, "4QPUR3");
    let dir = r.state_dir().join("messages");
    let files = |id: &str| -> Vec<bool> {
        ["eml", "json"]
            .iter()
            .map(|ext| Path::new(&dir).join(format!("{id}.{ext}")).exists())
            .collect()
    };
    assert_eq!(files(&old), vec![true, true]);

    // Delete: files go, the record stays as deleted, with who and why.
    add_user(&r, "dsl", "dsl");
    let err = refused(&cli(
        &r,
        &[
            "quarantine",
            "delete",
            &doomed,
            "--reason",
            "dup",
            "--as",
            "dsl",
        ],
        None,
    ));
    assert!(err.contains("dsl may not delete"), "{err}");
    ok(&cli(
        &r,
        &["quarantine", "delete", &doomed, "--reason", "duplicate"],
        None,
    ));
    assert_eq!(files(&doomed), vec![false, false]);
    assert_eq!(
        sql(
            &r,
            &format!("SELECT status || '|' || reviewed_by FROM quarantine WHERE id = '{doomed}'")
        ),
        "deleted|it.tech"
    );
    assert_eq!(
        sql(
            &r,
            &format!(
                "SELECT actor || '|' || reason FROM audit WHERE action = 'delete' AND target = '{doomed}'"
            )
        ),
        "it.tech|duplicate"
    );
    assert!(
        refused(&cli(
            &r,
            &["quarantine", "release", &doomed, "--reason", "x"],
            None
        ))
        .contains("deleted")
    );

    // Purge: only admin; removes what is older than the cut-off.
    let err = refused(&cli(
        &r,
        &["quarantine", "purge", "--older-than", "30d", "--as", "dsl"],
        None,
    ));
    assert!(err.contains("only admin"), "{err}");
    sql(
        &r,
        &format!(
            "UPDATE quarantine SET held_at = held_at - 31 * 86400 WHERE id IN ('{old}', '{doomed}')"
        ),
    );
    let out = ok(&cli(
        &r,
        &["quarantine", "purge", "--older-than", "30d"],
        None,
    ));
    assert!(out.contains("purged 2"), "{out}");
    assert_eq!(files(&old), vec![false, false]);
    assert_eq!(files(&recent), vec![true, true]);
    assert_eq!(sql(&r, "SELECT group_concat(id) FROM quarantine"), recent);
    assert_eq!(
        sql(&r, "SELECT count(*) FROM audit WHERE action = 'purge'"),
        "1"
    );
    // The incidents stay for the summaries.
    assert_eq!(sql(&r, "SELECT count(*) FROM incidents"), "3");
    let err = refused(&cli(
        &r,
        &["quarantine", "purge", "--older-than", "30"],
        None,
    ));
    assert!(err.contains("30d"), "{err}");
}

#[test]
fn two_releases_at_once_deliver_once() {
    let sink = Sink::start();
    let r = relay(&sink);
    let id = hold_pupil_data(&r, "4QRACE1");
    let spawn = |who: &str| {
        Command::new(common::HALLMONITOR)
            .args(["--config"])
            .arg(r.config_path())
            .args([
                "quarantine",
                "release",
                &id,
                "--reason",
                "approved",
                "--as",
                who,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("first");
    let b = spawn("second");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let said = format!(
        "{}{}{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stdout),
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(a.status.success() || b.status.success(), "{said}");
    assert_eq!(released(&sink).len(), 1, "{said}");
    assert_eq!(
        sql(&r, "SELECT count(*) FROM audit WHERE action = 'release'"),
        "1"
    );
    assert_eq!(sql(&r, "SELECT status FROM quarantine"), "released");
}
