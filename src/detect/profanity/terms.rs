//! The rule-file language of `profanity.txt` and `profanity_allow.txt`.
//!
//! A school edits these files, so the syntax stays small:
//!
//! * `wank{|s|ed|er|ers|ing}  strong` — `{a|b|c}` lists alternatives (an empty one is allowed),
//!   so one line covers a word's inflections;
//! * `@define WILL = i'll | i will | im gonna` and then `<WILL> kill you  threat` — a named
//!   list of alternatives, for the many ways of saying the same threat;
//! * the last fields of a line are the severity and an optional match mode; everything before
//!   them is the word or phrase.

use std::collections::HashMap;

/// Most expansions one line may produce (a typo such as nested defines must not explode).
pub const MAX_EXPANSIONS: usize = 20_000;
/// Deepest `<NAME>` nesting.
const MAX_DEFINE_DEPTH: usize = 4;

/// How a listed word has to sit in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A word of its own (default): `tit` does not match in `title`.
    Whole,
    /// Starts a word, may continue: `shit` matches `shitty` and `shithead`.
    Prefix,
    /// Ends a word: `fucker` in `motherfucker`.
    Suffix,
    /// Anywhere, even inside other words: only for words that are never innocent inside
    /// others (`fuck` in `absofuckinglutely`).
    Embedded,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "whole" => Some(Mode::Whole),
            "prefix" => Some(Mode::Prefix),
            "suffix" => Some(Mode::Suffix),
            "embedded" => Some(Mode::Embedded),
            _ => None,
        }
    }
}

/// The tiers of offensive language (after Ofcom's research on offensive language), plus
/// discriminatory language and threats. Each is its own rule id, `profanity/<tier>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Mild,
    Medium,
    Strong,
    Hate,
    Threat,
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Tier::Mild,
        Tier::Medium,
        Tier::Strong,
        Tier::Hate,
        Tier::Threat,
    ];

    pub fn parse(s: &str) -> Option<Tier> {
        match s.to_ascii_lowercase().as_str() {
            "mild" => Some(Tier::Mild),
            "medium" => Some(Tier::Medium),
            "strong" => Some(Tier::Strong),
            "hate" => Some(Tier::Hate),
            "threat" => Some(Tier::Threat),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Mild => "mild",
            Tier::Medium => "medium",
            Tier::Strong => "strong",
            Tier::Hate => "hate",
            Tier::Threat => "threat",
        }
    }
}

/// `@define` lines seen so far in one file.
#[derive(Debug, Default)]
pub struct Defines {
    map: HashMap<String, String>,
}

impl Defines {
    /// Parse `@define NAME = a | b | c` (the text after `@define`).
    pub fn define(&mut self, rest: &str) -> Result<(), String> {
        let (name, value) = rest
            .split_once('=')
            .ok_or("`@define` needs `NAME = alternative | alternative …`")?;
        let name = name.trim();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`{name}` is not a valid name (letters, digits, `_`)"
            ));
        }
        let alts: Vec<&str> = value.split('|').map(str::trim).collect();
        self.map
            .insert(name.to_string(), format!("{{{}}}", alts.join("|")));
        Ok(())
    }

    /// Replace `<NAME>` references by their `{…}` alternatives.
    fn substitute(&self, term: &str, depth: usize) -> Result<String, String> {
        if !term.contains('<') {
            return Ok(term.to_string());
        }
        if depth >= MAX_DEFINE_DEPTH {
            return Err("`<NAME>` references nest too deeply".into());
        }
        let mut out = String::with_capacity(term.len());
        let mut rest = term;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after
                .find('>')
                .ok_or_else(|| format!("`<` without `>` in `{term}`"))?;
            let name = &after[..close];
            let value = self
                .map
                .get(name)
                .ok_or_else(|| format!("`<{name}>` is not defined (use `@define {name} = …`)"))?;
            out.push_str(&self.substitute(value, depth + 1)?);
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// All the plain strings a term stands for.
    pub fn expand(&self, term: &str) -> Result<Vec<String>, String> {
        let term = self.substitute(term, 0)?;
        let chars: Vec<char> = term.chars().collect();
        let mut pos = 0;
        let out = parse_seq(&chars, &mut pos)?;
        match chars.get(pos) {
            None => Ok(out
                .into_iter()
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|s| !s.is_empty())
                .collect()),
            Some('|') => Err("`|` outside `{…}`".into()),
            Some(c) => Err(format!("unexpected `{c}` (unbalanced braces)")),
        }
    }
}

/// A sequence up to (not including) `|`, `}` or the end.
fn parse_seq(chars: &[char], pos: &mut usize) -> Result<Vec<String>, String> {
    let mut acc = vec![String::new()];
    while let Some(&c) = chars.get(*pos) {
        match c {
            '|' | '}' => break,
            '{' => {
                *pos += 1;
                let alts = parse_alts(chars, pos)?;
                if acc.len().saturating_mul(alts.len()) > MAX_EXPANSIONS {
                    return Err(format!("expands to more than {MAX_EXPANSIONS} forms"));
                }
                acc = acc
                    .iter()
                    .flat_map(|a| alts.iter().map(move |b| format!("{a}{b}")))
                    .collect();
            }
            _ => {
                for a in &mut acc {
                    a.push(c);
                }
                *pos += 1;
            }
        }
    }
    Ok(acc)
}

/// Alternatives after a `{`, through the matching `}`.
fn parse_alts(chars: &[char], pos: &mut usize) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    loop {
        out.extend(parse_seq(chars, pos)?);
        if out.len() > MAX_EXPANSIONS {
            return Err(format!("expands to more than {MAX_EXPANSIONS} forms"));
        }
        match chars.get(*pos) {
            Some('|') => *pos += 1,
            Some('}') => {
                *pos += 1;
                return Ok(out);
            }
            _ => return Err("`{` without `}`".into()),
        }
    }
}

/// Split a leading `[context]` off a term: words that must come right before the match
/// (`[<WILL>] kill you`). Keeping the many ways of saying "I will" out of the automaton keeps
/// it small: they are checked only where "kill you" matched.
pub fn split_context(term: &str) -> Result<(Option<&str>, &str), String> {
    let Some(rest) = term.strip_prefix('[') else {
        if term.contains('[') || term.contains(']') {
            return Err("`[…]` may only stand at the start of a phrase".into());
        }
        return Ok((None, term));
    };
    let (context, after) = rest.split_once(']').ok_or("`[` without `]`")?;
    let after = after.trim();
    if after.is_empty() {
        return Err(
            "nothing after `[…]`: the context must be followed by the words to match".into(),
        );
    }
    if context.trim().is_empty() || after.contains('[') || after.contains(']') {
        return Err("`[…]` must hold words and stand only at the start of a phrase".into());
    }
    Ok((Some(context), after))
}

/// One parsed line of `profanity.txt`: `term severity [mode]`.
#[derive(Debug, PartialEq)]
pub struct ProfaneLine<'a> {
    pub term: String,
    pub tier: Tier,
    pub mode: Mode,
    /// The whole line, to name the rule in errors.
    pub raw: &'a str,
}

/// Parse `term severity [mode]`; the error names what is wrong.
pub fn parse_profane_line(line: &str) -> Result<ProfaneLine<'_>, String> {
    let mut fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 2 {
        return Err(
            "missing severity: write `word severity [mode]`, severity one of mild, medium, strong, hate, threat"
                .into(),
        );
    }
    let mut mode = Mode::Whole;
    if let Some(m) = fields.last().and_then(|f| Mode::parse(f)) {
        mode = m;
        fields.pop();
    }
    let severity = fields.pop().unwrap_or_default();
    let tier = Tier::parse(severity).ok_or_else(|| {
        format!(
            "unknown severity `{severity}` (expected mild, medium, strong, hate or threat; mode, if given, one of whole, prefix, suffix, embedded)"
        )
    })?;
    if fields.is_empty() {
        return Err("missing word or phrase before the severity".into());
    }
    Ok(ProfaneLine {
        term: fields.join(" "),
        tier,
        mode,
        raw: line,
    })
}

/// Parse an allow-list line: `term [mode]` (mode defaults to `embedded`: the allowed word
/// protects whatever lies inside it wherever it appears).
pub fn parse_allow_line(line: &str) -> (String, Mode) {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.split_last() {
        Some((last, rest)) if !rest.is_empty() => match Mode::parse(last) {
            Some(m) => (rest.join(" "), m),
            None => (fields.join(" "), Mode::Embedded),
        },
        _ => (fields.join(" "), Mode::Embedded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_to_every_form() {
        let d = Defines::default();
        assert_eq!(
            d.expand("wank{|s|er}").unwrap(),
            vec!["wank", "wanks", "wanker"]
        );
        assert_eq!(
            d.expand("{a|b} {c|d}").unwrap(),
            vec!["a c", "a d", "b c", "b d"]
        );
        assert_eq!(d.expand("x{y{1|2}|z}").unwrap(), vec!["xy1", "xy2", "xz"]);
    }

    #[test]
    fn defines_substitute_and_nest() {
        let mut d = Defines::default();
        d.define("YOU = you | u").unwrap();
        d.define("WILL = ill | i will").unwrap();
        d.define("THREAT = <WILL> kill <YOU>").unwrap();
        let forms = d.expand("<THREAT>").unwrap();
        assert_eq!(forms.len(), 4);
        assert!(forms.contains(&"i will kill u".to_string()));
    }

    #[test]
    fn malformed_terms_are_errors() {
        let d = Defines::default();
        assert!(d.expand("wank{s").is_err());
        assert!(d.expand("wank}s").is_err());
        assert!(d.expand("a|b").is_err());
        assert!(d.expand("<NOPE> x").unwrap_err().contains("not defined"));
        let mut d2 = Defines::default();
        assert!(d2.define("bad name = x").is_err());
        d2.define("A = {a|b|c|d|e|f|g|h|i|j}").unwrap();
        assert!(d2.expand("<A><A><A><A><A>").is_err());
    }

    #[test]
    fn profane_lines_parse_from_the_right() {
        let l = parse_profane_line("i know where you live  threat").unwrap();
        assert_eq!(
            (l.term.as_str(), l.tier, l.mode),
            ("i know where you live", Tier::Threat, Mode::Whole)
        );
        let l = parse_profane_line("fuck{|s}  strong  embedded").unwrap();
        assert_eq!((l.tier, l.mode), (Tier::Strong, Mode::Embedded));
        assert!(
            parse_profane_line("fuck")
                .unwrap_err()
                .contains("missing severity")
        );
        assert!(
            parse_profane_line("fuck strng")
                .unwrap_err()
                .contains("unknown severity `strng`")
        );
        assert!(
            parse_profane_line("strong embedded")
                .unwrap_err()
                .contains("missing word")
        );
    }

    #[test]
    fn context_splits_off_the_front() {
        assert_eq!(
            split_context("[<WILL>] kill you").unwrap(),
            (Some("<WILL>"), "kill you")
        );
        assert_eq!(split_context("kill you").unwrap(), (None, "kill you"));
        assert!(split_context("[x] ").is_err());
        assert!(split_context("[x kill you").is_err());
        assert!(split_context("kill [x] you").is_err());
    }

    #[test]
    fn allow_lines_default_to_embedded() {
        assert_eq!(
            parse_allow_line("Scunthorpe"),
            ("Scunthorpe".into(), Mode::Embedded)
        );
        assert_eq!(
            parse_allow_line("hell of a"),
            ("hell of a".into(), Mode::Embedded)
        );
        assert_eq!(parse_allow_line("dick whole"), ("dick".into(), Mode::Whole));
    }
}
