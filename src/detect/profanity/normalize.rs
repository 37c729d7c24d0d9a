//! Text normalisation for the profanity matcher.
//!
//! Offensive words arrive disguised: `f*ck`, `f.u.c.k`, `sh1t`, `fuuuuck`, `ѕһіt` (Cyrillic),
//! `ｆｕｃｋ` (full-width), `𝐟𝐮𝐜𝐤` (mathematical bold), `fücking`, `f\u{200B}uck`, `&#102;uck`.
//! This module turns any text into a small byte alphabet that one Aho-Corasick automaton can
//! scan, while remembering for every output byte which bytes of the ORIGINAL text produced it,
//! so evidence and locations always point at what the sender actually wrote.
//!
//! Output alphabet:
//! * `a`–`z`: letters (after case folding, compatibility decomposition, accent stripping,
//!   confusable folding and — inside words that contain letters — leet folding);
//! * `0`–`9`: digits that are not leet (numbers stay numbers: `455` is not `ass`);
//! * `*`: a masking run inside a word (`f**k` → `f*k`);
//! * `' '`: any run of separators (spaces, punctuation, line breaks);
//! * [`OTHER_WORD`]: a letter we cannot fold to ASCII (CJK, Arabic…): it joins words, so it
//!   blocks whole-word matches next to it but never matches itself.
//!
//! Repeated letters are collapsed to one output byte (`fuuuuck` → `fuck`), and the run length
//! (1, 2, or 3 and more) is kept in [`Normalized::meta`]: the matcher uses it so that `ass`
//! (a double `s`) still differs from `as`, while `shiiiit` matches `shit`.
//!
//! The work is two linear passes over one reused buffer: pass A decodes characters (entities,
//! stray inline tags, NFKD, confusables) into one byte per character; pass B works on tokens
//! (leet folding, masking, collapsing `b i t c h`-style letter runs, repeat collapsing) and
//! compacts the buffer in place. Nothing is allocated per character.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Output byte for a letter that has no ASCII look-alike.
pub const OTHER_WORD: u8 = 0x01;
/// Pass-A byte for non-ASCII punctuation (a separator).
const OTHER_SEP: u8 = 0x02;
/// Output byte for masking characters inside a word.
pub const MASK: u8 = b'*';

/// `meta` bits: the run length of a collapsed letter (1, 2, or 3 for three or more).
pub const RUN_BITS: u8 = 0b0011;
/// `meta` bit: a word boundary lies just before this byte although the previous byte is a
/// letter. Set inside collapsed letter runs after a leading `a`/`I` (`a f u c k`).
pub const SOFT_BOUNDARY: u8 = 0b0100;

/// Longest separator run allowed between the single letters of a spaced-out word.
const MAX_RUN_SEPARATOR: usize = 3;
/// Fewest single letters that make a spaced-out word (`a s s`).
const MIN_LETTER_RUN: usize = 3;

/// Character classes of pass-A bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Letter,
    Digit,
    /// `@ $ ! | + (`: letters in leetspeak, punctuation otherwise.
    LeetSymbol,
    Mask,
    Apostrophe,
    OtherWord,
    Separator,
}

#[inline]
fn class_of(b: u8) -> Class {
    CLASSES[b as usize]
}

const CLASSES: [Class; 256] = {
    let mut t = [Class::Separator; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = class_of_const(b as u8);
        b += 1;
    }
    t
};

const fn class_of_const(b: u8) -> Class {
    match b {
        b'a'..=b'z' => Class::Letter,
        b'0'..=b'9' => Class::Digit,
        b'@' | b'$' | b'!' | b'|' | b'+' | b'(' => Class::LeetSymbol,
        MASK => Class::Mask,
        b'\'' => Class::Apostrophe,
        OTHER_WORD => Class::OtherWord,
        _ => Class::Separator,
    }
}

/// The letter a leet digit or symbol stands for.
const fn leet(b: u8) -> Option<u8> {
    match b {
        b'0' => Some(b'o'),
        b'1' | b'!' | b'|' => Some(b'i'),
        b'3' => Some(b'e'),
        b'4' | b'@' => Some(b'a'),
        b'5' | b'$' => Some(b's'),
        b'7' | b'+' => Some(b't'),
        b'8' => Some(b'b'),
        b'9' => Some(b'g'),
        b'(' => Some(b'c'),
        _ => None,
    }
}

/// Pass-A byte for an ASCII byte (0 = drop).
const ASCII_MAP: [u8; 128] = {
    let mut t = [b' '; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = match c {
            b'A'..=b'Z' => c + 32,
            b'a'..=b'z' | b'0'..=b'9' => c,
            b'@' | b'$' | b'!' | b'|' | b'+' | b'(' => c,
            b'*' | b'#' | b'%' | b'?' | b'^' => MASK,
            b'\'' | b'`' => b'\'',
            b'.' | b'-' | b'_' | b'/' | b',' | b':' | b';' | b'~' | b'=' | b'"' | b')' | b'['
            | b']' | b'{' | b'}' | b'\\' | b'<' | b'>' | b'&' => c,
            _ => b' ',
        };
        b += 1;
    }
    t
};

/// Is this ASCII byte a separator the fast path may cross? Not `& < >` (entities and leftover
/// tags may join letters), not leet symbols, masks or apostrophes.
const FAST_SEP: [bool; 128] = {
    let mut t = [false; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = matches!(class_of_const(ASCII_MAP[b]), Class::Separator)
            && !matches!(c, b'&' | b'<' | b'>');
        b += 1;
    }
    t
};

fn fast_sep(b: u8) -> bool {
    b < 0x80 && FAST_SEP[b as usize]
}

/// Fast-path byte: a lower-case letter, `' '` for a fast separator, [`FAST_SKIP`] for an
/// apostrophe, [`FAST_SPECIAL`] for anything that needs the slow path.
const FAST: [u8; 256] = {
    let mut t = [FAST_SPECIAL; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() {
            c | 0x20
        } else if FAST_SEP[b] {
            b' '
        } else if c == b'\'' || c == b'`' {
            FAST_SKIP
        } else if c.is_ascii_digit() {
            FAST_DIGIT
        } else {
            FAST_SPECIAL
        };
        b += 1;
    }
    t
};
const FAST_DIGIT: u8 = 0xFD;
const FAST_SKIP: u8 = 0xFE;
const FAST_SPECIAL: u8 = 0xFF;

/// Eight source bytes as lower-case output if they are ASCII letters and spaces, no byte
/// repeats the one before it (`last` is the previous output byte), and no letter stands alone
/// between spaces (a possible `f u c k`; `after` is the byte after the block). Branch-free
/// bit tricks on one `u64`.
fn plain_block(block: &[u8], last: u8, after: Option<u8>) -> Option<[u8; 8]> {
    const HI: u64 = 0x8080_8080_8080_8080;
    const LO7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const SPACES: u64 = 0x2020_2020_2020_2020;
    let bytes: [u8; 8] = block.try_into().ok()?;
    let x = u64::from_le_bytes(bytes);
    if x & HI != 0 {
        return None;
    }
    let lower = x | SPACES;
    // High bit of each byte: lower >= 'a' and lower <= 'z' (no carries: bytes are < 0x80).
    let ge_a = lower + 0x1F1F_1F1F_1F1F_1F1F;
    let gt_z = lower + 0x0505_0505_0505_0505;
    let letters = ge_a & !gt_z & HI;
    // High bit set for bytes that are not zero.
    let nonzero = |v: u64| (((v & LO7) + LO7) | v) & HI;
    let spaces = !nonzero(x ^ SPACES) & HI;
    if letters | spaces != HI {
        return None;
    }
    let prev = (lower << 8) | u64::from(last);
    if nonzero(lower ^ prev) != HI {
        return None;
    }
    let space_before = (spaces << 8) | if last <= b' ' { 0x80 } else { 0 };
    let space_after = (spaces >> 8)
        | if after.is_none_or(fast_sep) {
            0x80 << 56
        } else {
            0
        };
    if letters & space_before & space_after != 0 {
        return None;
    }
    Some(lower.to_le_bytes())
}

/// An apostrophe at `k` that starts the `'re` of `who're`, `they're`.
fn contraction_re(bytes: &[u8], k: usize) -> bool {
    let mut end = k + 3;
    while matches!(bytes.get(end), Some(b'\'' | b'`')) {
        end += 1;
    }
    matches!(bytes.get(k + 1), Some(b'r' | b'R'))
        && matches!(bytes.get(k + 2), Some(b'e' | b'E'))
        && bytes.get(end).is_none_or(|&b| fast_sep(b))
}

fn skip_fast_seps(bytes: &[u8], mut k: usize) -> usize {
    while k < bytes.len() && fast_sep(bytes[k]) {
        k += 1;
    }
    k
}

/// Where a slow region starting at `from` ends: just before the separators that precede the
/// next plain word (or at the end of the text).
fn region_end(bytes: &[u8], from: usize) -> usize {
    let mut r = from;
    loop {
        // `;` ends an entity (`&amp;`), so it stays inside a region.
        while r < bytes.len() && (!fast_sep(bytes[r]) || bytes[r] == b';') {
            r += 1;
        }
        let s = skip_fast_seps(bytes, r);
        if s >= bytes.len() || fast_word(bytes, s).is_some() {
            return r;
        }
        r = s;
    }
}

/// If a plain word starts at `i` (two or more ASCII letters, apostrophes allowed, followed by
/// a fast separator or the end), where it ends.
fn fast_word(bytes: &[u8], i: usize) -> Option<usize> {
    let mut k = i;
    let mut letters = 0;
    while k < bytes.len() {
        let b = bytes[k];
        if b.is_ascii_alphabetic() {
            letters += 1;
        } else if b != b'\'' && b != b'`' {
            break;
        }
        k += 1;
    }
    (letters >= 2 && (k == bytes.len() || fast_sep(bytes[k]))).then_some(k)
}

/// Normalised text with its map back to the original. Reuse one value across calls: its
/// buffers keep their size, so steady-state normalisation allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct Normalized {
    // Output arrays: only `..len` is meaningful; they are kept long to avoid refilling.
    text: Vec<u8>,
    start: Vec<u32>,
    end: Vec<u32>,
    meta: Vec<u8>,
    len: usize,
    mapped: bool,
    region: Units,
}

/// Pass-A/pass-B working arrays for one region of unusual text.
#[derive(Debug, Default, Clone)]
struct Units {
    text: Vec<u8>,
    start: Vec<u32>,
    end: Vec<u32>,
    meta: Vec<u8>,
}

impl Normalized {
    pub fn new() -> Normalized {
        Normalized::default()
    }

    /// Make room for `need` output bytes.
    fn room(&mut self, need: usize) {
        if need > self.text.len() {
            let size = need.max(self.text.len() * 2).max(64);
            self.text.resize(size, 0);
            self.meta.resize(size, 0);
        }
        if need > self.start.len() {
            let size = need.max(self.start.len() * 2).max(64);
            self.start.resize(size, 0);
            self.end.resize(size, 0);
        }
    }

    /// Normalise `original` (replacing whatever was here before).
    ///
    /// Plain words (ASCII letters between ordinary separators) — most of any text — are
    /// copied straight to the output. Everything else is decoded region by region (pass A)
    /// and worked on token by token (pass B). A region always ends just before a plain word,
    /// which can neither join a spaced-out letter run nor hide inside an entity or tag, so
    /// both paths give the same result as normalising the whole text the slow way.
    pub fn normalize(&mut self, original: &str) {
        self.run::<true>(original);
        self.mapped = true;
    }

    /// Normalise without recording where each byte came from: the same text and flags as
    /// [`Normalized::normalize`], at a fraction of the cost. The matcher uses this first and
    /// maps offsets only for texts that have a hit.
    pub fn normalize_unmapped(&mut self, original: &str) {
        self.run::<false>(original);
        self.mapped = false;
    }

    /// Normalise everything the slow way (tests compare it with the fast path).
    #[cfg(test)]
    fn normalize_slow(&mut self, original: &str) {
        self.room(original.len() + 1);
        self.len = self.region::<true>(original, 0, original.len(), 0);
        self.mapped = true;
    }

    /// Give back memory beyond `max` bytes of text after an unusually large text, so one huge
    /// attachment does not pin tens of megabytes to a worker thread for good.
    pub fn release_beyond(&mut self, max: usize) {
        if self.text.len() > max {
            self.len = 0;
            self.mapped = false;
            for v in [&mut self.text, &mut self.meta] {
                v.truncate(max);
                v.shrink_to(max);
            }
            for v in [&mut self.start, &mut self.end] {
                v.truncate(max);
                v.shrink_to(max);
            }
            self.region = Units::default();
        }
    }

    /// Whether [`Normalized::original_range`] is meaningful for the current text.
    pub fn is_mapped(&self) -> bool {
        self.mapped
    }

    fn run<const MAP: bool>(&mut self, original: &str) {
        // Offsets are u32: scan at most the first 4 GiB (far beyond any extraction limit).
        let mut limit = original.len().min(u32::MAX as usize);
        while !original.is_char_boundary(limit) {
            limit -= 1;
        }
        let src = &original[..limit];
        let bytes = src.as_bytes();
        self.room(bytes.len() + 1);
        let mut n = 0usize;
        // The last output byte (0: none yet), its start and its run length.
        let mut last = 0u8;
        let mut cur_start = 0u32;
        let mut cur_run = 0u8;
        let mut k = 0;
        loop {
            // Letters and separators, collapsing repeats. This loop sees nearly every byte, so
            // it keeps few values live (they must stay in registers) and has no
            // data-dependent branch except the rare way out.
            let special = {
                let text = &mut self.text[..];
                let start = &mut self.start[..];
                let end = &mut self.end[..];
                let meta = &mut self.meta[..];
                let mut swar_from = 0usize;
                loop {
                    // Eight plain bytes at a time when they are letters and single spaces
                    // with no repeats and no one-letter word: then output = input in lower
                    // case, one byte each. Most running text qualifies.
                    if k >= swar_from
                        && let Some(block) = bytes.get(k..k + 8)
                    {
                        let after = bytes.get(k + 8).copied();
                        match plain_block(block, last, after) {
                            Some(lower) => {
                                text[n..n + 8].copy_from_slice(&lower);
                                meta[n..n + 8].fill(1);
                                if MAP {
                                    for (i, (s, e)) in start[n..n + 8]
                                        .iter_mut()
                                        .zip(&mut end[n..n + 8])
                                        .enumerate()
                                    {
                                        *s = (k + i) as u32;
                                        *e = (k + i + 1) as u32;
                                    }
                                    cur_start = (k + 7) as u32;
                                }
                                n += 8;
                                k += 8;
                                last = lower[7];
                                cur_run = 1;
                                continue;
                            }
                            None => swar_from = k + 8,
                        }
                    }
                    let Some(&b) = bytes.get(k) else {
                        break false;
                    };
                    let mut c = FAST[b as usize];
                    if c >= FAST_DIGIT {
                        if c == FAST_DIGIT {
                            // A number of two or more digits standing alone is copied as is
                            // (a single digit may be leet in a spaced-out word: `5 h 1 t`).
                            let mut j = k;
                            while j < bytes.len() && bytes[j].is_ascii_digit() {
                                j += 1;
                            }
                            if last > b' ' || j - k < 2 || (j < bytes.len() && !fast_sep(bytes[j]))
                            {
                                break true;
                            }
                            for (p, &d) in bytes.iter().enumerate().take(j).skip(k) {
                                text[n] = d;
                                meta[n] = 1;
                                if MAP {
                                    start[n] = p as u32;
                                    end[n] = p as u32 + 1;
                                }
                                n += 1;
                            }
                            last = b'0';
                            cur_run = 1;
                            k = j;
                            continue;
                        }
                        if c == FAST_SPECIAL {
                            break true;
                        }
                        if last <= b' ' || !contraction_re(bytes, k) {
                            k += 1;
                            continue;
                        }
                        c = b' ';
                    }
                    // A one-letter word (`a`, `I`, or the `f` of `f u c k`) that is not
                    // followed by a plain word goes the slow way.
                    let next_is_sep = bytes.get(k + 1).is_some_and(|&nb| fast_sep(nb));
                    if (last <= b' ') & (c != b' ') & next_is_sep && {
                        let next = skip_fast_seps(bytes, k + 1);
                        next < bytes.len() && fast_word(bytes, next).is_none()
                    } {
                        break true;
                    }
                    let same = c == last;
                    // Branch-free: run + 1 after a repeat, else 1.
                    cur_run = ((cur_run & 0u8.wrapping_sub(u8::from(same))) + 1).min(3);
                    let idx = n - usize::from(same);
                    text[idx] = c;
                    meta[idx] = cur_run;
                    if MAP {
                        cur_start = if same { cur_start } else { k as u32 };
                        start[idx] = cur_start;
                        end[idx] = k as u32 + 1;
                    }
                    n = idx + 1;
                    last = c;
                    k += 1;
                }
            };
            if !special {
                break;
            }
            // Redo the current token, and whatever unusual text follows it, the slow way. The
            // token starts after the last fast separator in the source, and after the last
            // space in the output (the fast path emits only letters and spaces).
            let mut from = k;
            while from > 0 && !fast_sep(bytes[from - 1]) {
                from -= 1;
            }
            while n > 0 && self.text[n - 1] != b' ' {
                n -= 1;
            }
            // Always progress: a region reaches past the special byte or the letter's word.
            let r = region_end(bytes, from).max(k + 1).min(bytes.len());
            n = self.region::<MAP>(src, from, r, n);
            self.room(n + (bytes.len() - r) + 1);
            last = if n > 0 { self.text[n - 1] } else { 0 };
            cur_start = if n > 0 { self.start[n - 1] } else { 0 };
            cur_run = if n > 0 {
                self.meta[n - 1] & RUN_BITS
            } else {
                0
            };
            k = r;
        }
        self.len = n;
    }

    /// Normalise `src[from..to]` the slow way and append it at output position `n`; returns
    /// the new output length.
    fn region<const MAP: bool>(
        &mut self,
        src: &str,
        from: usize,
        to: usize,
        mut n: usize,
    ) -> usize {
        let mut region = std::mem::take(&mut self.region);
        region.clear();
        region.decode(src, from, to);
        region.meta.resize(region.text.len(), 1);
        region.tokens(src.as_bytes());
        self.room(n + region.text.len() + 1);
        for k in 0..region.text.len() {
            let c = region.text[k];
            if c == b' ' && k == 0 && n > 0 && self.text[n - 1] == b' ' {
                continue;
            }
            self.text[n] = c;
            self.meta[n] = region.meta[k];
            if MAP {
                self.start[n] = region.start[k];
                self.end[n] = region.end[k];
            }
            n += 1;
        }
        self.region = region;
        n
    }

    /// The normalised bytes.
    pub fn text(&self) -> &[u8] {
        &self.text[..self.len]
    }

    /// Per-byte flags: run length ([`RUN_BITS`]) and [`SOFT_BOUNDARY`].
    pub fn meta(&self) -> &[u8] {
        &self.meta[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Byte range in the original text that produced normalised bytes `s..e` (`s < e`).
    pub fn original_range(&self, s: usize, e: usize) -> std::ops::Range<usize> {
        if !self.mapped {
            return 0..0;
        }
        let s = s.min(self.len.saturating_sub(1));
        let e = e.min(self.len);
        let a = self.start.get(s).copied().unwrap_or(0) as usize;
        let b = e
            .checked_sub(1)
            .and_then(|i| self.end.get(i))
            .copied()
            .unwrap_or(0) as usize;
        a..b.max(a)
    }

    /// Original byte range of each normalised byte (for tests and debugging).
    pub fn spans(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let len = if self.mapped { self.len } else { 0 };
        self.start[..len]
            .iter()
            .zip(&self.end[..len])
            .map(|(&s, &e)| (s as usize, e as usize))
    }
}

impl Units {
    fn clear(&mut self) {
        self.text.clear();
        self.start.clear();
        self.end.clear();
        self.meta.clear();
    }

    fn push(&mut self, b: u8, s: usize, e: usize) {
        self.text.push(b);
        self.start.push(s as u32);
        self.end.push(e as u32);
    }

    // ---------------------------------------------------------------- pass A: characters

    /// Pass A over `src[from..to]`: one byte per character (more for ligatures, none for
    /// invisible ones), offsets absolute in `src`.
    fn decode(&mut self, src: &str, from: usize, to: usize) {
        let bytes = &src.as_bytes()[..to];
        let mut i = from;
        while i < to {
            let b = bytes[i];
            if b < 0x80 {
                if b == b'&'
                    && let Some((ch, len)) = entity(&bytes[i..])
                {
                    self.push_char(ch, i, i + len);
                    i += len;
                    continue;
                }
                if b == b'<'
                    && let Some((len, inline)) = tag(&bytes[i..])
                {
                    if !inline {
                        self.push(b' ', i, i + len);
                    }
                    i += len;
                    continue;
                }
                self.push(ASCII_MAP[b as usize], i, i + 1);
                i += 1;
            } else {
                let Some(ch) = src[i..to].chars().next() else {
                    break;
                };
                let len = ch.len_utf8();
                self.push_char(ch, i, i + len);
                i += len;
            }
        }
    }

    /// One decoded character spanning original bytes `s..e` (an `&` or `<` that came from an
    /// entity is not parsed again).
    fn push_char(&mut self, ch: char, s: usize, e: usize) {
        if ch.is_ascii() {
            self.push(ASCII_MAP[ch as usize], s, e);
            return;
        }
        if is_ignorable(ch) || is_combining_mark(ch) {
            return;
        }
        if is_apostrophe(ch) {
            self.push(b'\'', s, e);
            return;
        }
        if is_mask(ch) {
            self.push(MASK, s, e);
            return;
        }
        if let Some(b) = fold(ch) {
            self.push_folded(b, s, e);
            return;
        }
        decompose_compatible(ch, |d| {
            if d.is_ascii() {
                self.push(ASCII_MAP[d as usize], s, e);
            } else if is_combining_mark(d) || is_ignorable(d) {
            } else if let Some(b) = fold(d) {
                self.push_folded(b, s, e);
            } else if d.is_alphanumeric() {
                self.push(OTHER_WORD, s, e);
            } else if d.is_whitespace() {
                self.push(b' ', s, e);
            } else {
                self.push(OTHER_SEP, s, e);
            }
        });
    }

    fn push_folded(&mut self, folded: Folded, s: usize, e: usize) {
        match folded {
            Folded::One(b) => self.push(b, s, e),
            Folded::Two(a, b) => {
                self.push(a, s, e);
                self.push(b, s, e);
            }
        }
    }

    // ---------------------------------------------------------------- pass B: tokens

    /// Rewrite the pass-A bytes in place (the write cursor never passes the read cursor).
    fn tokens(&mut self, src: &[u8]) {
        let n = self.text.len();
        let mut i = 0;
        let mut w = 0;
        while i < n {
            // Fast path: a word of two or more plain letters.
            if self.text[i].is_ascii_lowercase() {
                let mut j = i + 1;
                while j < n && self.text[j].is_ascii_lowercase() {
                    j += 1;
                }
                if j - i >= 2 && (j == n || class_of(self.text[j]) == Class::Separator) {
                    for k in i..j {
                        let (c, s, e) = (self.text[k], self.start[k], self.end[k]);
                        if w > 0 && self.text[w - 1] == c {
                            self.end[w - 1] = e;
                            let run = (self.meta[w - 1] & RUN_BITS).saturating_add(1).min(3);
                            self.meta[w - 1] = (self.meta[w - 1] & !RUN_BITS) | run;
                        } else {
                            self.text[w] = c;
                            self.start[w] = s;
                            self.end[w] = e;
                            self.meta[w] = 1;
                            w += 1;
                        }
                    }
                    i = j;
                    continue;
                }
            }
            if class_of(self.text[i]) == Class::Separator {
                let (s, e) = (self.start[i], self.end[i]);
                while i < n && class_of(self.text[i]) == Class::Separator {
                    i += 1;
                }
                self.put(&mut w, b' ', s, e, 0);
                continue;
            }
            let j = self.token_end(i);
            if let Some(next) = self.letter_run(i, j, &mut w) {
                i = next;
                continue;
            }
            self.token(i, j, &mut w, src);
            i = j;
        }
        self.text.truncate(w);
        self.start.truncate(w);
        self.end.truncate(w);
        self.meta.truncate(w);
    }

    fn token_end(&self, mut i: usize) -> usize {
        while i < self.text.len() && class_of(self.text[i]) != Class::Separator {
            i += 1;
        }
        i
    }

    /// Write one output byte at `w`, collapsing repeats: a letter equal to the previous letter
    /// extends it (run length capped at 3), masks merge, separators merge.
    #[inline]
    fn put(&mut self, w: &mut usize, b: u8, s: u32, e: u32, flags: u8) {
        if *w > 0 && flags & SOFT_BOUNDARY == 0 {
            let p = *w - 1;
            if self.text[p] == b && (b.is_ascii_lowercase() || b == MASK || b == b' ') {
                // The same bookkeeping as the fast path: the span grows, the run counts.
                self.end[p] = e;
                let run = (self.meta[p] & RUN_BITS).saturating_add(1).min(3);
                self.meta[p] = (self.meta[p] & !RUN_BITS) | run;
                return;
            }
        }
        let k = *w;
        self.text[k] = b;
        self.start[k] = s;
        self.end[k] = e;
        self.meta[k] = flags | 1;
        *w += 1;
    }

    /// The single letter a one-character token stands for, if it is one (`f`, `$`, `1`).
    fn single_letter(&self, i: usize, j: usize) -> Option<u8> {
        let mut found = None;
        for k in i..j {
            let b = self.text[k];
            match class_of(b) {
                Class::Apostrophe => {}
                Class::Letter if found.is_none() => found = Some(b),
                Class::Digit | Class::LeetSymbol if found.is_none() && b != b'!' => {
                    found = Some(leet(b)?);
                }
                _ => return None,
            }
        }
        found
    }

    /// `b i t c h`, `f.u.c.k`, `s-h-1-t`: three or more single letters joined by the same
    /// short separator become one word. Runs of real words are never joined (`as she said`
    /// stays three words), because only one-letter tokens take part. Returns where reading
    /// continues, or None when `i..j` does not start such a run.
    fn letter_run(&mut self, i: usize, j: usize, w: &mut usize) -> Option<usize> {
        self.single_letter(i, j)?;
        let n = self.text.len();
        let mut count = 1;
        let mut letters = usize::from(class_of(self.text[i]) == Class::Letter);
        let mut sig: Option<u8> = None;
        let mut end = j;
        loop {
            let mut s = end;
            while s < n && class_of(self.text[s]) == Class::Separator {
                s += 1;
            }
            if s == end || s == n || s - end > MAX_RUN_SEPARATOR {
                break;
            }
            let this_sig = self.text[end..s]
                .iter()
                .copied()
                .find(|&b| b != b' ')
                .unwrap_or(b' ');
            if sig.is_some_and(|g| g != this_sig) {
                break;
            }
            let t = self.token_end(s);
            if self.single_letter(s, t).is_none() {
                break;
            }
            sig = Some(this_sig);
            count += 1;
            letters += usize::from(self.text[s..t].iter().any(|b| b.is_ascii_lowercase()));
            end = t;
        }
        if count < MIN_LETTER_RUN || letters < 2 {
            return None;
        }
        // Emit the letters, skipping separators. A leading `a` or `i` is probably a word of
        // its own (`a f u c k`): mark a soft boundary after it.
        let mut k = i;
        let mut first = true;
        let mut soft_next = false;
        while k < end {
            let t = if class_of(self.text[k]) == Class::Separator {
                k + 1
            } else {
                self.token_end(k)
            };
            if let Some(letter) = self.single_letter(k, t) {
                let pos = (k..t)
                    .find(|&p| class_of(self.text[p]) != Class::Apostrophe)
                    .unwrap_or(k);
                let (s, e) = (self.start[pos], self.end[pos]);
                let flags = if soft_next { SOFT_BOUNDARY } else { 0 };
                self.put(w, letter, s, e, flags);
                soft_next = first && (letter == b'a' || letter == b'i') && sig == Some(b' ');
                first = false;
            }
            k = t;
        }
        Some(end)
    }

    /// Emit one ordinary token `i..j`.
    fn token(&mut self, i: usize, j: usize, w: &mut usize, src: &[u8]) {
        let mut has_letter = self.text[i..j].iter().any(|b| b.is_ascii_lowercase());
        if has_letter && self.road_like(i, j, src) {
            has_letter = false;
        }
        // `f*u*c*k`: single letters joined by single masks.
        let alternating = (j - i) >= 5
            && !(j - i).is_multiple_of(2)
            && (i..j).all(|k| {
                let c = class_of(self.text[k]);
                if (k - i).is_multiple_of(2) {
                    c == Class::Letter
                } else {
                    c == Class::Mask
                }
            });
        // Punctuation at the edges of a word is punctuation (`fuck!`, `(shit)`, `*word*`);
        // only `$` and `@` commonly start or end leetspeak (`$hit`, `a$$`, `@ss`).
        let edge_ok = |b: u8| {
            matches!(class_of(b), Class::Letter | Class::Digit | Class::OtherWord)
                || b == b'$'
                || b == b'@'
        };
        let mut a = i;
        let mut b = j;
        while a < b && !edge_ok(self.text[a]) {
            a += 1;
        }
        while b > a && !edge_ok(self.text[b - 1]) {
            b -= 1;
        }
        for k in a..b {
            let c = self.text[k];
            let (s, e) = (self.start[k], self.end[k]);
            let out = match class_of(c) {
                Class::Letter | Class::OtherWord => c,
                Class::Digit => match leet(c) {
                    Some(l) if has_letter => l,
                    _ => c,
                },
                Class::LeetSymbol => match leet(c) {
                    Some(l) if has_letter => l,
                    _ => b' ',
                },
                Class::Mask if alternating => continue,
                Class::Mask if has_letter => MASK,
                Class::Mask => b' ',
                // `who're` is not `whore`: the `'re` contraction keeps its word break.
                Class::Apostrophe
                    if k + 3 == b && self.text[k + 1] == b'r' && self.text[k + 2] == b'e' =>
                {
                    b' '
                }
                Class::Apostrophe => continue,
                Class::Separator => b' ',
            };
            self.put(w, out, s, e, 0);
        }
    }

    /// `A55`, `M25`, `B1234`: an upper-case letter followed only by digits is a road, a grid
    /// reference or a form code, not leetspeak.
    fn road_like(&self, i: usize, j: usize, src: &[u8]) -> bool {
        if j - i < 2 || !self.text[i].is_ascii_lowercase() {
            return false;
        }
        let first = src.get(self.start[i] as usize).copied().unwrap_or(0);
        first.is_ascii_uppercase() && self.text[i + 1..j].iter().all(u8::is_ascii_digit)
    }
}

/// Characters that are invisible or formatting only: zero-width spaces and joiners, soft
/// hyphens, direction marks, variation selectors, tag characters.
fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{02BC}' | '\u{02B9}' | '\u{00B4}' | '\u{2032}'
    )
}

fn is_mask(c: char) -> bool {
    matches!(
        c,
        '\u{2217}' | '\u{204E}' | '\u{2731}' | '\u{2732}' | '\u{2733}' | '\u{273A}' | '\u{2055}'
    )
}

/// What a non-ASCII character folds to.
#[derive(Clone, Copy)]
enum Folded {
    One(u8),
    Two(u8, u8),
}

/// Look-alike letters that compatibility decomposition leaves alone: Cyrillic, Greek,
/// Armenian and Cherokee homoglyphs, Latin letters with strokes, small capitals, ligatures,
/// regional-indicator letters. Hand-written after Unicode's confusables list, limited to
/// letters that really pass for ASCII in running text.
fn fold(c: char) -> Option<Folded> {
    use Folded::{One, Two};
    let b = match c {
        // Cyrillic
        'а' | 'А' => b'a',
        'в' | 'В' | 'ь' | 'Ь' | 'ъ' | 'Ъ' | 'Б' | 'б' => b'b',
        'с' | 'С' => b'c',
        'ԁ' | 'Ԁ' => b'd',
        'е' | 'Е' | 'ё' | 'Ё' | 'є' | 'Є' => b'e',
        'г' | 'Г' => b'r',
        'һ' | 'Һ' | 'н' | 'Н' => b'h',
        'і' | 'І' | 'ї' | 'Ї' | 'ӏ' | 'Ӏ' => b'i',
        'ј' | 'Ј' => b'j',
        'к' | 'К' | 'қ' | 'Қ' | 'ҡ' => b'k',
        'м' | 'М' => b'm',
        'п' | 'П' => b'n',
        'о' | 'О' => b'o',
        'р' | 'Р' => b'p',
        'ԛ' | 'Ԛ' => b'q',
        'ѕ' | 'Ѕ' => b's',
        'т' | 'Т' => b't',
        'у' | 'У' | 'ү' | 'Ү' | 'ұ' => b'y',
        'х' | 'Х' => b'x',
        'ш' | 'Ш' | 'щ' | 'Щ' | 'ԝ' | 'Ԝ' => b'w',
        // Greek
        'α' | 'Α' => b'a',
        'β' | 'Β' | 'ϐ' => b'b',
        'ϲ' | 'Ϲ' => b'c',
        'δ' => b'd',
        'ε' | 'Ε' | 'ϵ' => b'e',
        'η' => b'n',
        'Η' => b'h',
        'ι' | 'Ι' => b'i',
        'ϳ' | 'Ϳ' => b'j',
        'κ' | 'Κ' | 'ϰ' => b'k',
        'Μ' => b'm',
        'μ' | 'υ' | 'ϋ' => b'u',
        'ν' => b'v',
        'Ν' | 'π' => b'n',
        'ο' | 'Ο' | 'σ' => b'o',
        'ρ' | 'Ρ' | 'ϱ' => b'p',
        'ς' => b's',
        'τ' | 'Τ' => b't',
        'Υ' | 'γ' => b'y',
        'χ' | 'Χ' => b'x',
        'ω' => b'w',
        'Ζ' => b'z',
        // Armenian and Cherokee
        'օ' => b'o',
        'ս' => b'u',
        'ո' => b'n',
        'հ' => b'h',
        'Ꭺ' => b'a',
        'Ᏼ' => b'b',
        'Ꮯ' => b'c',
        'Ꭼ' => b'e',
        'Ꮋ' => b'h',
        'Ꭵ' => b'i',
        'Ꮶ' => b'k',
        'Ꮇ' => b'm',
        'Ꮲ' => b'p',
        'Ꮪ' => b's',
        'Ꭲ' => b't',
        'Ꮃ' => b'w',
        'Ꮓ' => b'z',
        // Latin letters that do not decompose
        'ø' | 'Ø' | 'ɔ' | 'Ɔ' => b'o',
        'đ' | 'Đ' | 'ɖ' | 'ɗ' => b'd',
        'ħ' | 'Ħ' | 'ɦ' => b'h',
        'ł' | 'Ł' | 'ƚ' | 'ɫ' => b'l',
        'ŧ' | 'Ŧ' | 'ʈ' | 'ƭ' => b't',
        'ı' | 'ɨ' | 'ɩ' | 'Ɨ' => b'i',
        'ȷ' | 'ɉ' => b'j',
        'ɑ' | 'ɐ' => b'a',
        'ɡ' | 'ɠ' => b'g',
        'ƒ' | 'Ƒ' => b'f',
        'ɛ' | 'Ɛ' | 'ɇ' => b'e',
        'ʋ' | 'ʊ' => b'u',
        'ʂ' => b's',
        'ʐ' | 'ȥ' => b'z',
        'ɱ' => b'm',
        'ɲ' | 'ɳ' => b'n',
        'ɓ' | 'ƀ' | 'Ƀ' => b'b',
        'ƙ' => b'k',
        'ƥ' => b'p',
        'ʠ' | 'ɋ' => b'q',
        'ɍ' => b'r',
        'ɏ' => b'y',
        'ȼ' | 'Ȼ' => b'c',
        // Small capitals
        'ᴀ' => b'a',
        'ʙ' => b'b',
        'ᴄ' => b'c',
        'ᴅ' => b'd',
        'ᴇ' => b'e',
        'ꜰ' => b'f',
        'ɢ' => b'g',
        'ʜ' => b'h',
        'ɪ' => b'i',
        'ᴊ' => b'j',
        'ᴋ' => b'k',
        'ʟ' => b'l',
        'ᴍ' => b'm',
        'ɴ' => b'n',
        'ᴏ' => b'o',
        'ᴘ' => b'p',
        'ʀ' => b'r',
        'ꜱ' => b's',
        'ᴛ' => b't',
        'ᴜ' => b'u',
        'ᴠ' => b'v',
        'ᴡ' => b'w',
        'ʏ' => b'y',
        'ᴢ' => b'z',
        // Ligatures that NFKD keeps
        'ß' | 'ẞ' => return Some(Two(b's', b's')),
        'æ' | 'Æ' => return Some(Two(b'a', b'e')),
        'œ' | 'Œ' => return Some(Two(b'o', b'e')),
        // Regional indicators 🇦–🇿 spell letters
        '\u{1F1E6}'..='\u{1F1FF}' => b'a' + (c as u32 - 0x1F1E6) as u8,
        _ => return None,
    };
    Some(One(b))
}

/// An HTML character reference at the start of `b` (`&#102;`, `&#x66;`, `&amp;`): the
/// character and the reference's length. Extraction decodes entities already; this catches
/// the ones that survive (double-encoded mail, plain-text bodies that contain them).
fn entity(b: &[u8]) -> Option<(char, usize)> {
    if b.get(1) == Some(&b'#') {
        let hex = matches!(b.get(2), Some(b'x' | b'X'));
        let digits_at = if hex { 3 } else { 2 };
        let mut value: u32 = 0;
        let mut k = digits_at;
        while k < b.len() && k - digits_at < 7 {
            let d = match (hex, b[k]) {
                (_, c @ b'0'..=b'9') => u32::from(c - b'0'),
                (true, c @ b'a'..=b'f') => u32::from(c - b'a' + 10),
                (true, c @ b'A'..=b'F') => u32::from(c - b'A' + 10),
                _ => break,
            };
            value = value * if hex { 16 } else { 10 } + d;
            k += 1;
        }
        if k == digits_at {
            return None;
        }
        if b.get(k) == Some(&b';') {
            k += 1;
        }
        let ch = char::from_u32(value).filter(|&c| c != '\0')?;
        return Some((ch, k));
    }
    let mut k = 1;
    while k < b.len() && k <= 10 && b[k].is_ascii_alphanumeric() {
        k += 1;
    }
    if k == 1 || b.get(k) != Some(&b';') {
        return None;
    }
    let name = std::str::from_utf8(&b[1..k]).ok()?;
    let ch = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" | "rsquo" | "lsquo" => '\'',
        "nbsp" | "ensp" | "emsp" | "thinsp" => ' ',
        "shy" | "zwj" | "zwnj" | "lrm" | "rlm" => '\u{200B}',
        "ndash" | "mdash" | "hyphen" => '-',
        "hellip" => '.',
        "ast" | "midast" => '*',
        "szlig" => 'ß',
        "aelig" => 'æ',
        "AElig" => 'Æ',
        "oelig" => 'œ',
        "OElig" => 'Œ',
        "oslash" => 'ø',
        "Oslash" => 'Ø',
        _ => {
            // `&uuml;`, `&Eacute;`, `&ccedil;`… → the base letter.
            let (first, rest) = name.split_at(1);
            let letter = first.chars().next()?;
            if letter.is_ascii_alphabetic()
                && matches!(
                    rest,
                    "acute" | "grave" | "circ" | "uml" | "tilde" | "ring" | "cedil" | "caron"
                )
            {
                letter
            } else {
                return None;
            }
        }
    };
    Some((ch, k + 1))
}

/// HTML tags that are inline: removing them joins the text around them (`<b>f</b>uck`).
const INLINE_TAGS: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "del", "dfn", "em", "font", "i", "ins",
    "kbd", "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "tt", "u",
    "var", "wbr",
];

/// Other HTML tags: removing them separates words.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "caption",
    "center",
    "col",
    "dd",
    "div",
    "dl",
    "dt",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "img",
    "li",
    "main",
    "meta",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "ul",
];

/// A leftover HTML tag at the start of `b`: its length and whether it is inline. Only known
/// tag names count, so text such as `a < b` or `<insert name>` is left alone.
fn tag(b: &[u8]) -> Option<(usize, bool)> {
    let mut k = 1;
    if b.get(k) == Some(&b'/') {
        k += 1;
    }
    let name_start = k;
    while k < b.len() && k - name_start < 12 && b[k].is_ascii_alphanumeric() {
        k += 1;
    }
    if k == name_start || !b[name_start].is_ascii_alphabetic() {
        return None;
    }
    let name = std::str::from_utf8(&b[name_start..k])
        .ok()?
        .to_ascii_lowercase();
    let inline = if INLINE_TAGS.contains(&name.as_str()) {
        true
    } else if BLOCK_TAGS.contains(&name.as_str()) {
        false
    } else {
        return None;
    };
    // `<b>`, `</b>`, `<br/>`, or attributes with `=`: `<span style="…">`. Prose such as
    // `a <b and c> d` has no `=` and is left alone.
    let limit = b.len().min(k + 512);
    let mut m = k;
    let mut attrs = false;
    while m < limit {
        match b[m] {
            b'>' if m == k || attrs || (m == k + 1 && b[k] == b'/') => {
                return Some((m + 1, inline));
            }
            b'>' | b'<' => return None,
            b'=' => attrs = true,
            c if m == k && !c.is_ascii_whitespace() && c != b'/' => return None,
            _ => {}
        }
        m += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(s: &str) -> String {
        let mut n = Normalized::new();
        n.normalize(s);
        String::from_utf8_lossy(n.text()).into_owned()
    }

    /// The original slice behind the first occurrence of `needle` in the normalised text.
    fn origin_of(s: &str, needle: &str) -> String {
        let mut n = Normalized::new();
        n.normalize(s);
        let text = String::from_utf8_lossy(n.text()).into_owned();
        let at = text.find(needle).unwrap();
        s[n.original_range(at, at + needle.len())].to_string()
    }

    #[test]
    fn case_and_separators() {
        assert_eq!(norm("What THE Hell!!"), "what the hel");
        assert_eq!(norm("  hello,   world.\r\n"), " helo world ");
    }

    #[test]
    fn masking_inside_words_becomes_one_mask() {
        assert_eq!(norm("f*ck"), "f*ck");
        assert_eq!(norm("f**k off"), "f*k of");
        assert_eq!(norm("b#tch"), "b*tch");
        assert_eq!(norm("sh%t"), "sh*t");
        // Masks at the edges are punctuation, not letters.
        assert_eq!(norm("*really* good"), "realy god");
        // Masks in a word without letters are separators.
        assert_eq!(norm("5*3"), "5 3");
    }

    #[test]
    fn leet_only_inside_words_with_letters() {
        assert_eq!(norm("sh1t"), "shit");
        assert_eq!(norm("$hit"), "shit");
        assert_eq!(norm("a55hole"), "ashole");
        assert_eq!(norm("b@stard"), "bastard");
        assert_eq!(norm("sh!t"), "shit");
        assert_eq!(norm("w4nker"), "wanker");
        assert_eq!(norm("c0ck"), "cock");
        // Numbers stay numbers; roads stay roads; punctuation stays punctuation.
        assert_eq!(norm("room 455"), "rom 455");
        assert_eq!(norm("the A55 is shut"), "the a55 is shut");
        assert_eq!(norm("shit!"), "shit");
        assert_eq!(norm("(shit)"), "shit ");
    }

    #[test]
    fn repeated_letters_collapse_with_run_length() {
        let mut n = Normalized::new();
        n.normalize("fuuuuck ass as");
        assert_eq!(n.text(), b"fuck as as");
        let runs: Vec<u8> = n.meta().iter().map(|m| m & RUN_BITS).collect();
        assert_eq!(runs, vec![1, 3, 1, 1, 1, 1, 2, 1, 1, 1]);
        assert_eq!(norm("shiiiiit"), "shit");
        assert_eq!(norm("twaaaaat"), "twat");
    }

    #[test]
    fn spaced_out_letters_are_joined() {
        assert_eq!(norm("you b i t c h"), "you bitch");
        assert_eq!(norm("f.u.c.k.i.n.g hell"), "fucking hel");
        assert_eq!(norm("f-u-c-k"), "fuck");
        assert_eq!(norm("f_u_c_k"), "fuck");
        assert_eq!(norm("s h 1 t"), "shit");
        assert_eq!(norm("f*u*c*k"), "fuck");
        // Real words are never joined, and mixed separators break a run.
        assert_eq!(norm("as she said"), "as she said");
        assert_eq!(norm("but tit for tat"), "but tit for tat");
        assert_eq!(norm("I'm a ss teacher"), "im a s teacher");
        assert_eq!(norm("a b"), "a b");
    }

    #[test]
    fn leading_article_in_a_letter_run_keeps_a_soft_boundary() {
        let mut n = Normalized::new();
        n.normalize("a f u c k");
        assert_eq!(n.text(), b"afuck");
        assert_ne!(n.meta()[1] & SOFT_BOUNDARY, 0);
    }

    #[test]
    fn confusables_fold_to_ascii() {
        assert_eq!(norm("ѕһіt"), "shit"); // Cyrillic
        assert_eq!(norm("ΒΙΤϹΗ"), "bitch"); // Greek capitals
        assert_eq!(norm("ｆｕｃｋ"), "fuck"); // full-width
        assert_eq!(norm("𝐟𝐮𝐜𝐤 𝓈𝒽𝒾𝓉"), "fuck shit"); // mathematical bold and script
        assert_eq!(norm("ꜱʜɪᴛ"), "shit"); // small capitals
        assert_eq!(norm("🇫🇺🇨🇰"), "fuck"); // regional indicators
        assert_eq!(norm("日本語"), "\u{1}\u{1}\u{1}"); // no look-alike: a word, never a match
    }

    #[test]
    fn accents_and_combining_marks_are_stripped() {
        assert_eq!(norm("fücking"), "fucking");
        assert_eq!(norm("fu\u{0308}cking"), "fucking");
        assert_eq!(norm("ŝĥíţ"), "shit");
        assert_eq!(norm("f\u{0336}u\u{0336}c\u{0336}k\u{0336}"), "fuck");
    }

    #[test]
    fn invisible_characters_are_dropped() {
        assert_eq!(norm("f\u{200B}u\u{200C}c\u{200D}k"), "fuck");
        assert_eq!(norm("sh\u{2060}i\u{FEFF}t"), "shit");
        assert_eq!(norm("bit\u{00AD}ch"), "bitch");
    }

    #[test]
    fn leftover_entities_and_inline_tags() {
        assert_eq!(norm("&#102;uck"), "fuck");
        assert_eq!(norm("&#x66;&#x75;ck"), "fuck");
        assert_eq!(norm("sh&iacute;t"), "shit");
        assert_eq!(norm("f&shy;uck"), "fuck");
        assert_eq!(norm("fish &amp; chips"), "fish chips");
        assert_eq!(norm("<b>f</b>uck"), "fuck");
        assert_eq!(norm("one<br>two"), "one two");
        assert_eq!(norm("if a<b and c>d"), "if a b and c d");
        assert_eq!(norm("&bogus; text"), " bogus text");
    }

    #[test]
    fn apostrophes_vanish_except_before_re() {
        assert_eq!(norm("I'll kill you"), "il kil you");
        assert_eq!(norm("don't"), "dont");
        assert_eq!(norm("people who're late"), "people who re late");
        assert_eq!(norm("you\u{2019}re dead"), "you re dead");
    }

    #[test]
    fn offsets_point_at_the_original() {
        assert_eq!(origin_of("oh ѕһіt!", "shit"), "ѕһіt");
        assert_eq!(origin_of("a f.u.c.k b", "fuck"), "f.u.c.k");
        assert_eq!(origin_of("x fuuuuck y", "fuck"), "fuuuuck");
        assert_eq!(origin_of("&#102;uck", "fuck"), "&#102;uck");
        assert_eq!(origin_of("go ｆｕｃｋ", "fuck"), "ｆｕｃｋ");
        assert_eq!(origin_of("f\u{200B}uck", "fuck"), "f\u{200B}uck");
        assert_eq!(origin_of("b*tch", "b*tch"), "b*tch");
    }

    proptest! {
        #[test]
        fn never_panics_and_offsets_are_char_boundaries(s in "\\PC*") {
            let mut n = Normalized::new();
            n.normalize(&s);
            for (a, b) in n.spans() {
                prop_assert!(a < b && b <= s.len());
                prop_assert!(s.is_char_boundary(a) && s.is_char_boundary(b));
            }
            for i in 0..n.len() {
                for j in i + 1..(i + 4).min(n.len() + 1) {
                    let r = n.original_range(i, j);
                    prop_assert!(r.end <= s.len() && s.is_char_boundary(r.start) && s.is_char_boundary(r.end));
                }
            }
        }

        #[test]
        fn unmapped_normalisation_gives_the_same_text(s in "\\PC*") {
            let mut a = Normalized::new();
            let mut b = Normalized::new();
            a.normalize(&s);
            b.normalize_unmapped(&s);
            prop_assert_eq!(a.text(), b.text());
            prop_assert_eq!(a.meta(), b.meta());
        }

        #[test]
        fn fast_path_equals_slow_path(s in proptest::collection::vec(prop_oneof![
            Just("fuck"), Just("Hello"), Just("a"), Just("I"), Just("f"), Just("u"), Just("c"),
            Just("k"), Just(" "), Just("  "), Just(", "), Just("."), Just("-"), Just("\n"),
            Just("'"), Just("'re"), Just("who"), Just("*"), Just("1"), Just("$"), Just("!"),
            Just("&amp;"), Just("<b>"), Just("ü"), Just("ѕ"), Just("\u{200B}"), Just("ss"),
            Just("A55"), Just("tt"), Just(";"), Just(">"), Just("("), Just("12"), Just("5"),
            Just("&#102"), Just("&x;")
        ], 0..40)) {
            let s: String = s.concat();
            let mut fast = Normalized::new();
            let mut slow = Normalized::new();
            fast.normalize(&s);
            slow.normalize_slow(&s);
            prop_assert_eq!(String::from_utf8_lossy(fast.text()), String::from_utf8_lossy(slow.text()));
            // Runs and spans matter for word bytes (matches never start or end on a space).
            let word = |n: &Normalized| -> Vec<(u8, u8, (usize, usize))> {
                n.text()
                    .iter()
                    .zip(n.meta())
                    .zip(n.spans())
                    .filter(|((c, _), _)| **c != b' ')
                    .map(|((c, m), sp)| (*c, *m, sp))
                    .collect()
            };
            prop_assert_eq!(word(&fast), word(&slow));
        }

        #[test]
        fn arbitrary_mixed_input_is_safe(s in proptest::collection::vec(prop_oneof![
            Just("f"), Just("*"), Just(" "), Just("."), Just("&#"), Just("&#x1F600;"), Just("<b>"),
            Just("1"), Just("$"), Just("\u{200B}"), Just("ü"), Just("ѕ"), Just("\u{0301}"), Just("<"),
            Just("&amp;"), Just("'"), Just("é"), Just("日"), Just("🇫"), Just("ß"), Just("A"),
        ], 0..64)) {
            let s: String = s.concat();
            let mut n = Normalized::new();
            n.normalize(&s);
            for (a, b) in n.spans() {
                prop_assert!(a < b && b <= s.len());
                prop_assert!(s.is_char_boundary(a) && s.is_char_boundary(b));
            }
        }
    }
}
