//! The plain-text summary.

use super::weekly::{CATEGORIES, Summary};
use super::words::{self, Audience};
use crate::notify::compose::category_title;

pub fn subject(s: &Summary, audience: Audience) -> String {
    let who = match audience {
        Audience::Head => "",
        Audience::Governors => " (governors)",
    };
    let so_far = if s.so_far { ", so far" } else { "" };
    if s.is_empty() {
        format!(
            "{}: nothing to report for {}{so_far}{who}",
            s.school,
            s.week.label()
        )
    } else {
        format!(
            "{}: mail breach summary {}{so_far}{who}: {} flagged",
            s.school,
            s.week.label(),
            s.total
        )
    }
}

pub fn render(s: &Summary, audience: Audience) -> String {
    let mut o = String::new();
    let so_far = if s.so_far { " (week so far)" } else { "" };
    o.push_str(&format!(
        "{}: mail breach summary for week {} ({}){so_far}\n\n",
        s.school,
        s.week.label(),
        s.week.span_words()
    ));
    if s.is_empty() {
        o.push_str(
            "Nothing to report: no messages were flagged, none are waiting for review and none were reviewed.\n",
        );
        return o;
    }
    o.push_str(&format!(
        "Flagged messages: {} ({} the previous {} weeks' average)\n",
        s.total,
        words::trend(s.total, s.previous_average()),
        s.trend.len().saturating_sub(1)
    ));
    o.push_str("\nBy category (a message can be in more than one):\n");
    for (i, c) in CATEGORIES.iter().enumerate() {
        let n = s.by_category.get(*c).copied().unwrap_or(0);
        o.push_str(&format!(
            "  {:<20} {:>4}   {}\n",
            category_title(c),
            n,
            words::trend(n, s.category_previous_average(i))
        ));
    }
    let join = |m: &std::collections::BTreeMap<String, i64>, f: fn(&str) -> &str| {
        m.iter()
            .map(|(k, v)| format!("{} {v}", f(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    o.push_str(&format!(
        "\nBy action: {}\n",
        join(&s.by_action, words::action_word)
    ));
    o.push_str(&format!("By direction: {}\n", join(&s.by_direction, |d| d)));
    o.push_str(&format!(
        "Senders: {}\n",
        join(&s.by_group, words::group_word)
    ));

    o.push_str("\nMessages per week and category:\n");
    o.push_str(&format!("  {:<10} {:>5}", "Week", "Total"));
    for c in CATEGORIES {
        o.push_str(&format!(" {:>9}", short(c)));
    }
    o.push('\n');
    for (i, (label, counts)) in s.trend.iter().enumerate() {
        o.push_str(&format!("  {:<10} {:>5}", label, s.trend_totals[i]));
        for n in counts {
            o.push_str(&format!(" {n:>9}"));
        }
        o.push('\n');
    }

    o.push_str("\nTop senders of flagged mail:\n");
    for (i, t) in s.top_senders.iter().enumerate() {
        let who = match audience {
            Audience::Head => format!("{} ({})", words::free(&t.who), t.group),
            Audience::Governors => t.pseudonym.clone(),
        };
        o.push_str(&format!("  {}. {who}: {}\n", i + 1, t.count));
    }

    o.push_str(&format!(
        "\nStill held for review: {}\n",
        s.still_held.len()
    ));
    for h in &s.still_held {
        match audience {
            Audience::Head => o.push_str(&format!(
                "  - held {:.1} days: {} from {}{} [{}]\n",
                h.age_days,
                words::categories(&h.categories),
                words::free(&h.sender),
                h.subject
                    .as_deref()
                    .map(|x| format!(", \"{}\"", words::free(x)))
                    .unwrap_or_default(),
                h.id
            )),
            Audience::Governors => o.push_str(&format!(
                "  - held {:.1} days: {} ({} sender)\n",
                h.age_days,
                words::categories(&h.categories),
                h.sender_group
            )),
        }
    }

    o.push_str(&format!("\nReleased this week: {}\n", s.releases.len()));
    for r in &s.releases {
        match audience {
            Audience::Head => o.push_str(&format!(
                "  - {} ({}) released by {} after {}: \"{}\"\n",
                r.id,
                words::categories(&r.categories),
                words::free(&r.by),
                words::duration(r.hold_secs),
                words::free(&r.reason)
            )),
            Audience::Governors => o.push_str(&format!(
                "  - {} released by {} after {}\n",
                words::categories(&r.categories),
                words::role_words(r.role.as_deref()),
                words::duration(r.hold_secs)
            )),
        }
    }
    match (s.review_median_secs, s.review_max_secs) {
        (Some(m), Some(x)) => o.push_str(&format!(
            "\nTime from hold to review: {} reviewed, median {}, longest {}\n",
            s.reviews,
            words::duration(m),
            words::duration(x)
        )),
        _ => o.push_str("\nTime from hold to review: nothing was reviewed this week\n"),
    }
    if audience == Audience::Governors {
        o.push_str(
            "\nThis version has no names or addresses; senders are shown by role with a letter.\n",
        );
    }
    o
}

/// Column heading for a category in the text table.
pub fn short(c: &str) -> &str {
    match c {
        "profanity" => "Language",
        "personal_data" => "Personal",
        "chain_letter" => "Chain",
        "anonymous_sender" => "Anonymous",
        "virus" => "Virus",
        "banned_attachment" => "Attachmt",
        other => other,
    }
}
