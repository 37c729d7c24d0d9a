//! The HTML summary: the same figures as the text, in tables, with the
//! chart as an inline image (`cid:chart`) and its figures as a table for
//! mail clients that block images. Everything inserted is escaped.

use super::weekly::{CATEGORIES, Summary};
use super::words::{self, Audience};
use crate::notify::compose::category_title;

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:Arial,Helvetica,sans-serif;color:#222;max-width:900px;margin:16px}\
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #bbb;padding:4px 8px;text-align:left}\
td.n{text-align:right}td:first-child{white-space:nowrap}th{background:#eef}h1{font-size:20px}h2{font-size:16px;margin-top:20px}.muted{color:#666}";

/// The HTML; `chart_src` is `cid:chart` in mail, or a data: URI in a file.
pub fn render(s: &Summary, audience: Audience, chart_src: Option<&str>) -> String {
    let mut o = String::new();
    let title = super::text::subject(s, audience);
    o.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    ));
    let so_far = if s.so_far { " (week so far)" } else { "" };
    o.push_str(&format!(
        "<h1>{}: mail breach summary, week {}</h1>\n<p class=\"muted\">{}{so_far}</p>\n",
        escape(&s.school),
        escape(&s.week.label()),
        escape(&s.week.span_words())
    ));
    if s.is_empty() {
        o.push_str("<p>Nothing to report: no messages were flagged, none are waiting for review and none were reviewed.</p>\n</body></html>\n");
        return o;
    }
    o.push_str(&format!(
        "<p><strong>{}</strong> flagged messages ({} the previous weeks' average).</p>\n",
        s.total,
        escape(&words::trend(s.total, s.previous_average()))
    ));
    o.push_str(
        "<h2>By category</h2>\n<table><tr><th>Category</th><th>This week</th><th>Trend</th></tr>\n",
    );
    for (i, c) in CATEGORIES.iter().enumerate() {
        let n = s.by_category.get(*c).copied().unwrap_or(0);
        o.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{n}</td><td>{}</td></tr>\n",
            escape(category_title(c)),
            escape(&words::trend(n, s.category_previous_average(i)))
        ));
    }
    o.push_str("</table>\n");
    let small = |title: &str, m: &std::collections::BTreeMap<String, i64>, f: fn(&str) -> &str| {
        let mut t = format!("<h2>{}</h2>\n<table>", escape(title));
        for (k, v) in m {
            t.push_str(&format!(
                "<tr><td>{}</td><td class=\"n\">{v}</td></tr>",
                escape(f(k))
            ));
        }
        t.push_str("</table>\n");
        t
    };
    o.push_str(&small("By action", &s.by_action, words::action_word));
    o.push_str(&small("By direction", &s.by_direction, |d| d));
    o.push_str(&small(
        "Staff, pupils and external senders",
        &s.by_group,
        words::group_word,
    ));

    o.push_str("<h2>Messages per week and category</h2>\n");
    if let Some(src) = chart_src {
        o.push_str(&format!(
            "<p><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"Bar chart of flagged messages by category for the last {} weeks; the figures are in the table below.\"></p>\n",
            escape(src),
            super::chart::WIDTH,
            super::chart::HEIGHT,
            s.trend.len()
        ));
        o.push_str("<p class=\"muted\">Bars: one group per category, one bar per week, oldest (lightest) to this week (darkest).</p>\n");
    }
    o.push_str("<table><tr><th>Week</th><th>Total</th>");
    for (i, c) in CATEGORIES.iter().enumerate() {
        let [r, g, b] = super::chart::category_colour(i);
        o.push_str(&format!(
            "<th><span style=\"color:#{r:02x}{g:02x}{b:02x}\">&#9632;</span> {}</th>",
            escape(category_title(c))
        ));
    }
    o.push_str("</tr>\n");
    for (i, (label, counts)) in s.trend.iter().enumerate() {
        o.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td>",
            escape(label),
            s.trend_totals[i]
        ));
        for n in counts {
            o.push_str(&format!("<td class=\"n\">{n}</td>"));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");

    o.push_str(
        "<h2>Top senders of flagged mail</h2>\n<table><tr><th>Sender</th><th>Flagged</th></tr>\n",
    );
    for t in &s.top_senders {
        let who = match audience {
            Audience::Head => format!("{} ({})", words::free(&t.who), t.group),
            Audience::Governors => t.pseudonym.clone(),
        };
        o.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>\n",
            escape(&who),
            t.count
        ));
    }
    o.push_str("</table>\n");

    o.push_str(&format!(
        "<h2>Still held for review: {}</h2>\n",
        s.still_held.len()
    ));
    if !s.still_held.is_empty() {
        match audience {
            Audience::Head => {
                o.push_str("<table><tr><th>Held for</th><th>Found</th><th>Sender</th><th>Subject</th><th>Id</th></tr>\n");
                for h in &s.still_held {
                    o.push_str(&format!(
                        "<tr><td>{:.1} days</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                        h.age_days,
                        escape(&words::categories(&h.categories)),
                        escape(&words::free(&h.sender)),
                        escape(&h.subject.as_deref().map(words::free).unwrap_or_default()),
                        escape(&h.id)
                    ));
                }
            }
            Audience::Governors => {
                o.push_str("<table><tr><th>Held for</th><th>Found</th><th>Sender</th></tr>\n");
                for h in &s.still_held {
                    o.push_str(&format!(
                        "<tr><td>{:.1} days</td><td>{}</td><td>{}</td></tr>\n",
                        h.age_days,
                        escape(&words::categories(&h.categories)),
                        escape(&h.sender_group)
                    ));
                }
            }
        }
        o.push_str("</table>\n");
    }

    o.push_str(&format!(
        "<h2>Released this week: {}</h2>\n",
        s.releases.len()
    ));
    if !s.releases.is_empty() {
        o.push_str("<table><tr><th>Found</th><th>Released by</th><th>After</th>");
        if audience == Audience::Head {
            o.push_str("<th>Why</th>");
        }
        o.push_str("</tr>\n");
        for r in &s.releases {
            let by = match audience {
                Audience::Head => words::free(&r.by),
                Audience::Governors => words::role_words(r.role.as_deref()).to_string(),
            };
            o.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td>",
                escape(&words::categories(&r.categories)),
                escape(&by),
                escape(&words::duration(r.hold_secs))
            ));
            if audience == Audience::Head {
                o.push_str(&format!("<td>{}</td>", escape(&words::free(&r.reason))));
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table>\n");
    }
    match (s.review_median_secs, s.review_max_secs) {
        (Some(m), Some(x)) => o.push_str(&format!(
            "<p>Time from hold to review: {} reviewed, median {}, longest {}.</p>\n",
            s.reviews,
            escape(&words::duration(m)),
            escape(&words::duration(x))
        )),
        _ => o.push_str("<p>Time from hold to review: nothing was reviewed this week.</p>\n"),
    }
    if audience == Audience::Governors {
        o.push_str("<p class=\"muted\">This version has no names or addresses; senders are shown by role with a letter.</p>\n");
    }
    o.push_str("</body></html>\n");
    o
}
