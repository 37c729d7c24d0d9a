//! Small wording helpers shared by the text and HTML summaries.

use crate::notify::compose::{category_title, clean_line};

/// Who the summary is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The head teacher: names and addresses, masked evidence.
    Head,
    /// The governors: no names, no addresses, pseudonymised senders.
    Governors,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Head => "head",
            Audience::Governors => "governors",
        }
    }
}

/// `3 hours`, `2.5 days`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0) as f64;
    if s < 3600.0 {
        format!("{} minutes", (s / 60.0).round() as i64)
    } else if s < 2.0 * 86_400.0 {
        format!("{:.1} hours", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86_400.0)
    }
}

pub fn action_word(a: &str) -> &str {
    match a {
        "quarantine" => "held",
        "tag" => "tagged",
        "reject" => "refused",
        "pass" => "recorded only",
        other => other,
    }
}

pub fn group_word(g: &str) -> &str {
    match g {
        "staff" => "staff",
        "pupil" => "pupils",
        "external" => "external",
        other => other,
    }
}

pub fn role_words(role: Option<&str>) -> &'static str {
    match role {
        Some("admin") => "the ICT admin",
        Some("head") => "the head teacher",
        Some("dsl") => "the Designated Safeguarding Lead",
        Some("chair") => "the Chair of Governors",
        Some("governor") => "a governor",
        _ => "a reviewer",
    }
}

pub fn categories(list: &[String]) -> String {
    if list.is_empty() {
        return "unscannable".into();
    }
    list.iter()
        .map(|c| category_title(c).to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Trend words: this week against the average of the previous weeks.
pub fn trend(now: i64, before: f64) -> String {
    let n = now as f64;
    // One decimal, halves rounded up (0.25 → 0.3).
    let before = (before * 10.0).round() / 10.0;
    if (n - before).abs() < 0.5 {
        "about the same".into()
    } else if n > before {
        format!("up from {before:.1}")
    } else {
        format!("down from {before:.1}")
    }
}

/// Free text from a message or a reviewer: one line, numbers masked.
pub fn free(text: &str) -> String {
    clean_line(text, 160)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_and_duration_words() {
        assert_eq!(trend(1, 0.25), "up from 0.3");
        assert_eq!(trend(0, 2.0), "down from 2.0");
        assert_eq!(trend(1, 1.25), "about the same");
        assert_eq!(duration(7200), "2.0 hours");
        assert_eq!(duration(600), "10 minutes");
        assert_eq!(duration(3 * 86_400), "3.0 days");
    }
}
