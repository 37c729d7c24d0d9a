//! Reading the quarantine index, findings, audit trail and incident history
//! (for the CLI and the web UI).

use super::db::{Incidents, IncidentsError};
use super::record::FindingRow;
use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

/// Which held messages to list. `None` means "any".
#[derive(Debug, Clone)]
pub struct HeldFilter {
    /// A category id such as `personal_data`.
    pub category: Option<String>,
    /// `inbound`, `outbound` or `internal`.
    pub direction: Option<String>,
    /// Substring of the envelope sender or the identified sender.
    pub sender: Option<String>,
    /// Held at or after (unix seconds).
    pub since: Option<i64>,
    /// Held before (unix seconds).
    pub until: Option<i64>,
    /// `held`, `released`, `deleted` or `purged`.
    pub status: Option<String>,
    pub limit: i64,
}

impl Default for HeldFilter {
    fn default() -> Self {
        HeldFilter {
            category: None,
            direction: None,
            sender: None,
            since: None,
            until: None,
            status: None,
            limit: 500,
        }
    }
}

/// One quarantined message with its incident.
#[derive(Debug, Clone, Serialize)]
pub struct HeldItem {
    pub id: String,
    pub incident_id: i64,
    pub status: String,
    pub held_at: i64,
    pub next_hop: String,
    pub reviewed_at: Option<i64>,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    pub last_error: Option<String>,
    pub queue_id: Option<String>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub direction: String,
    pub sender_group: String,
    pub identified_sender: Option<String>,
    pub sender_is_head: bool,
    pub categories: Vec<String>,
    pub rules: Vec<String>,
    pub notify: Vec<String>,
    pub clauses: Vec<String>,
    pub size: i64,
}

/// One audit row.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub reason: Option<String>,
    pub remote: Option<String>,
    pub detail: Option<String>,
}

/// One incident (held, tagged, rejected or passed with findings).
#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    pub id: i64,
    pub at: i64,
    pub action: String,
    pub direction: String,
    pub sender_group: String,
    pub mail_from: String,
    pub subject: Option<String>,
    pub categories: Vec<String>,
    pub rules: Vec<String>,
    pub quarantine_id: Option<String>,
}

const HELD_COLUMNS: &str = "q.id, q.incident_id, q.status, q.held_at, q.next_hop, q.reviewed_at, \
     q.reviewed_by, q.review_reason, q.last_error, i.queue_id, i.message_id, i.subject, \
     i.mail_from, i.rcpts, i.direction, i.sender_group, i.identified_sender, i.sender_is_head, \
     i.categories, i.rules, i.notify, i.clauses, i.size";

fn comma_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn held_item(r: &SqliteRow) -> Result<HeldItem, IncidentsError> {
    Ok(HeldItem {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        status: r.try_get("status")?,
        held_at: r.try_get("held_at")?,
        next_hop: r.try_get("next_hop")?,
        reviewed_at: r.try_get("reviewed_at")?,
        reviewed_by: r.try_get("reviewed_by")?,
        review_reason: r.try_get("review_reason")?,
        last_error: r.try_get("last_error")?,
        queue_id: r.try_get("queue_id")?,
        message_id: r.try_get("message_id")?,
        subject: r.try_get("subject")?,
        mail_from: r.try_get("mail_from")?,
        rcpts: json_list(&r.try_get::<String, _>("rcpts")?),
        direction: r.try_get("direction")?,
        sender_group: r.try_get("sender_group")?,
        identified_sender: r.try_get("identified_sender")?,
        sender_is_head: r.try_get("sender_is_head")?,
        categories: comma_list(&r.try_get::<String, _>("categories")?),
        rules: comma_list(&r.try_get::<String, _>("rules")?),
        notify: comma_list(&r.try_get::<String, _>("notify")?),
        clauses: json_list(&r.try_get::<String, _>("clauses")?),
        size: r.try_get("size")?,
    })
}

/// The WHERE clause for a filter (placeholders only) and its bind values in order.
enum Bind {
    Text(String),
    Int(i64),
}

fn where_clause(f: &HeldFilter) -> (String, Vec<Bind>) {
    let mut conds: Vec<&str> = Vec::new();
    let mut binds = Vec::new();
    if let Some(c) = &f.category {
        conds.push("(',' || i.categories || ',') LIKE ('%,' || ? || ',%')");
        binds.push(Bind::Text(c.clone()));
    }
    if let Some(d) = &f.direction {
        conds.push("i.direction = ?");
        binds.push(Bind::Text(d.clone()));
    }
    if let Some(s) = &f.sender {
        conds.push(
            "(instr(lower(i.mail_from), lower(?)) > 0 \
             OR instr(lower(coalesce(i.identified_sender, '')), lower(?)) > 0)",
        );
        binds.push(Bind::Text(s.clone()));
        binds.push(Bind::Text(s.clone()));
    }
    if let Some(t) = f.since {
        conds.push("q.held_at >= ?");
        binds.push(Bind::Int(t));
    }
    if let Some(t) = f.until {
        conds.push("q.held_at < ?");
        binds.push(Bind::Int(t));
    }
    if let Some(s) = &f.status {
        conds.push("q.status = ?");
        binds.push(Bind::Text(s.clone()));
    }
    let clause = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (clause, binds)
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s.as_str()),
            Bind::Int(i) => q.bind(*i),
        };
    }
    q
}

impl Incidents {
    /// Quarantined messages matching the filter, newest first.
    pub async fn list_held(&self, filter: &HeldFilter) -> Result<Vec<HeldItem>, IncidentsError> {
        let (clause, binds) = where_clause(filter);
        let sql = format!(
            "SELECT {HELD_COLUMNS} FROM quarantine q JOIN incidents i ON i.id = q.incident_id\
             {clause} ORDER BY q.held_at DESC, q.id DESC LIMIT ?"
        );
        let q = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds).bind(filter.limit.max(0));
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(held_item).collect()
    }

    /// One quarantined message by id.
    pub async fn held_item(&self, id: &str) -> Result<Option<HeldItem>, IncidentsError> {
        let sql = format!(
            "SELECT {HELD_COLUMNS} FROM quarantine q JOIN incidents i ON i.id = q.incident_id \
             WHERE q.id = ?"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(held_item).transpose()
    }

    /// The findings of an incident (evidence is masked).
    pub async fn findings_of(&self, incident_id: i64) -> Result<Vec<FindingRow>, IncidentsError> {
        let rows = sqlx::query(
            "SELECT category, rule, location, evidence, severity, confidence, count, clause \
             FROM findings WHERE incident_id = ? ORDER BY rowid",
        )
        .bind(incident_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FindingRow {
                    category: r.try_get("category")?,
                    rule: r.try_get("rule")?,
                    location: r.try_get("location")?,
                    evidence: r.try_get("evidence")?,
                    severity: r.try_get("severity")?,
                    confidence: r.try_get("confidence")?,
                    count: r.try_get("count")?,
                    clause: r.try_get("clause")?,
                })
            })
            .collect()
    }

    /// How many items matching the filter carry each category (an item with
    /// two categories counts in both), most first.
    pub async fn held_counts_by_category(
        &self,
        filter: &HeldFilter,
    ) -> Result<Vec<(String, i64)>, IncidentsError> {
        let mut all = filter.clone();
        all.limit = i64::MAX;
        let items = self.list_held(&all).await?;
        let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
        for it in &items {
            for c in &it.categories {
                *counts.entry(c.clone()).or_default() += 1;
            }
        }
        let mut out: Vec<(String, i64)> = counts.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// The newest audit rows first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditRow>, IncidentsError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, reason, remote, detail FROM audit \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(limit.max(0))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    reason: r.try_get("reason")?,
                    remote: r.try_get("remote")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Every incident (held, tagged, rejected, passed with findings), newest first.
    pub async fn incident_history(
        &self,
        since: Option<i64>,
        limit: i64,
    ) -> Result<Vec<IncidentRow>, IncidentsError> {
        let rows = sqlx::query(
            "SELECT i.id, i.at, i.action, i.direction, i.sender_group, i.mail_from, i.subject, \
             i.categories, i.rules, q.id AS quarantine_id \
             FROM incidents i LEFT JOIN quarantine q ON q.incident_id = i.id \
             WHERE i.at >= ? ORDER BY i.at DESC, i.id DESC LIMIT ?",
        )
        .bind(since.unwrap_or(i64::MIN))
        .bind(limit.max(0))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IncidentRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    action: r.try_get("action")?,
                    direction: r.try_get("direction")?,
                    sender_group: r.try_get("sender_group")?,
                    mail_from: r.try_get("mail_from")?,
                    subject: r.try_get("subject")?,
                    categories: comma_list(&r.try_get::<String, _>("categories")?),
                    rules: comma_list(&r.try_get::<String, _>("rules")?),
                    quarantine_id: r.try_get("quarantine_id")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::{AuditEntry, FrontEnd, HeldRow, NewIncident};

    fn incident(id: Option<&str>, at: i64, from: &str, dir: &str, cats: &[&str]) -> NewIncident {
        NewIncident {
            at,
            front_end: FrontEnd::Relay,
            queue_id: None,
            message_id: Some(format!("<{at}@x>")),
            subject: Some("s".into()),
            mail_from: from.into(),
            rcpts: vec!["a@example.org".into()],
            client_ip: None,
            auth_user: None,
            direction: dir.into(),
            sender_group: "staff".into(),
            identified_sender: Some(from.into()),
            sender_is_head: false,
            action: if id.is_some() { "quarantine" } else { "tag" }.into(),
            categories: cats.iter().map(|c| c.to_string()).collect(),
            rules: cats.iter().map(|c| format!("{c}/x")).collect(),
            notify: vec!["head_teacher".into()],
            clauses: vec!["clause".into()],
            size: 10,
            findings: vec![FindingRow {
                category: cats[0].into(),
                rule: format!("{}/x", cats[0]),
                location: "body".into(),
                evidence: "AB12****".into(),
                severity: "high".into(),
                confidence: 0.9,
                count: 1,
                clause: "clause".into(),
            }],
            held: id.map(|id| HeldRow {
                id: id.into(),
                next_hop: "127.0.0.1:10026".into(),
            }),
        }
    }

    #[tokio::test]
    async fn lists_filter_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let db = Incidents::open(dir.path()).await.unwrap();
        db.record(&incident(
            Some("100-1-0"),
            100,
            "a@oakfield.sch.uk",
            "outbound",
            &["personal_data"],
        ))
        .await
        .unwrap();
        db.record(&incident(
            Some("200-1-1"),
            200,
            "Parent@example.com",
            "inbound",
            &["virus", "banned_attachment"],
        ))
        .await
        .unwrap();
        db.record(&incident(
            None,
            300,
            "b@oakfield.sch.uk",
            "internal",
            &["profanity"],
        ))
        .await
        .unwrap();
        let ids = |items: Vec<HeldItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
        let all = db.list_held(&HeldFilter::default()).await.unwrap();
        assert_eq!(ids(all.clone()), vec!["200-1-1", "100-1-0"]);
        assert_eq!(all[0].categories, vec!["virus", "banned_attachment"]);
        assert_eq!(all[0].rcpts, vec!["a@example.org"]);
        assert_eq!(all[0].clauses, vec!["clause"]);
        let f = |g: fn(&mut HeldFilter)| {
            let mut filter = HeldFilter::default();
            g(&mut filter);
            filter
        };
        let q = |filter: HeldFilter| {
            let db = db.clone();
            async move { ids(db.list_held(&filter).await.unwrap()) }
        };
        assert_eq!(
            q(f(|x| x.category = Some("banned_attachment".into()))).await,
            vec!["200-1-1"]
        );
        assert!(
            q(f(|x| x.category = Some("banned".into())))
                .await
                .is_empty()
        );
        assert_eq!(
            q(f(|x| x.direction = Some("outbound".into()))).await,
            vec!["100-1-0"]
        );
        assert_eq!(
            q(f(|x| x.sender = Some("parent@".into()))).await,
            vec!["200-1-1"]
        );
        assert_eq!(q(f(|x| x.since = Some(150))).await, vec!["200-1-1"]);
        assert_eq!(q(f(|x| x.until = Some(150))).await, vec!["100-1-0"]);
        assert_eq!(
            q(f(|x| x.status = Some("released".into()))).await,
            Vec::<String>::new()
        );
        assert_eq!(q(f(|x| x.limit = 1)).await, vec!["200-1-1"]);
        assert!(db.held_item("999-1-1").await.unwrap().is_none());
        let item = db.held_item("100-1-0").await.unwrap().unwrap();
        assert_eq!(item.status, "held");
        assert_eq!(
            db.findings_of(item.incident_id).await.unwrap()[0].evidence,
            "AB12****"
        );
        let counts = db
            .held_counts_by_category(&HeldFilter::default())
            .await
            .unwrap();
        assert_eq!(counts.len(), 3);
        assert!(counts.contains(&("virus".to_string(), 1)));
        let history = db.incident_history(None, 10).await.unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[0].action, "tag");
        assert_eq!(history[0].quarantine_id, None);
        assert_eq!(history[2].quarantine_id.as_deref(), Some("100-1-0"));
        db.audit(&AuditEntry {
            actor: "ict",
            action: "view",
            target: Some("100-1-0"),
            ..AuditEntry::default()
        })
        .await
        .unwrap();
        let log = db.audit_log(10).await.unwrap();
        assert_eq!(
            (log[0].actor.as_str(), log[0].action.as_str()),
            ("ict", "view")
        );
    }
}
