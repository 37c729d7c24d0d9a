//! `GET /`: the held list with filters (category, direction, sender, dates,
//! status) and counts per category, showing only what the role may see.

use super::auth::{Authed, internal};
use super::html::{self, esc};
use crate::access::{self, Role};
use crate::incidents::{HeldFilter, HeldItem};
use crate::serve::Shared;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// Categories offered in the filter, in display order.
pub const CATEGORIES: &[&str] = &[
    "profanity",
    "personal_data",
    "chain_letter",
    "anonymous_sender",
    "virus",
    "banned_attachment",
];
const DIRECTIONS: &[&str] = &["inbound", "outbound", "internal"];
const STATUSES: &[&str] = &["held", "released", "deleted", "purged", "all"];
/// At most this many items are listed.
const LIST_LIMIT: i64 = 500;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub direction: String,
    #[serde(default)]
    pub sender: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub status: String,
}

impl ListQuery {
    /// The status asked for; the default is `held`.
    fn status(&self) -> &str {
        if STATUSES.contains(&self.status.as_str()) {
            &self.status
        } else {
            "held"
        }
    }

    /// The database filter (category and limit left to the caller).
    fn filter(&self) -> HeldFilter {
        let opt = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| s.chars().take(200).collect::<String>())
        };
        HeldFilter {
            category: None,
            direction: opt(&self.direction).filter(|d| DIRECTIONS.contains(&d.as_str())),
            sender: opt(&self.sender),
            since: html::parse_date(&self.from, false),
            until: html::parse_date(&self.to, true),
            status: match self.status() {
                "all" => None,
                s => Some(s.to_string()),
            },
            limit: 100_000,
        }
    }

    /// This query as a URL query string with `category` replaced.
    fn with_category(&self, category: &str) -> String {
        let pairs = [
            ("category", category),
            ("direction", self.direction.as_str()),
            ("sender", self.sender.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("status", self.status()),
        ];
        let mut out = String::new();
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            out.push(if out.is_empty() { '?' } else { '&' });
            out.push_str(k);
            out.push('=');
            out.push_str(&percent_encode(v));
        }
        if out.is_empty() {
            "/".into()
        } else {
            format!("/{out}")
        }
    }
}

/// Percent-encode a query value (everything but unreserved characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Count categories over the visible items.
pub fn counts(items: &[HeldItem]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for it in items {
        for c in &it.categories {
            *counts.entry(c.clone()).or_insert(0) += 1;
        }
    }
    counts
}

/// `GET /`.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Query(q): Query<ListQuery>,
) -> Response {
    if authed.role() == Role::Governor {
        return Redirect::to("/summaries").into_response();
    }
    let settings = shared.settings();
    let filter = q.filter();
    let items = match settings.incidents.list_held(&filter).await {
        Ok(items) => items,
        Err(e) => return internal(e),
    };
    let visible: Vec<HeldItem> = items
        .into_iter()
        .filter(|it| access::can_list(authed.role(), it))
        .collect();
    let counts = counts(&visible);
    let category = q.category.trim();
    let shown: Vec<&HeldItem> = visible
        .iter()
        .filter(|it| category.is_empty() || it.categories.iter().any(|c| c == category))
        .take(LIST_LIMIT as usize)
        .collect();
    html::respond(
        StatusCode::OK,
        html::page(
            "Held messages",
            Some(&authed.nav()),
            &render(&q, &counts, visible.len(), &shown),
        ),
    )
}

fn options(values: &[&str], selected: &str, any: &str) -> String {
    let mut s = format!(r#"<option value="">{}</option>"#, esc(any));
    for v in values {
        let sel = if *v == selected { " selected" } else { "" };
        let _ = write!(s, r#"<option value="{0}"{sel}>{0}</option>"#, esc(v));
    }
    s
}

fn render(
    q: &ListQuery,
    counts: &BTreeMap<String, usize>,
    total: usize,
    shown: &[&HeldItem],
) -> String {
    let mut b = String::new();
    // Counts per category, each a link that filters on it.
    b.push_str(r#"<section class="counts" aria-label="Counts per category"><ul>"#);
    let _ = write!(
        b,
        r#"<li><a href="{}" class="count{}">all <strong>{total}</strong></a></li>"#,
        esc(&q.with_category("")),
        if q.category.is_empty() {
            " current"
        } else {
            ""
        }
    );
    for (cat, n) in counts {
        let _ = write!(
            b,
            r#"<li><a href="{}" class="count{}" id="count-{}">{} <strong>{n}</strong></a></li>"#,
            esc(&q.with_category(cat)),
            if q.category == *cat { " current" } else { "" },
            esc(cat),
            esc(cat)
        );
    }
    b.push_str("</ul></section>");
    // The filter form (GET, so it works without JavaScript and can be bookmarked).
    let _ = write!(
        b,
        r#"<form method="get" action="/" class="filters">
<label>Category <select name="category">{}</select></label>
<label>Direction <select name="direction">{}</select></label>
<label>Sender <input name="sender" value="{}" maxlength="200"></label>
<label>From <input type="date" name="from" value="{}"></label>
<label>To <input type="date" name="to" value="{}"></label>
<label>Status <select name="status">{}</select></label>
<button type="submit">Filter</button> <a href="/">Reset</a>
</form>"#,
        options(CATEGORIES, &q.category, "any"),
        options(DIRECTIONS, &q.direction, "any"),
        esc(&q.sender),
        esc(&q.from),
        esc(&q.to),
        STATUSES
            .iter()
            .map(|s| format!(
                r#"<option value="{0}"{1}>{0}</option>"#,
                esc(s),
                if *s == q.status() { " selected" } else { "" }
            ))
            .collect::<String>()
    );
    if shown.is_empty() {
        b.push_str(r#"<p class="empty">No messages match.</p>"#);
        return b;
    }
    b.push_str(
        r#"<table class="held"><thead><tr><th>Held</th><th>From</th><th>To</th><th>Subject</th><th>Categories</th><th>Direction</th><th>Status</th></tr></thead><tbody>"#,
    );
    for it in shown {
        let from = match &it.identified_sender {
            Some(who) if !who.eq_ignore_ascii_case(&it.mail_from) => {
                format!("{} <small>({})</small>", esc(&it.mail_from), esc(who))
            }
            _ => esc(&it.mail_from),
        };
        let to = if it.rcpts.len() > 3 {
            format!(
                "{} +{} more",
                esc(&it.rcpts[..3].join(", ")),
                it.rcpts.len() - 3
            )
        } else {
            esc(&it.rcpts.join(", "))
        };
        let subject = it.subject.as_deref().unwrap_or("(no subject)");
        let _ = write!(
            b,
            r#"<tr><td>{}</td><td>{from}</td><td>{to}</td><td><a href="/message/{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&html::time(it.held_at)),
            esc(&it.id),
            esc(subject),
            esc(&it.categories.join(", ")),
            esc(&it.direction),
            esc(&it.status)
        );
    }
    b.push_str("</tbody></table>");
    if shown.len() as i64 >= LIST_LIMIT {
        let _ = write!(
            b,
            r#"<p class="note">Showing the newest {LIST_LIMIT}; narrow the filter to see others.</p>"#
        );
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_encoded() {
        let q = ListQuery {
            sender: "a&b <c>".into(),
            status: "released".into(),
            ..Default::default()
        };
        assert_eq!(
            q.with_category("virus"),
            "/?category=virus&sender=a%26b%20%3Cc%3E&status=released"
        );
        let q = ListQuery {
            status: "bogus".into(),
            ..Default::default()
        };
        assert_eq!(q.with_category(""), "/?status=held");
        assert_eq!(q.filter().status.as_deref(), Some("held"));
        let all = ListQuery {
            status: "all".into(),
            direction: "sideways".into(),
            ..Default::default()
        };
        assert_eq!(all.filter().status, None);
        assert_eq!(all.filter().direction, None);
    }

    #[test]
    fn the_filter_form_escapes_what_was_typed() {
        let q = ListQuery {
            sender: r#""><script>x</script>"#.into(),
            ..Default::default()
        };
        let html = render(&q, &BTreeMap::new(), 0, &[]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&quot;&gt;&lt;script&gt;"));
    }
}
