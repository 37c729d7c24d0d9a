//! The figures of one week's summary, gathered from the incident log.

use super::week::Week;
use crate::incidents::{Incidents, IncidentsError};
use std::collections::BTreeMap;

/// Categories in the order the summary shows them.
pub const CATEGORIES: [&str; 6] = [
    "profanity",
    "personal_data",
    "chain_letter",
    "anonymous_sender",
    "virus",
    "banned_attachment",
];

/// Weeks before this one shown as the trend.
pub const TREND_WEEKS: usize = 4;

/// A sender of flagged mail.
#[derive(Debug, Clone)]
pub struct TopSender {
    /// Login or address (the head teacher's version only).
    pub who: String,
    pub group: String,
    pub count: i64,
    /// "Staff member A", "Pupil B", "External sender C".
    pub pseudonym: String,
}

/// A message still waiting for review.
#[derive(Debug, Clone)]
pub struct StillHeld {
    pub id: String,
    pub held_at: i64,
    pub age_days: f64,
    pub categories: Vec<String>,
    pub sender: String,
    pub sender_group: String,
    pub subject: Option<String>,
}

/// A release in this week.
#[derive(Debug, Clone)]
pub struct Release {
    pub id: String,
    pub at: i64,
    pub by: String,
    /// The reviewer's role from the users table, when known.
    pub role: Option<String>,
    pub reason: String,
    pub categories: Vec<String>,
    pub hold_secs: i64,
}

/// Everything the summary shows.
#[derive(Debug, Clone)]
pub struct Summary {
    pub school: String,
    pub week: Week,
    /// The week is not over yet.
    pub so_far: bool,
    pub total: i64,
    pub by_category: BTreeMap<String, i64>,
    pub by_action: BTreeMap<String, i64>,
    pub by_direction: BTreeMap<String, i64>,
    pub by_group: BTreeMap<String, i64>,
    /// Oldest first; the last is this week. Each: (label, counts per CATEGORIES).
    pub trend: Vec<(String, [i64; 6])>,
    /// Totals of the same weeks.
    pub trend_totals: Vec<i64>,
    pub top_senders: Vec<TopSender>,
    pub still_held: Vec<StillHeld>,
    pub releases: Vec<Release>,
    /// Reviews (release or delete) this week and their hold-to-review times.
    pub reviews: i64,
    pub review_median_secs: Option<i64>,
    pub review_max_secs: Option<i64>,
}

impl Summary {
    /// Nothing flagged, nothing waiting, nothing reviewed.
    pub fn is_empty(&self) -> bool {
        self.total == 0 && self.still_held.is_empty() && self.reviews == 0
    }

    /// Average of the previous weeks' totals.
    pub fn previous_average(&self) -> f64 {
        let n = self.trend_totals.len().saturating_sub(1);
        if n == 0 {
            return 0.0;
        }
        self.trend_totals[..n].iter().sum::<i64>() as f64 / n as f64
    }

    /// Average of the previous weeks for one category index.
    pub fn category_previous_average(&self, i: usize) -> f64 {
        let n = self.trend.len().saturating_sub(1);
        if n == 0 {
            return 0.0;
        }
        self.trend[..n].iter().map(|(_, c)| c[i]).sum::<i64>() as f64 / n as f64
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn pseudonym(group: &str, n: usize) -> String {
    let letter = letters(n);
    match group {
        "staff" => format!("Staff member {letter}"),
        "pupil" => format!("Pupil {letter}"),
        _ => format!("External sender {letter}"),
    }
}

fn letters(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    String::from_utf8_lossy(&s).into_owned()
}

/// Gather the summary of `week`; `now` is unix seconds.
pub async fn gather(
    db: &Incidents,
    school: &str,
    week: Week,
    now: i64,
) -> Result<Summary, IncidentsError> {
    // The trend weeks, oldest first, ending with this one.
    let mut weeks = vec![week];
    for _ in 0..TREND_WEEKS {
        match weeks[0].previous() {
            Ok(p) => weeks.insert(0, p),
            Err(_) => break,
        }
    }
    let from = weeks[0].start;
    type Row = (i64, String, String, String, String, String, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT at, action, direction, sender_group, categories, mail_from, identified_sender \
         FROM incidents WHERE at >= ? AND at < ? ORDER BY at",
    )
    .bind(from)
    .bind(week.end)
    .fetch_all(db.pool())
    .await?;
    let mut s = Summary {
        school: school.to_string(),
        week,
        so_far: now < week.end,
        total: 0,
        by_category: BTreeMap::new(),
        by_action: BTreeMap::new(),
        by_direction: BTreeMap::new(),
        by_group: BTreeMap::new(),
        trend: weeks.iter().map(|w| (w.label(), [0; 6])).collect(),
        trend_totals: vec![0; weeks.len()],
        top_senders: Vec::new(),
        still_held: Vec::new(),
        releases: Vec::new(),
        reviews: 0,
        review_median_secs: None,
        review_max_secs: None,
    };
    let mut senders: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for (at, action, direction, group, categories, mail_from, identified) in rows {
        let Some(wi) = weeks.iter().position(|w| at >= w.start && at < w.end) else {
            continue;
        };
        let cats = split_list(&categories);
        s.trend_totals[wi] += 1;
        for c in &cats {
            if let Some(ci) = CATEGORIES.iter().position(|x| x == c) {
                s.trend[wi].1[ci] += 1;
            }
        }
        if wi + 1 != weeks.len() {
            continue;
        }
        s.total += 1;
        for c in cats {
            *s.by_category.entry(c).or_default() += 1;
        }
        *s.by_action.entry(action).or_default() += 1;
        *s.by_direction.entry(direction).or_default() += 1;
        *s.by_group.entry(group.clone()).or_default() += 1;
        let who = identified
            .filter(|i| !i.is_empty())
            .unwrap_or(if mail_from.is_empty() {
                "<>".to_string()
            } else {
                mail_from
            })
            .to_ascii_lowercase();
        let e = senders.entry(who).or_insert((group, 0));
        e.1 += 1;
    }
    let mut top: Vec<(String, String, i64)> =
        senders.into_iter().map(|(w, (g, n))| (w, g, n)).collect();
    top.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    top.truncate(5);
    let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
    s.top_senders = top
        .into_iter()
        .map(|(who, group, count)| {
            let n = per_group.entry(group.clone()).or_default();
            let pseudonym = pseudonym(&group, *n);
            *n += 1;
            TopSender {
                who,
                group,
                count,
                pseudonym,
            }
        })
        .collect();

    type HeldRow = (String, i64, String, String, String, Option<String>);
    let held: Vec<HeldRow> = sqlx::query_as(
        "SELECT q.id, q.held_at, i.categories, i.mail_from, i.sender_group, i.subject \
         FROM quarantine q JOIN incidents i ON i.id = q.incident_id \
         WHERE q.status = 'held' AND q.held_at < ? ORDER BY q.held_at",
    )
    .bind(week.end)
    .fetch_all(db.pool())
    .await?;
    s.still_held = held
        .into_iter()
        .map(|(id, held_at, cats, sender, group, subject)| StillHeld {
            id,
            held_at,
            age_days: (now - held_at).max(0) as f64 / 86_400.0,
            categories: split_list(&cats),
            sender,
            sender_group: group,
            subject,
        })
        .collect();

    type Reviewed = (
        String,
        i64,
        i64,
        String,
        Option<String>,
        Option<String>,
        String,
    );
    let reviewed: Vec<Reviewed> = sqlx::query_as(
        "SELECT q.id, q.held_at, q.reviewed_at, q.status, q.reviewed_by, q.review_reason, i.categories \
         FROM quarantine q JOIN incidents i ON i.id = q.incident_id \
         WHERE q.reviewed_at >= ? AND q.reviewed_at < ? AND q.status IN ('released', 'deleted') \
         ORDER BY q.reviewed_at",
    )
    .bind(week.start)
    .bind(week.end)
    .fetch_all(db.pool())
    .await?;
    let mut times: Vec<i64> = Vec::new();
    for (id, held_at, at, status, by, reason, cats) in reviewed {
        let hold_secs = (at - held_at).max(0);
        times.push(hold_secs);
        if status == "released" {
            let by = by.unwrap_or_else(|| "unknown".into());
            let role = role_of(db, &by).await;
            s.releases.push(Release {
                id,
                at,
                by,
                role,
                reason: reason.unwrap_or_default(),
                categories: split_list(&cats),
                hold_secs,
            });
        }
    }
    times.sort_unstable();
    s.reviews = times.len() as i64;
    s.review_median_secs = times.get(times.len() / 2).copied();
    s.review_max_secs = times.last().copied();
    Ok(s)
}

/// The web UI role of a reviewer, when the users table knows them.
async fn role_of(db: &Incidents, name: &str) -> Option<String> {
    sqlx::query_scalar("SELECT role FROM users WHERE name = ?")
        .bind(name)
        .fetch_optional(db.pool())
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonym_letters() {
        assert_eq!(letters(0), "A");
        assert_eq!(letters(25), "Z");
        assert_eq!(letters(26), "AA");
        assert_eq!(pseudonym("pupil", 1), "Pupil B");
    }
}
