//! The audit log (admins), the incident history and the archive of weekly
//! summaries.

use super::auth::{Authed, internal};
use super::html::{self, esc};
use crate::access::Role;
use crate::incidents::Incidents;
use crate::serve::Shared;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::Row;
use std::fmt::Write;
use std::sync::Arc;

/// `GET /audit`: admins only.
pub async fn audit(State(shared): State<Arc<Shared>>, authed: Authed) -> Response {
    if authed.role() != Role::Admin {
        return authed.error(StatusCode::FORBIDDEN, "The audit log is for admins only.");
    }
    let rows = match shared.settings().incidents.audit_log(1000).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut b = String::from(
        r#"<p class="note">Every login, view of a message body, release, delete and download, newest first (last 1000).</p><table class="audit" id="audit"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Message</th><th>Reason</th><th>From</th><th>Detail</th></tr></thead><tbody>"#,
    );
    for r in &rows {
        let target = match r.target.as_deref() {
            Some(t) if super::security::valid_id(t) => {
                format!(r#"<a href="/message/{0}">{0}</a>"#, esc(t))
            }
            Some(t) => esc(t),
            None => String::new(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{target}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&html::time(r.at)),
            esc(&r.actor),
            esc(&r.action),
            esc(r.reason.as_deref().unwrap_or("")),
            esc(r.remote.as_deref().unwrap_or("")),
            esc(r.detail.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</tbody></table>");
    html::respond(
        StatusCode::OK,
        html::page("Audit log", Some(&authed.nav()), &b),
    )
}

/// One row of the incident history.
struct HistoryRow {
    at: i64,
    action: String,
    direction: String,
    mail_from: String,
    identified_sender: Option<String>,
    sender_is_head: bool,
    subject: Option<String>,
    categories: String,
    rules: String,
    quarantine_id: Option<String>,
}

/// Whether a role sees an incident in the history: the same rule as the
/// held list (`access::can_list`) — admins everything, head and DSL all but
/// the head's own mail, the Chair only the head's mail, governors nothing.
fn history_visible(role: Role, sender_is_head: bool) -> bool {
    match role {
        Role::Admin => true,
        Role::Head | Role::Dsl => !sender_is_head,
        Role::Chair => sender_is_head,
        Role::Governor => false,
    }
}

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    #[serde(default)]
    action: String,
}

async fn history_rows(db: &Incidents, action: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT i.at, i.action, i.direction, i.mail_from, i.identified_sender, i.sender_is_head, \
         i.subject, i.categories, i.rules, q.id AS quarantine_id \
         FROM incidents i LEFT JOIN quarantine q ON q.incident_id = i.id \
         WHERE (? = '' OR i.action = ?) ORDER BY i.at DESC, i.id DESC LIMIT 1000",
    )
    .bind(action)
    .bind(action)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryRow {
                at: r.try_get("at")?,
                action: r.try_get("action")?,
                direction: r.try_get("direction")?,
                mail_from: r.try_get("mail_from")?,
                identified_sender: r.try_get("identified_sender")?,
                sender_is_head: r.try_get::<i64, _>("sender_is_head")? != 0,
                subject: r.try_get("subject")?,
                categories: r.try_get("categories")?,
                rules: r.try_get("rules")?,
                quarantine_id: r.try_get("quarantine_id")?,
            })
        })
        .collect()
}

/// `GET /incidents`: every incident (held, tagged, rejected, passed with
/// findings), newest first.
pub async fn incidents(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let role = authed.role();
    if role == Role::Governor {
        return authed.error(
            StatusCode::FORBIDDEN,
            "Governors see the weekly summaries only.",
        );
    }
    const ACTIONS: &[&str] = &["pass", "tag", "quarantine", "reject"];
    let action = if ACTIONS.contains(&q.action.as_str()) {
        q.action.as_str()
    } else {
        ""
    };
    let rows = match history_rows(&shared.settings().incidents, action).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut b = String::from(
        r#"<form method="get" action="/incidents" class="filters"><label>Action <select name="action"><option value="">any</option>"#,
    );
    for a in ACTIONS {
        let _ = write!(
            b,
            r#"<option value="{0}"{1}>{0}</option>"#,
            esc(a),
            if *a == action { " selected" } else { "" }
        );
    }
    b.push_str(r#"</select></label> <button type="submit">Filter</button></form>"#);
    b.push_str(r#"<p class="note">Every message with findings: held, tagged, rejected and passed with findings (newest 1000).</p><table class="history"><thead><tr><th>When</th><th>Action</th><th>Direction</th><th>From</th><th>Subject</th><th>Categories</th><th>Rules</th></tr></thead><tbody>"#);
    for r in rows
        .iter()
        .filter(|r| history_visible(role, r.sender_is_head))
    {
        let subject = esc(r.subject.as_deref().unwrap_or("(no subject)"));
        let subject = match &r.quarantine_id {
            Some(id) => format!(r#"<a href="/message/{}">{subject}</a>"#, esc(id)),
            None => subject,
        };
        let from = match &r.identified_sender {
            Some(who) if !who.eq_ignore_ascii_case(&r.mail_from) => {
                format!("{} <small>({})</small>", esc(&r.mail_from), esc(who))
            }
            _ => esc(&r.mail_from),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{from}</td><td>{subject}</td><td>{}</td><td>{}</td></tr>",
            esc(&html::time(r.at)),
            esc(&r.action),
            esc(&r.direction),
            esc(&r.categories.replace(',', ", ")),
            esc(&r.rules.replace(',', ", "))
        );
    }
    b.push_str("</tbody></table>");
    html::respond(
        StatusCode::OK,
        html::page("Incident history", Some(&authed.nav()), &b),
    )
}

/// Audiences of weekly summaries a role may read.
fn summary_audiences(role: Role) -> &'static [&'static str] {
    match role {
        Role::Admin | Role::Head => &["head", "governors"],
        Role::Dsl | Role::Chair | Role::Governor => &["governors"],
    }
}

async fn summaries_exist(db: &Incidents) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'summaries'",
    )
    .fetch_one(db.pool())
    .await?;
    Ok(n > 0)
}

/// `GET /summaries`: the archive of weekly summaries.
pub async fn summaries(State(shared): State<Arc<Shared>>, authed: Authed) -> Response {
    let db = &shared.settings().incidents;
    let mut b = String::new();
    let rows = match summaries_exist(db).await {
        Ok(false) => Vec::new(),
        Ok(true) => {
            match sqlx::query(
                "SELECT id, week, audience, created_at, sent_at, subject FROM summaries \
                 ORDER BY week DESC, id DESC LIMIT 520",
            )
            .fetch_all(db.pool())
            .await
            {
                Ok(r) => r,
                Err(e) => return internal(e),
            }
        }
        Err(e) => return internal(e),
    };
    let audiences = summary_audiences(authed.role());
    let mut any = false;
    b.push_str(r#"<table class="summaries"><thead><tr><th>Week</th><th>For</th><th>Subject</th><th>Sent</th></tr></thead><tbody>"#);
    for r in &rows {
        let audience: String = r.try_get("audience").unwrap_or_default();
        if !audiences.contains(&audience.as_str()) {
            continue;
        }
        any = true;
        let id: i64 = r.try_get("id").unwrap_or_default();
        let week: String = r.try_get("week").unwrap_or_default();
        let subject: String = r.try_get("subject").unwrap_or_default();
        let sent: Option<i64> = r.try_get("sent_at").unwrap_or_default();
        let _ = write!(
            b,
            r#"<tr><td>{}</td><td>{}</td><td><a href="/summaries/{id}">{}</a></td><td>{}</td></tr>"#,
            esc(&week),
            esc(&audience),
            esc(&subject),
            esc(&sent.map(html::time).unwrap_or_else(|| "not sent".into()))
        );
    }
    b.push_str("</tbody></table>");
    if !any {
        b = r#"<p class="empty">No summaries yet.</p>"#.into();
    }
    html::respond(
        StatusCode::OK,
        html::page("Weekly summaries", Some(&authed.nav()), &b),
    )
}

async fn one_summary(
    db: &Incidents,
    id: i64,
    role: Role,
) -> Result<Option<sqlx::sqlite::SqliteRow>, sqlx::Error> {
    if !summaries_exist(db).await? {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, week, audience, created_at, sent_at, subject, text, png FROM summaries WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.filter(|r| {
        let audience: String = r.try_get("audience").unwrap_or_default();
        summary_audiences(role).contains(&audience.as_str())
    }))
}

/// `GET /summaries/{id}`: one summary as plain text with its chart.
pub async fn summary(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Path(id): Path<i64>,
) -> Response {
    let db = &shared.settings().incidents;
    let row = match one_summary(db, id, authed.role()).await {
        Ok(Some(r)) => r,
        Ok(None) => return authed.error(StatusCode::NOT_FOUND, "No such summary."),
        Err(e) => return internal(e),
    };
    let subject: String = row.try_get("subject").unwrap_or_default();
    let text: String = row.try_get("text").unwrap_or_default();
    let png: Option<Vec<u8>> = row.try_get("png").unwrap_or_default();
    let mut b = String::new();
    if png.is_some_and(|p| !p.is_empty()) {
        let _ = write!(
            b,
            r#"<p><img src="/summaries/{id}/chart.png" alt="Chart of incidents by category"></p>"#
        );
    }
    let _ = write!(
        b,
        r#"<pre class="body">{}</pre><p><a href="/summaries">All summaries</a></p>"#,
        esc(&text)
    );
    html::respond(
        StatusCode::OK,
        html::page(&subject, Some(&authed.nav()), &b),
    )
}

/// `GET /summaries/{id}/chart.png`.
pub async fn summary_chart(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Path(id): Path<i64>,
) -> Response {
    let db = &shared.settings().incidents;
    let png: Option<Vec<u8>> = match one_summary(db, id, authed.role()).await {
        Ok(Some(r)) => r.try_get("png").unwrap_or_default(),
        Ok(None) => None,
        Err(e) => return internal(e),
    };
    match png {
        Some(p) if p.starts_with(b"\x89PNG") => {
            ([(header::CONTENT_TYPE, "image/png")], p).into_response()
        }
        _ => authed.error(StatusCode::NOT_FOUND, "No chart."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_follows_the_list_rule() {
        use Role::*;
        let who = |head: bool| -> Vec<Role> {
            Role::ALL
                .into_iter()
                .filter(|r| history_visible(*r, head))
                .collect()
        };
        assert_eq!(who(false), vec![Admin, Head, Dsl]);
        assert_eq!(who(true), vec![Admin, Chair]);
    }

    #[test]
    fn governors_read_governor_summaries_only() {
        assert_eq!(summary_audiences(Role::Governor), &["governors"]);
        assert!(summary_audiences(Role::Head).contains(&"head"));
    }
}
