//! `hallmonitor report weekly`: a seeded incident log, the real binary, the
//! summary printed, written as HTML (and rendered by headless chromium) and
//! sent to a loopback SMTP sink, where the mails are parsed.

mod common;

use common::smtp::Sink;
use hallmonitor::incidents::{FindingRow, FrontEnd, HeldRow, Incidents, NewIncident};
use hallmonitor::report::Week;
use mail_parser::MimeHeaders;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const HEAD: &str = "head@oakfield.sch.uk";
const GOVERNOR: &str = "governor1@oakfield.sch.uk";
const CHAIR: &str = "chair@oakfield.sch.uk";

struct Seeded {
    dir: tempfile::TempDir,
}

impl Seeded {
    fn config(&self) -> PathBuf {
        self.dir.path().join("hallmonitor.toml")
    }

    fn report(&self, args: &[&str]) -> Output {
        let out = Command::new(common::HALLMONITOR)
            .arg("--config")
            .arg(self.config())
            .args(["report", "weekly"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "report {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn text(&self, args: &[&str]) -> String {
        String::from_utf8(self.report(args).stdout).unwrap()
    }
}

#[allow(clippy::too_many_arguments)]
fn incident(
    at: i64,
    action: &str,
    direction: &str,
    group: &str,
    who: (&str, Option<&str>),
    category: &str,
    subject: &str,
    held: Option<&str>,
) -> NewIncident {
    NewIncident {
        at,
        front_end: FrontEnd::Relay,
        queue_id: None,
        message_id: None,
        subject: Some(subject.into()),
        mail_from: who.0.into(),
        rcpts: vec!["someone@example.org".into()],
        client_ip: None,
        auth_user: who.1.map(str::to_string),
        direction: direction.into(),
        sender_group: group.into(),
        identified_sender: who.1.map(str::to_string),
        sender_is_head: false,
        action: action.into(),
        categories: vec![category.into()],
        rules: vec![format!("{category}/x")],
        notify: vec!["head_teacher".into()],
        clauses: vec!["A clause.".into()],
        size: 100,
        findings: vec![FindingRow {
            category: category.into(),
            rule: format!("{category}/x"),
            location: "body".into(),
            evidence: "AB12****C".into(),
            severity: "high".into(),
            confidence: 0.9,
            count: 1,
            clause: "A clause.".into(),
        }],
        held: held.map(|id| HeldRow {
            id: id.into(),
            next_hop: "127.0.0.1:10026".into(),
        }),
    }
}

const TEACHER: (&str, Option<&str>) = ("d.price@oakfield.sch.uk", Some("d.price"));
const PUPIL: (&str, Option<&str>) = ("p.jones@pupils.oakfield.sch.uk", Some("p.jones"));
const PARENT: (&str, Option<&str>) = ("helen.okafor@example.com", None);

/// An incident log for 2026-W47 and the four weeks before it.
fn seeded(smtp: Option<std::net::SocketAddr>) -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(common::test_config()).unwrap();
    let notify = smtp
        .map(|a| format!("[notify]\nsmtp = \"{a}\"\n\n"))
        .unwrap_or_default();
    let base: String = {
        // Drop a [notify] table of the shared config, if it has one.
        let mut out = String::new();
        let mut skip = false;
        for line in base.lines() {
            if line.trim().starts_with('[') {
                skip = line.trim() == "[notify]";
            }
            if !skip {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    };
    std::fs::write(
        dir.path().join("hallmonitor.toml"),
        format!("[state]\ndir = \"state\"\n\n{notify}{base}"),
    )
    .unwrap();
    let w47 = Week::new(2026, 47).unwrap();
    let week = |n: i8| Week::new(2026, n).unwrap().start;
    let day = 86_400;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = Incidents::open(&dir.path().join("state")).await.unwrap();
        let t = w47.start + 9 * 3600;
        let rows = [
            // 2026-W47: 7 flagged.
            incident(t, "quarantine", "outbound", "staff", TEACHER, "personal_data", "Pupil AB123456C", Some("q-held")),
            incident(t + day, "quarantine", "outbound", "staff", TEACHER, "personal_data", "Referral", Some("q-released")),
            incident(t + day, "quarantine", "outbound", "staff", TEACHER, "personal_data", "Referral 2", Some("q-deleted")),
            incident(t + 2 * day, "tag", "internal", "pupil", PUPIL, "profanity", "lol", None),
            incident(t + 2 * day, "tag", "internal", "pupil", PUPIL, "profanity", "lol 2", None),
            incident(t + 3 * day, "quarantine", "inbound", "external", PARENT, "virus", "Invoice", Some("q-virus")),
            incident(t + 4 * day, "quarantine", "inbound", "external", PARENT, "chain_letter", "Luck", Some("q-chain")),
            // 2026-W46: 2; W45: 1 (still held); W44: none; W43: 1.
            incident(week(46) + day, "tag", "internal", "pupil", PUPIL, "profanity", "x", None),
            incident(week(46) + 2 * day, "tag", "internal", "pupil", PUPIL, "profanity", "y", None),
            incident(week(45) + day, "quarantine", "outbound", "staff", TEACHER, "personal_data", "old", Some("q-old")),
            incident(week(43) + day, "quarantine", "inbound", "external", PARENT, "virus", "old virus", Some("q-old-virus")),
            // 2026-W48: not in the summary of W47.
            incident(w47.end + day, "quarantine", "inbound", "external", PARENT, "virus", "later", None),
        ];
        for r in &rows {
            db.record(r).await.unwrap();
        }
        let release = "UPDATE quarantine SET status = ?, reviewed_at = held_at + ?, reviewed_by = ?, review_reason = ? WHERE id = ?";
        for (id, status, after, by, why) in [
            ("q-released", "released", 2 * 3600, "head", "Agreed with the parent; NI AB123456C is theirs"),
            ("q-deleted", "deleted", day, "dsl", "Sent to the wrong person"),
            ("q-old-virus", "deleted", 3600, "head", "virus"),
        ] {
            sqlx::query(release)
                .bind(status)
                .bind(after)
                .bind(by)
                .bind(why)
                .bind(id)
                .execute(db.pool())
                .await
                .unwrap();
        }
        sqlx::query("INSERT INTO users (name, role, password_hash, created_at) VALUES ('head', 'head', 'x', 0)")
            .execute(db.pool())
            .await
            .unwrap();
    });
    Seeded { dir }
}

/// The words of one table row of the text summary.
fn row<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&label))
        .unwrap_or_else(|| panic!("no row {label} in\n{text}"))
}

const CLEAR_NI: &[&str] = &["AB123456C", "AB 12 34 56 C"];

#[test]
fn head_teachers_text_has_the_counts_trend_holds_and_releases() {
    let s = seeded(None);
    let t = s.text(&["--week", "2026-W47", "--text"]);
    assert!(
        t.starts_with(
            "Oakfield Academy: mail breach summary for week 2026-W47 (Mon 16 Nov – Sun 22 Nov 2026)\n"
        ),
        "{t}"
    );
    // 7 this week against 1, 0, 1, 2 before: an average of 1.0.
    assert!(
        t.contains("Flagged messages: 7 (up from 1.0 the previous 4 weeks' average)"),
        "{t}"
    );
    //                     Week        Total Language Personal Chain Anonymous Virus Attachmt
    assert_eq!(
        row(&t, "2026-W47"),
        ["2026-W47", "7", "2", "3", "1", "0", "1", "0"]
    );
    assert_eq!(
        row(&t, "2026-W46"),
        ["2026-W46", "2", "2", "0", "0", "0", "0", "0"]
    );
    assert_eq!(
        row(&t, "2026-W45"),
        ["2026-W45", "1", "0", "1", "0", "0", "0", "0"]
    );
    assert_eq!(
        row(&t, "2026-W44"),
        ["2026-W44", "0", "0", "0", "0", "0", "0", "0"]
    );
    assert_eq!(
        row(&t, "2026-W43"),
        ["2026-W43", "1", "0", "0", "0", "0", "1", "0"]
    );
    assert!(t.contains("By action: held 5, tagged 2\n"), "{t}");
    assert!(
        t.contains("By direction: inbound 2, internal 2, outbound 3\n"),
        "{t}"
    );
    assert!(
        t.contains("Senders: external 2, pupils 2, staff 3\n"),
        "{t}"
    );
    assert!(t.contains("  1. d.price (staff): 3\n"), "{t}");
    assert!(
        t.contains("  2. helen.okafor@example.com (external): 2\n"),
        "{t}"
    );
    assert!(t.contains("  3. p.jones (pupil): 2\n"), "{t}");
    // Held now: this week's 3 still held and the one from W45.
    assert!(t.contains("Still held for review: 4\n"), "{t}");
    assert!(t.contains("q-held"), "{t}");
    assert!(t.contains("Released this week: 1\n"), "{t}");
    assert!(
        t.contains("q-released (personal data) released by head after 2.0 hours"),
        "{t}"
    );
    assert!(t.contains("Time from hold to review: 2 reviewed"), "{t}");
    for clear in CLEAR_NI {
        assert!(!t.contains(clear), "{clear} in clear:\n{t}");
    }
    assert!(
        t.contains("AB12****C"),
        "the masked subject and reason: {t}"
    );
}

#[test]
fn governors_version_has_no_names_or_addresses() {
    let s = seeded(None);
    let t = s.text(&["--week", "2026-W47", "--text", "--governors"]);
    assert!(t.contains("Flagged messages: 7"), "{t}");
    assert!(t.contains("  1. Staff member A: 3\n"), "{t}");
    assert!(t.contains("  2. External sender A: 2\n"), "{t}");
    assert!(t.contains("  3. Pupil A: 2\n"), "{t}");
    assert!(
        t.contains("released by the head teacher after 2.0 hours"),
        "{t}"
    );
    assert_anonymous(&t);
}

fn assert_anonymous(t: &str) {
    assert!(
        !t.contains('@'),
        "an e-mail address in the governors' version:\n{t}"
    );
    for name in [
        "d.price", "p.jones", "helen", "okafor", "Price", "Pupil AB", "Referral", "Agreed",
    ] {
        assert!(!t.contains(name), "{name} in the governors' version:\n{t}");
    }
    for clear in CLEAR_NI {
        assert!(!t.contains(clear), "{clear} in clear:\n{t}");
    }
}

#[test]
fn an_empty_week_is_nothing_to_report_not_an_error() {
    let s = seeded(None);
    let t = s.text(&["--week", "2025-W10"]);
    assert!(t.contains("Nothing to report"), "{t}");
    assert!(
        t.starts_with("Oakfield Academy: mail breach summary for week 2025-W10"),
        "{t}"
    );
}

#[test]
fn without_week_it_is_the_current_week_so_far() {
    let s = seeded(None);
    let t = s.text(&["--text"]);
    let now = jiff::ZonedDateTime::now().in_tz("Europe/London").unwrap();
    let iso = now.date().iso_week_date();
    let label = format!("{}-W{:02}", iso.year(), iso.week());
    assert!(t.contains(&format!("week {label} (")), "{label}: {t}");
    assert!(t.lines().next().unwrap().ends_with("(week so far)"), "{t}");
    let last = s.text(&["--week", "last"]);
    assert!(!last.contains(&format!("week {label} (")), "{last}");
}

#[test]
fn a_bad_week_is_refused_with_a_clear_message() {
    let s = seeded(None);
    let out = Command::new(common::HALLMONITOR)
        .arg("--config")
        .arg(s.config())
        .args(["report", "weekly", "--week", "2026-47"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`2026-47` is not a week"), "{err}");
}

/// Check a PNG: signature, IHDR, every chunk's CRC, and that the image data
/// inflates to exactly width × height RGB rows.
fn assert_valid_png(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let mut pos = 8;
    let (mut w, mut h, mut idat) = (0u32, 0u32, Vec::new());
    let mut ended = false;
    while pos + 12 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &png[pos + 4..pos + 8];
        let data = &png[pos + 8..pos + 8 + len];
        let crc = u32::from_be_bytes(png[pos + 8 + len..pos + 12 + len].try_into().unwrap());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(kind);
        hasher.update(data);
        assert_eq!(
            crc,
            hasher.finalize(),
            "bad CRC in {:?}",
            String::from_utf8_lossy(kind)
        );
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap());
                h = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!(&data[8..10], &[8, 2], "8-bit RGB");
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => ended = true,
            _ => {}
        }
        pos += 12 + len;
    }
    assert!(ended, "no IEND");
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(raw.len(), (w as usize * 3 + 1) * h as usize);
    // Not blank: some pixels are neither white nor grey.
    assert!(
        raw.chunks(3)
            .any(|p| p.len() == 3 && !(p[0] == p[1] && p[1] == p[2])),
        "no coloured bars"
    );
    (w, h)
}

#[test]
fn sent_summaries_are_multipart_with_an_inline_chart_and_kept_in_the_archive() {
    let sink = Sink::start();
    let s = seeded(Some(sink.addr));
    let out = s.text(&["--week", "2026-W47", "--send"]);
    assert!(
        out.contains("sent the head summary for 2026-W47 to head@oakfield.sch.uk"),
        "{out}"
    );
    let mails = sink.messages();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let rcpts = |m: &common::smtp::Delivered| -> Vec<String> {
        m.rcpts
            .iter()
            .map(|r| {
                r.trim_start_matches("RCPT TO:<")
                    .trim_end_matches('>')
                    .to_string()
            })
            .collect()
    };
    let head = mails
        .iter()
        .find(|m| rcpts(m) == [HEAD])
        .expect("the head's mail");
    let gov = mails
        .iter()
        .find(|m| rcpts(m) == [GOVERNOR, CHAIR])
        .expect("the governors' mail");
    for (m, governors) in [(head, false), (gov, true)] {
        let msg = mail_parser::MessageParser::default()
            .parse(&m.data)
            .unwrap();
        let raw = m.text();
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"));
        let ctype = msg.content_type().unwrap();
        assert_eq!(
            (ctype.ctype(), ctype.subtype()),
            ("multipart", Some("alternative"))
        );
        let text = msg.body_text(0).unwrap().into_owned();
        let html = msg.body_html(0).unwrap().into_owned();
        assert!(text.contains("Flagged messages: 7"), "{text}");
        assert!(
            html.contains("<strong>7</strong> flagged messages"),
            "{html}"
        );
        // The chart: an inline PNG whose Content-ID the HTML references.
        assert!(html.contains("src=\"cid:chart\""), "{html}");
        let png = msg
            .parts
            .iter()
            .find(|p| {
                p.content_type()
                    .is_some_and(|c| c.ctype() == "image" && c.subtype() == Some("png"))
            })
            .expect("a PNG part");
        assert_eq!(png.content_id(), Some("chart"));
        assert_eq!(assert_valid_png(png.contents()), (720, 260));
        // The same figures as a table for clients that block images.
        assert!(html.contains("<tr><td>2026-W47</td><td class=\"n\">7</td><td class=\"n\">2</td><td class=\"n\">3</td>"), "{html}");
        for clear in CLEAR_NI {
            assert!(!raw.contains(clear) && !text.contains(clear) && !html.contains(clear));
        }
        if governors {
            assert_anonymous(&text);
            assert_anonymous(&html);
            assert!(msg.subject().unwrap().contains("(governors)"));
        } else {
            assert!(text.contains("d.price (staff): 3"), "{text}");
        }
    }
    // Both kept for the admin UI's archive, with the chart.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    type Row = (String, String, Option<i64>, Option<Vec<u8>>);
    let rows: Vec<Row> = rt.block_on(async {
        let db = Incidents::open(&s.dir.path().join("state")).await.unwrap();
        sqlx::query_as("SELECT week, audience, sent_at, png FROM summaries ORDER BY audience")
            .fetch_all(db.pool())
            .await
            .unwrap()
    });
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("2026-W47", "governors")
    );
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        ("2026-W47", "head")
    );
    assert!(rows.iter().all(|r| r.2.is_some()));
    assert_valid_png(rows[1].3.as_deref().unwrap());
}

#[test]
fn an_empty_week_sends_a_short_nothing_to_report_mail() {
    let sink = Sink::start();
    let s = seeded(Some(sink.addr));
    s.report(&["--week", "2025-W10", "--send"]);
    let mails = sink.messages();
    assert_eq!(mails.len(), 2);
    for m in &mails {
        let msg = mail_parser::MessageParser::default()
            .parse(&m.data)
            .unwrap();
        assert!(
            msg.subject()
                .unwrap()
                .contains("nothing to report for 2025-W10")
        );
        assert!(msg.body_text(0).unwrap().contains("Nothing to report"));
        assert!(msg.body_html(0).unwrap().contains("Nothing to report"));
    }
}

/// The HTML summary rendered by headless chromium into
/// `target/test-artifacts/weekly-summary.png`.
#[test]
fn the_html_summary_renders_in_chromium() {
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("headless chromium is needed for this test: install the Debian package `chromium`");
    let s = seeded(None);
    let artifacts = Path::new(common::MANIFEST_DIR).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let html = artifacts.join("weekly-summary.html");
    let png = artifacts.join("weekly-summary.png");
    let _ = std::fs::remove_file(&png);
    s.report(&["--week", "2026-W47", "--html", html.to_str().unwrap()]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("src=\"data:image/png;base64,"),
        "chart embedded"
    );
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1000,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let shot =
        std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()));
    assert!(shot.starts_with(b"\x89PNG\r\n\x1a\n"));
    let w = u32::from_be_bytes(shot[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(shot[20..24].try_into().unwrap());
    assert_eq!((w, h), (1000, 1400));
    // A rendered page with text, tables and the chart compresses far worse
    // than a blank one (a blank 1000×1400 PNG is a few KB).
    assert!(shot.len() > 30_000, "screenshot only {} bytes", shot.len());
}
