//! Findings: what a detector reports about a message.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The six finding categories. Their string forms are part of the CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Profanity,
    PersonalData,
    ChainLetter,
    AnonymousSender,
    Virus,
    BannedAttachment,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Profanity,
        Category::PersonalData,
        Category::ChainLetter,
        Category::AnonymousSender,
        Category::Virus,
        Category::BannedAttachment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Profanity => "profanity",
            Category::PersonalData => "personal_data",
            Category::ChainLetter => "chain_letter",
            Category::AnonymousSender => "anonymous_sender",
            Category::Virus => "virus",
            Category::BannedAttachment => "banned_attachment",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious a finding is. Policy rules can key on a minimum severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a detector found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub category: Category,
    /// Rule id under the category, e.g. `banned_attachment/encrypted_archive`.
    pub rule: String,
    /// Where it was found: `subject`, `body`, `header:from`, `attachment:pupils.zip/list.xlsx#Sheet2`.
    pub location: String,
    /// Masked evidence, safe to show in logs, alerts and the web UI (`AB12****C`, `f***`).
    pub evidence: String,
    pub severity: Severity,
    /// 0.0 – 1.0: how sure the detector is.
    pub confidence: f32,
    /// How many instances this finding stands for (e.g. 40 NHS numbers in one sheet).
    pub count: u32,
    /// The acceptable-use-policy clause this finding enforces (filled in by the policy).
    #[serde(default)]
    pub clause: String,
}

impl Finding {
    /// A finding with `confidence` 1.0, `count` 1 and no clause yet.
    pub fn new(
        category: Category,
        rule: impl Into<String>,
        location: impl Into<String>,
        evidence: impl Into<String>,
        severity: Severity,
    ) -> Finding {
        Finding {
            category,
            rule: rule.into(),
            location: location.into(),
            evidence: evidence.into(),
            severity,
            confidence: 1.0,
            count: 1,
            clause: String::new(),
        }
    }

    pub fn with_confidence(mut self, confidence: f32) -> Finding {
        self.confidence = confidence.clamp(0.0, 1.0);
        self
    }

    pub fn with_count(mut self, count: u32) -> Finding {
        self.count = count.max(1);
        self
    }
}
