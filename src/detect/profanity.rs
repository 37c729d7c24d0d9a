//! Profanity detector: offensive language, slurs and threats in every text of a message
//! (subject, bodies, HTML, attachments, forwarded messages), however disguised.
//!
//! How it works, and why:
//!
//! 1. **Rules** (`rules/profanity.txt`, `rules/profanity_allow.txt`) are expanded and put
//!    through the same normaliser as the mail, so `w4nker` in a rule file means `wanker`, and
//!    are compiled once, in [`Profanity::new`], into ONE Aho-Corasick automaton holding every
//!    word of every tier plus every allowed word. For each listed word the builder also adds
//!    its masked forms (`f*ck`, `f*k`, `f*ing`: first and last letter visible) and its `v`-for-`u`
//!    form (`fvck`), so masking costs nothing at scan time.
//! 2. **Normalisation** ([`normalize`]) folds case, accents, look-alike letters, leetspeak,
//!    invisible characters, spaced-out letters and repeated letters, keeping a map from every
//!    normalised byte to the original bytes.
//! 3. **One overlapping pass** of the automaton finds candidates; each is checked against its
//!    word's letter-run profile (so `as` is not `ass`, but `asssss` is), its boundary mode
//!    (whole word by default), the allow list (a match lying inside an allowed word or phrase
//!    — Scunthorpe, cocktail, Moby Dick, "hell of a" — is dropped), and longer matches (a hit
//!    inside a longer hit of at least the same severity is not counted twice).
//! 4. **Findings**: one per (tier, location), rule `profanity/<tier>`, with the number of hits,
//!    masked evidence taken from the original text (`f***`, `ѕ***`), and a confidence that is
//!    lower for mild language and for masked forms.

mod normalize;
mod terms;

pub use normalize::Normalized;
pub use terms::{Mode, Tier};

use super::{DetectError, Detector, ScanContext};
use crate::finding::{Category, Finding, Severity};
use crate::mask;
use crate::rules::{RuleFile, RuleSource, RulesError};
use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use normalize::{MASK, OTHER_WORD, RUN_BITS, SOFT_BOUNDARY};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use terms::Defines;

/// The rule file of offensive words, phrases and threats.
pub const PROFANITY_FILE: &str = "profanity.txt";
/// The rule file of innocent words that contain offensive ones.
pub const ALLOW_FILE: &str = "profanity_allow.txt";

/// At most this many distinct masked hits are shown as a finding's evidence.
const EVIDENCE_HITS: usize = 3;
/// Per-thread buffers are kept for texts up to this size and released after larger ones.
const KEEP_BUFFER_BYTES: usize = 1 << 20;
/// How far back overlap resolution looks for a longer hit containing this one.
const CONTAINER_LOOKBACK: usize = 32;

impl Tier {
    /// Severity the policy keys on: mild is tagged, strong and worse are held.
    pub fn severity(self) -> Severity {
        match self {
            Tier::Mild => Severity::Low,
            Tier::Medium => Severity::Medium,
            Tier::Strong => Severity::High,
            Tier::Hate | Tier::Threat => Severity::Critical,
        }
    }

    /// How sure a plain hit of this tier is. Mild words ("bloody", "crap") are the most
    /// often innocent; threats depend on context more than slurs do.
    fn confidence(self) -> f32 {
        match self {
            Tier::Mild => 0.6,
            Tier::Medium => 0.8,
            Tier::Strong | Tier::Hate => 0.95,
            Tier::Threat => 0.85,
        }
    }

    pub fn rule(self) -> &'static str {
        match self {
            Tier::Mild => "profanity/mild",
            Tier::Medium => "profanity/medium",
            Tier::Strong => "profanity/strong",
            Tier::Hate => "profanity/hate",
            Tier::Threat => "profanity/threat",
        }
    }
}

/// What an automaton pattern stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allow,
    Profane(Tier),
}

/// Where an entry came from: listed in a rule file, or generated from a listed word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Listed,
    Generated,
}

/// One meaning of one automaton pattern.
#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    mode: Mode,
    /// Per pattern byte: the letter's run length in the listed word (1 or 2), or 0 for bytes
    /// whose runs are not checked (masks, spaces, digits).
    runs: Box<[u8]>,
    masked: bool,
    origin: Origin,
    /// 0, or 1 + the index in [`Profanity::contexts`] of the words that must come first.
    context: u32,
}

/// One hit in one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub tier: Tier,
    /// Byte range in the original text.
    pub range: Range<usize>,
    /// The hit was a masked form (`f*ck`).
    pub masked: bool,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    s: u32,
    /// Where the pattern itself starts (after a `[context]`); allowed spans must cover this
    /// part, so "I'll shoot you an email" is saved by the allowed "shoot you an".
    core: u32,
    e: u32,
    tier: Tier,
    masked: bool,
    alive: bool,
}

/// Per-thread buffers reused across texts, so scanning allocates nothing in the steady state.
#[derive(Default)]
struct Scratch {
    norm: Normalized,
    candidates: Vec<Candidate>,
    allowed: Vec<(u32, u32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The profanity detector: one automaton for every word, phrase and allowed word.
pub struct Profanity {
    automaton: Option<Matcher>,
    slots: Vec<Vec<Entry>>,
    /// Alternatives for `[context]` words, normalised.
    contexts: Vec<Vec<Vec<u8>>>,
}

/// The automaton, its unanchored start state and its longest pattern.
struct Matcher {
    dfa: DFA,
    start: StateID,
    max_pattern_len: usize,
}

impl Matcher {
    /// Call `on_match(end, state)` for every match state the text reaches.
    ///
    /// A DFA walk is a chain of dependent loads (next state = table[state + byte class]), so
    /// one walk cannot go faster than the load latency. Long texts are cut into four
    /// quarters walked in lockstep, which lets the CPU overlap the four chains. Each walk
    /// starts `max_pattern_len - 1` bytes before its quarter, so a match that straddles a
    /// boundary is still seen whole, and reports only matches that end in its own quarter,
    /// so every match is reported exactly once.
    fn walk(&self, hay: &[u8], mut on_match: impl FnMut(usize, StateID)) {
        const LANES: usize = 4;
        let dfa = &self.dfa;
        let len = hay.len();
        if len < 1024 {
            let mut sid = self.start;
            for (i, &b) in hay.iter().enumerate() {
                sid = dfa.next_state(Anchored::No, sid, b);
                if dfa.is_special(sid) && dfa.is_match(sid) {
                    on_match(i + 1, sid);
                }
            }
            return;
        }
        let overlap = self.max_pattern_len.saturating_sub(1);
        let chunk = len.div_ceil(LANES);
        let mut pos = [0usize; LANES];
        let mut stop = [0usize; LANES];
        let mut report_after = [0usize; LANES];
        let mut sid = [self.start; LANES];
        for l in 0..LANES {
            report_after[l] = (l * chunk).min(len);
            pos[l] = report_after[l].saturating_sub(overlap);
            stop[l] = ((l + 1) * chunk).min(len);
        }
        let steps = (0..LANES)
            .map(|l| stop[l].saturating_sub(pos[l]))
            .min()
            .unwrap_or(0);
        for _ in 0..steps {
            for l in 0..LANES {
                let p = pos[l];
                sid[l] = dfa.next_state(Anchored::No, sid[l], hay[p]);
                pos[l] = p + 1;
                if dfa.is_special(sid[l]) && dfa.is_match(sid[l]) && p + 1 > report_after[l] {
                    on_match(p + 1, sid[l]);
                }
            }
        }
        for l in 0..LANES {
            while pos[l] < stop[l] {
                let p = pos[l];
                sid[l] = dfa.next_state(Anchored::No, sid[l], hay[p]);
                pos[l] = p + 1;
                if dfa.is_special(sid[l]) && dfa.is_match(sid[l]) && p + 1 > report_after[l] {
                    on_match(p + 1, sid[l]);
                }
            }
        }
    }
}

impl std::fmt::Debug for Profanity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profanity")
            .field("patterns", &self.slots.len())
            .finish()
    }
}

/// Collects patterns while the rule files are read.
struct Builder {
    index: HashMap<Vec<u8>, usize>,
    patterns: Vec<Vec<u8>>,
    slots: Vec<Vec<Entry>>,
    contexts: Vec<Vec<Vec<u8>>>,
    context_index: HashMap<Vec<Vec<u8>>, u32>,
    norm: Normalized,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            index: HashMap::new(),
            patterns: Vec::new(),
            slots: Vec::new(),
            contexts: Vec::new(),
            context_index: HashMap::new(),
            norm: Normalized::new(),
        }
    }

    /// Register the alternatives of a `[context]`; returns its id for [`Entry::context`].
    fn context(&mut self, forms: &[String]) -> Result<u32, String> {
        let mut alts = Vec::with_capacity(forms.len());
        for form in forms {
            let (bytes, _) = self.pattern(form)?;
            if !alts.contains(&bytes) {
                alts.push(bytes);
            }
        }
        alts.sort();
        if let Some(&id) = self.context_index.get(&alts) {
            return Ok(id);
        }
        self.contexts.push(alts.clone());
        let id = self.contexts.len() as u32;
        self.context_index.insert(alts, id);
        Ok(id)
    }

    /// Normalise one expanded term: its pattern bytes and run profile.
    fn pattern(&mut self, term: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
        self.norm.normalize(term);
        let text = self.norm.text();
        let meta = self.norm.meta();
        let a = text.iter().position(|&b| b != b' ').unwrap_or(text.len());
        let b = text.iter().rposition(|&b| b != b' ').map_or(a, |p| p + 1);
        let bytes = text[a..b].to_vec();
        if !bytes.iter().any(u8::is_ascii_lowercase) {
            return Err(format!("`{term}` has no letters after normalisation"));
        }
        if bytes.contains(&OTHER_WORD) {
            return Err(format!(
                "`{term}` has letters without a Latin look-alike; only Latin-script words can be listed"
            ));
        }
        let runs = bytes
            .iter()
            .zip(&meta[a..b])
            .map(|(&c, &m)| {
                if c.is_ascii_lowercase() {
                    (m & RUN_BITS).min(2)
                } else {
                    0
                }
            })
            .collect();
        Ok((bytes, runs))
    }

    fn add(&mut self, bytes: Vec<u8>, entry: Entry) {
        let slot = match self.index.get(&bytes) {
            Some(&i) => i,
            None => {
                let i = self.slots.len();
                self.index.insert(bytes.clone(), i);
                self.patterns.push(bytes);
                self.slots.push(Vec::new());
                i
            }
        };
        let entries = &mut self.slots[slot];
        let same = entries.iter_mut().find(|e| {
            e.runs == entry.runs
                && e.context == entry.context
                && matches!(
                    (e.kind, entry.kind),
                    (Kind::Allow, Kind::Allow) | (Kind::Profane(_), Kind::Profane(_))
                )
        });
        match same {
            None => entries.push(entry),
            Some(old) => match (old.origin, entry.origin, old.kind, entry.kind) {
                // A later line overrides an earlier one: a school can re-grade a word.
                (_, Origin::Listed, _, _) => *old = entry,
                (Origin::Listed, Origin::Generated, _, _) => {}
                // Two listed words share a masked form (`f*cking`: fucking or fecking): keep
                // the graver reading — people mask the words they know are worst.
                (Origin::Generated, Origin::Generated, Kind::Profane(a), Kind::Profane(b))
                    if b > a =>
                {
                    *old = entry;
                }
                _ => {}
            },
        }
    }

    /// Add one listed offensive word or phrase and the forms generated from it.
    fn add_profane(
        &mut self,
        term: &str,
        tier: Tier,
        mode: Mode,
        context: u32,
    ) -> Result<(), String> {
        let (bytes, runs) = self.pattern(term)?;
        let single_word = context == 0 && bytes.iter().all(u8::is_ascii_lowercase);
        if single_word {
            for (vbytes, vruns) in masked_forms(&bytes, &runs) {
                self.add(
                    vbytes,
                    Entry {
                        kind: Kind::Profane(tier),
                        mode,
                        runs: vruns.into(),
                        masked: true,
                        origin: Origin::Generated,
                        context,
                    },
                );
            }
            if bytes.contains(&b'u') {
                let v: Vec<u8> = bytes
                    .iter()
                    .map(|&b| if b == b'u' { b'v' } else { b })
                    .collect();
                self.add(
                    v,
                    Entry {
                        kind: Kind::Profane(tier),
                        mode,
                        runs: runs.clone().into(),
                        masked: false,
                        origin: Origin::Generated,
                        context,
                    },
                );
            }
        }
        self.add(
            bytes,
            Entry {
                kind: Kind::Profane(tier),
                mode,
                runs: runs.into(),
                masked: false,
                origin: Origin::Listed,
                context,
            },
        );
        Ok(())
    }

    fn add_allowed(&mut self, term: &str, mode: Mode) -> Result<(), String> {
        let (bytes, runs) = self.pattern(term)?;
        self.add(
            bytes,
            Entry {
                kind: Kind::Allow,
                mode,
                runs: runs.into(),
                masked: false,
                origin: Origin::Listed,
                context: 0,
            },
        );
        Ok(())
    }
}

/// Masked forms of a word: one run of letters hidden behind a single mask byte (the
/// normaliser turns `**` into one `*`), first and last letter visible, and at least a third
/// of the letters (and two) visible, so `f*ck`, `f*k`, `f*ing`, `mother*er` are found but a
/// lone `f***` is not guessed at.
fn masked_forms(bytes: &[u8], runs: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let n = bytes.len();
    let mut out = Vec::new();
    if n < 3 {
        return out;
    }
    let min_visible = 2.max(n.div_ceil(3));
    for a in 1..n - 1 {
        for b in a + 1..n {
            if n - (b - a) < min_visible {
                continue;
            }
            let mut v = Vec::with_capacity(n - (b - a) + 1);
            v.extend_from_slice(&bytes[..a]);
            v.push(MASK);
            v.extend_from_slice(&bytes[b..]);
            let mut r = Vec::with_capacity(v.len());
            r.extend_from_slice(&runs[..a]);
            r.push(0);
            r.extend_from_slice(&runs[b..]);
            out.push((v, r));
        }
    }
    out
}

/// Is this normalised byte part of a word?
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == MASK || b == OTHER_WORD
}

impl Profanity {
    /// Build the detector from `profanity.txt` and `profanity_allow.txt`.
    pub fn new(rules: &RuleSource) -> Result<Profanity, RulesError> {
        let words = rules.load(PROFANITY_FILE)?;
        let allow = rules.load(ALLOW_FILE)?;
        Profanity::from_files(&words, &allow)
    }

    /// Build the detector from loaded rule files (errors name the file, line and rule).
    pub fn from_files(words: &RuleFile, allow: &RuleFile) -> Result<Profanity, RulesError> {
        let mut builder = Builder::new();
        let mut defines = Defines::default();
        for (line_no, line) in words.lines() {
            if let Some(rest) = line.strip_prefix("@define") {
                defines
                    .define(rest)
                    .map_err(|m| words.invalid(line_no, line, m))?;
                continue;
            }
            let parsed =
                terms::parse_profane_line(line).map_err(|m| words.invalid(line_no, line, m))?;
            let invalid = |m: String| words.invalid(line_no, &parsed.term, m);
            let (context, term) = terms::split_context(&parsed.term).map_err(invalid)?;
            let context = match context {
                Some(c) => {
                    let forms = defines.expand(c).map_err(invalid)?;
                    builder.context(&forms).map_err(invalid)?
                }
                None => 0,
            };
            let forms = defines.expand(term).map_err(invalid)?;
            for form in forms {
                builder
                    .add_profane(&form, parsed.tier, parsed.mode, context)
                    .map_err(invalid)?;
            }
        }
        let mut defines = Defines::default();
        for (line_no, line) in allow.lines() {
            if let Some(rest) = line.strip_prefix("@define") {
                defines
                    .define(rest)
                    .map_err(|m| allow.invalid(line_no, line, m))?;
                continue;
            }
            let (term, mode) = terms::parse_allow_line(line);
            let forms = defines
                .expand(&term)
                .map_err(|m| allow.invalid(line_no, &term, m))?;
            for form in forms {
                builder
                    .add_allowed(&form, mode)
                    .map_err(|m| allow.invalid(line_no, &term, m))?;
            }
        }
        let automaton = if builder.patterns.is_empty() {
            None
        } else {
            // A DFA walked by our own loop (see `scan`): every pattern in one automaton,
            // overlapping matches, no prefilter (no single rare byte to look for).
            let build_error = |e: &dyn std::fmt::Display| {
                words.invalid(0, "(all rules)", format!("cannot build the matcher: {e}"))
            };
            let dfa = DFA::builder()
                .match_kind(MatchKind::Standard)
                .start_kind(StartKind::Unanchored)
                .prefilter(false)
                .byte_classes(true)
                .build(&builder.patterns)
                .map_err(|e| build_error(&e))?;
            let start = dfa.start_state(Anchored::No).map_err(|e| build_error(&e))?;
            let max_pattern_len = builder.patterns.iter().map(Vec::len).max().unwrap_or(1);
            Some(Matcher {
                dfa,
                start,
                max_pattern_len,
            })
        };
        Ok(Profanity {
            automaton,
            slots: builder.slots,
            contexts: builder.contexts,
        })
    }

    /// Number of automaton patterns (listed words, phrases, generated forms, allowed words).
    pub fn pattern_count(&self) -> usize {
        self.slots.len()
    }

    /// Every hit in one text, in order.
    pub fn hits(&self, text: &str) -> Vec<Hit> {
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let scratch = &mut *guard;
            self.scan(text, scratch);
            scratch
                .candidates
                .iter()
                .filter(|c| c.alive)
                .map(|c| Hit {
                    tier: c.tier,
                    range: reported_range(&scratch.norm, c),
                    masked: c.masked,
                })
                .collect()
        })
    }

    /// Check one automaton match against the entries of its pattern: letter runs, word
    /// boundaries, context. Record allowed spans and candidate hits.
    #[allow(clippy::too_many_arguments)]
    fn verify(
        &self,
        entries: &[Entry],
        norm: &[u8],
        meta: &[u8],
        s: usize,
        e: usize,
        candidates: &mut Vec<Candidate>,
        allowed: &mut Vec<(u32, u32)>,
    ) {
        for entry in entries {
            if !runs_match(&entry.runs, &norm[s..e], &meta[s..e], entry.mode) {
                continue;
            }
            // With a context the hit starts where the context does; the context's own start
            // must be a word boundary.
            let core = s;
            let s = match entry.context {
                0 => {
                    if !mode_matches(entry.mode, norm, meta, s, e) {
                        continue;
                    }
                    s
                }
                c => {
                    let alts = self
                        .contexts
                        .get(c as usize - 1)
                        .map_or(&[][..], Vec::as_slice);
                    let Some(start) = context_start(alts, norm, meta, s) else {
                        continue;
                    };
                    if matches!(entry.mode, Mode::Whole | Mode::Suffix)
                        && !boundary_after(norm, meta, e)
                    {
                        continue;
                    }
                    start
                }
            };
            match entry.kind {
                Kind::Allow => allowed.push((s as u32, e as u32)),
                Kind::Profane(tier) => candidates.push(Candidate {
                    s: s as u32,
                    core: core as u32,
                    e: e as u32,
                    tier,
                    masked: entry.masked,
                    alive: true,
                }),
            }
        }
    }

    /// Fill `scratch.candidates` with the hits of `text` (live ones have `alive` set).
    fn scan(&self, text: &str, scratch: &mut Scratch) {
        scratch.candidates.clear();
        scratch.allowed.clear();
        let Some(ac) = &self.automaton else {
            return;
        };
        scratch.norm.normalize_unmapped(text);
        let Scratch {
            norm: normalized,
            candidates,
            allowed,
        } = scratch;
        let norm = normalized.text();
        let meta = normalized.meta();
        let dfa = &ac.dfa;
        ac.walk(norm, |e, sid| {
            for k in 0..dfa.match_len(sid) {
                let pid = dfa.match_pattern(sid, k);
                let s = e - dfa.pattern_len(pid);
                if let Some(entries) = self.slots.get(pid.as_usize()) {
                    self.verify(entries, norm, meta, s, e, candidates, allowed);
                }
            }
        });
        if scratch.candidates.is_empty() {
            return;
        }
        // Allow list: drop hits whose pattern lies inside an allowed span.
        if !scratch.allowed.is_empty() {
            scratch.candidates.sort_unstable_by_key(|c| c.core);
            scratch.allowed.sort_unstable();
            let mut p = 0;
            let mut reach = 0u32;
            let mut any_allowed = false;
            for c in scratch.candidates.iter_mut() {
                while p < scratch.allowed.len() && scratch.allowed[p].0 <= c.core {
                    reach = reach.max(scratch.allowed[p].1);
                    any_allowed = true;
                    p += 1;
                }
                if any_allowed && reach >= c.e {
                    c.alive = false;
                }
            }
        }
        // Longest first at each start; equal spans: the graver tier first.
        scratch
            .candidates
            .sort_unstable_by(|a, b| a.s.cmp(&b.s).then(b.e.cmp(&a.e)).then(b.tier.cmp(&a.tier)));
        // A hit inside a longer live hit of at least the same severity is the same hit.
        let cands = &mut scratch.candidates;
        for i in 1..cands.len() {
            if !cands[i].alive {
                continue;
            }
            let c = cands[i];
            let lo = i.saturating_sub(CONTAINER_LOOKBACK);
            let contained = cands[lo..i].iter().any(|o| {
                o.alive && o.s <= c.s && c.e <= o.e && o.tier.severity() >= c.tier.severity()
            });
            if contained {
                cands[i].alive = false;
            }
        }
        // Offsets are needed only now that there is something to report.
        if scratch.candidates.iter().any(|c| c.alive) {
            scratch.norm.normalize(text);
        }
    }
}

/// Does the text's letter-run profile fit the word's? A doubled letter in the word needs a
/// doubled (or longer) run in the text; a single letter accepts a stretched run of three or
/// more (`fuuuck`), and a doubled vowel in a word of five letters or more (`biitch`), but not
/// a doubled consonant (`Pratt` is a surname, not `prat`) nor a doubled vowel in a short word
/// (`woops` is not `wops`, `noob` is not `nob`).
///
/// When the word may run on (prefix and embedded modes), its last letter's run may go on
/// into the rest of the word (`twat` in `twatted`, `shit` in `shitty`); when it may be
/// preceded by more letters (suffix and embedded), likewise its first letter's run.
fn runs_match(word: &[u8], text: &[u8], meta: &[u8], mode: Mode) -> bool {
    let long = word.len() >= 5;
    let open_start = matches!(mode, Mode::Suffix | Mode::Embedded);
    let open_end = matches!(mode, Mode::Prefix | Mode::Embedded);
    let last = word.len().saturating_sub(1);
    word.iter()
        .zip(text.iter().zip(meta))
        .enumerate()
        .all(|(i, (&want, (&c, &m)))| {
            let got = m & RUN_BITS;
            let open = (i == 0 && open_start) || (i == last && open_end);
            match want {
                0 => true,
                1 => open || got != 2 || (long && matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')),
                _ => got >= 2,
            }
        })
}

/// Where the longest `[context]` alternative that ends one space before `s` starts, if any.
fn context_start(alts: &[Vec<u8>], norm: &[u8], meta: &[u8], s: usize) -> Option<usize> {
    if s < 2 || norm[s - 1] != b' ' {
        return None;
    }
    let gap = s - 1;
    alts.iter()
        .filter(|alt| {
            alt.len() <= gap
                && norm[gap - alt.len()..gap] == alt[..]
                && boundary_before(norm, meta, gap - alt.len())
        })
        .map(|alt| gap - alt.len())
        .min()
}

fn boundary_before(norm: &[u8], meta: &[u8], s: usize) -> bool {
    s == 0 || !is_word_byte(norm[s - 1]) || meta[s] & SOFT_BOUNDARY != 0
}

fn boundary_after(norm: &[u8], meta: &[u8], e: usize) -> bool {
    e >= norm.len() || !is_word_byte(norm[e]) || meta[e] & SOFT_BOUNDARY != 0
}

fn mode_matches(mode: Mode, norm: &[u8], meta: &[u8], s: usize, e: usize) -> bool {
    match mode {
        Mode::Whole => boundary_before(norm, meta, s) && boundary_after(norm, meta, e),
        Mode::Prefix => boundary_before(norm, meta, s),
        Mode::Suffix => boundary_after(norm, meta, e),
        Mode::Embedded => true,
    }
}

/// The original text of a hit, widened to whole words: `wank` found in `wanker` and `fuck`
/// in `motherfucking` are reported as the words the sender wrote.
fn reported_range(norm: &Normalized, c: &Candidate) -> Range<usize> {
    let (text, meta) = (norm.text(), norm.meta());
    let (mut s, mut e) = (c.s as usize, c.e as usize);
    while !boundary_before(text, meta, s) {
        s -= 1;
    }
    while !boundary_after(text, meta, e) {
        e += 1;
    }
    norm.original_range(s, e)
}

/// Masked evidence for one hit: whitespace folded to single spaces, then all but the first
/// character hidden.
fn evidence(original: &str) -> String {
    let folded: Vec<&str> = original.split_whitespace().collect();
    mask::word(&folded.join(" "))
}

impl Detector for Profanity {
    fn name(&self) -> &'static str {
        "profanity"
    }

    fn inspect(&self, ctx: &ScanContext<'_>, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        SCRATCH.with(|cell| {
            let Ok(mut guard) = cell.try_borrow_mut() else {
                return Err(DetectError::Internal {
                    detector: "profanity",
                    message: "scratch buffer already in use on this thread".into(),
                });
            };
            let scratch = &mut *guard;
            for segment in &ctx.message.texts {
                self.scan(&segment.text, scratch);
                for tier in Tier::ALL {
                    let mut count: u32 = 0;
                    let mut all_masked = true;
                    let mut shown: Vec<String> = Vec::new();
                    for c in scratch
                        .candidates
                        .iter()
                        .filter(|c| c.alive && c.tier == tier)
                    {
                        count = count.saturating_add(1);
                        all_masked &= c.masked;
                        if shown.len() < EVIDENCE_HITS {
                            let range = reported_range(&scratch.norm, c);
                            let ev = evidence(segment.text.get(range).unwrap_or(""));
                            if !shown.contains(&ev) {
                                shown.push(ev);
                            }
                        }
                    }
                    if count == 0 {
                        continue;
                    }
                    let mut confidence = tier.confidence();
                    if all_masked {
                        confidence *= 0.85;
                    }
                    out.push(
                        Finding::new(
                            Category::Profanity,
                            tier.rule(),
                            segment.location.clone(),
                            shown.join(", "),
                            tier.severity(),
                        )
                        .with_confidence(confidence)
                        .with_count(count),
                    );
                }
                scratch.norm.release_beyond(KEEP_BUFFER_BYTES);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
