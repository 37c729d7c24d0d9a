//! anonymous_sender: the sender of a message cannot be identified.
//!
//! The acceptable-use policy says every message must identify its sender. This
//! detector reports the ways a sender hides (rule ids under `anonymous_sender/`):
//!
//! * `no_from` — the message has no `From:` header at all;
//! * `empty_from` — `From:` is empty (`<>`), has no usable address, or is the
//!   `undisclosed-sender(s)` group;
//! * `anonymous_name` — the display name *as a whole* is an anonymous-style name
//!   from `rules/anonymous_names.txt` ("A Friend", "No Name"). Names that merely
//!   contain such a word ("Friends of the Library", "Jo Friend") are not anonymous;
//! * `disposable_domain` — the `From:` address (or a different envelope sender) is
//!   at a throw-away mail service: mailchecker's maintained list plus
//!   `rules/disposable_domains.txt`, subdomains included;
//! * `impersonation` — a school `From:` address sent by a client that was not
//!   identified at all, or by a login that may not send as that address (alias map
//!   honoured, case-insensitive). Hosts identified by network or local submission
//!   may send as school addresses;
//! * `null_sender` — `MAIL FROM:<>` on a message that is not a bounce or
//!   notification (null senders exist so that bounces cannot bounce; anything else
//!   using one is hiding its return path).
//!
//! Impersonation is `High` (policy quarantines it); the rest are `Medium`.
//! Evidence is masked: addresses go through [`mask::address`].

use super::{DetectError, Detector, ScanContext};
use crate::config::Config;
use crate::finding::{Category, Finding, Severity};
use crate::mask;
use crate::message::Mailbox;
use crate::rules::{RuleFile, RuleSource, RulesError};
use crate::sender::{IdentifiedBy, login_may_send_as};
use std::collections::HashSet;
use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;

const NAMES_FILE: &str = "anonymous_names.txt";
const DOMAINS_FILE: &str = "disposable_domains.txt";

/// Longest display name shown as evidence (names are anonymous-style by
/// construction, so they are shown, but a crafted header should not flood alerts).
const MAX_EVIDENCE_CHARS: usize = 60;

/// The anonymous-sender detector, built once from the rule files.
#[derive(Debug)]
pub struct AnonymousSender {
    names: NamePatterns,
    domains: DisposableDomains,
}

impl AnonymousSender {
    /// Load `anonymous_names.txt` and `disposable_domains.txt`. A malformed line
    /// is an error naming the file, the line and the rule.
    pub fn new(_config: &Config, rules: &RuleSource) -> Result<AnonymousSender, RulesError> {
        let names = NamePatterns::parse(&rules.load(NAMES_FILE)?)?;
        let domains = DisposableDomains::parse(&rules.load(DOMAINS_FILE)?)?;
        tracing::debug!(
            names = names.patterns.len(),
            extra_domains = domains.extra.len(),
            allowed_domains = domains.allowed.len(),
            "anonymous_sender rules loaded"
        );
        Ok(AnonymousSender { names, domains })
    }

    fn finding(rule: &str, location: &str, evidence: String, confidence: f32) -> Finding {
        let severity = if rule == "impersonation" {
            Severity::High
        } else {
            Severity::Medium
        };
        Finding::new(
            Category::AnonymousSender,
            format!("anonymous_sender/{rule}"),
            location,
            evidence,
            severity,
        )
        .with_confidence(confidence)
    }

    fn check_from(&self, ctx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        let headers = &ctx.message.headers;
        let Some(from) = headers.from.as_ref() else {
            out.push(Self::finding(
                "no_from",
                "header:from",
                "no From header".into(),
                1.0,
            ));
            return;
        };
        let addresses: Vec<&Mailbox> = from
            .iter()
            .filter(|m| m.address.as_deref().is_some_and(is_usable_address))
            .collect();
        if addresses.is_empty() {
            out.push(Self::finding(
                "empty_from",
                "header:from",
                empty_from_evidence(headers, from),
                1.0,
            ));
            return;
        }

        for mailbox in &addresses {
            if let Some(name) = mailbox.name.as_deref()
                && self.names.is_anonymous(name)
            {
                out.push(Self::finding(
                    "anonymous_name",
                    "header:from",
                    truncate(name.trim(), MAX_EVIDENCE_CHARS),
                    0.85,
                ));
            } else if mailbox.name.as_deref().is_none_or(|n| n.trim().is_empty())
                && let Some(local) = mailbox
                    .address
                    .as_deref()
                    .and_then(|a| a.rsplit_once('@'))
                    .map(|(l, _)| l)
                && self.names.is_anonymous_local_part(local)
            {
                out.push(Self::finding(
                    "anonymous_name",
                    "header:from",
                    mailbox
                        .address
                        .as_deref()
                        .map(mask::address)
                        .unwrap_or_default(),
                    0.7,
                ));
            }
        }

        for address in addresses.iter().filter_map(|m| m.address.as_deref()) {
            if let Some(domain) = self.domains.disposable_match(address) {
                tracing::debug!(domain, "From address at a disposable-mail domain");
                out.push(Self::finding(
                    "disposable_domain",
                    "header:from",
                    mask::address(address.trim()),
                    0.9,
                ));
            }
            self.check_impersonation(ctx, address, out);
        }
    }

    /// A school address in `From:` needs a sender hallmonitor can vouch for; an
    /// identified login must be allowed to send as the address it uses.
    fn check_impersonation(&self, ctx: &ScanContext<'_>, address: &str, out: &mut Vec<Finding>) {
        let address = address.trim();
        let is_school = ctx.domains.is_school(address);
        match (ctx.identity.identified_by, ctx.identity.login.as_deref()) {
            (None, _) => {
                if is_school {
                    out.push(Self::finding(
                        "impersonation",
                        "header:from",
                        format!(
                            "school address {} sent without authentication",
                            mask::address(address)
                        ),
                        0.9,
                    ));
                }
            }
            (Some(IdentifiedBy::Login), Some(login)) => {
                if !login_may_send_as(ctx.config, ctx.domains, login, address) {
                    // Sending as an outside address through the school's relay is
                    // also spoofing, but rarer and less certain (shared mailboxes on
                    // other domains belong in the alias map), so it is less confident.
                    let confidence = if is_school { 0.95 } else { 0.7 };
                    out.push(Self::finding(
                        "impersonation",
                        "header:from",
                        format!(
                            "login {} sent as {}",
                            mask::address(login),
                            mask::address(address)
                        ),
                        confidence,
                    ));
                }
            }
            // Identified by network or local submission (the MIS server, copiers,
            // the mail server itself): these send as school addresses by design.
            (Some(_), _) => {}
        }
    }

    fn check_envelope(&self, ctx: &ScanContext<'_>, out: &mut Vec<Finding>) {
        let envelope = ctx.envelope;
        if envelope.is_null_sender() {
            if !is_bounce_shape(ctx) {
                out.push(Self::finding(
                    "null_sender",
                    "envelope:mail_from",
                    "<> (null sender) on a message that is not a bounce".into(),
                    0.8,
                ));
            }
            return;
        }
        let mail_from = envelope.mail_from.trim().trim_matches(['<', '>']);
        let from_domain = ctx
            .identity
            .from_address
            .as_deref()
            .and_then(domain_of)
            .map(str::to_ascii_lowercase);
        let env_domain = domain_of(mail_from).map(str::to_ascii_lowercase);
        if env_domain.is_some()
            && env_domain != from_domain
            && self.domains.disposable_match(mail_from).is_some()
        {
            out.push(Self::finding(
                "disposable_domain",
                "envelope:mail_from",
                mask::address(mail_from),
                0.85,
            ));
        }
    }
}

impl Detector for AnonymousSender {
    fn name(&self) -> &'static str {
        "anonymous_sender"
    }

    fn inspect(&self, ctx: &ScanContext<'_>, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        self.check_from(ctx, out);
        self.check_envelope(ctx, out);
        Ok(())
    }
}

/// An address hallmonitor could reply to: `local@domain` with both halves present.
fn is_usable_address(address: &str) -> bool {
    let a = address.trim().trim_matches(['<', '>']);
    match a.rsplit_once('@') {
        Some((local, domain)) => !local.trim().is_empty() && !domain.trim().is_empty(),
        None => false,
    }
}

fn domain_of(address: &str) -> Option<&str> {
    address
        .trim()
        .trim_matches(['<', '>'])
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('.'))
        .filter(|d| !d.is_empty())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Evidence for an empty From: the group name for `undisclosed-sender:;`, else `<>`.
fn empty_from_evidence(headers: &crate::message::HeaderFacts, from: &[Mailbox]) -> String {
    let raw = headers
        .all
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("from"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let named = from
        .iter()
        .filter_map(|m| m.name.as_deref())
        .any(|n| n.to_ascii_lowercase().contains("undisclosed"));
    if raw.contains("undisclosed") || named {
        "undisclosed-sender".into()
    } else if raw.trim().is_empty() {
        "empty From header".into()
    } else {
        "From without an address (<>)".into()
    }
}

/// Does a null-sender message look like a bounce or an automatic notification?
///
/// A DSN/MDN (`multipart/report`, any report type) always does. So does mail from
/// a mail-system mailbox (`MAILER-DAEMON`, `postmaster`, Exchange's system
/// mailbox): qmail and some appliances send plain-text bounces. An RFC 3834
/// automatic reply (`Auto-Submitted: auto-replied`, which RFC 3834 says should go
/// to the null sender) counts when its subject also reads like one; a phishing
/// message that merely borrowed `MAIL FROM:<>` has neither.
fn is_bounce_shape(ctx: &ScanContext<'_>) -> bool {
    let h = &ctx.message.headers;
    if h.is_dsn_or_mdn() || h.content_type.as_deref() == Some("multipart/report") {
        return true;
    }
    let from_mail_system = h
        .from
        .iter()
        .flatten()
        .filter_map(|m| m.address.as_deref())
        .any(is_mail_system_address);
    if from_mail_system {
        return true;
    }
    let auto_replied = h.auto_submitted.as_deref().is_some_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        let v = v.strip_prefix("auto-submitted:").unwrap_or(&v).trim();
        v.starts_with("auto-replied") || v.starts_with("auto-generated")
    });
    auto_replied && h.subject.as_deref().is_some_and(subject_reads_automatic)
}

/// `MAILER-DAEMON@…`, `postmaster@…`, `MicrosoftExchange…@…` and similar.
fn is_mail_system_address(address: &str) -> bool {
    let local = address
        .trim()
        .trim_matches(['<', '>'])
        .rsplit_once('@')
        .map_or(address, |(l, _)| l)
        .to_ascii_lowercase();
    matches!(
        local.as_str(),
        "mailer-daemon" | "mailerdaemon" | "mailer_daemon" | "mail-daemon" | "postmaster"
    ) || local.starts_with("microsoftexchange")
}

fn subject_reads_automatic(subject: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "automatic reply",
        "auto reply",
        "auto-reply",
        "autoreply",
        "auto:",
        "out of office",
        "out of the office",
        "away:",
        "undeliverable",
        "undelivered",
        "delivery status notification",
        "delivery failure",
        "delivery has failed",
        "mail delivery failed",
        "returned mail",
        "failure notice",
        "read:",
        "delivered:",
        "not read:",
    ];
    let s = subject.trim().to_lowercase();
    PREFIXES.iter().any(|p| s.starts_with(p))
}

/// One token of an anonymous-name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    /// `*`: one or more whole words.
    Any,
}

/// Anonymous-style display names. A pattern is a sequence of normalised words; a
/// name matches only when the *whole* name is the pattern (so "A Friend" matches
/// `a friend` but "Friends of the Library" and "Jo Friend" do not).
#[derive(Debug, Default)]
struct NamePatterns {
    patterns: Vec<Vec<Token>>,
    /// Wildcard-free names of five letters or more with their words run together
    /// (`noname`, `afriend`), for names and local parts written without spaces.
    run_together: HashSet<String>,
}

impl NamePatterns {
    fn parse(file: &RuleFile) -> Result<NamePatterns, RulesError> {
        let mut patterns: Vec<Vec<Token>> = Vec::new();
        for (line, text) in file.lines() {
            if text.contains('@') {
                return Err(file.invalid(
                    line,
                    text,
                    "this file lists display names, not addresses (put domains in disposable_domains.txt)",
                ));
            }
            let mut tokens = Vec::new();
            for raw in text.split_whitespace() {
                if raw == "*" {
                    if tokens.last() == Some(&Token::Any) {
                        return Err(file.invalid(line, text, "two `*` in a row"));
                    }
                    tokens.push(Token::Any);
                } else if raw.contains('*') {
                    return Err(file.invalid(
                        line,
                        text,
                        "`*` stands for whole words and must be separated by spaces",
                    ));
                } else {
                    tokens.extend(normalise_name(raw).into_iter().map(Token::Word));
                }
            }
            if !tokens.iter().any(|t| matches!(t, Token::Word(_))) {
                return Err(file.invalid(
                    line,
                    text,
                    "a name needs at least one word with a letter or digit (a lone `*` would match every name)",
                ));
            }
            if patterns.contains(&tokens) {
                tracing::debug!(file = %file.origin, line, "duplicate anonymous name");
                continue;
            }
            patterns.push(tokens);
        }
        let run_together = patterns
            .iter()
            .filter_map(|p| {
                p.iter()
                    .map(|t| match t {
                        Token::Word(w) => Some(w.as_str()),
                        Token::Any => None,
                    })
                    .collect::<Option<String>>()
            })
            .filter(|joined| joined.chars().count() >= 5)
            .collect();
        Ok(NamePatterns {
            patterns,
            run_together,
        })
    }

    /// Is the display name, as a whole, an anonymous-style name? Tried as written,
    /// without trailing numbers ("Anonymous 2", "Anonymous123"), with digit
    /// look-alikes read as letters ("An0nym0us"), and with its words run together
    /// ("AFriend", "No-Name") for names of five letters or more.
    fn is_anonymous(&self, name: &str) -> bool {
        let words = normalise_name(name);
        if words.is_empty() {
            return false;
        }
        let without_numbers: Vec<String> = words
            .iter()
            .map(|w| w.trim_end_matches(|c: char| c.is_ascii_digit()).to_string())
            .filter(|w| !w.is_empty())
            .collect();
        let unleet: Vec<String> = words.iter().map(|w| unleet(w)).collect();
        [words, without_numbers, unleet]
            .iter()
            .filter(|v| !v.is_empty())
            .any(|v| self.matches_words(v) || self.run_together.contains(&v.concat()))
    }

    /// With no display name, an address like `anonymous@…` or `no.name42@…`
    /// speaks for itself. Only wildcard-free names of five letters or more are
    /// used here, so short entries (`x`, `me`) never match ordinary local parts.
    fn is_anonymous_local_part(&self, local: &str) -> bool {
        let trimmed = local.trim_end_matches(|c: char| c.is_ascii_digit());
        let joined: String = normalise_name(trimmed).concat();
        !joined.is_empty()
            && (self.run_together.contains(&joined) || self.run_together.contains(&unleet(&joined)))
    }

    fn matches_words(&self, words: &[String]) -> bool {
        self.patterns.iter().any(|p| match_tokens(p, words))
    }
}

/// Whole-sequence match with `Any` standing for one or more words.
fn match_tokens(pattern: &[Token], words: &[String]) -> bool {
    match pattern.split_first() {
        None => words.is_empty(),
        Some((Token::Word(p), rest)) => {
            words.first().is_some_and(|w| w == p) && match_tokens(rest, &words[1..])
        }
        Some((Token::Any, rest)) => (1..=words.len()).any(|n| match_tokens(rest, &words[n..])),
    }
}

/// Normalise a display name into lower-case words: Unicode compatibility forms
/// folded (NFKD, accents dropped), common Cyrillic/Greek look-alike letters read
/// as Latin, every run of punctuation or whitespace a single word break.
fn normalise_name(name: &str) -> Vec<String> {
    let mut folded = String::with_capacity(name.len());
    for c in name.nfkd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        for l in c.to_lowercase() {
            folded.push(confusable(l));
        }
    }
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Cyrillic and Greek letters that look like Latin ones (lower case).
fn confusable(c: char) -> char {
    match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ς' => 'c',
        'ԁ' => 'd',
        'е' | 'ε' => 'e',
        'һ' => 'h',
        'і' | 'ι' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'п' | 'η' => 'n',
        'о' | 'ο' => 'o',
        'р' | 'ρ' => 'p',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' => 'u',
        'у' | 'γ' => 'y',
        'х' | 'χ' => 'x',
        _ => c,
    }
}

/// Read digits used as letters: `an0nym0us` → `anonymous`. Words that are all
/// digits are left alone ("Parent 2" stays "parent 2").
fn unleet(word: &str) -> String {
    if word.chars().all(|c| c.is_ascii_digit()) {
        return word.to_string();
    }
    word.chars()
        .map(|c| match c {
            '0' => 'o',
            '1' => 'i',
            '3' => 'e',
            '4' => 'a',
            '5' => 's',
            '7' => 't',
            '8' => 'b',
            _ => c,
        })
        .collect()
}

/// Disposable-mail domains: mailchecker's maintained list (built into a hash set
/// once per process; its own lookup is a linear scan) plus the school's additions,
/// minus the school's exceptions (`!domain`).
#[derive(Debug, Default)]
struct DisposableDomains {
    extra: HashSet<String>,
    allowed: HashSet<String>,
}

fn maintained_list() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| mailchecker::blacklist().into_iter().collect())
}

impl DisposableDomains {
    fn parse(file: &RuleFile) -> Result<DisposableDomains, RulesError> {
        let mut out = DisposableDomains::default();
        for (line, text) in file.lines() {
            let (allow, domain) = match text.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, text),
            };
            let domain = domain
                .trim_start_matches("*.")
                .trim_start_matches('@')
                .trim_end_matches('.')
                .to_ascii_lowercase();
            validate_domain(&domain).map_err(|msg| file.invalid(line, text, msg))?;
            if allow {
                out.allowed.insert(domain);
            } else {
                out.extra.insert(domain);
            }
        }
        // Touch the maintained list now, so the first message does not pay for it.
        let _ = maintained_list();
        Ok(out)
    }

    /// The listed domain an address falls under (`x.y.mailinator.com` →
    /// `mailinator.com`), unless the school has excepted it.
    fn disposable_match(&self, address: &str) -> Option<String> {
        let domain = domain_of(address)?.to_ascii_lowercase();
        let mut hit = None;
        for suffix in suffixes(&domain) {
            if self.allowed.contains(suffix) {
                return None;
            }
            if hit.is_none() && (self.extra.contains(suffix) || maintained_list().contains(suffix))
            {
                hit = Some(suffix.to_string());
            }
        }
        hit
    }
}

/// `a.b.example.com` → `a.b.example.com`, `b.example.com`, `example.com` (never
/// the bare top-level label).
fn suffixes(domain: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(domain);
    std::iter::from_fn(move || {
        let current = rest?;
        rest = current
            .split_once('.')
            .map(|(_, r)| r)
            .filter(|r| r.contains('.'));
        Some(current)
    })
    .filter(|d| d.contains('.'))
}

fn validate_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("empty domain");
    }
    if domain.contains('@') {
        return Err(
            "write the domain only, without a mailbox (mailinator.com, not x@mailinator.com)",
        );
    }
    if !domain.contains('.') {
        return Err(
            "a domain needs at least one dot (a bare top-level domain would match too much)",
        );
    }
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !domain.split('.').all(ok_label) {
        return Err(
            "not a domain name (letters, digits and hyphens between dots; no spaces or wildcards)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Envelope, ScannedMessage};
    use crate::sender::{self, SchoolDomains};
    use std::borrow::Cow;

    const STAFF: &str = "school.example.sch.uk";

    fn config() -> Config {
        Config::parse(
            r#"
[school]
staff_domains = ["school.example.sch.uk"]
pupil_domains = ["pupils.school.example.sch.uk"]
[senders]
identified_networks = ["10.1.2.0/24"]
[senders.aliases]
"office@school.example.sch.uk" = ["reception@school.example.sch.uk"]
"#,
            "t.toml",
        )
        .unwrap()
    }

    fn detector() -> AnonymousSender {
        AnonymousSender::new(&config(), &RuleSource::embedded()).unwrap()
    }

    /// A message with one From mailbox (`None` = no From header).
    struct Case {
        from: Option<Vec<Mailbox>>,
        mail_from: String,
        auth: Option<String>,
        ip: &'static str,
        content_type: Option<&'static str>,
        report_type: Option<&'static str>,
        auto_submitted: Option<&'static str>,
        subject: Option<&'static str>,
        raw_from: Option<&'static str>,
    }

    fn mb(name: Option<&str>, address: &str) -> Mailbox {
        Mailbox {
            name: name.map(str::to_string),
            address: (!address.is_empty()).then(|| address.to_string()),
        }
    }

    impl Case {
        fn from(name: Option<&str>, address: &str) -> Case {
            Case {
                from: Some(vec![mb(name, address)]),
                mail_from: address.to_string(),
                auth: None,
                ip: "198.51.100.7",
                content_type: Some("text/plain"),
                report_type: None,
                auto_submitted: None,
                subject: Some("Hello"),
                raw_from: None,
            }
        }
        fn auth(mut self, login: &str, ip: &'static str) -> Case {
            self.auth = Some(login.into());
            self.ip = ip;
            self
        }
        fn mail_from(mut self, m: &str) -> Case {
            self.mail_from = m.into();
            self
        }

        fn run_with(&self, d: &AnonymousSender) -> Vec<Finding> {
            let c = config();
            let domains = SchoolDomains::new(&c);
            let mut msg = ScannedMessage::default();
            msg.headers.from = self.from.clone();
            msg.headers.content_type = self.content_type.map(str::to_string);
            msg.headers.report_type = self.report_type.map(str::to_string);
            msg.headers.auto_submitted = self.auto_submitted.map(str::to_string);
            msg.headers.subject = self.subject.map(str::to_string);
            if let Some(raw) = self.raw_from {
                msg.headers.all.push(("From".into(), raw.into()));
            }
            let envelope = Envelope {
                mail_from: self.mail_from.clone(),
                rcpt_to: vec![format!("someone@{STAFF}")],
                client_ip: self.ip.parse().ok(),
                auth_user: self.auth.clone(),
                ..Envelope::default()
            };
            let identity = sender::identify(&c, &domains, &envelope, &msg);
            let ctx = ScanContext {
                envelope: &envelope,
                message: &msg,
                identity: &identity,
                domains: &domains,
                config: &c,
            };
            let mut out = Vec::new();
            d.inspect(&ctx, &mut out).unwrap();
            for f in &out {
                assert_eq!(f.category, Category::AnonymousSender);
            }
            out
        }

        fn rules(&self) -> Vec<String> {
            self.run_with(&detector())
                .into_iter()
                .map(|f| f.rule)
                .collect()
        }
    }

    fn rules_file(name: &str, text: &str) -> RuleFile {
        RuleFile {
            origin: format!("rules/{name}"),
            text: Cow::Owned(text.to_string()),
        }
    }

    // --- no_from / empty_from

    #[test]
    fn missing_from_header_is_flagged() {
        let mut c = Case::from(None, "www-data@web01.hosting.example.net");
        c.from = None;
        assert_eq!(c.rules(), ["anonymous_sender/no_from"]);
    }

    #[test]
    fn empty_from_address_is_flagged() {
        let mut c = Case::from(None, "");
        c.mail_from = "mailer@relay.example.net".into();
        c.raw_from = Some("<>");
        let f = c.run_with(&detector());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "anonymous_sender/empty_from");
        assert_eq!(f[0].severity, Severity::Medium);
    }

    #[test]
    fn undisclosed_sender_group_is_empty_from() {
        let mut c = Case::from(None, "");
        c.from = Some(vec![]);
        c.mail_from = "bulk@relay.example.net".into();
        c.raw_from = Some("undisclosed-sender:;");
        let f = c.run_with(&detector());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "anonymous_sender/empty_from");
        assert_eq!(f[0].evidence, "undisclosed-sender");
    }

    #[test]
    fn from_with_name_but_no_domain_is_empty_from() {
        let mut c = Case::from(Some("Jo"), "jo");
        c.mail_from = "jo@example.org".into();
        assert_eq!(c.rules(), ["anonymous_sender/empty_from"]);
    }

    // --- anonymous_name

    #[test]
    fn anonymous_display_names_are_flagged() {
        for name in [
            "A Friend",
            "a  friend!",
            "No Name",
            "ANONYMOUS",
            "Anonymous Parent",
            "A Concerned Parent",
            "A well-wisher",
            "An0nym0us",
            "Аnonymous", // Cyrillic А
            "Ánónymous",
            "Anonymous 2",
            "Anonymous123",
            "AFriend",
            "No-Name",
            "NoName",
        ] {
            let c = Case::from(Some(name), "qz81kd@outlook.com");
            assert_eq!(c.rules(), ["anonymous_sender/anonymous_name"], "{name}");
        }
    }

    #[test]
    fn evidence_for_anonymous_name_is_the_name() {
        let f = Case::from(Some("A Friend"), "qz81kd@outlook.com").run_with(&detector());
        assert_eq!(f[0].evidence, "A Friend");
        assert_eq!(f[0].location, "header:from");
    }

    #[test]
    fn names_merely_containing_an_anonymous_word_are_not_anonymous() {
        for name in [
            "Friends of the Library",
            "Friends of Hillside School PTA",
            "Jo Friend",
            "Alcoholics Anonymous",
            "Unknown Pleasures Records",
            "Sam Nobody-Smith",
            "Nameless Theatre Company",
            "Simeon Ewe",
            "Mr X Ray",
            "Friend 2 Friend Tutoring",
        ] {
            let c = Case::from(Some(name), "info@example.org");
            assert!(c.rules().is_empty(), "{name}: {:?}", c.rules());
        }
    }

    #[test]
    fn named_parent_on_gmail_is_fine() {
        let c = Case::from(Some("Priya Sharma"), "priya.sharma84@gmail.com");
        assert!(c.rules().is_empty());
        let c = Case::from(None, "oscar_obrien8@gmail.com");
        assert!(c.rules().is_empty());
    }

    #[test]
    fn named_automated_service_is_fine() {
        for (name, addr) in [
            (
                "School Gateway Notifications",
                "noreply@gateway.example.com",
            ),
            ("Microsoft Outlook", "no-reply@microsoft.example.com"),
            ("", "notifications@parentmail.example.co.uk"),
        ] {
            let c = Case::from(Some(name), addr);
            assert!(c.rules().is_empty(), "{name} {addr}");
        }
    }

    #[test]
    fn anonymous_local_part_without_a_name_is_flagged() {
        let c = Case::from(None, "anonymous42@outlook.com");
        assert_eq!(c.rules(), ["anonymous_sender/anonymous_name"]);
        let c = Case::from(None, "no.name@outlook.com");
        assert_eq!(c.rules(), ["anonymous_sender/anonymous_name"]);
        let c = Case::from(None, "an0nym0us@outlook.com");
        assert_eq!(c.rules(), ["anonymous_sender/anonymous_name"]);
        // An ordinary mailbox name is not anonymous.
        let c = Case::from(None, "jo.friend@outlook.com");
        assert!(c.rules().is_empty());
        // Short list entries never match local parts.
        let c = Case::from(None, "me@example.org");
        assert!(c.rules().is_empty());
        let c = Case::from(None, "x@example.org");
        assert!(c.rules().is_empty());
    }

    // --- disposable_domain

    #[test]
    fn disposable_from_domains_are_flagged() {
        for addr in [
            "kitty661@mailinator.com",
            "xx712@YOPMAIL.com",
            "xx574@10minutemail.com",
            "a@sub.mailinator.com",
            "a@guerrillamail.info",
        ] {
            let f = Case::from(None, addr).run_with(&detector());
            assert_eq!(f.len(), 1, "{addr}");
            assert_eq!(f[0].rule, "anonymous_sender/disposable_domain");
            assert_eq!(f[0].severity, Severity::Medium);
            assert!(!f[0].evidence.contains("kitty661"), "{}", f[0].evidence);
        }
    }

    #[test]
    fn disposable_envelope_sender_is_flagged_when_it_differs() {
        let c =
            Case::from(Some("Sam Jones"), "sam.jones@example.org").mail_from("bounce7@yopmail.com");
        let f = c.run_with(&detector());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "anonymous_sender/disposable_domain");
        assert_eq!(f[0].location, "envelope:mail_from");
        // Same disposable domain in both: one finding, for the From.
        let c = Case::from(None, "a@yopmail.com").mail_from("b@yopmail.com");
        assert_eq!(c.rules(), ["anonymous_sender/disposable_domain"]);
    }

    #[test]
    fn ordinary_mail_providers_are_not_disposable() {
        for addr in [
            "a@gmail.com",
            "a@outlook.com",
            "a@hotmail.co.uk",
            "a@btinternet.com",
            "a@icloud.com",
            "a@yahoo.co.uk",
            "a@sky.com",
            "a@protonmail.com",
            "a@mail.example.com",
        ] {
            assert!(Case::from(None, addr).rules().is_empty(), "{addr}");
        }
    }

    #[test]
    fn school_can_except_a_domain_from_the_maintained_list() {
        let names = rules_file("anonymous_names.txt", "anonymous\n");
        let domains = rules_file(
            "disposable_domains.txt",
            "# ours\n!mailinator.com\nthrowaway.example\n",
        );
        let d = AnonymousSender {
            names: NamePatterns::parse(&names).unwrap(),
            domains: DisposableDomains::parse(&domains).unwrap(),
        };
        assert!(Case::from(None, "a@mailinator.com").run_with(&d).is_empty());
        assert!(
            Case::from(None, "a@x.mailinator.com")
                .run_with(&d)
                .is_empty()
        );
        let f = Case::from(None, "a@mx.throwaway.example").run_with(&d);
        assert_eq!(f[0].rule, "anonymous_sender/disposable_domain");
    }

    // --- impersonation

    #[test]
    fn unauthenticated_school_from_is_impersonation() {
        let c = Case::from(Some("Head Teacher"), &format!("head@{STAFF}"));
        let f = c.run_with(&detector());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "anonymous_sender/impersonation");
        assert_eq!(f[0].severity, Severity::High);
        assert!(
            f[0].evidence.contains(&format!("h***@{STAFF}")),
            "{}",
            f[0].evidence
        );
        // Pupil domain too, with a different envelope sender.
        let c = Case::from(None, &format!("22kid@pupils.{STAFF}"))
            .mail_from("ceo@mail-secure.example.net");
        assert_eq!(c.rules(), ["anonymous_sender/impersonation"]);
    }

    #[test]
    fn login_sending_as_someone_else_is_impersonation() {
        let c = Case::from(None, &format!("harry.t@{STAFF}"))
            .auth(&format!("cholt@{STAFF}"), "10.9.9.9");
        let f = c.run_with(&detector());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "anonymous_sender/impersonation");
        assert!(f[0].evidence.contains("login c****@"), "{}", f[0].evidence);
    }

    #[test]
    fn login_differing_only_in_case_is_fine() {
        let c = Case::from(Some("E Robinson"), &format!("erobinson@{STAFF}"))
            .auth("ERobinson@School.Example.Sch.Uk", "198.51.100.108");
        assert!(c.rules().is_empty());
        // A bare login matches its local part at the school's domains.
        let c = Case::from(None, &format!("ERobinson@{STAFF}")).auth("erobinson", "10.9.9.9");
        assert!(c.rules().is_empty());
    }

    #[test]
    fn staff_logged_in_from_home_is_fine() {
        let c = Case::from(Some("Sam Smith"), &format!("ssmith@{STAFF}"))
            .auth(&format!("ssmith@{STAFF}"), "198.51.100.117");
        assert!(c.rules().is_empty());
    }

    #[test]
    fn alias_map_is_honoured() {
        let c = Case::from(Some("Reception"), &format!("reception@{STAFF}"))
            .auth(&format!("Office@{STAFF}"), "10.9.9.9");
        assert!(c.rules().is_empty());
        // …but the alias is not a licence for other addresses.
        let c = Case::from(Some("Head"), &format!("head@{STAFF}"))
            .auth(&format!("office@{STAFF}"), "10.9.9.9");
        assert_eq!(c.rules(), ["anonymous_sender/impersonation"]);
    }

    #[test]
    fn host_identified_by_network_may_send_as_school() {
        let c = Case::from(Some("MIS"), &format!("mis@{STAFF}")).mail_from(&format!("mis@{STAFF}"));
        let c = Case {
            ip: "10.1.2.40",
            ..c
        };
        assert!(c.rules().is_empty());
    }

    #[test]
    fn outside_sender_with_outside_from_is_not_impersonation() {
        let c = Case::from(
            Some("Dales Catering"),
            "invoices@dalescatering.example.co.uk",
        );
        assert!(c.rules().is_empty());
    }

    // --- null_sender

    fn null_sender(subject: &str) -> Case {
        let mut c = Case::from(Some("Amelia Wright"), "bookings@coaches.example.co.uk");
        c.mail_from = String::new();
        c.subject = Some(Box::leak(subject.to_string().into_boxed_str()));
        c
    }

    #[test]
    fn null_sender_on_ordinary_mail_is_flagged() {
        let f = null_sender("Quick favour").run_with(&detector());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "anonymous_sender/null_sender");
        assert_eq!(f[0].location, "envelope:mail_from");
        let c = null_sender("Quick favour").mail_from("<>");
        assert_eq!(c.rules(), ["anonymous_sender/null_sender"]);
    }

    #[test]
    fn bounces_with_null_sender_are_fine() {
        // multipart/report delivery-status
        let mut c = Case::from(
            Some("Mail Delivery System"),
            "MAILER-DAEMON@mail.example.net",
        );
        c.mail_from = String::new();
        c.content_type = Some("multipart/report");
        c.report_type = Some("delivery-status");
        c.auto_submitted = Some("auto-replied");
        assert!(c.rules().is_empty());
        // Exchange-style report from a named postmaster
        let mut c = Case::from(Some("Microsoft Outlook"), "postmaster@outlook.example.com");
        c.mail_from = String::new();
        c.content_type = Some("multipart/report");
        c.report_type = Some("Delivery-Status");
        assert!(c.rules().is_empty());
        // Read receipt (MDN)
        let mut c = Case::from(Some("Jo Bloggs"), "jo@example.org");
        c.mail_from = String::new();
        c.content_type = Some("multipart/report");
        c.report_type = Some("disposition-notification");
        assert!(c.rules().is_empty());
        // Plain-text qmail-style bounce from MAILER-DAEMON
        let mut c = Case::from(None, "MAILER-DAEMON@mx.example.org");
        c.mail_from = String::new();
        c.subject = Some("failure notice");
        assert!(c.rules().is_empty());
    }

    #[test]
    fn out_of_office_with_null_sender_is_fine_but_needs_both_signs() {
        let mut c = null_sender("Automatic reply: Homework");
        c.auto_submitted = Some("auto-replied");
        assert!(c.rules().is_empty());
        // Auto-Submitted alone on an ordinary-looking message is not enough.
        let mut c = null_sender("Invoice overdue");
        c.auto_submitted = Some("auto-replied");
        assert_eq!(c.rules(), ["anonymous_sender/null_sender"]);
        // An auto-reply-looking subject without the header is not enough either.
        let c = null_sender("Out of office");
        assert_eq!(c.rules(), ["anonymous_sender/null_sender"]);
    }

    // --- rule files

    #[test]
    fn shipped_rule_files_load() {
        let d = detector();
        assert!(d.names.patterns.len() > 20);
        assert!(maintained_list().len() > 2000);
        assert!(d.domains.extra.contains("maildrop.cc"));
    }

    #[test]
    fn bad_name_lines_name_file_line_and_rule() {
        let err = NamePatterns::parse(&rules_file("anonymous_names.txt", "# c\nanonymous\n*\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rules/anonymous_names.txt:3"), "{err}");
        assert!(err.contains("rule `*`"), "{err}");
        let err = NamePatterns::parse(&rules_file("anonymous_names.txt", "anon*\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(":1:") && err.contains("anon*"), "{err}");
        let err = NamePatterns::parse(&rules_file(
            "anonymous_names.txt",
            "x\nnobody@example.org\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(":2:") && err.contains("not addresses"),
            "{err}"
        );
    }

    #[test]
    fn bad_domain_lines_name_file_line_and_rule() {
        for (text, line) in [
            ("ok.example\nnot a domain\n", 2),
            ("com\n", 1),
            ("a@mailinator.com\n", 1),
            ("good.example\n\n# comment\nbad_.-x.example\n", 4),
            ("!\n", 1),
        ] {
            let err = DisposableDomains::parse(&rules_file("disposable_domains.txt", text))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("rules/disposable_domains.txt:{line}: rule `")),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn wildcard_names_need_at_least_one_word() {
        let p = NamePatterns::parse(&rules_file("n", "a concerned *\n* well wisher\n")).unwrap();
        assert!(p.is_anonymous("A Concerned Mum"));
        assert!(p.is_anonymous("A concerned Year 7 parent"));
        assert!(!p.is_anonymous("A Concerned"));
        assert!(p.is_anonymous("Your Well Wisher"));
        assert!(!p.is_anonymous("Well Wisher"));
    }

    #[test]
    fn suffix_walk_skips_the_top_level_label() {
        let s: Vec<&str> = suffixes("a.b.mailinator.com").collect();
        assert_eq!(
            s,
            ["a.b.mailinator.com", "b.mailinator.com", "mailinator.com"]
        );
        let s: Vec<&str> = suffixes("localhost").collect();
        assert!(s.is_empty());
    }
}
