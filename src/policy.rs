//! Policy: findings + sender identity + direction → [`Verdict`].
//!
//! Loaded from `rules/policy.toml` (see the comments there for the format).

use crate::config::Config;
use crate::finding::{Category, Finding, Severity};
use crate::message::Envelope;
use crate::rules::{RuleFile, RulesError};
use crate::sender::{Direction, Identity, SenderGroup};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What happens to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Pass,
    Tag,
    Quarantine,
    Reject,
    /// Internal failure: answer 4xx so the sending MTA keeps the message and retries.
    Tempfail,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Tag => "tag",
            Action::Quarantine => "quarantine",
            Action::Reject => "reject",
            Action::Tempfail => "tempfail",
        }
    }
}

/// Who must be told about the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notify {
    HeadTeacher,
    ChairOfGovernors,
    Dsl,
}

impl Notify {
    pub fn as_str(self) -> &'static str {
        match self {
            Notify::HeadTeacher => "head_teacher",
            Notify::ChairOfGovernors => "chair_of_governors",
            Notify::Dsl => "dsl",
        }
    }

    pub fn parse(s: &str) -> Option<Notify> {
        match s {
            "head_teacher" => Some(Notify::HeadTeacher),
            "chair_of_governors" => Some(Notify::ChairOfGovernors),
            "dsl" => Some(Notify::Dsl),
            _ => None,
        }
    }
}

/// A finding that an allow-list entry let through (recorded, not acted on).
#[derive(Debug, Clone, Serialize)]
pub struct Allowed {
    pub rule: String,
    pub location: String,
    pub allow_rule: String,
    pub reason: String,
    pub expires: String,
    pub approved_by: Option<String>,
}

/// The policy's decision about one message.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub action: Action,
    pub direction: Direction,
    pub sender_group: SenderGroup,
    /// Findings that count (allow-listed ones are in `allowed`), each with its clause.
    pub findings: Vec<Finding>,
    pub allowed: Vec<Allowed>,
    pub notify: Vec<Notify>,
    /// Why the action was chosen, in words (one line per deciding finding).
    pub reasons: Vec<String>,
    /// The error that caused a tempfail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who sent it, as far as it could be proven: the login, or the From
    /// address of an identified sender. None for unidentified senders.
    pub identified_sender: Option<String>,
    /// The identified sender is the head teacher (their items go to the Chair).
    pub sender_is_head: bool,
}

impl Verdict {
    /// Distinct categories of the findings, in a stable order.
    pub fn categories(&self) -> Vec<Category> {
        let mut c: Vec<Category> = self.findings.iter().map(|f| f.category).collect();
        c.sort();
        c.dedup();
        c
    }

    /// The AUP clauses behind the action (distinct, in order).
    pub fn clauses(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for f in &self.findings {
            if !f.clause.is_empty() && !out.contains(&f.clause.as_str()) {
                out.push(&f.clause);
            }
        }
        out
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    clauses: Clauses,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleSpec>,
    #[serde(default, rename = "allow")]
    allow: Vec<AllowSpec>,
}

#[derive(Debug, Default, Deserialize)]
struct Clauses {
    #[serde(flatten)]
    categories: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(rename = "match")]
    matches: String,
    #[serde(default)]
    direction: Option<Vec<Direction>>,
    #[serde(default)]
    sender: Option<Vec<SenderGroup>>,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    identified: Option<bool>,
    action: Action,
    #[serde(default)]
    notify_dsl: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowSpec {
    rule: String,
    #[serde(default)]
    sender: Option<String>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    reason: String,
    expires: String,
    #[serde(default)]
    approved_by: Option<String>,
}

#[derive(Debug, Clone)]
struct AllowEntry {
    spec: AllowSpec,
    /// Expiry as days since 1970-01-01 (valid through that day).
    expires_day: i64,
}

/// The compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    category_clauses: BTreeMap<Category, String>,
    rule_clauses: BTreeMap<String, String>,
    rules: Vec<RuleSpec>,
    allow: Vec<AllowEntry>,
    head_teacher: Vec<String>,
}

fn rule_matches(pattern: &str, finding: &Finding) -> bool {
    pattern == finding.category.as_str()
        || pattern == finding.rule
        || finding
            .rule
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Policy {
    /// Compile `policy.toml`. Errors name the file, line and rule.
    pub fn load(file: &RuleFile, config: &Config) -> Result<Policy, RulesError> {
        let parsed: PolicyFile = toml::from_str(&file.text).map_err(|e| {
            let line = e
                .span()
                .map(|s| {
                    file.text[..s.start.min(file.text.len())]
                        .matches('\n')
                        .count()
                        + 1
                })
                .unwrap_or(0);
            file.invalid(line, "policy", e.message().to_string())
        })?;
        let line_of = |needle: &str| {
            file.text
                .lines()
                .position(|l| l.contains(needle))
                .map(|i| i + 1)
                .unwrap_or(0)
        };
        let mut category_clauses = BTreeMap::new();
        let mut rule_clauses = BTreeMap::new();
        for (key, value) in parsed.clauses.categories {
            match (key.as_str(), value) {
                ("rules", toml::Value::Table(t)) => {
                    for (rule, v) in t {
                        let text = v.as_str().map(str::to_string).ok_or_else(|| {
                            file.invalid(line_of(&rule), &rule, "clause must be a string")
                        })?;
                        rule_clauses.insert(rule, text);
                    }
                }
                (cat, toml::Value::String(text)) => {
                    let c = Category::parse(cat).ok_or_else(|| {
                        file.invalid(line_of(cat), cat, "unknown category in [clauses]")
                    })?;
                    category_clauses.insert(c, text);
                }
                (other, _) => {
                    return Err(file.invalid(line_of(other), other, "clause must be a string"));
                }
            }
        }
        for r in &parsed.rules {
            let cat = r.matches.split('/').next().unwrap_or("");
            if Category::parse(cat).is_none() {
                return Err(file.invalid(
                    line_of(&format!("\"{}\"", r.matches)),
                    &r.matches,
                    format!("`match` must start with a category ({})", category_names()),
                ));
            }
        }
        let mut allow = Vec::new();
        for a in parsed.allow {
            let line = line_of(&a.reason);
            let cat = a.rule.split('/').next().unwrap_or("");
            if Category::parse(cat).is_none() {
                return Err(file.invalid(line, &a.rule, "allow `rule` must start with a category"));
            }
            if a.reason.trim().is_empty() {
                return Err(file.invalid(line, &a.rule, "allow entry needs a reason"));
            }
            if a.sender.is_none() && a.recipient.is_none() && a.domain.is_none() {
                return Err(file.invalid(
                    line,
                    &a.rule,
                    "allow entry needs `sender`, `recipient` or `domain`",
                ));
            }
            let expires_day = parse_date(&a.expires).ok_or_else(|| {
                file.invalid(
                    line_of(&a.expires),
                    &a.rule,
                    format!("`expires` must be a date YYYY-MM-DD, not `{}`", a.expires),
                )
            })?;
            allow.push(AllowEntry {
                spec: a,
                expires_day,
            });
        }
        Ok(Policy {
            category_clauses,
            rule_clauses,
            rules: parsed.rules,
            allow,
            head_teacher: config
                .people
                .head_teacher
                .iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .collect(),
        })
    }

    /// The AUP clause for a finding.
    pub fn clause_for(&self, finding: &Finding) -> String {
        self.rule_clauses
            .get(&finding.rule)
            .or_else(|| self.category_clauses.get(&finding.category))
            .cloned()
            .unwrap_or_else(|| format!("Acceptable-use policy: {}", finding.category))
    }

    fn rule_for(&self, finding: &Finding, identity: &Identity) -> Option<&RuleSpec> {
        self.rules.iter().find(|r| {
            rule_matches(&r.matches, finding)
                && r.direction
                    .as_ref()
                    .is_none_or(|d| d.contains(&identity.direction))
                && r.sender
                    .as_ref()
                    .is_none_or(|s| s.contains(&identity.group))
                && r.severity.is_none_or(|s| finding.severity >= s)
                && r.identified.is_none_or(|i| i == identity.is_identified())
        })
    }

    fn allowed_by(
        &self,
        finding: &Finding,
        envelope: &Envelope,
        identity: &Identity,
        today: i64,
    ) -> Option<&AllowEntry> {
        let sender = identity
            .from_address
            .clone()
            .unwrap_or_else(|| envelope.mail_from.to_ascii_lowercase());
        self.allow.iter().find(|a| {
            if a.expires_day < today || !rule_matches(&a.spec.rule, finding) {
                return false;
            }
            let s_ok = a
                .spec
                .sender
                .as_deref()
                .is_none_or(|p| address_matches(p, &sender));
            let r_ok = a.spec.recipient.as_deref().is_none_or(|p| {
                !envelope.rcpt_to.is_empty()
                    && envelope.rcpt_to.iter().all(|r| address_matches(p, r))
            });
            let d_ok = a.spec.domain.as_deref().is_none_or(|p| {
                address_matches(p, &sender)
                    || envelope.rcpt_to.iter().any(|r| address_matches(p, r))
            });
            s_ok && r_ok && d_ok
        })
    }

    /// Decide what happens to a message.
    pub fn decide(
        &self,
        findings: Vec<Finding>,
        envelope: &Envelope,
        identity: &Identity,
    ) -> Verdict {
        self.decide_on(findings, envelope, identity, today())
    }

    /// [`Policy::decide`] with an explicit date (days since 1970-01-01), for tests.
    pub fn decide_on(
        &self,
        findings: Vec<Finding>,
        envelope: &Envelope,
        identity: &Identity,
        today: i64,
    ) -> Verdict {
        let mut action = Action::Pass;
        let mut kept = Vec::new();
        let mut allowed = Vec::new();
        let mut reasons = Vec::new();
        let mut dsl = false;
        for mut f in findings {
            f.clause = self.clause_for(&f);
            if let Some(a) = self.allowed_by(&f, envelope, identity, today) {
                allowed.push(Allowed {
                    rule: f.rule.clone(),
                    location: f.location.clone(),
                    allow_rule: a.spec.rule.clone(),
                    reason: a.spec.reason.clone(),
                    expires: a.spec.expires.clone(),
                    approved_by: a.spec.approved_by.clone(),
                });
                continue;
            }
            let (a, notify_dsl) = match self.rule_for(&f, identity) {
                Some(r) => (r.action, r.notify_dsl),
                // No rule for it: hold it for a person to look at.
                None => (Action::Quarantine, false),
            };
            if a > Action::Pass {
                reasons.push(format!("{} in {} → {}", f.rule, f.location, a.as_str()));
                dsl |= notify_dsl;
            }
            action = action.max(a);
            kept.push(f);
        }
        let mut notify = Vec::new();
        if action > Action::Pass {
            if self.sender_is_head(identity) {
                notify.push(Notify::ChairOfGovernors);
            } else {
                notify.push(Notify::HeadTeacher);
            }
            if dsl {
                notify.push(Notify::Dsl);
            }
        }
        Verdict {
            action,
            direction: identity.direction,
            sender_group: identity.group,
            findings: kept,
            allowed,
            notify,
            reasons,
            error: None,
            identified_sender: identified_sender(identity),
            sender_is_head: self.sender_is_head(identity),
        }
    }

    /// The identified sender is the head teacher: their login or (for identified
    /// senders) their From address is one of `people.head_teacher`.
    fn sender_is_head(&self, identity: &Identity) -> bool {
        if !identity.is_identified() {
            return false;
        }
        let is_head = |a: &str| self.head_teacher.iter().any(|h| h == a);
        identity.login.as_deref().is_some_and(is_head)
            || identity.from_address.as_deref().is_some_and(is_head)
    }

    /// A verdict for a scan that failed: tempfail.
    pub fn tempfail(&self, identity: &Identity, error: String) -> Verdict {
        Verdict {
            action: Action::Tempfail,
            direction: identity.direction,
            sender_group: identity.group,
            findings: Vec::new(),
            allowed: Vec::new(),
            notify: Vec::new(),
            reasons: vec![format!("scan failed: {error}")],
            error: Some(error),
            identified_sender: identified_sender(identity),
            sender_is_head: self.sender_is_head(identity),
        }
    }
}

/// The proven sender: the login, else the From address of an identified sender.
fn identified_sender(identity: &Identity) -> Option<String> {
    if !identity.is_identified() {
        return None;
    }
    identity
        .login
        .clone()
        .or_else(|| identity.from_address.clone())
}

fn category_names() -> String {
    Category::ALL
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `*@x.org`, `@x.org` and `x.org` match any address at x.org (and its subdomains);
/// a full address matches itself. Case-insensitive.
fn address_matches(pattern: &str, address: &str) -> bool {
    let p = pattern.trim().to_ascii_lowercase();
    let a = address
        .trim()
        .trim_matches(|c| c == '<' || c == '>')
        .to_ascii_lowercase();
    if let Some(domain) = p.strip_prefix("*@").or_else(|| p.strip_prefix('@')) {
        return domain_matches(domain, &a);
    }
    if p.contains('@') {
        return p == a;
    }
    domain_matches(&p, &a)
}

fn domain_matches(domain: &str, address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((_, d)) => d == domain || d.ends_with(&format!(".{domain}")),
        None => false,
    }
}

/// Days since 1970-01-01 for a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSource;
    use crate::sender::IdentifiedBy;

    fn policy_with(extra: &str) -> Policy {
        let mut file = RuleSource::embedded().load("policy.toml").unwrap();
        file.text = format!("{}\n{}", file.text, extra).into();
        let config = Config::parse(
            "[people]\nhead_teacher = [\"head@school.example.sch.uk\"]\n",
            "t.toml",
        )
        .unwrap();
        Policy::load(&file, &config).unwrap()
    }

    fn identity(direction: Direction, group: SenderGroup, identified: bool) -> Identity {
        Identity {
            identified_by: identified.then_some(IdentifiedBy::Login),
            login: identified.then(|| "teacher@school.example.sch.uk".to_string()),
            group,
            from_address: Some("teacher@school.example.sch.uk".into()),
            from_is_school: true,
            direction,
        }
    }

    fn finding(cat: Category, rule: &str, sev: Severity) -> Finding {
        Finding::new(cat, rule, "body", "x***", sev)
    }

    fn env() -> Envelope {
        Envelope {
            mail_from: "teacher@school.example.sch.uk".into(),
            rcpt_to: vec!["officer@exampleshire.gov.uk".into()],
            ..Envelope::default()
        }
    }

    #[test]
    fn clean_message_passes_and_tells_nobody() {
        let p = policy_with("");
        let v = p.decide(
            vec![],
            &env(),
            &identity(Direction::Outbound, SenderGroup::Staff, true),
        );
        assert_eq!(v.action, Action::Pass);
        assert!(v.notify.is_empty());
    }

    #[test]
    fn defaults_by_category_and_direction() {
        let p = policy_with("");
        let staff_out = identity(Direction::Outbound, SenderGroup::Staff, true);
        let staff_in = identity(Direction::Internal, SenderGroup::Staff, true);
        let ext_in = identity(Direction::Inbound, SenderGroup::External, false);
        let pd = || {
            finding(
                Category::PersonalData,
                "personal_data/nhs_number",
                Severity::High,
            )
        };
        assert_eq!(
            p.decide(vec![pd()], &env(), &staff_out).action,
            Action::Quarantine
        );
        assert_eq!(p.decide(vec![pd()], &env(), &staff_in).action, Action::Tag);
        let inbound = p.decide(vec![pd()], &env(), &ext_in);
        assert_eq!(inbound.action, Action::Pass);
        assert_eq!(
            inbound.findings.len(),
            1,
            "inbound personal data is recorded"
        );
        let virus = finding(
            Category::Virus,
            "virus/Eicar-Test-Signature",
            Severity::Critical,
        );
        assert_eq!(
            p.decide(vec![virus], &env(), &staff_in).action,
            Action::Quarantine
        );
        let enc = || {
            finding(
                Category::BannedAttachment,
                "banned_attachment/encrypted_archive",
                Severity::Medium,
            )
        };
        assert_eq!(
            p.decide(vec![enc()], &env(), &staff_out).action,
            Action::Tag
        );
        assert_eq!(
            p.decide(vec![enc()], &env(), &ext_in).action,
            Action::Quarantine
        );
        let pupil_out = identity(Direction::Outbound, SenderGroup::Pupil, true);
        assert_eq!(
            p.decide(vec![enc()], &env(), &pupil_out).action,
            Action::Quarantine
        );
        let exe = finding(
            Category::BannedAttachment,
            "banned_attachment/executable",
            Severity::High,
        );
        assert_eq!(
            p.decide(vec![exe], &env(), &staff_out).action,
            Action::Quarantine
        );
        let imp = finding(
            Category::AnonymousSender,
            "anonymous_sender/impersonation",
            Severity::High,
        );
        assert_eq!(
            p.decide(vec![imp], &env(), &ext_in).action,
            Action::Quarantine
        );
        let disp = finding(
            Category::AnonymousSender,
            "anonymous_sender/disposable_domain",
            Severity::Medium,
        );
        assert_eq!(p.decide(vec![disp], &env(), &ext_in).action, Action::Tag);
        let chain = finding(
            Category::ChainLetter,
            "chain_letter/score",
            Severity::Medium,
        );
        assert_eq!(
            p.decide(vec![chain], &env(), &staff_in).action,
            Action::Quarantine
        );
    }

    #[test]
    fn profanity_by_severity_and_dsl_for_hate() {
        let p = policy_with("");
        let id = identity(Direction::Internal, SenderGroup::Pupil, true);
        let mild = finding(Category::Profanity, "profanity/mild", Severity::Low);
        let v = p.decide(vec![mild], &env(), &id);
        assert_eq!(v.action, Action::Tag);
        assert_eq!(v.notify, vec![Notify::HeadTeacher]);
        let strong = finding(Category::Profanity, "profanity/strong", Severity::High);
        assert_eq!(
            p.decide(vec![strong], &env(), &id).action,
            Action::Quarantine
        );
        let hate = finding(Category::Profanity, "profanity/hate", Severity::Critical);
        let v = p.decide(vec![hate], &env(), &id);
        assert_eq!(v.action, Action::Quarantine);
        assert_eq!(v.notify, vec![Notify::HeadTeacher, Notify::Dsl]);
        assert!(v.findings[0].clause.contains("hatred"));
    }

    #[test]
    fn head_teacher_as_sender_goes_to_chair() {
        let p = policy_with("");
        let mut id = identity(Direction::Outbound, SenderGroup::Staff, true);
        id.login = Some("head@school.example.sch.uk".into());
        let pd = finding(Category::PersonalData, "personal_data/upn", Severity::High);
        let v = p.decide(vec![pd], &env(), &id);
        assert_eq!(v.notify, vec![Notify::ChairOfGovernors]);
        // A forged head@ From from outside is not the head teacher sending.
        let mut forged = identity(Direction::Inbound, SenderGroup::External, false);
        forged.from_address = Some("head@school.example.sch.uk".into());
        let imp = finding(
            Category::AnonymousSender,
            "anonymous_sender/impersonation",
            Severity::High,
        );
        assert_eq!(
            p.decide(vec![imp], &env(), &forged).notify,
            vec![Notify::HeadTeacher]
        );
    }

    #[test]
    fn allow_list_is_honoured_until_it_expires() {
        let p = policy_with(
            "[[allow]]\nrule = \"personal_data\"\nrecipient = \"*@exampleshire.gov.uk\"\nreason = \"LA census\"\nexpires = \"2027-08-31\"\n",
        );
        let id = identity(Direction::Outbound, SenderGroup::Staff, true);
        let pd = || finding(Category::PersonalData, "personal_data/upn", Severity::High);
        let before = parse_date("2027-08-31").unwrap();
        let v = p.decide_on(vec![pd()], &env(), &id, before);
        assert_eq!(v.action, Action::Pass);
        assert_eq!(v.allowed.len(), 1);
        assert_eq!(v.allowed[0].reason, "LA census");
        let v = p.decide_on(vec![pd()], &env(), &id, before + 1);
        assert_eq!(v.action, Action::Quarantine);
        // The allow entry does not cover other categories.
        let virus = finding(Category::Virus, "virus/X", Severity::Critical);
        assert_eq!(
            p.decide_on(vec![virus], &env(), &id, before).action,
            Action::Quarantine
        );
    }

    #[test]
    fn bad_policy_names_the_rule() {
        let mut file = RuleSource::embedded().load("policy.toml").unwrap();
        file.text = "[[rule]]\nmatch = \"profanityy\"\naction = \"tag\"\n".into();
        let err = Policy::load(&file, &Config::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("profanityy"), "{err}");
        assert!(err.contains(":2:"), "{err}");
        file.text = "[[rule]]\nmatch = \"virus\"\naction = \"explode\"\n".into();
        let err = Policy::load(&file, &Config::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(":3:"), "{err}");
        file.text =
            "[[allow]]\nrule = \"virus\"\nsender = \"a@b\"\nreason = \"x\"\nexpires = \"soon\"\n"
                .into();
        let err = Policy::load(&file, &Config::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("expires"), "{err}");
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-25"), Some(20_782));
        assert_eq!(parse_date("2026-13-01"), None);
    }
}
