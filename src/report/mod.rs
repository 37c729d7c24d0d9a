//! The weekly breach summary: figures from the incident log for one ISO
//! week (Europe/London), as plain text and HTML with an inline bar chart,
//! in a version for the head teacher and an anonymised one for governors.
//! `hallmonitor report weekly` prints, writes or sends it; every sent
//! summary is kept in the `summaries` table for the admin UI's archive.

pub mod chart;
pub mod html;
pub mod text;
pub mod week;
pub mod weekly;
pub mod words;

pub use week::Week;
pub use weekly::{Summary, gather};
pub use words::Audience;

use crate::incidents::{Incidents, IncidentsError, now};

/// One rendered summary.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub audience: Audience,
    pub subject: String,
    pub text: String,
    /// HTML referencing the chart as `cid:chart` (no chart for an empty week).
    pub html: String,
    pub png: Option<Vec<u8>>,
}

/// Render one audience's version.
pub fn render(s: &Summary, audience: Audience) -> Rendered {
    let png = (!s.is_empty()).then(|| chart::render(s));
    let src = format!("cid:{}", crate::notify::send::CHART_CID);
    Rendered {
        audience,
        subject: text::subject(s, audience),
        text: text::render(s, audience),
        html: html::render(s, audience, png.as_ref().map(|_| src.as_str())),
        png,
    }
}

/// The HTML for a file: the chart as a `data:` URI instead of `cid:`.
pub fn standalone_html(s: &Summary, audience: Audience) -> String {
    if s.is_empty() {
        return html::render(s, audience, None);
    }
    let uri = format!("data:image/png;base64,{}", chart::base64(&chart::render(s)));
    html::render(s, audience, Some(&uri))
}

/// Keep a summary in the archive; returns its row id.
pub async fn archive(
    db: &Incidents,
    week: &str,
    r: &Rendered,
    sent_at: Option<i64>,
) -> Result<i64, IncidentsError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO summaries (week, audience, created_at, sent_at, subject, text, html, png) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(week)
    .bind(r.audience.as_str())
    .bind(now())
    .bind(sent_at)
    .bind(&r.subject)
    .bind(&r.text)
    .bind(&r.html)
    .bind(r.png.as_deref())
    .fetch_one(db.pool())
    .await?)
}
