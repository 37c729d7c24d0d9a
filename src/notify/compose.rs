//! The words of alerts, digests, sender notices and operational alerts.
//! Evidence is already masked by the detectors; the subject line and other
//! free text from the message are scrubbed again here, so no full National
//! Insurance, card or NHS number ever reaches a mail.

use crate::config::Config;
use crate::incidents::NewIncident;
use regex::Regex;
use std::sync::LazyLock;

/// A composed mail, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub body: String,
}

/// Category id → words.
pub fn category_label(c: &str) -> &str {
    match c {
        "profanity" => "offensive language",
        "personal_data" => "personal data",
        "chain_letter" => "a chain letter",
        "anonymous_sender" => "an anonymous or impersonating sender",
        "virus" => "a virus",
        "banned_attachment" => "a banned attachment",
        other => other,
    }
}

/// Category id → short title for tables.
pub fn category_title(c: &str) -> &str {
    match c {
        "profanity" => "Offensive language",
        "personal_data" => "Personal data",
        "chain_letter" => "Chain letters",
        "anonymous_sender" => "Anonymous senders",
        "virus" => "Viruses",
        "banned_attachment" => "Banned attachments",
        other => other,
    }
}

static NI: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[A-Z]{2}[ \-]?\d{2}[ \-]?\d{2}[ \-]?\d{2}[ \-]?[A-D]\b").ok()
});
/// Runs of 9 or more digits, allowing single spaces or dashes between them
/// (NHS numbers 3-3-4, card numbers 4-4-4-4, sort code + account).
static LONG_NUMBER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\d(?:[ \-]?\d){8,}").ok());

/// Mask anything in free text that looks like an NI, NHS or card number.
pub fn scrub(text: &str) -> String {
    let mut out = text.to_string();
    for re in [&*NI, &*LONG_NUMBER].into_iter().flatten() {
        out = re
            .replace_all(&out, |c: &regex::Captures<'_>| {
                crate::mask::identifier(&c[0])
            })
            .into_owned();
    }
    out
}

/// One line, no control characters, scrubbed, at most `max` characters.
pub fn clean_line(text: &str, max: usize) -> String {
    let one: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut s = scrub(one.trim());
    if s.chars().count() > max {
        s = s.chars().take(max).collect::<String>() + "…";
    }
    s
}

fn what_was_done(action: &str) -> &'static str {
    match action {
        "quarantine" => "held in quarantine for review; it has not been delivered",
        "tag" => "delivered with a warning in its subject line",
        "reject" => "refused; the sender was told",
        _ => "delivered and recorded",
    }
}

/// Link to the held message in the admin UI.
pub fn admin_link(config: &Config, quarantine_id: &str) -> String {
    format!(
        "{}/message/{}",
        config.admin.base_url.trim_end_matches('/'),
        quarantine_id
    )
}

fn categories_words(incident: &NewIncident) -> String {
    let words: Vec<&str> = incident
        .categories
        .iter()
        .map(|c| category_label(c))
        .collect();
    match words.len() {
        0 => "a problem".into(),
        1 => words[0].into(),
        n => format!("{} and {}", words[..n - 1].join(", "), words[n - 1]),
    }
}

/// The alert to one person about one incident.
pub fn alert(config: &Config, incident: &NewIncident, roles: &[&str]) -> Composed {
    let school = if config.school.name.is_empty() {
        "the school".to_string()
    } else {
        config.school.name.clone()
    };
    let sender = if incident.mail_from.is_empty() {
        "<>".to_string()
    } else {
        clean_line(&incident.mail_from, 200)
    };
    let verb = match incident.action.as_str() {
        "quarantine" => "Held",
        "tag" => "Flagged",
        "reject" => "Refused",
        _ => "Recorded",
    };
    let subject = format!(
        "[hallmonitor] {verb}: {} in a message from {sender}",
        categories_words(incident)
    );
    let mut b = String::new();
    b.push_str(&format!(
        "hallmonitor found {} in a message at {school}.\n\n",
        categories_words(incident)
    ));
    b.push_str("What was found:\n");
    for f in &incident.findings {
        let times = if f.count > 1 {
            format!(" ({} times)", f.count)
        } else {
            String::new()
        };
        b.push_str(&format!(
            "  - {} ({}, {} severity) in {}: {}{times}\n",
            category_title(&f.category),
            clean_line(&f.rule, 100),
            f.severity,
            clean_line(&f.location, 120),
            clean_line(&f.evidence, 120),
        ));
    }
    if incident.findings.is_empty() {
        b.push_str("  - the message could not be checked\n");
    }
    let mut clauses: Vec<&str> = incident.clauses.iter().map(String::as_str).collect();
    clauses.dedup();
    if !clauses.is_empty() {
        b.push_str("\nAcceptable-use policy:\n");
        for c in clauses {
            b.push_str(&format!("  \"{}\"\n", clean_line(c, 400)));
        }
    }
    b.push_str(&format!(
        "\nWhat was done: {}.\n",
        what_was_done(&incident.action)
    ));
    let identified = match &incident.identified_sender {
        Some(s) => format!("identified as {}", clean_line(s, 200)),
        None => "not identified (no login)".to_string(),
    };
    b.push_str(&format!(
        "Sender: {sender} ({}, {identified})\n",
        incident.sender_group
    ));
    let rcpts: Vec<String> = incident.rcpts.iter().map(|r| clean_line(r, 200)).collect();
    b.push_str(&format!("Recipients: {}\n", rcpts.join(", ")));
    if let Some(s) = &incident.subject {
        b.push_str(&format!("Subject: {}\n", clean_line(s, 200)));
    }
    b.push_str(&format!("Direction: {}\n", incident.direction));
    let when = jiff::Timestamp::from_second(incident.at)
        .ok()
        .map(|t| {
            t.to_zoned_datetime(london())
                .strftime("%a %-d %b %Y %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default();
    b.push_str(&format!("When: {when}\n"));
    if let Some(h) = &incident.held {
        b.push_str(&format!(
            "\nReview it (release or delete): {}\n",
            admin_link(config, &h.id)
        ));
    }
    b.push_str(&format!(
        "\nYou are told as {}. The offending content and attachments are not included in this alert.\n",
        roles.join(" and ")
    ));
    Composed {
        subject: clean_line(&subject, 200),
        body: b,
    }
}

/// The notice to the sender of a held message.
pub fn notice(config: &Config, incident: &NewIncident, told: &str) -> Composed {
    let to = incident
        .rcpts
        .iter()
        .map(|r| clean_line(r, 200))
        .collect::<Vec<_>>()
        .join(", ");
    let because = match incident.categories.as_slice() {
        [] => "it could not be checked".to_string(),
        _ => format!("it appears to contain {}", categories_words(incident)),
    };
    let subject_line = incident
        .subject
        .as_deref()
        .map(|s| format!(" (\"{}\")", clean_line(s, 120)))
        .unwrap_or_default();
    let school = if config.school.name.is_empty() {
        "The school".to_string()
    } else {
        config.school.name.clone()
    };
    let mut clauses: Vec<String> = incident
        .clauses
        .iter()
        .map(|c| clean_line(c, 400))
        .collect();
    clauses.dedup();
    let mut body = format!(
        "Your message to {to}{subject_line} was held for review because {because}; {told}.\n\n\
         It has not been delivered. If it should be sent, the person reviewing it can release it.\n"
    );
    if !clauses.is_empty() {
        body.push_str("\nThe acceptable-use policy says:\n");
        for c in clauses {
            body.push_str(&format!("  \"{c}\"\n"));
        }
    }
    body.push_str(&format!(
        "\n{school}'s mail filter (hallmonitor). This is an automatic message.\n"
    ));
    Composed {
        subject: clean_line(&format!("Your message to {to} was held for review"), 200),
        body,
    }
}

/// One digest of several alerts to one person.
pub fn digest(config: &Config, alerts: &[(String, String)], window_mins: u64) -> Composed {
    let school = if config.school.name.is_empty() {
        "the school".to_string()
    } else {
        config.school.name.clone()
    };
    let mut body = format!(
        "{} more alerts for {school} arrived within {window_mins} minutes; they are collected here in one message.\n",
        alerts.len()
    );
    for (i, (subject, text)) in alerts.iter().enumerate() {
        body.push_str(&format!(
            "\n==== {} of {}: {subject}\n\n{text}",
            i + 1,
            alerts.len()
        ));
    }
    Composed {
        subject: format!("[hallmonitor] Digest: {} alerts", alerts.len()),
        body,
    }
}

/// An operational alert to the ICT admin.
pub fn ops(config: &Config, problem: &str, status_text: &str) -> Composed {
    let host = &config.relay.hostname;
    Composed {
        subject: clean_line(
            &format!("[hallmonitor] Needs attention on {host}: {problem}"),
            200,
        ),
        body: format!(
            "hallmonitor on {host} needs attention:\n\n  {problem}\n\nFull status (as `hallmonitor status` shows it):\n\n{status_text}\n\
             This alert is repeated at most every {} while the problem lasts.\n",
            config.notify.ops_interval
        ),
    }
}

/// The school's time zone.
pub fn london() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Europe/London").unwrap_or(jiff::tz::TimeZone::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_masks_ni_nhs_and_card_numbers() {
        let s = scrub("NI AB 12 34 56 C, NHS 703 219 8643, card 4111 1111 1111 1111, room 12");
        assert!(!s.contains("34 56"), "{s}");
        assert!(!s.contains("8643"), "{s}");
        assert!(!s.contains("1111 1111"), "{s}");
        assert!(s.contains("room 12"), "{s}");
        assert!(s.contains("AB12****C"), "{s}");
    }

    #[test]
    fn clean_line_is_one_line() {
        assert_eq!(clean_line("a\r\nb", 10), "a  b");
        assert_eq!(clean_line("abcdef", 3), "abc…");
    }
}
