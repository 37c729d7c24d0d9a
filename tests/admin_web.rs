//! The admin web UI over real HTTP: the real `hallmonitor serve` with its
//! admin server, mail held by sending it through the relay (real clamd),
//! users made with `hallmonitor user add`, and a recording SMTP sink as the
//! next hop that releases go to.

mod admin_support;
mod common;

use admin_support::{PASSWORD, Setup, audit_rows, login, request, try_login, wait_for};

/// Every audit row is (when, who, action, message, reason, from, detail).
fn has_audit(rows: &[Vec<String>], who: &str, action: &str, target: &str) -> bool {
    rows.iter()
        .any(|r| r.len() >= 4 && r[1] == who && r[2] == action && r[3] == target)
}

#[test]
fn roles_are_enforced_per_route_and_per_item() {
    let s = Setup::start();
    for (name, role) in [
        ("ict", "admin"),
        ("head", "head"),
        ("dsl", "dsl"),
        ("chair", "chair"),
        ("gov", "governor"),
    ] {
        s.add_user(name, role);
    }
    let teacher = s.hold_pupil_data("4QROLE01", "Referral <script>alert(1)</script>");
    let from_head = s.hold_from_head("4QROLE02", "Head's own referral");
    let virus = s.hold_virus("4QROLE03");
    let addr = s.admin();

    // Not signed in: every page sends you to the login form.
    for path in [
        "/",
        "/audit",
        "/incidents",
        "/summaries",
        &format!("/message/{teacher}"),
    ] {
        let r = request(addr, "GET", path, &[], b"");
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.header("location"), Some("/login"), "{path}");
    }

    // The head sees the teacher's item and its body, never the mail the head sent.
    let head = login(addr, "head");
    let list = head.get("/").text();
    assert!(list.contains(&format!("/message/{teacher}")), "{list}");
    assert!(!list.contains(&format!("/message/{from_head}")), "{list}");
    assert!(!list.contains("Head&#39;s own referral"), "{list}");
    // Subjects are escaped, never markup.
    assert!(
        list.contains("Referral &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{list}"
    );
    assert!(!list.contains("<script>"), "{list}");
    let own = head.get(&format!("/message/{from_head}"));
    assert_eq!(own.status, 404);
    assert!(!own.text().contains("Dear Nurse"), "{}", own.text());
    let release_own = head.post(
        &format!("/message/{from_head}/release"),
        &[("reason", "mine")],
    );
    assert_eq!(release_own.status, 404);
    let page = head.get(&format!("/message/{teacher}"));
    assert_eq!(page.status, 200);
    let page = page.text();
    assert!(page.contains("Dear Nurse Adeyemi"), "{page}");
    assert!(
        page.contains(r#"action="/message/"#) && page.contains("/release"),
        "{page}"
    );
    // Findings show the evidence masked (the body is the message itself).
    let findings = &page[page.find("<h2>Findings").unwrap()..page.find("<h2>Decision").unwrap()];
    assert!(findings.contains("NHS number 7032*****3"), "{findings}");
    assert!(!findings.contains("703 219 8643"), "{findings}");
    assert_eq!(head.get("/audit").status, 403);
    assert_eq!(
        head.get(&format!("/message/{virus}/attachment/0")).status,
        403
    );

    // The Chair sees the head's item (and its body) and nothing else.
    let chair = login(addr, "chair");
    let list = chair.get("/").text();
    assert!(list.contains(&format!("/message/{from_head}")), "{list}");
    assert!(!list.contains(&format!("/message/{teacher}")), "{list}");
    let page = chair.get(&format!("/message/{from_head}")).text();
    assert!(page.contains("Dear Nurse Adeyemi"), "{page}");
    assert_eq!(chair.get(&format!("/message/{teacher}")).status, 404);

    // The DSL lists the personal-data item but may not read its body.
    let dsl = login(addr, "dsl");
    let page = dsl.get(&format!("/message/{teacher}"));
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("Dear Nurse Adeyemi"));
    assert!(page.text().contains("not its body"));

    // Governors: summaries only.
    let gov = login(addr, "gov");
    let home = gov.get("/");
    assert_eq!(home.status, 303);
    assert_eq!(home.header("location"), Some("/summaries"));
    let summaries = gov.get("/summaries");
    assert_eq!(summaries.status, 200);
    assert!(
        summaries.text().contains("No summaries yet"),
        "{}",
        summaries.text()
    );
    assert_eq!(gov.get(&format!("/message/{teacher}")).status, 404);
    assert_eq!(gov.get("/incidents").status, 403);
    assert_eq!(gov.get("/audit").status, 403);

    // The admin sees everything, but nobody releases a virus.
    let ict = login(addr, "ict");
    let list = ict.get("/?status=all").text();
    for id in [&teacher, &from_head, &virus] {
        assert!(list.contains(&format!("/message/{id}")), "{id}: {list}");
    }
    let page = ict.get(&format!("/message/{virus}")).text();
    assert!(
        page.contains("nobody may release a message that contains a virus"),
        "{page}"
    );
    assert!(!page.contains("/release\""), "{page}");
    let refused = ict.post(
        &format!("/message/{virus}/release"),
        &[("reason", "trust me")],
    );
    assert_eq!(refused.status, 403);
    assert_eq!(s.released().len(), 0);
    // Attachments: admin only, behind a warning, never rendered inline.
    let warn = ict.get(&format!("/message/{virus}/attachment/0"));
    assert_eq!(warn.status, 200);
    assert!(warn.text().contains("contains a virus"), "{}", warn.text());
    let file = ict.post(&format!("/message/{virus}/attachment/0"), &[]);
    assert_eq!(file.status, 200);
    assert_eq!(
        file.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(
        file.header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=")
    );
    assert!(file.body.starts_with(b"PK"), "a zip");
    let rows = audit_rows(&ict);
    assert!(has_audit(&rows, "ict", "download", &virus), "{rows:?}");
    assert!(has_audit(&rows, "head", "view", &teacher), "{rows:?}");
    assert!(has_audit(&rows, "chair", "view", &from_head), "{rows:?}");
    // The incident history hides the head's own mail from the head.
    let history = head.get("/incidents").text();
    assert!(
        history.contains(&format!("/message/{teacher}")),
        "{history}"
    );
    assert!(
        !history.contains(&format!("/message/{from_head}")),
        "{history}"
    );
    assert!(
        ict.get("/incidents")
            .text()
            .contains(&format!("/message/{from_head}"))
    );

    // IDs are validated: no path traversal into the state directory.
    for path in [
        "/message/..%2F..%2Fhallmonitor.db",
        "/message/..%2Fmessages%2Fx",
        &format!("/message/{teacher}.eml"),
    ] {
        assert_eq!(ict.get(path).status, 404, "{path}");
    }
}

#[test]
fn filters_and_counts_per_category() {
    let s = Setup::start();
    s.add_user("ict", "admin");
    let pd = s.hold_pupil_data("4QFILT01", "Referral one");
    let virus = s.hold_virus("4QFILT02");
    let ict = login(s.admin(), "ict");
    let all = ict.get("/").text();
    assert!(all.contains(&format!("/message/{pd}")) && all.contains(&format!("/message/{virus}")));
    assert!(
        all.contains(r#"id="count-virus">virus <strong>1</strong>"#),
        "{all}"
    );
    assert!(
        all.contains(r#"id="count-personal_data">personal_data <strong>1</strong>"#),
        "{all}"
    );
    let only_virus = ict.get("/?category=virus").text();
    assert!(only_virus.contains(&format!("/message/{virus}")));
    assert!(!only_virus.contains(&format!("/message/{pd}")));
    let by_sender = ict.get("/?sender=d.price").text();
    assert!(by_sender.contains(&format!("/message/{pd}")));
    assert!(!by_sender.contains(&format!("/message/{virus}")));
    let outbound = ict.get("/?direction=inbound").text();
    assert!(outbound.contains(&format!("/message/{virus}")));
    assert!(!outbound.contains(&format!("/message/{pd}")));
    let none = ict.get("/?from=2001-01-01&to=2001-01-02").text();
    assert!(none.contains("No messages match"), "{none}");
}

#[test]
fn a_post_without_csrf_proof_is_refused() {
    let s = Setup::start();
    s.add_user("ict", "admin");
    let id = s.hold_pupil_data("4QCSRF01", "Referral");
    let addr = s.admin();
    let ict = login(addr, "ict");
    let path = format!("/message/{id}/release");
    let same_origin = format!("http://{addr}");
    // No token, a wrong token, a token from another session: 403.
    let none = ict.post_raw(&path, &[("reason", "ok")], &[("Origin", &same_origin)]);
    assert_eq!(none.status, 403, "{}", none.text());
    let wrong = ict.post_raw(&path, &[("csrf", "00"), ("reason", "ok")], &[]);
    assert_eq!(wrong.status, 403);
    let other = login(addr, "ict");
    assert_ne!(other.csrf, ict.csrf);
    let swapped = ict.post_raw(&path, &[("csrf", &other.csrf), ("reason", "ok")], &[]);
    assert_eq!(swapped.status, 403);
    // The right token from another site: refused by the origin check.
    let cross = ict.post_raw(
        &path,
        &[("csrf", &ict.csrf), ("reason", "ok")],
        &[
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    );
    assert_eq!(cross.status, 403);
    let cross_origin_only = ict.post_raw(
        &path,
        &[("csrf", &ict.csrf), ("reason", "ok")],
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(cross_origin_only.status, 403);
    // Logout and the login form need their proof too.
    assert_eq!(ict.post_raw("/logout", &[], &[]).status, 403);
    let login_without_token = request(
        addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &admin_support::form(&[("user", "ict"), ("password", PASSWORD)]),
    );
    assert_eq!(login_without_token.status, 403);
    assert!(login_without_token.cookie("hm_session").is_none());
    // Nothing was delivered and the item is still held.
    assert_eq!(s.released().len(), 0);
    let page = ict.get(&format!("/message/{id}")).text();
    assert!(page.contains("<th>Status</th><td>held</td>"), "{page}");
    // The session still works for a proper form.
    assert_eq!(ict.post("/logout", &[]).status, 303);
    assert_eq!(ict.get("/").status, 303, "logged out");
}

#[test]
fn release_delivers_once_to_the_sink_and_is_audited() {
    let s = Setup::start();
    s.add_user("head", "head");
    s.add_user("ict", "admin");
    let id = s.hold_pupil_data("4QREL001", "Referral to release");
    let other = s.hold_pupil_data("4QREL002", "Referral to delete");
    let head = login(s.admin(), "head");
    // A reason is required.
    let no_reason = head.post(&format!("/message/{id}/release"), &[("reason", "  ")]);
    assert_eq!(no_reason.status, 400);
    assert_eq!(s.released().len(), 0);
    let r = head.post(
        &format!("/message/{id}/release"),
        &[("reason", "Parent consented to the referral")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("/message/{id}?done=released").as_str())
    );
    let got = wait_for("delivery at the sink", 20, || {
        let m = s.released();
        (!m.is_empty()).then_some(m)
    });
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].rcpts,
        vec![format!("RCPT TO:<{}>", admin_support::NURSE)]
    );
    let text = got[0].text();
    assert!(text.contains("X-Hallmonitor-Released: by=head"), "{text}");
    assert!(text.contains("Dear Nurse Adeyemi"), "{text}");
    // Released again (a double click, a second tab): never a second delivery.
    let again = head.post(&format!("/message/{id}/release"), &[("reason", "again")]);
    assert!(matches!(again.status, 303 | 409), "{}", again.status);
    let page = head.get(&format!("/message/{id}")).text();
    assert!(page.contains("<th>Status</th><td>released</td>"), "{page}");
    assert!(
        !page.contains("/release\""),
        "no release form once released"
    );
    // Delete with a reason: nothing delivered (the POST answers after the
    // decision is stored; the release above was delivered before its 303).
    let d = head.post(
        &format!("/message/{other}/delete"),
        &[("reason", "Sent in error")],
    );
    assert_eq!(d.status, 303, "{}", d.text());
    assert_eq!(s.released().len(), 1);
    // The audit log shows who did what, why and from where.
    let ict = login(s.admin(), "ict");
    let rows = audit_rows(&ict);
    let release = rows
        .iter()
        .find(|r| r[1] == "head" && r[2] == "release" && r[3] == id)
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(release[4], "Parent consented to the referral");
    assert_eq!(release[5], "127.0.0.1");
    assert!(has_audit(&rows, "head", "delete", &other), "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r[1] == "head" && r[2] == "login" && r[6] == "ok"),
        "{rows:?}"
    );
    assert!(has_audit(&rows, "head", "view", &id), "{rows:?}");
}

#[test]
fn logins_are_rate_limited_and_audited() {
    let s = Setup::start();
    s.add_user("ict", "admin");
    let addr = s.admin();
    for _ in 0..5 {
        let r = try_login(addr, "ict", "wrong password");
        assert_eq!(r.status, 401);
        assert!(r.cookie("hm_session").is_none());
    }
    // Even the right password is refused now.
    let r = try_login(addr, "ict", PASSWORD);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.cookie("hm_session").is_none());
    // Read the audit trail directly: the web login is locked for this address.
    let db = s.relay.state_dir().join("hallmonitor.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT actor, action, detail FROM audit WHERE action = 'login' ORDER BY id")
        .output()
        .expect("sqlite3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("ict|login|failed").count(), 5, "{text}");
    assert_eq!(text.matches("ict|login|throttled").count(), 1, "{text}");
}

#[test]
fn sessions_cookies_and_security_headers() {
    let s = Setup::start();
    s.add_user("ict", "admin");
    let addr = s.admin();
    let r = try_login(addr, "ict", PASSWORD);
    let set = r
        .headers_named("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("hm_session="))
        .expect("session cookie")
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain-http base_url: no Secure flag: {set}"
    );
    let ict = login(addr, "ict");
    for path in ["/", "/login", "/message/nope", "/static/style.css"] {
        let r = ict.get(path);
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("script-src"), "{csp}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
    }
    assert_eq!(ict.get("/").header("cache-control"), Some("no-store"));
    // The database holds only a hash of the cookie.
    let db = s.relay.state_dir().join("hallmonitor.db");
    let sqlite = |sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg(sql)
            .output()
            .expect("sqlite3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ids = sqlite("SELECT id FROM sessions");
    assert!(!ids.contains(&ict.cookie), "{ids}");
    // Idle expiry: a session unused for 31 minutes is gone.
    assert_eq!(ict.get("/").status, 200);
    sqlite("UPDATE sessions SET last_seen = last_seen - 31*60");
    let r = ict.get("/");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    // A garbage cookie is just "not signed in".
    let r = request(
        addr,
        "GET",
        "/",
        &[("Cookie", "hm_session=../../etc/passwd")],
        b"",
    );
    assert_eq!(r.status, 303);
}

#[test]
fn governors_see_only_the_governors_summaries() {
    let s = Setup::start();
    s.add_user("gov", "governor");
    s.add_user("head", "head");
    let db = s.relay.state_dir().join("hallmonitor.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(
            "INSERT INTO summaries (id, week, audience, created_at, sent_at, subject, text, html) VALUES \
             (1, '2026-W47', 'head', 1795000000, 1795000000, 'Head summary <b>W47</b>', 'Named senders: d.price', '<p>x</p>'), \
             (2, '2026-W47', 'governors', 1795000000, NULL, 'Governors summary W47', 'Totals only: 3 held', '<p>y</p>')",
        )
        .output()
        .expect("sqlite3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gov = login(s.admin(), "gov");
    let list = gov.get("/summaries").text();
    assert!(list.contains("Governors summary W47"), "{list}");
    assert!(!list.contains("Head summary"), "{list}");
    let one = gov.get("/summaries/2");
    assert_eq!(one.status, 200);
    assert!(one.text().contains("Totals only: 3 held"));
    assert_eq!(gov.get("/summaries/1").status, 404);
    let head = login(s.admin(), "head");
    let list = head.get("/summaries").text();
    assert!(
        list.contains("Head summary &lt;b&gt;W47&lt;/b&gt;"),
        "{list}"
    );
    assert!(list.contains("Governors summary W47"), "{list}");
    assert!(
        head.get("/summaries/1")
            .text()
            .contains("Named senders: d.price")
    );
}
