//! personal_data detector: UK personal data sent in the clear.
//!
//! Identifiers (NI, NHS, UPN, ULN, payment cards) are found by shape and checked by
//! their check digits ([`validators`]); dates of birth, home addresses and phone
//! numbers by shape plus context; pupil lists by the shape of a table ([`table`]).
//!
//! A number that merely passes a checksum is not personal data: one in ten random
//! numbers passes Luhn and one in eleven passes mod 11, so ISBNs, parcel tracking
//! numbers and order references would all "validate". What makes a match count is
//! context — a keyword near it ("NHS number:", "DOB", "mum's mobile") or a column
//! header above it ("NHS Number", "Parent mobile") — except for NI numbers and UPNs,
//! whose letter-and-digit shape is distinctive enough to count alone with a lower
//! confidence. Addresses and phone numbers in an organisation's signature block or
//! a registered-business paragraph, and the school's own, are not personal.
//!
//! Findings are grouped per kind and location, with a count and Purview-style tiers:
//! Medium for a few instances, High from `many` (rules file) and for pupil lists.
//! Evidence is always masked. Encrypted messages are never reported: encryption is
//! how personal data is meant to travel.

mod context;
pub mod settings;
mod table;
pub mod validators;

use super::{DetectError, Detector, ScanContext};
use crate::finding::{Category, Finding, Severity};
use crate::mask;
use crate::message::TextSource;
use crate::rules::{RuleSource, RulesError};
use context::BusinessZones;
use regex::Regex;
use settings::{KeywordSet, Settings};
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashSet};
use validators::{Date, PhoneKind};

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Ni,
    Nhs,
    Upn,
    Uln,
    Card,
    Dob,
    Address,
    Phone,
    PupilList,
}

impl Kind {
    const COUNT: usize = 9;

    fn rule(self) -> &'static str {
        match self {
            Kind::Ni => "personal_data/ni_number",
            Kind::Nhs => "personal_data/nhs_number",
            Kind::Upn => "personal_data/upn",
            Kind::Uln => "personal_data/uln",
            Kind::Card => "personal_data/payment_card",
            Kind::Dob => "personal_data/date_of_birth",
            Kind::Address => "personal_data/home_address",
            Kind::Phone => "personal_data/phone_number",
            Kind::PupilList => "personal_data/pupil_list",
        }
    }

    fn label(self) -> (&'static str, &'static str) {
        match self {
            Kind::Ni => ("NI number", "NI numbers"),
            Kind::Nhs => ("NHS number", "NHS numbers"),
            Kind::Upn => ("UPN", "UPNs"),
            Kind::Uln => ("ULN", "ULNs"),
            Kind::Card => ("payment card number", "payment card numbers"),
            Kind::Dob => ("date of birth", "dates of birth"),
            Kind::Address => ("home address, postcode", "home addresses, e.g. postcode"),
            Kind::Phone => ("personal phone number", "personal phone numbers"),
            Kind::PupilList => ("pupil list", "pupil lists"),
        }
    }
}

/// One instance: `key` identifies it for de-duplication (the same number in the
/// plain-text and HTML bodies is one instance), `shown` is the masked evidence.
#[derive(Debug)]
struct Hit {
    kind: Kind,
    key: String,
    shown: String,
    confidence: f32,
}

/// The detector, with everything compiled once.
pub struct PersonalData {
    s: Settings,
    re_ni: Regex,
    re_upn: Regex,
    re_digits: Regex,
    re_postcode: Regex,
    re_phone: Regex,
    re_street: Regex,
    re_dates: [Regex; 4],
    re_dob_gap: Regex,
    school: KeywordSet,
    school_postcodes: HashSet<String>,
    school_phones: HashSet<String>,
}

/// What a text might contain, from one cheap pass over its bytes. Clean prose has
/// none of these shapes, so the regexes, keyword scans and table heuristics for them
/// never run on it.
#[derive(Debug, Default, Clone, Copy)]
struct Shapes {
    /// A run of ≥ 10 digits with single space/dash separators (NHS, ULN, card, phone).
    long_digits: bool,
    /// A letter followed (directly or after one space) by a run of ≥ 6 digits (NI, UPN).
    letter_digits: bool,
    /// A digit followed by two letters at the end of a word, after an alphanumeric
    /// (the inward code of a postcode: `S10 2RA`, `LS176NJ`).
    postcode: bool,
    /// `+44`, `0044` or `(0` (phone numbers in international or bracketed form).
    phone_prefix: bool,
    /// Something a date could be made of: a run of 4+ digits, digits joined by `/ . -`.
    date: bool,
    /// Lines laid out like a table: enough consecutive lines with tabs, pipes, the
    /// same number of commas or semicolons, double spaces, short lines (one cell per
    /// line) or leading capitalised names.
    table: bool,
}

/// Consecutive-line counters for [`Shapes::table`].
#[derive(Default)]
struct Runs {
    tab: usize,
    pipe: usize,
    comma: (usize, usize),
    semi: (usize, usize),
    spaces: usize,
    short: usize,
    names: usize,
}

impl Shapes {
    fn of(text: &str, min_rows: usize) -> Shapes {
        let b = text.as_bytes();
        let mut s = Shapes::default();
        let mut runs = Runs::default();
        let rows = min_rows + 1;
        // Whole-text searches (memchr) first: most texts have no tabs, pipes or
        // semicolons, and those counters are then skipped line by line.
        let has = |c: char| text.contains(c);
        let (has_tab, has_pipe, has_comma, has_semi) = (has('\t'), has('|'), has(','), has(';'));
        let has_dbl = text.contains("  ");
        for line in text.split('\n') {
            let t = line.trim_ascii();
            if t.is_empty() {
                continue; // blank lines neither count nor break a run
            }
            let count = |yes: bool, c: char| if yes { line.matches(c).count() } else { 0 };
            let bump = |n: &mut usize, yes: bool| *n = if yes { *n + 1 } else { 0 };
            let same = |r: &mut (usize, usize), n: usize| {
                *r = if n == 0 {
                    (0, 0)
                } else if r.1 == n {
                    (r.0 + 1, n)
                } else {
                    (1, n)
                }
            };
            bump(&mut runs.tab, count(has_tab, '\t') > 0);
            bump(&mut runs.pipe, count(has_pipe, '|') > 0);
            same(&mut runs.comma, count(has_comma, ','));
            same(&mut runs.semi, count(has_semi, ';'));
            bump(&mut runs.spaces, has_dbl && t.contains("  "));
            bump(&mut runs.short, t.len() <= 40);
            // Starts with two capitalised words (non-ASCII letters count as capitals).
            let tb = t.as_bytes();
            let cap = |c: &u8| c.is_ascii_uppercase() || *c >= 0x80;
            let names = cap(&tb[0])
                && tb
                    .iter()
                    .position(|&c| c == b' ')
                    .is_some_and(|p| tb.get(p + 1).is_some_and(cap));
            bump(&mut runs.names, names);
            s.table |= runs.tab >= rows
                || runs.pipe >= rows
                || runs.comma.0 >= rows
                || runs.semi.0 >= rows
                || runs.spaces >= rows
                || runs.short >= 2 * rows
                || runs.names >= min_rows;
        }
        let interesting = |c: u8| c.is_ascii_digit() || c == b'+' || c == b'(';
        let mut i = 0;
        while i < b.len() {
            // Skip 32-byte blocks with nothing of interest (a branch-free test).
            while i + 32 <= b.len() && !b[i..i + 32].iter().fold(false, |a, &c| a | interesting(c))
            {
                i += 32;
            }
            let Some(&c) = b.get(i) else { break };
            if c.is_ascii_digit() {
                // A digit run with single separators.
                let start = i;
                let mut digits = 0;
                let mut longest = 0;
                let mut group = 0;
                let mut joined = false;
                while i < b.len() {
                    if b[i].is_ascii_digit() {
                        digits += 1;
                        group += 1;
                        longest = longest.max(group);
                        i += 1;
                    } else if matches!(b[i], b' ' | b'-' | b'/' | b'.')
                        && i + 1 < b.len()
                        && b[i + 1].is_ascii_digit()
                    {
                        joined |= b[i] != b' ';
                        // Only spaces and dashes separate the groups of one number.
                        if matches!(b[i], b'/' | b'.') {
                            i += 1;
                            break;
                        }
                        group = 0;
                        i += 1;
                    } else {
                        break;
                    }
                }
                if digits >= 10 {
                    s.long_digits = true;
                }
                if longest >= 4 || joined {
                    s.date = true;
                }
                let letter_before = (start >= 1 && b[start - 1].is_ascii_alphabetic())
                    || (start >= 2 && b[start - 1] == b' ' && b[start - 2].is_ascii_alphabetic());
                if digits >= 6 && letter_before {
                    s.letter_digits = true;
                }
                // Inward code: the run's last digit followed by two letters.
                if i >= 1
                    && b[i - 1].is_ascii_digit()
                    && i + 1 < b.len()
                    && b[i].is_ascii_alphabetic()
                    && b[i + 1].is_ascii_alphabetic()
                    && (i + 2 >= b.len() || !b[i + 2].is_ascii_alphabetic())
                {
                    let d = i - 1;
                    let prev = if d >= 1 && b[d - 1] == b' ' {
                        d.checked_sub(2)
                    } else {
                        d.checked_sub(1)
                    };
                    if prev.is_some_and(|p| b[p].is_ascii_alphanumeric()) {
                        s.postcode = true;
                    }
                }
                continue;
            }
            if (c == b'+' && b.get(i + 1..i + 3) == Some(b"44"))
                || (c == b'(' && b.get(i + 1) == Some(&b'0'))
                || (c == b'0' && b.get(i..i + 4) == Some(b"0044"))
            {
                s.phone_prefix = true;
            }
            i += 1;
        }
        s
    }
}

fn re(pattern: &str) -> Result<Regex, RulesError> {
    Regex::new(pattern).map_err(|e| RulesError::Invalid {
        file: "personal_data".into(),
        line: 0,
        rule: "personal_data".into(),
        message: e.to_string(),
    })
}

/// Largest char boundary ≤ i.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Smallest char boundary ≥ i.
fn ceil_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn is_alnum_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// The match at `start..end` is not glued to letters or digits on either side.
fn standalone(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    (start == 0 || !is_alnum_byte(b[start - 1])) && (end >= b.len() || !is_alnum_byte(b[end]))
}

/// The match at `start..end` has no digit (or `+`) directly before it and no digit after.
fn digit_standalone(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let before_ok = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'+');
    let after_ok = end >= b.len() || !b[end].is_ascii_alphanumeric();
    before_ok && after_ok
}

fn normalise_phone_set(v: &[String]) -> HashSet<String> {
    v.iter().filter_map(|p| validators::uk_phone(p)).collect()
}

/// Mask a date of birth: only the year stays (`**/**/2007`).
fn mask_date(d: Date) -> String {
    format!("**/**/{}", d.year)
}

fn pupil_list_hit(pl: &table::PupilList) -> Hit {
    Hit {
        kind: Kind::PupilList,
        key: String::new(),
        shown: format!("{} rows ({})", pl.rows, pl.headers.join(", ")),
        confidence: 0.9,
    }
}

/// Per-segment state: which kinds have been accepted where (a run of identifiers in a
/// list shares the keyword that heads it).
struct SegState {
    last_end: [Option<usize>; Kind::COUNT],
}

impl SegState {
    fn new() -> SegState {
        SegState {
            last_end: [None; Kind::COUNT],
        }
    }
    fn continues(&self, kind: Kind, start: usize, gap: usize) -> bool {
        self.last_end[kind as usize].is_some_and(|e| start >= e && start - e <= gap)
    }
    fn accept(&mut self, kind: Kind, end: usize) {
        self.last_end[kind as usize] = Some(end);
    }
}

/// How a piece of text is being scanned.
struct Scope {
    /// Organisation zones of the text, found only when a phone number or postcode
    /// needs them (most texts have neither). Not used for table cells.
    zones: OnceCell<BusinessZones>,
    whole_text: bool,
    /// A column header gives this kind its context (table cells).
    column: Option<Kind>,
    /// Only look for this kind (table cells), or everything (None).
    only: Option<Kind>,
}

impl Scope {
    fn text() -> Scope {
        Scope {
            zones: OnceCell::new(),
            whole_text: true,
            column: None,
            only: None,
        }
    }
    /// A cell under a column header of `kind` in a table recovered from text (the
    /// text itself has been scanned already: only that kind is looked for).
    fn cell(kind: Kind) -> Scope {
        Scope {
            zones: OnceCell::new(),
            whole_text: false,
            column: Some(kind),
            only: Some(kind),
        }
    }
    /// A cell of a spreadsheet or CSV: everything is looked for, with the cell's own
    /// words as context, plus its column header's kind.
    fn sheet_cell(column: Option<Kind>) -> Scope {
        Scope {
            zones: OnceCell::new(),
            whole_text: false,
            column,
            only: None,
        }
    }
    /// Is `pos` in an organisation's signature block or registered-business paragraph?
    fn in_business(&self, d: &PersonalData, text: &str, pos: usize) -> bool {
        self.whole_text
            && self
                .zones
                .get_or_init(|| BusinessZones::find(text, &d.s, &d.school))
                .contains(pos)
    }
    fn wants(&self, k: Kind) -> bool {
        self.only.is_none_or(|o| o == k)
    }
    fn forced(&self, k: Kind) -> bool {
        self.column == Some(k)
    }
}

impl PersonalData {
    pub fn new(
        config: &crate::config::Config,
        rules: &RuleSource,
    ) -> Result<PersonalData, RulesError> {
        let file = rules.load("personal_data.toml")?;
        let s = Settings::load(&file)?;
        let streets = s
            .street_words
            .iter()
            .map(|w| regex::escape(w))
            .collect::<Vec<_>>()
            .join("|");
        let month = "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";
        let mut school_postcodes: HashSet<String> = config
            .school
            .postcodes
            .iter()
            .filter_map(|p| validators::postcode(p))
            .collect();
        let pc_re = re(r"(?i)\b(?:[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|GIR ?0AA)\b")?;
        for a in &config.school.addresses {
            for m in pc_re.find_iter(a) {
                if let Some(p) = validators::postcode(m.as_str()) {
                    school_postcodes.insert(p);
                }
            }
        }
        let school_name: Vec<String> = Some(config.school.name.clone())
            .filter(|n| !n.trim().is_empty())
            .into_iter()
            .collect();
        Ok(PersonalData {
            re_ni: re(r"[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]")?,
            re_upn: re(r"[A-Za-z]\d{11}[0-9A-Za-z]")?,
            re_digits: re(r"\d+(?:[ -]\d+)*")?,
            re_postcode: re(r"(?i)(?:[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|GIR ?0AA)")?,
            re_phone: re(
                r"(?:(?:\+|00)44[ -]?(?:\(0\)[ -]?)?|\(?0)[127]\d{1,4}\)?(?:[ -]?\d{2,6}){1,4}",
            )?,
            re_street: re(&format!(
                r"(?i)(?-u:\b)\d{{1,4}}[a-z]?(?-u:\b),?\s+(?:[\w'’.\-]+,?\s+){{0,3}}?(?:{streets})(?-u:\b)"
            ))?,
            re_dates: [
                // 10/10/2007, 10-10-07, 10.10.2007, 10 / 10 / 2007
                re(r"(\d{1,2})\s?[/.\-]\s?(\d{1,2})\s?[/.\-]\s?(\d{4}|\d{2})")?,
                // 2007-10-10, 2007/10/10
                re(r"(\d{4})([-/.])(\d{1,2})[-/.](\d{1,2})")?,
                // 10th October 2007, 10 Oct. 2007, 10 of October, 2007
                re(&format!(
                    r"(?i)(?-u:\b)(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({month})\.?,?\s+(\d{{4}})"
                ))?,
                // October 10th, 2007
                re(&format!(
                    r"(?i)(?-u:\b)({month})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})"
                ))?,
            ],
            re_dob_gap: re(
                r#"(?i)^[\s:;=\-–—.,()\[\]|*"'#>]*(?:(?:is|was|of|on|the|her|his|their|my|our|child'?s|pupil'?s|student'?s|dd/mm/yy(?:yy)?|\(dd/mm/yy(?:yy)?\))[\s:;=\-–—.,()\[\]|*"'#>]*){0,3}$"#,
            )?,
            school: KeywordSet::new(&school_name)
                .map_err(|e| file.invalid(0, "personal_data", e))?,
            school_postcodes,
            school_phones: normalise_phone_set(&config.school.phones),
            s,
        })
    }

    /// The school's own number, or another line in its hundred-number block of
    /// direct-dial numbers (01632 960153 beside switchboard 01632 960100).
    fn is_school_phone(&self, national: &str) -> bool {
        self.school_phones.iter().any(|p| {
            p == national
                || (p.len() == national.len()
                    && !p.starts_with("07")
                    && p.len() > 2
                    && p[..p.len() - 2] == national[..national.len() - 2])
        })
    }

    /// Is a keyword of `kw` within the context window around `start..end`?
    fn near(&self, kw: &KeywordSet, text: &str, start: usize, end: usize) -> bool {
        let a = floor_boundary(text, start.saturating_sub(self.s.context_before));
        let b = ceil_boundary(text, end + self.s.context_after);
        kw.found_in(&text[a..start]) || kw.found_in(&text[end..b])
    }

    /// Like [`Self::near`], but a business word ("order", "invoice", "tracking"…)
    /// between the keyword and the match wins: in "NHS Trust invoice 4347712782" the
    /// number is an invoice's.
    fn near_personal(&self, kw: &KeywordSet, text: &str, start: usize, end: usize) -> bool {
        let a = floor_boundary(text, start.saturating_sub(self.s.context_before));
        let b = ceil_boundary(text, end + self.s.context_after);
        let (before, after) = (&text[a..start], &text[end..b]);
        let neg_before = self.s.not_personal.last_in(before).map(|(_, e)| e);
        if let Some(p) = kw.last_in(before).map(|(_, e)| e)
            && neg_before.is_none_or(|n| n <= p)
        {
            return true;
        }
        let first = |k: &KeywordSet| k.find_all(after).map(|(s, _)| s).min();
        match first(kw) {
            Some(p) => neg_before.is_none() && first(&self.s.not_personal).is_none_or(|n| n > p),
            None => false,
        }
    }

    /// Scan one piece of text for every kind `scope` wants.
    fn scan_text(&self, text: &str, scope: &Scope, today: Date, hits: &mut Vec<Hit>) {
        let pf = Shapes::of(text, self.s.pupil_list_min_rows);
        self.scan_shaped(text, pf, scope, today, hits);
    }

    /// [`Self::scan_text`] with the shapes already known.
    fn scan_shaped(&self, text: &str, pf: Shapes, scope: &Scope, today: Date, hits: &mut Vec<Hit>) {
        let mut st = SegState::new();
        if pf.letter_digits && scope.wants(Kind::Ni) {
            self.scan_ni(text, scope, &mut st, hits);
        }
        if pf.letter_digits && scope.wants(Kind::Upn) {
            self.scan_upn(text, scope, &mut st, hits);
        }
        if pf.long_digits
            && (scope.wants(Kind::Nhs) || scope.wants(Kind::Uln) || scope.wants(Kind::Card))
        {
            self.scan_digit_runs(text, scope, &mut st, hits);
        }
        if (pf.long_digits || pf.phone_prefix) && scope.wants(Kind::Phone) {
            self.scan_phones(text, scope, &mut st, hits);
        }
        if pf.postcode && scope.wants(Kind::Address) {
            self.scan_addresses(text, scope, hits);
        }
        if scope.wants(Kind::Dob)
            && (scope.forced(Kind::Dob) || (pf.date && self.s.dob.keywords.found_in(text)))
        {
            self.scan_dobs(text, scope, today, hits);
        }
    }

    fn scan_ni(&self, text: &str, scope: &Scope, st: &mut SegState, hits: &mut Vec<Hit>) {
        for m in self.re_ni.find_iter(text) {
            let raw = m.as_str();
            if !standalone(text, m.start(), m.end()) || !validators::ni_number(raw) {
                continue;
            }
            let ctx = scope.forced(Kind::Ni)
                || self.near_personal(&self.s.ni.keywords, text, m.start(), m.end())
                || st.continues(Kind::Ni, m.start(), self.s.context_before);
            // Without context the NI shape counts alone, in capitals, unless a business
            // word says it is a reference ("Ref: AB123456C").
            let upper = !raw.chars().any(|c| c.is_ascii_lowercase());
            let business = self.near(&self.s.not_personal, text, m.start(), m.end());
            if !ctx && (!upper || business) {
                continue;
            }
            st.accept(Kind::Ni, m.end());
            hits.push(Hit {
                kind: Kind::Ni,
                key: validators::compact(raw),
                shown: mask::identifier(raw),
                confidence: if ctx { 0.95 } else { 0.7 },
            });
        }
    }

    fn scan_upn(&self, text: &str, scope: &Scope, st: &mut SegState, hits: &mut Vec<Hit>) {
        for m in self.re_upn.find_iter(text) {
            let raw = m.as_str();
            if !standalone(text, m.start(), m.end()) || !validators::upn(raw) {
                continue;
            }
            let ctx = scope.forced(Kind::Upn)
                || self.near_personal(&self.s.upn.keywords, text, m.start(), m.end())
                || st.continues(Kind::Upn, m.start(), self.s.context_before);
            let upper = raw.as_bytes()[0].is_ascii_uppercase();
            let business = self.near(&self.s.not_personal, text, m.start(), m.end());
            // Without context a UPN counts only as a capitalised code no business word explains.
            if !ctx && (!upper || business) {
                continue;
            }
            st.accept(Kind::Upn, m.end());
            hits.push(Hit {
                kind: Kind::Upn,
                key: validators::compact(raw),
                shown: mask::identifier(raw),
                confidence: if ctx { 0.95 } else { 0.6 },
            });
        }
    }

    /// Runs of digits with single space or dash separators: NHS numbers and ULNs
    /// (10 digits) and payment cards (13–19). A run may hold more than one value
    /// (cells of a table joined by spaces), so sub-runs of whole groups are tried.
    fn scan_digit_runs(&self, text: &str, scope: &Scope, st: &mut SegState, hits: &mut Vec<Hit>) {
        for m in self.re_digits.find_iter(text) {
            if !digit_standalone(text, m.start(), m.end()) {
                continue;
            }
            let run = m.as_str();
            // Digit groups as byte ranges within the text.
            let mut groups: Vec<(usize, usize)> = Vec::new();
            let mut off = m.start();
            for g in run.split([' ', '-']) {
                groups.push((off, off + g.len()));
                off += g.len() + 1;
            }
            let glen = |i: usize| groups[i].1 - groups[i].0;
            let total: usize = (0..groups.len()).map(glen).sum();
            if total < 10 {
                continue;
            }
            // Ten-digit values: NHS numbers and ULNs.
            if scope.wants(Kind::Nhs) || scope.wants(Kind::Uln) {
                for i in 0..groups.len() {
                    let mut n = 0;
                    for j in i..groups.len() {
                        n += glen(j);
                        if n > 10 {
                            break;
                        }
                        if n == 10 {
                            let (a, b) = (groups[i].0, groups[j].1);
                            self.ten_digits(text, a, b, scope, st, hits);
                        }
                    }
                }
            }
            // Card numbers: the longest prefix of whole groups that validates.
            if scope.wants(Kind::Card) && total >= 13 {
                let mut n = 0;
                let mut best = None;
                for j in 0..groups.len() {
                    n += glen(j);
                    if n > 19 {
                        break;
                    }
                    if n >= 13 && validators::payment_card(&text[groups[0].0..groups[j].1]) {
                        best = Some(j);
                    }
                }
                if let Some(j) = best {
                    let (a, b) = (groups[0].0, groups[j].1);
                    let lens: Vec<usize> = (0..=j).map(glen).collect();
                    let grouped = lens.len() >= 3
                        && lens[0] == 4
                        && lens.iter().all(|&l| (3..=6).contains(&l));
                    let ctx = scope.forced(Kind::Card)
                        || self.near_personal(&self.s.card.keywords, text, a, b)
                        || st.continues(Kind::Card, a, self.s.context_before);
                    let business = self.near(&self.s.not_personal, text, a, b);
                    if ctx || (grouped && !business) {
                        st.accept(Kind::Card, b);
                        let raw = &text[a..b];
                        hits.push(Hit {
                            kind: Kind::Card,
                            key: validators::compact(raw),
                            shown: mask::identifier(raw),
                            confidence: if ctx { 0.95 } else { 0.75 },
                        });
                    }
                }
            }
        }
    }

    fn ten_digits(
        &self,
        text: &str,
        a: usize,
        b: usize,
        scope: &Scope,
        st: &mut SegState,
        hits: &mut Vec<Hit>,
    ) {
        let raw = &text[a..b];
        for (kind, valid, words) in [
            (Kind::Nhs, validators::nhs_number(raw), &self.s.nhs.keywords),
            (Kind::Uln, validators::uln(raw), &self.s.uln.keywords),
        ] {
            if !valid || !scope.wants(kind) {
                continue;
            }
            // Ten bare digits need context: a keyword, a column, or a list it continues.
            let ctx = scope.forced(kind)
                || self.near_personal(words, text, a, b)
                || st.continues(kind, a, self.s.context_before);
            if ctx {
                st.accept(kind, b);
                hits.push(Hit {
                    kind,
                    key: validators::compact(raw),
                    shown: mask::identifier(raw),
                    confidence: 0.95,
                });
            }
        }
    }

    fn scan_phones(&self, text: &str, scope: &Scope, st: &mut SegState, hits: &mut Vec<Hit>) {
        let bytes = text.as_bytes();
        for m in self.re_phone.find_iter(text) {
            let start = m.start();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'+') {
                continue;
            }
            // The pattern may run on into the next number: try group ends, longest first.
            let mut ends: Vec<usize> = m
                .as_str()
                .char_indices()
                .filter(|&(i, c)| {
                    c.is_ascii_digit()
                        && !m.as_str()[i + 1..].starts_with(|d: char| d.is_ascii_digit())
                })
                .map(|(i, _)| start + i + 1)
                .collect();
            ends.reverse();
            let found = ends.into_iter().find_map(|end| {
                if end < bytes.len() && bytes[end].is_ascii_alphanumeric() {
                    return None;
                }
                let national = validators::uk_phone(&text[start..end])?;
                let kind = validators::phone_kind(&national)?;
                Some((end, national, kind))
            });
            let Some((end, national, kind)) = found else {
                continue;
            };
            if self.is_school_phone(&national) || scope.in_business(self, text, start) {
                continue;
            }
            let ctx = scope.forced(Kind::Phone)
                || self.near(&self.s.phone.keywords, text, start, end)
                || (kind == PhoneKind::Mobile
                    && self.near(&self.s.mobile_keywords, text, start, end))
                || st.continues(Kind::Phone, start, self.s.context_before);
            if !ctx {
                continue;
            }
            st.accept(Kind::Phone, end);
            hits.push(Hit {
                kind: Kind::Phone,
                shown: mask::identifier(&national),
                key: national,
                confidence: if kind == PhoneKind::Mobile { 0.9 } else { 0.8 },
            });
        }
    }

    fn scan_addresses(&self, text: &str, scope: &Scope, hits: &mut Vec<Hit>) {
        for m in self.re_postcode.find_iter(text) {
            if !standalone(text, m.start(), m.end()) {
                continue;
            }
            let Some(pc) = validators::postcode(m.as_str()) else {
                continue;
            };
            if self.school_postcodes.contains(&pc) || scope.in_business(self, text, m.start()) {
                continue;
            }
            // The address before the postcode, within its paragraph.
            let from = floor_boundary(text, m.start().saturating_sub(150));
            let mut before = &text[from..m.start()];
            if let Some(p) = before.rfind("\n\n") {
                before = &before[p + 2..];
            }
            let before_start = m.start() - before.len();
            let street = self
                .re_street
                .find_iter(before)
                .filter(|s| before.len() - s.end() <= 60)
                .last()
                .map(|s| before_start + s.start());
            let kw_win = floor_boundary(text, m.start().saturating_sub(self.s.context_before));
            let keyword = self
                .s
                .address
                .keywords
                .last_in(&text[kw_win.max(before_start)..m.start()])
                .map(|(s, _)| kw_win.max(before_start) + s);
            let forced = scope.forced(Kind::Address);
            let Some(addr_start) = street.or(keyword).or(forced.then_some(m.start())) else {
                continue;
            };
            // A venue, a shop, a delivery address: a place, not a home.
            let nh = floor_boundary(text, addr_start.saturating_sub(self.s.context_before));
            // (Only before the address: "12 Church Lane" is still a home.)
            if self.s.not_home.found_in(&text[nh..addr_start]) {
                continue;
            }
            // A house number and street with nothing saying "address" or "lives at":
            // the sentence around it must not be an event notice ("The disco is at
            // the Civic Hall, 2 Market Place, Otley LS21 3AQ, 6-8pm").
            if keyword.is_none() && !forced {
                let back = floor_boundary(text, addr_start.saturating_sub(200));
                let lead = &text[back..addr_start];
                let lead = lead
                    .rfind(['.', '!', '?'])
                    .or_else(|| lead.rfind("\n\n"))
                    .map_or(lead, |p| &lead[p + 1..]);
                let fwd = ceil_boundary(text, m.end() + 80);
                let tail = &text[m.end()..fwd];
                let tail = tail
                    .find(['.', '!', '?', '\n'])
                    .map_or(tail, |p| &tail[..p]);
                if self.s.events.found_in(lead) || self.s.events.found_in(tail) {
                    continue;
                }
            }
            hits.push(Hit {
                kind: Kind::Address,
                shown: mask::identifier(&pc),
                key: pc,
                confidence: if street.is_some() && keyword.is_some() {
                    0.95
                } else {
                    0.85
                },
            });
        }
    }

    /// Every date in `text[from..to]` with its byte range in `text`.
    fn dates(&self, text: &str, from: usize, to: usize, today: Date) -> Vec<(usize, usize, Date)> {
        let mut out = Vec::new();
        let b = text.as_bytes();
        let (from, to) = (floor_boundary(text, from), ceil_boundary(text, to));
        for (i, r) in self.re_dates.iter().enumerate() {
            for c in r.captures_iter(&text[from..to]) {
                let Some(m) = c.get(0) else { continue };
                let (s, e) = (from + m.start(), from + m.end());
                let glued = (s > 0 && (b[s - 1].is_ascii_digit() || b[s - 1] == b'/'))
                    || (e < b.len() && (b[e].is_ascii_digit() || b[e] == b'/'));
                if glued {
                    continue;
                }
                let num = |k: usize| c.get(k).and_then(|g| g.as_str().parse::<i64>().ok());
                let txt = |k: usize| c.get(k).map_or("", |g| g.as_str());
                let ymd = match i {
                    0 => num(3)
                        .zip(num(2))
                        .zip(num(1))
                        .map(|((y, mo), d)| (y, mo, d)),
                    1 => num(1)
                        .zip(num(3))
                        .zip(num(4))
                        .map(|((y, mo), d)| (y, mo, d)),
                    2 => validators::month_from_name(txt(2))
                        .and_then(|mo| num(3).zip(num(1)).map(|(y, d)| (y, i64::from(mo), d))),
                    _ => validators::month_from_name(txt(1))
                        .and_then(|mo| num(3).zip(num(2)).map(|(y, d)| (y, i64::from(mo), d))),
                };
                let Some((y, mut mo, mut d)) = ymd else {
                    continue;
                };
                // UK order first; a month over 12 with a day that fits is US order.
                if i == 0 && mo > 12 && d <= 12 {
                    std::mem::swap(&mut mo, &mut d);
                }
                let (Ok(y), Ok(mo), Ok(d)) =
                    (i32::try_from(y), u32::try_from(mo), u32::try_from(d))
                else {
                    continue;
                };
                let y = validators::full_year(y, today);
                if let Some(date) = Date::new(y, mo, d)
                    && y >= 1900
                    && date <= today
                {
                    out.push((s, e, date));
                }
            }
        }
        out.sort_by_key(|&(s, _, _)| s);
        out.dedup_by_key(|&mut (s, _, _)| s);
        out
    }

    /// Dates of birth: a date right after a DOB label ("Date of birth: 10/10/2007",
    /// "born on 3rd May 2011") or right before one ("10/10/2007 (DOB)"), every date in
    /// a DOB column, and a run of three or more dates under a DOB label (a table
    /// pasted as text); always at least `dob_min_age_years` in the past. An empty form
    /// field ("Date of birth: ___") and event or deadline dates are not.
    fn scan_dobs(&self, text: &str, scope: &Scope, today: Date, hits: &mut Vec<Hit>) {
        // Nobody at school was born in the last `dob_min_age_years`: recent dates are
        // events ("our 50th birthday on 14/11"), not dates of birth.
        let cutoff = Date {
            year: today.year - self.s.dob_min_age_years,
            ..today
        };
        let kws: Vec<(usize, usize)> = self.s.dob.keywords.find_all(text).collect();
        // Dates are only looked for near the labels (or everywhere in a DOB cell).
        let mut windows: Vec<(usize, usize)> = Vec::new();
        if scope.forced(Kind::Dob) {
            windows.push((0, text.len()));
        } else {
            for &(ks, ke) in &kws {
                let w = (ks.saturating_sub(40), (ke + 420).min(text.len()));
                match windows.last_mut() {
                    Some(last) if w.0 <= last.1 => last.1 = last.1.max(w.1),
                    _ => windows.push(w),
                }
            }
        }
        let mut dates: Vec<(usize, usize, Date)> = windows
            .iter()
            .flat_map(|&(a, b)| self.dates(text, a, b, today))
            .filter(|&(_, _, d)| d <= cutoff)
            .collect();
        dates.sort_by_key(|&(s, _, _)| s);
        dates.dedup_by_key(|&mut (s, _, _)| s);
        if dates.is_empty() {
            return;
        }
        let mut accepted = vec![scope.forced(Kind::Dob); dates.len()];
        let mut conf = vec![0.9f32; dates.len()];
        for (i, &(s, e, _)) in dates.iter().enumerate() {
            if accepted[i] {
                continue;
            }
            // Label before: the last keyword ending within 60 bytes before the date.
            let before = kws
                .iter()
                .rfind(|&&(_, ke)| ke <= s && s - ke <= 60)
                .is_some_and(|&(_, ke)| {
                    let gap = &text[ke..s];
                    gap.matches('\n').count() <= 2 && self.re_dob_gap.is_match(gap)
                });
            // Label after: "10/10/2007 (DOB)".
            let after = kws
                .iter()
                .find(|&&(ks, _)| ks >= e)
                .is_some_and(|&(ks, _)| {
                    ks - e <= 4 && text[e..ks].chars().all(|c| " \t([-–:,".contains(c))
                });
            accepted[i] = before || after;
        }
        // A DOB heading over a run of (old) dates.
        for &(_, ke) in &kws {
            let look = ceil_boundary(text, ke + 24);
            if text[ke..look].contains('_') {
                continue;
            }
            let run: Vec<usize> = dates
                .iter()
                .enumerate()
                .filter(|&(_, &(s, _, _))| s >= ke && s - ke <= 400)
                .map(|(i, _)| i)
                .collect();
            if run.len() >= 3 {
                for i in run {
                    if !accepted[i] {
                        accepted[i] = true;
                        conf[i] = 0.8;
                    }
                }
            }
        }
        for (i, &(_, _, d)) in dates.iter().enumerate() {
            if accepted[i] {
                hits.push(Hit {
                    kind: Kind::Dob,
                    key: format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
                    shown: mask_date(d),
                    confidence: conf[i],
                });
            }
        }
    }

    /// The identifier kind a header cell names, if any.
    fn column_kind(&self, head: &str) -> Option<Kind> {
        if head.chars().count() > 40 {
            return None;
        }
        let s = &self.s;
        [
            (Kind::Ni, &s.ni.columns),
            (Kind::Nhs, &s.nhs.columns),
            (Kind::Upn, &s.upn.columns),
            (Kind::Uln, &s.uln.columns),
            (Kind::Card, &s.card.columns),
            (Kind::Dob, &s.dob.columns),
            (Kind::Address, &s.address.columns),
            (Kind::Phone, &s.phone.columns),
        ]
        .into_iter()
        .find(|(_, cols)| cols.found_in(head))
        .map(|(k, _)| k)
    }

    /// A table: pupil list, and identifiers under identifier column headers.
    ///
    /// `sheet`: the rows are a spreadsheet's or CSV's cells, which are scanned one by
    /// one (a cell's context is its own words and its column header, never the words
    /// of neighbouring cells). Otherwise the table was recovered from text that has
    /// been scanned already, and only the columns with an identifier header are.
    fn scan_table(&self, rows: &table::Rows, sheet: bool, today: Date, hits: &mut Vec<Hit>) {
        if let Some(pl) = table::pupil_list(rows, &self.s) {
            hits.push(pupil_list_hit(&pl));
        }
        let h = table::header_row(rows, &self.s);
        let mut kinds: Vec<Option<Kind>> = Vec::new();
        if let Some(h) = h {
            // Phone and address columns are personal in a list of people ("Name",
            // "Pupil"), not in a list of suppliers or venues.
            let of_people = rows[h]
                .iter()
                .any(|c| self.s.person_columns.found_in(c) || self.s.pupil_words.found_in(c));
            kinds = rows[h]
                .iter()
                .map(|head| {
                    self.column_kind(head)
                        .filter(|k| of_people || !matches!(k, Kind::Phone | Kind::Address))
                })
                .collect();
        }
        let first_data = h.map_or(0, |h| h + 1);
        for (r, row) in rows.iter().enumerate() {
            for (col, cell) in row.iter().enumerate() {
                if cell.trim().is_empty() {
                    continue;
                }
                let kind = if r >= first_data {
                    kinds.get(col).copied().flatten()
                } else {
                    None
                };
                // A spreadsheet stores "07700 900123" typed as a number as 7700900123.
                let restored;
                let cell = match kind {
                    Some(Kind::Phone)
                        if cell.len() == 10
                            && cell.bytes().all(|b| b.is_ascii_digit())
                            && matches!(cell.as_bytes()[0], b'1' | b'2' | b'7') =>
                    {
                        restored = format!("0{cell}");
                        restored.as_str()
                    }
                    _ => cell.as_str(),
                };
                match (sheet, kind) {
                    (true, k) => self.scan_text(cell, &Scope::sheet_cell(k), today, hits),
                    (false, Some(k)) => self.scan_text(cell, &Scope::cell(k), today, hits),
                    (false, None) => {}
                }
            }
        }
    }

    /// Tables written as text (a pasted table, an HTML table, a Word or PDF table).
    fn scan_text_tables(&self, text: &str, today: Date, hits: &mut Vec<Hit>) {
        let found = table::find_in_text(text, &self.s, self.s.pupil_list_min_rows);
        for t in &found.tables {
            self.scan_table(t, false, today, hits);
        }
        if !hits.iter().any(|h| h.kind == Kind::PupilList) {
            hits.extend(found.lists.iter().map(pupil_list_hit));
        }
    }

    /// Scan one message's text segments; hits grouped by (kind, location).
    fn collect(
        &self,
        ctx_segments: &[crate::message::TextSegment],
        today: Date,
    ) -> BTreeMap<(Kind, String), (String, Vec<Hit>)> {
        let mut by: BTreeMap<(Kind, String), (String, Vec<Hit>)> = BTreeMap::new();
        for seg in ctx_segments {
            if seg.source == TextSource::Header || seg.text.is_empty() && seg.table.is_none() {
                continue;
            }
            let mut hits = Vec::new();
            let min_rows = self.s.pupil_list_min_rows;
            match &seg.table {
                // A sheet's text is its cells joined; the cells are scanned instead, so a
                // header word is never taken as context for a cell far below it.
                Some(t) => self.scan_table(&t.rows, true, today, &mut hits),
                None => {
                    let shapes = Shapes::of(&seg.text, min_rows);
                    self.scan_shaped(&seg.text, shapes, &Scope::text(), today, &mut hits);
                    if shapes.table {
                        self.scan_text_tables(&seg.text, today, &mut hits);
                    }
                }
            }
            // The HTML alternative of a body is the same message: one place.
            let base = seg.location.strip_suffix(":html").unwrap_or(&seg.location);
            for h in hits {
                let entry = by
                    .entry((h.kind, base.to_string()))
                    .or_insert_with(|| (seg.location.clone(), Vec::new()));
                entry.1.push(h);
            }
        }
        by
    }
}

impl Detector for PersonalData {
    fn name(&self) -> &'static str {
        "personal_data"
    }

    fn inspect(&self, ctx: &ScanContext<'_>, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        // An encrypted message shows only its wrapper; encryption is the compliant way
        // to send personal data, so it is never reported.
        if ctx.message.encrypted.is_some() {
            return Ok(());
        }
        let today = Date::today();
        for ((kind, _), (location, hits)) in self.collect(&ctx.message.texts, today) {
            let mut seen = HashSet::new();
            let mut unique: Vec<&Hit> = Vec::new();
            for h in &hits {
                if seen.insert(h.key.as_str()) {
                    unique.push(h);
                }
            }
            let Some(first) = unique.first() else {
                continue;
            };
            let confidence = unique.iter().map(|h| h.confidence).fold(0.0f32, f32::max);
            let (one, many) = kind.label();
            let (count, evidence) = if kind == Kind::PupilList {
                let rows: usize = first
                    .shown
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                (rows, format!("{one}: {}", first.shown))
            } else if unique.len() == 1 {
                (1, format!("{one} {}", first.shown))
            } else if kind == Kind::Address {
                (
                    unique.len(),
                    format!("{} {many} {}", unique.len(), first.shown),
                )
            } else {
                (
                    unique.len(),
                    format!("{} {many}, e.g. {}", unique.len(), first.shown),
                )
            };
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            let severity = if kind == Kind::PupilList || count >= self.s.many {
                Severity::High
            } else {
                Severity::Medium
            };
            out.push(
                Finding::new(
                    Category::PersonalData,
                    kind.rule(),
                    location,
                    evidence,
                    severity,
                )
                .with_confidence(confidence)
                .with_count(count),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
