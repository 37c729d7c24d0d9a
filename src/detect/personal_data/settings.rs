//! `rules/personal_data.toml`: the context words and thresholds a school may tune,
//! parsed once into keyword matchers.

use crate::rules::{RuleFile, RulesError};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use serde::Deserialize;

const RULE: &str = "personal_data";

/// A set of words or phrases matched case-insensitively as whole words.
///
/// Aho-Corasick finds every occurrence in one pass; the whole-word test then drops
/// matches inside longer words ("dob" in "adobe", "st" in "first"). A keyword that
/// starts or ends with punctuation (".co.uk", "n.i.") brings its own boundary.
#[derive(Debug, Clone)]
pub struct KeywordSet {
    ac: Option<AhoCorasick>,
    words: Vec<String>,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

impl KeywordSet {
    pub fn new(words: &[String]) -> Result<KeywordSet, String> {
        let mut all: Vec<String> = Vec::new();
        for w in words {
            let w = w.trim().to_lowercase();
            if w.is_empty() {
                continue;
            }
            // Typographic apostrophes are common in mail: accept both.
            if w.contains('\'') {
                all.push(w.replace('\'', "\u{2019}"));
            }
            all.push(w);
        }
        if all.is_empty() {
            return Ok(KeywordSet {
                ac: None,
                words: all,
            });
        }
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&all)
            .map_err(|e| e.to_string())?;
        Ok(KeywordSet {
            ac: Some(ac),
            words: all,
        })
    }

    /// Every whole-word occurrence, as byte ranges (overlapping occurrences included).
    pub fn find_all<'h>(&'h self, hay: &'h str) -> impl Iterator<Item = (usize, usize)> + 'h {
        let bytes = hay.as_bytes();
        self.ac
            .iter()
            .flat_map(move |ac| ac.find_overlapping_iter(hay))
            .filter(move |m| {
                let w = self.words[m.pattern().as_usize()].as_bytes();
                let before_ok = !w.first().copied().is_some_and(is_word_byte)
                    || m.start() == 0
                    || !is_word_byte(bytes[m.start() - 1]);
                let after_ok = !w.last().copied().is_some_and(is_word_byte)
                    || m.end() >= bytes.len()
                    || !is_word_byte(bytes[m.end()]);
                before_ok && after_ok
            })
            .map(|m| (m.start(), m.end()))
    }

    /// Does `hay` contain any of the words?
    pub fn found_in(&self, hay: &str) -> bool {
        self.find_all(hay).next().is_some()
    }

    /// The last whole-word occurrence ending at or before `hay.len()`.
    pub fn last_in(&self, hay: &str) -> Option<(usize, usize)> {
        self.find_all(hay).max_by_key(|&(_, e)| e)
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

// ---- The file's shape ------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    limits: LimitsToml,
    ni_number: KindToml,
    nhs_number: KindToml,
    upn: KindToml,
    uln: KindToml,
    payment_card: KindToml,
    date_of_birth: KindToml,
    home_address: AddressToml,
    phone_number: PhoneToml,
    not_personal: WordsToml,
    business: BusinessToml,
    pupil_list: PupilListToml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsToml {
    many: u32,
    pupil_list_min_rows: usize,
    context_before: usize,
    context_after: usize,
    dob_min_age_years: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KindToml {
    keywords: Vec<String>,
    #[serde(default)]
    columns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressToml {
    keywords: Vec<String>,
    columns: Vec<String>,
    street_words: Vec<String>,
    not_home: Vec<String>,
    events: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneToml {
    keywords: Vec<String>,
    mobile_keywords: Vec<String>,
    columns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WordsToml {
    keywords: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BusinessToml {
    signoffs: Vec<String>,
    signature_lines: usize,
    organisation: Vec<String>,
    registered: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PupilListToml {
    person_columns: Vec<String>,
    pupil_words: Vec<String>,
    pupil_columns: Vec<String>,
    staff_columns: Vec<String>,
    staff_titles: Vec<String>,
}

// ---- Compiled settings -------------------------------------------------------------

/// Keywords near a match and column headers over it, for one kind of identifier.
#[derive(Debug, Clone)]
pub struct KindWords {
    pub keywords: KeywordSet,
    pub columns: KeywordSet,
}

/// Everything from `personal_data.toml`, ready to match.
#[derive(Debug, Clone)]
pub struct Settings {
    pub many: u32,
    pub pupil_list_min_rows: usize,
    pub context_before: usize,
    pub context_after: usize,
    pub dob_min_age_years: i32,
    pub ni: KindWords,
    pub nhs: KindWords,
    pub upn: KindWords,
    pub uln: KindWords,
    pub card: KindWords,
    pub dob: KindWords,
    pub address: KindWords,
    pub street_words: Vec<String>,
    pub not_home: KeywordSet,
    pub events: KeywordSet,
    pub phone: KindWords,
    pub mobile_keywords: KeywordSet,
    pub not_personal: KeywordSet,
    pub signoffs: Vec<String>,
    pub signature_lines: usize,
    pub organisation: KeywordSet,
    pub registered: KeywordSet,
    pub person_columns: KeywordSet,
    pub pupil_words: KeywordSet,
    pub pupil_columns: KeywordSet,
    pub staff_columns: KeywordSet,
    pub staff_titles: Vec<String>,
    /// Every word that can head a table column worth a look: person and pupil words
    /// and the identifier columns (one pass over a text finds candidate headers).
    pub table_words: KeywordSet,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Settings {
    /// Parse and compile the rule file. Errors name the file and line.
    pub fn load(file: &RuleFile) -> Result<Settings, RulesError> {
        let text: &str = &file.text;
        let f: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            file.invalid(line, RULE, e.message().to_string())
        })?;
        let set = |section: &str, words: &[String]| -> Result<KeywordSet, RulesError> {
            KeywordSet::new(words).map_err(|e| {
                let line = text
                    .find(&format!("[{section}]"))
                    .map(|o| line_of(text, o))
                    .unwrap_or(1);
                file.invalid(line, RULE, format!("[{section}]: {e}"))
            })
        };
        let kind = |section: &str, k: &KindToml| -> Result<KindWords, RulesError> {
            Ok(KindWords {
                keywords: set(section, &k.keywords)?,
                columns: set(section, &k.columns)?,
            })
        };
        if f.limits.many == 0 || f.limits.pupil_list_min_rows == 0 {
            let line = text.find("[limits]").map(|o| line_of(text, o)).unwrap_or(1);
            return Err(file.invalid(
                line,
                RULE,
                "`many` and `pupil_list_min_rows` must be at least 1",
            ));
        }
        let lower = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let table_words: Vec<String> = [
            &f.pupil_list.person_columns,
            &f.pupil_list.pupil_words,
            &f.ni_number.columns,
            &f.nhs_number.columns,
            &f.upn.columns,
            &f.uln.columns,
            &f.payment_card.columns,
            &f.date_of_birth.columns,
            &f.home_address.columns,
            &f.phone_number.columns,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        Ok(Settings {
            table_words: set("pupil_list", &table_words)?,
            many: f.limits.many,
            pupil_list_min_rows: f.limits.pupil_list_min_rows,
            context_before: f.limits.context_before,
            context_after: f.limits.context_after,
            dob_min_age_years: f.limits.dob_min_age_years,
            ni: kind("ni_number", &f.ni_number)?,
            nhs: kind("nhs_number", &f.nhs_number)?,
            upn: kind("upn", &f.upn)?,
            uln: kind("uln", &f.uln)?,
            card: kind("payment_card", &f.payment_card)?,
            dob: kind("date_of_birth", &f.date_of_birth)?,
            address: KindWords {
                keywords: set("home_address", &f.home_address.keywords)?,
                columns: set("home_address", &f.home_address.columns)?,
            },
            street_words: lower(&f.home_address.street_words),
            not_home: set("home_address", &f.home_address.not_home)?,
            events: set("home_address", &f.home_address.events)?,
            phone: KindWords {
                keywords: set("phone_number", &f.phone_number.keywords)?,
                columns: set("phone_number", &f.phone_number.columns)?,
            },
            mobile_keywords: set("phone_number", &f.phone_number.mobile_keywords)?,
            not_personal: set("not_personal", &f.not_personal.keywords)?,
            signoffs: lower(&f.business.signoffs),
            signature_lines: f.business.signature_lines,
            organisation: set("business", &f.business.organisation)?,
            registered: set("business", &f.business.registered)?,
            person_columns: set("pupil_list", &f.pupil_list.person_columns)?,
            pupil_words: set("pupil_list", &f.pupil_list.pupil_words)?,
            pupil_columns: set("pupil_list", &f.pupil_list.pupil_columns)?,
            staff_columns: set("pupil_list", &f.pupil_list.staff_columns)?,
            staff_titles: lower(&f.pupil_list.staff_titles),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn words(w: &[&str]) -> KeywordSet {
        KeywordSet::new(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn keywords_match_whole_words_only() {
        let k = words(&["dob", "st", "n.i."]);
        assert!(k.found_in("Her DOB: 1/2/2010"));
        assert!(!k.found_in("Adobe Reader"));
        assert!(!k.found_in("first"));
        assert!(k.found_in("12 Mill St, Leeds"));
        assert!(k.found_in("her n.i. number"));
    }

    #[test]
    fn apostrophes_match_either_way() {
        let k = words(&["mum's"]);
        assert!(k.found_in("my mum’s number"));
        assert!(k.found_in("my MUM'S number"));
    }

    #[test]
    fn shipped_file_parses() {
        let f = crate::rules::RuleSource::embedded()
            .load("personal_data.toml")
            .unwrap();
        let s = Settings::load(&f).unwrap();
        assert!(s.many >= 1);
        assert!(s.nhs.keywords.found_in("NHS number"));
    }

    #[test]
    fn errors_name_the_line() {
        let f = RuleFile {
            origin: "rules/personal_data.toml".into(),
            text: Cow::Owned("[limits]\nmany = \"lots\"\n".into()),
        };
        let e = Settings::load(&f).unwrap_err().to_string();
        assert!(e.contains("personal_data.toml:2"), "{e}");
    }
}
