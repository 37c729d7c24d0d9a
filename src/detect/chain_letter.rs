//! chain_letter detector: "forward this to 10 people or…", sympathy and virus hoaxes,
//! wish chains and money-for-forwarding promises.
//!
//! One score per message: the weights of the different phrases of
//! `rules/chain_letter.txt` found in any of its texts (subject, bodies, HTML,
//! attachments, forwarded messages), plus a little for forwarding structure (Fwd:/FW:
//! chains, forwarded-message markers, message/rfc822 parts, many recipients). Nothing
//! scores without one strong phrase (weight ≥ `strong`), so ordinary
//! forwards ("FW: minutes of the meeting") stay clean, and school phrasing about
//! forwarding ("please forward to all staff", "share this newsletter with other
//! parents") is deliberately not in the phrase list.
//!
//! Matching runs on a normalised copy of each text (lower case, punctuation, quote
//! marks and line breaks turned into single spaces), so the phrases in the rule file
//! can stay simple words; all patterns run together as one `RegexSet`, compiled once.

use super::{DetectError, Detector, ScanContext};
use crate::finding::{Category, Finding, Severity};
use crate::message::TextSource;
use crate::rules::{RuleFile, RuleSource, RulesError};
use aho_corasick::AhoCorasick;
use regex::Regex;
use regex::bytes::{Regex as BytesRegex, RegexSet as BytesRegexSet};

const FILE: &str = "chain_letter.txt";
const RULE: &str = "chain_letter/score";

/// Combination settings from the rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    pub threshold: i32,
    pub strong: i32,
    pub forward_chain: i32,
    pub forwarded_part: i32,
    pub many_recipients: i32,
    pub recipients_min: usize,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            threshold: 10,
            strong: 6,
            forward_chain: 2,
            forwarded_part: 1,
            many_recipients: 1,
            recipients_min: 5,
        }
    }
}

/// One weighted phrase.
#[derive(Debug)]
struct Phrase {
    weight: i32,
    /// Over the normalised text's bytes: ASCII-only wildcards keep the automaton small.
    regex: BytesRegex,
}

pub struct ChainLetter {
    phrases: Vec<Phrase>,
    set: BytesRegexSet,
    /// Word beginnings one of which every chain letter has (`gate` in the rule file).
    gate: Option<AhoCorasick>,
    scoring: Scoring,
    re_fwd_subject: Regex,
}

// ---- Pattern language ---------------------------------------------------------------

const NUMBER_WORDS: &str = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\
thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|twenty five|thirty|forty|\
fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|dozen";

/// Compile one phrase pattern (see the rule file's header) to a regex over normalised
/// text. Every item's fragment ends with a space; the text gets a trailing space.
pub fn compile_pattern(pattern: &str) -> Result<String, String> {
    let tokens = tokenize(pattern)?;
    let mut pos = 0;
    let body = parse_seq(&tokens, &mut pos, false)?;
    if pos != tokens.len() {
        return Err("unbalanced `)`".into());
    }
    if body.is_empty() {
        return Err("empty pattern".into());
    }
    Ok(format!("(?:^| ){body}"))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Bar,
    Optional,
}

fn tokenize(p: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            out.push(Tok::Word(std::mem::take(word)));
        }
    };
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                flush(&mut word, &mut out);
                out.push(Tok::Open);
            }
            ')' => {
                flush(&mut word, &mut out);
                out.push(Tok::Close);
                if chars.peek() == Some(&'?') {
                    chars.next();
                    out.push(Tok::Optional);
                }
            }
            '|' => {
                flush(&mut word, &mut out);
                out.push(Tok::Bar);
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.extend(c.to_lowercase()),
        }
    }
    flush(&mut word, &mut out);
    Ok(out)
}

/// A sequence, up to `)` or `|` when inside a group.
fn parse_seq(t: &[Tok], pos: &mut usize, in_group: bool) -> Result<String, String> {
    let mut out = String::new();
    while *pos < t.len() {
        match &t[*pos] {
            Tok::Word(w) => {
                out.push_str(&word_fragment(w)?);
                *pos += 1;
            }
            Tok::Open => {
                *pos += 1;
                let mut alts = vec![parse_seq(t, pos, true)?];
                while t.get(*pos) == Some(&Tok::Bar) {
                    *pos += 1;
                    alts.push(parse_seq(t, pos, true)?);
                }
                if t.get(*pos) != Some(&Tok::Close) {
                    return Err("missing `)`".into());
                }
                *pos += 1;
                out.push_str(&format!("(?:{})", alts.join("|")));
                if t.get(*pos) == Some(&Tok::Optional) {
                    out.push('?');
                    *pos += 1;
                }
            }
            Tok::Close | Tok::Bar if in_group => return Ok(out),
            Tok::Close => return Err("unbalanced `)`".into()),
            Tok::Bar => return Err("`|` outside a group".into()),
            Tok::Optional => return Err("`?` must follow a group".into()),
        }
    }
    if in_group {
        return Err("missing `)`".into());
    }
    Ok(out)
}

fn word_fragment(w: &str) -> Result<String, String> {
    // A placeholder may carry a literal suffix: `{n}%`.
    if let Some(rest) = w.strip_prefix("{n}") {
        return Ok(format!(
            "(?:\\d+(?:\\.\\d+)?|(?:a )?(?:{NUMBER_WORDS})(?: (?:hundred|thousand))?){} ",
            regex::escape(rest)
        ));
    }
    if let Some(rest) = w.strip_prefix("{money}") {
        return Ok(format!(
            "(?:[£$€]\\d[\\d.]*|\\d[\\d.]*p|\\d[\\d.]* (?:pounds|pence|dollars|cents)){} ",
            regex::escape(rest)
        ));
    }
    Ok(match w {
        "*" => "(?:(?-u:[^ ])+ ){0,3}".to_string(),
        "**" => "(?:(?-u:[^ ])+ ){0,8}".to_string(),
        w if w.starts_with('{') => return Err(format!("unknown placeholder `{w}`")),
        w => {
            let (stem, prefix) = match w.strip_suffix('*') {
                Some(stem) if !stem.is_empty() => (stem, true),
                _ => (w, false),
            };
            if stem.contains('*') {
                return Err(format!("`*` only at the end of a word: `{w}`"));
            }
            let lit = regex::escape(stem).replace('\'', "'?");
            if prefix {
                format!("{lit}(?-u:[^ ])* ")
            } else {
                format!("{lit} ")
            }
        }
    })
}

/// Normalise text for phrase matching: lower case; typographic apostrophes to `'`;
/// commas inside numbers dropped (1,000); everything that is not a letter, digit,
/// in-word apostrophe, `£ $ € %` or a decimal point turned into single spaces; a
/// trailing space so every word ends with one.
pub fn normalise(text: &str) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + 1);
    let mut last_space = true;
    let alnum_at = |j: usize| -> bool {
        match b.get(j) {
            Some(&x) if x < 0x80 => x.is_ascii_alphanumeric(),
            Some(_) => text
                .get(j..)
                .and_then(|r| r.chars().next())
                .is_some_and(char::is_alphanumeric),
            None => false,
        }
    };
    let push_space = |out: &mut Vec<u8>, last_space: &mut bool| {
        if !*last_space {
            out.push(b' ');
            *last_space = true;
        }
    };
    // What the previous character was: alphanumeric, and an ASCII digit.
    let (mut prev_alnum, mut prev_digit) = (false, false);
    let mut i = 0;
    while i < b.len() {
        // Fast path: a run of lower-case letters and digits is copied as it is.
        let run = b[i..]
            .iter()
            .take_while(|x| x.is_ascii_lowercase() || x.is_ascii_digit())
            .count();
        if run > 1 {
            out.extend_from_slice(&b[i..i + run - 1]);
            last_space = false;
            prev_alnum = true;
            prev_digit = b[i + run - 2].is_ascii_digit();
            i += run - 1;
        }
        let c = b[i];
        if c < 0x80 {
            let next = b.get(i + 1).copied().unwrap_or(b' ');
            match c {
                c if c.is_ascii_alphanumeric() => {
                    out.push(c.to_ascii_lowercase());
                    last_space = false;
                }
                b'\'' | b'`' if prev_alnum && alnum_at(i + 1) => {
                    out.push(b'\'');
                    last_space = false;
                }
                b'$' | b'%' => {
                    out.push(c);
                    last_space = false;
                }
                b'.' if prev_digit && next.is_ascii_digit() => {
                    out.push(b'.');
                    last_space = false;
                }
                b',' if prev_digit && next.is_ascii_digit() => {}
                _ => push_space(&mut out, &mut last_space),
            }
            prev_alnum = c.is_ascii_alphanumeric();
            prev_digit = c.is_ascii_digit();
            i += 1;
            continue;
        }
        let Some(ch) = text.get(i..).and_then(|r| r.chars().next()) else {
            i += 1;
            continue;
        };
        let len = ch.len_utf8();
        let mut buf = [0u8; 4];
        if ch.is_alphanumeric() {
            // Lower-casing can yield combining marks (İ → i̇); keep only what a second
            // pass would keep, so normalising is idempotent.
            for l in ch.to_lowercase().filter(|l| l.is_alphanumeric()) {
                out.extend_from_slice(l.encode_utf8(&mut buf).as_bytes());
                last_space = false;
            }
        } else if matches!(ch, '\u{2019}' | '\u{2018}') && prev_alnum && alnum_at(i + len) {
            out.push(b'\'');
            last_space = false;
        } else if matches!(ch, '£' | '€') {
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            last_space = false;
        } else {
            push_space(&mut out, &mut last_space);
        }
        prev_alnum = ch.is_alphanumeric();
        prev_digit = false;
        i += len;
    }
    if !last_space {
        out.push(b' ');
    }
    // Only whole characters were copied, so this never fails.
    String::from_utf8(out).unwrap_or_default()
}

fn parse_setting(
    file: &RuleFile,
    line: usize,
    rest: &str,
    s: &mut Scoring,
) -> Result<(), RulesError> {
    let mut it = rest.split_whitespace();
    let (Some(name), Some(value), None) = (it.next(), it.next(), it.next()) else {
        return Err(file.invalid(line, "set", "expected `set NAME VALUE`"));
    };
    let int = |v: &str| -> Result<i32, RulesError> {
        v.parse::<i32>()
            .map_err(|_| file.invalid(line, name, format!("`{v}` is not a whole number")))
    };
    match name {
        "threshold" => s.threshold = int(value)?,
        "strong" => s.strong = int(value)?,
        "forward_chain" => s.forward_chain = int(value)?,
        "forwarded_part" => s.forwarded_part = int(value)?,
        "many_recipients" => s.many_recipients = int(value)?,
        "recipients_min" => {
            s.recipients_min = usize::try_from(int(value)?)
                .map_err(|_| file.invalid(line, name, "must not be negative"))?
        }
        other => return Err(file.invalid(line, other, "unknown setting")),
    }
    if s.threshold <= 0 {
        return Err(file.invalid(line, "threshold", "must be at least 1"));
    }
    Ok(())
}

/// The chain-letter score of one message, with the phrases behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub total: i32,
    pub phrases: i32,
    pub structure: i32,
    /// (weight, matched text, location) of the phrases found, highest weight first.
    pub found: Vec<(i32, String, String)>,
    pub structure_reasons: Vec<&'static str>,
}

impl ChainLetter {
    pub fn new(rules: &RuleSource) -> Result<ChainLetter, RulesError> {
        let file = rules.load(FILE)?;
        ChainLetter::from_file(&file)
    }

    /// Parse a rule file (exposed for tests and for validating edited files).
    pub fn from_file(file: &RuleFile) -> Result<ChainLetter, RulesError> {
        let mut scoring = Scoring::default();
        let mut phrases = Vec::new();
        let mut gate_words: Vec<String> = Vec::new();
        for (line, text) in file.lines() {
            if let Some(rest) = text.strip_prefix("set ") {
                parse_setting(file, line, rest, &mut scoring)?;
                continue;
            }
            if let Some(rest) = text.strip_prefix("gate ") {
                gate_words.extend(rest.split_whitespace().map(str::to_lowercase));
                continue;
            }
            let (w, pattern) = text
                .split_once(char::is_whitespace)
                .ok_or_else(|| file.invalid(line, text, "expected `WEIGHT PATTERN`"))?;
            let pattern = pattern.trim();
            let weight: i32 = w.parse().map_err(|_| {
                file.invalid(line, pattern, format!("weight `{w}` is not a whole number"))
            })?;
            let re = compile_pattern(pattern).map_err(|e| file.invalid(line, pattern, e))?;
            let regex =
                BytesRegex::new(&re).map_err(|e| file.invalid(line, pattern, e.to_string()))?;
            phrases.push(Phrase { weight, regex });
        }
        if phrases.is_empty() {
            return Err(file.invalid(0, "chain_letter", "no phrases"));
        }
        let set = BytesRegexSet::new(phrases.iter().map(|p| p.regex.as_str()))
            .map_err(|e| file.invalid(0, "chain_letter", e.to_string()))?;
        // Lower case, Capitalised and UPPER CASE spellings as literals: a small literal
        // set lets Aho-Corasick use its SIMD (Teddy) search, several times faster than
        // a case-insensitive automaton over text that has none of them.
        let gate = if gate_words.is_empty() {
            None
        } else {
            let mut variants: Vec<String> = Vec::new();
            for w in &gate_words {
                let mut cap = w.clone();
                if let Some(f) = cap.get_mut(0..1) {
                    f.make_ascii_uppercase();
                }
                variants.extend([w.clone(), cap, w.to_ascii_uppercase()]);
            }
            variants.sort();
            variants.dedup();
            Some(
                AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                    .build(&variants)
                    .map_err(|e| file.invalid(0, "gate", e.to_string()))?,
            )
        };
        Ok(ChainLetter {
            phrases,
            set,
            gate,
            scoring,
            re_fwd_subject: Regex::new(r"(?i)\b(?:fwd?|fw)\s*:")
                .map_err(|e| file.invalid(0, "chain_letter", e.to_string()))?,
        })
    }

    pub fn scoring(&self) -> &Scoring {
        &self.scoring
    }

    /// Score a message.
    pub fn score(&self, ctx: &ScanContext<'_>) -> Score {
        let msg = ctx.message;
        // Cheap first: a message with no word about passing it on is no chain letter.
        if let Some(g) = &self.gate
            && !msg
                .texts
                .iter()
                .any(|s| s.source != TextSource::Header && g.is_match(&s.text))
        {
            return Score {
                total: 0,
                phrases: 0,
                structure: 0,
                found: Vec::new(),
                structure_reasons: Vec::new(),
            };
        }
        // Best phrase per pattern: (matched text, location).
        let mut hit: Vec<Option<(String, String)>> = vec![None; self.phrases.len()];
        let mut markers = 0usize;
        let mut nested_quotes = false;
        for seg in &msg.texts {
            if seg.source == TextSource::Header || seg.text.is_empty() {
                continue;
            }
            if seg.source != TextSource::Subject {
                // Forwarded-message markers (their wording is fixed by the mail clients).
                markers += seg.text.matches("-----Original Message-----").count()
                    + seg.text.matches("---------- Forwarded message").count()
                    + seg.text.matches("Begin forwarded message").count();
                nested_quotes |= seg.text.contains(">>")
                    && seg.text.lines().any(|l| {
                        let mut q = l.trim_start().bytes().filter(|&b| b != b' ');
                        q.next() == Some(b'>') && q.next() == Some(b'>')
                    });
            }
            let norm = normalise(&seg.text);
            for i in self.set.matches(norm.as_bytes()).iter() {
                if hit[i].is_none() {
                    let matched = self.phrases[i]
                        .regex
                        .find(norm.as_bytes())
                        .map(|m| String::from_utf8_lossy(m.as_bytes()).trim().to_string())
                        .unwrap_or_default();
                    hit[i] = Some((matched, seg.location.clone()));
                }
            }
        }
        let mut found: Vec<(i32, String, String)> = hit
            .into_iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|(m, loc)| (self.phrases[i].weight, m, loc)))
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        let phrases: i32 = found.iter().map(|f| f.0).sum();

        let s = &self.scoring;
        let mut structure = 0;
        let mut reasons = Vec::new();
        let subject = msg.headers.subject.as_deref().unwrap_or("");
        let fwd_prefixes = self.re_fwd_subject.find_iter(subject).count();
        if fwd_prefixes >= 2 || markers >= 2 || nested_quotes {
            structure += s.forward_chain;
            reasons.push("forwarded repeatedly");
        }
        if msg.forwarded_depth >= 1 {
            structure += s.forwarded_part;
            reasons.push("carries a forwarded message");
        }
        if msg.headers.to.len() + msg.headers.cc.len() >= s.recipients_min {
            structure += s.many_recipients;
            reasons.push("many recipients");
        }
        // Without one unmistakable phrase nothing counts: weak phrases ("bad luck",
        // "pass it on") and forwarding structure only add to a strong one.
        let has_strong = found.iter().any(|f| f.0 >= s.strong);
        if !has_strong {
            structure = 0;
            reasons.clear();
        }
        Score {
            total: if has_strong { phrases + structure } else { 0 },
            phrases,
            structure,
            found,
            structure_reasons: reasons,
        }
    }
}

impl Detector for ChainLetter {
    fn name(&self) -> &'static str {
        "chain_letter"
    }

    fn inspect(&self, ctx: &ScanContext<'_>, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        let score = self.score(ctx);
        if score.total < self.scoring.threshold {
            return Ok(());
        }
        let positive: Vec<&(i32, String, String)> =
            score.found.iter().filter(|f| f.0 > 0).collect();
        let location = positive
            .first()
            .map(|f| f.2.clone())
            .unwrap_or_else(|| "body".to_string());
        // The strongest phrases, each shown once, leaving out any that is part of one
        // already shown ("break the chain" inside "if you break the chain").
        let mut shown: Vec<String> = Vec::new();
        for (_, m, _) in &positive {
            let short: String = m.chars().take(60).collect();
            if !shown.iter().any(|s| s.contains(short.as_str())) {
                shown.push(short);
            }
            if shown.len() == 4 {
                break;
            }
        }
        let shown: Vec<String> = shown.iter().map(|s| format!("\"{s}\"")).collect();
        let mut evidence = format!(
            "score {} (threshold {}): {}",
            score.total,
            self.scoring.threshold,
            shown.join(", ")
        );
        if !score.structure_reasons.is_empty() {
            evidence.push_str("; ");
            evidence.push_str(&score.structure_reasons.join(", "));
        }
        let confidence = (score.total as f32 / (2 * self.scoring.threshold) as f32).clamp(0.5, 1.0);
        out.push(
            Finding::new(
                Category::ChainLetter,
                RULE,
                location,
                evidence,
                Severity::Medium,
            )
            .with_confidence(confidence)
            .with_count(u32::try_from(positive.len()).unwrap_or(1)),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
