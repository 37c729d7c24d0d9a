//! Writing incidents (with their findings and quarantine entry) and audit rows.

use super::db::{Incidents, IncidentsError, now};
use crate::message::Envelope;
use crate::policy::Action;
use crate::scan::ScanReport;
use serde::{Deserialize, Serialize};

/// Which front-end handled the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontEnd {
    Relay,
    Milter,
}

impl FrontEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            FrontEnd::Relay => "relay",
            FrontEnd::Milter => "milter",
        }
    }
}

/// One finding as stored (evidence already masked by the detector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRow {
    pub category: String,
    pub rule: String,
    pub location: String,
    pub evidence: String,
    pub severity: String,
    pub confidence: f64,
    pub count: i64,
    pub clause: String,
}

/// The quarantine entry of a held message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldRow {
    pub id: String,
    pub next_hop: String,
}

/// An incident ready to be written. It is also kept inside the quarantine's
/// `.json`, so the index can be rebuilt from the files alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewIncident {
    pub at: i64,
    pub front_end: FrontEnd,
    pub queue_id: Option<String>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub client_ip: Option<String>,
    pub auth_user: Option<String>,
    pub direction: String,
    pub sender_group: String,
    pub identified_sender: Option<String>,
    pub sender_is_head: bool,
    /// What was actually done (after the unscannable rule, for instance).
    pub action: String,
    pub categories: Vec<String>,
    pub rules: Vec<String>,
    pub notify: Vec<String>,
    pub clauses: Vec<String>,
    pub size: i64,
    pub findings: Vec<FindingRow>,
    pub held: Option<HeldRow>,
}

impl NewIncident {
    /// The incident for a scanned message, or None when there is nothing to
    /// record (passed with no findings, or a tempfail, which is counted in
    /// `scan_failures` instead).
    pub fn from_scan(
        front_end: FrontEnd,
        envelope: &Envelope,
        report: &ScanReport,
        size: usize,
    ) -> Option<NewIncident> {
        let v = &report.verdict;
        if v.action == Action::Tempfail || (v.action == Action::Pass && v.findings.is_empty()) {
            return None;
        }
        let mut rules: Vec<String> = v.findings.iter().map(|f| f.rule.clone()).collect();
        rules.sort();
        rules.dedup();
        Some(NewIncident {
            at: now(),
            front_end,
            queue_id: envelope.queue_id.clone(),
            message_id: report.message_id.clone(),
            subject: report.subject.clone(),
            mail_from: envelope.mail_from.clone(),
            rcpts: envelope.rcpt_to.clone(),
            client_ip: envelope.client_ip.map(|ip| ip.to_string()),
            auth_user: envelope.auth_user.clone(),
            direction: v.direction.as_str().into(),
            sender_group: v.sender_group.as_str().into(),
            identified_sender: v.identified_sender.clone(),
            sender_is_head: v.sender_is_head,
            action: v.action.as_str().into(),
            categories: v.categories().iter().map(|c| c.as_str().into()).collect(),
            rules,
            notify: v.notify.iter().map(|n| n.as_str().into()).collect(),
            clauses: v.clauses().iter().map(|c| c.to_string()).collect(),
            size: size as i64,
            findings: v
                .findings
                .iter()
                .map(|f| FindingRow {
                    category: f.category.as_str().into(),
                    rule: f.rule.clone(),
                    location: f.location.clone(),
                    evidence: f.evidence.clone(),
                    severity: f.severity.as_str().into(),
                    confidence: f64::from(f.confidence),
                    count: i64::from(f.count),
                    clause: f.clause.clone(),
                })
                .collect(),
            held: None,
        })
    }
}

impl Incidents {
    /// Write an incident in one transaction; returns its row id. A held
    /// message whose quarantine id is already indexed is not written twice
    /// (returns the existing incident's id).
    pub async fn record(&self, i: &NewIncident) -> Result<i64, IncidentsError> {
        let mut tx = self.write_tx().await?;
        if let Some(h) = &i.held {
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT incident_id FROM quarantine WHERE id = ?")
                    .bind(&h.id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = existing {
                return Ok(id);
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (at, front_end, queue_id, message_id, subject, mail_from, \
             rcpts, client_ip, auth_user, direction, sender_group, identified_sender, \
             sender_is_head, action, categories, rules, notify, clauses, size) \
             VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
        )
        .bind(i.at)
        .bind(i.front_end.as_str())
        .bind(&i.queue_id)
        .bind(&i.message_id)
        .bind(&i.subject)
        .bind(&i.mail_from)
        .bind(serde_json::to_string(&i.rcpts)?)
        .bind(&i.client_ip)
        .bind(&i.auth_user)
        .bind(&i.direction)
        .bind(&i.sender_group)
        .bind(&i.identified_sender)
        .bind(i.sender_is_head)
        .bind(&i.action)
        .bind(i.categories.join(","))
        .bind(i.rules.join(","))
        .bind(i.notify.join(","))
        .bind(serde_json::to_string(&i.clauses)?)
        .bind(i.size)
        .fetch_one(&mut *tx)
        .await?;
        for f in &i.findings {
            sqlx::query(
                "INSERT INTO findings (incident_id, category, rule, location, evidence, \
                 severity, confidence, count, clause) VALUES (?,?,?,?,?,?,?,?,?)",
            )
            .bind(id)
            .bind(&f.category)
            .bind(&f.rule)
            .bind(&f.location)
            .bind(&f.evidence)
            .bind(&f.severity)
            .bind(f.confidence)
            .bind(f.count)
            .bind(&f.clause)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(h) = &i.held {
            sqlx::query(
                "INSERT INTO quarantine (id, incident_id, status, held_at, next_hop) \
                 VALUES (?, ?, 'held', ?, ?)",
            )
            .bind(&h.id)
            .bind(id)
            .bind(i.at)
            .bind(&h.next_hop)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Append one audit row.
    pub async fn audit(&self, entry: &AuditEntry<'_>) -> Result<(), IncidentsError> {
        sqlx::query(
            "INSERT INTO audit (at, actor, action, target, reason, remote, detail) \
             VALUES (?,?,?,?,?,?,?)",
        )
        .bind(now())
        .bind(entry.actor)
        .bind(entry.action)
        .bind(entry.target)
        .bind(entry.reason)
        .bind(entry.remote)
        .bind(entry.detail)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Index quarantined messages whose `.json` is on disk but not in the
    /// database (a crash between the two writes, or a database restored from
    /// an older backup). Returns how many were added.
    pub async fn reindex_quarantine(
        &self,
        store: &crate::quarantine::Store,
    ) -> Result<usize, IncidentsError> {
        let mut added = 0;
        for (id, meta) in store.metadata_files() {
            let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM quarantine WHERE id = ?")
                .bind(&id)
                .fetch_optional(self.pool())
                .await?;
            if known.is_some() {
                continue;
            }
            let Some(mut incident) = meta
                .get("incident")
                .and_then(|v| serde_json::from_value::<NewIncident>(v.clone()).ok())
            else {
                tracing::warn!(quarantine_id = %id, "quarantine metadata without an incident; not indexed");
                continue;
            };
            if incident.held.as_ref().is_none_or(|h| h.id != id) {
                incident.held = Some(HeldRow {
                    id: id.clone(),
                    next_hop: incident
                        .held
                        .as_ref()
                        .map(|h| h.next_hop.clone())
                        .unwrap_or_default(),
                });
            }
            self.record(&incident).await?;
            added += 1;
        }
        Ok(added)
    }
}

/// One audit entry.
#[derive(Debug, Default)]
pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub remote: Option<&'a str>,
    pub detail: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(held: Option<&str>) -> NewIncident {
        NewIncident {
            at: 1_764_000_000,
            front_end: FrontEnd::Relay,
            queue_id: Some("4ABC".into()),
            message_id: Some("<m1@x>".into()),
            subject: Some("hello".into()),
            mail_from: "t@oakfield.sch.uk".into(),
            rcpts: vec!["a@example.org".into()],
            client_ip: Some("192.0.2.1".into()),
            auth_user: Some("t".into()),
            direction: "outbound".into(),
            sender_group: "staff".into(),
            identified_sender: Some("t".into()),
            sender_is_head: false,
            action: "quarantine".into(),
            categories: vec!["personal_data".into()],
            rules: vec!["personal_data/ni_number".into()],
            notify: vec!["head_teacher".into()],
            clauses: vec!["Don't reveal personal information.".into()],
            size: 1234,
            findings: vec![FindingRow {
                category: "personal_data".into(),
                rule: "personal_data/ni_number".into(),
                location: "body".into(),
                evidence: "AB12****C".into(),
                severity: "high".into(),
                confidence: 0.9,
                count: 3,
                clause: "Don't reveal personal information.".into(),
            }],
            held: held.map(|id| HeldRow {
                id: id.into(),
                next_hop: "127.0.0.1:10026".into(),
            }),
        }
    }

    #[tokio::test]
    async fn records_incident_findings_and_quarantine_entry_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Incidents::open(dir.path()).await.unwrap();
        let id = db.record(&incident(Some("q1"))).await.unwrap();
        assert_eq!(db.record(&incident(Some("q1"))).await.unwrap(), id);
        let (n_inc, n_find, status): (i64, i64, String) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM findings), \
             (SELECT status FROM quarantine WHERE id = 'q1')",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!((n_inc, n_find, status.as_str()), (1, 1, "held"));
        let evidence: String = sqlx::query_scalar("SELECT evidence FROM findings")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(evidence, "AB12****C");
        // A tagged message has no quarantine row.
        db.record(&incident(None)).await.unwrap();
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM quarantine")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(held, 1);
    }

    #[tokio::test]
    async fn reindex_adds_quarantined_files_missing_from_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::quarantine::Store::new(dir.path());
        let id = store
            .put(
                b"Subject: x\r\n\r\nbody\r\n",
                &serde_json::json!({ "incident": incident(None) }),
            )
            .unwrap();
        let db = Incidents::open(dir.path()).await.unwrap();
        assert_eq!(db.reindex_quarantine(&store).await.unwrap(), 1);
        assert_eq!(db.reindex_quarantine(&store).await.unwrap(), 0);
        let next_hop: String = sqlx::query_scalar("SELECT next_hop FROM quarantine WHERE id = ?")
            .bind(&id)
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(next_hop, "");
    }
}
