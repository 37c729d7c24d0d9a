//! HTML → the text a reader sees.
//!
//! Detectors match words, so the conversion must not split or join words
//! differently from a browser: inline tags (`f<b>u</b>ck`) vanish without a
//! space, block tags (`<p>`, `<div>`, `<br>`, `<li>`, table rows) become line
//! breaks, table cells become tabs, runs of white space collapse to one space,
//! and entities (named, decimal, hex) are decoded — including the HTML5 named
//! set (`&fscr;`), which obfuscators like. `<script>`, `<style>`, `<template>`,
//! comments and processing instructions are dropped. One linear pass, no regex.

/// Tags whose content is never shown.
fn skips_content(name: &str) -> bool {
    matches!(
        name,
        "script" | "style" | "template" | "xml" | "object" | "applet"
    )
}

/// Tags that start a new line (a browser renders them as blocks or breaks).
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "br"
            | "caption"
            | "center"
            | "dd"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "frame"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "header"
            | "hr"
            | "html"
            | "iframe"
            | "legend"
            | "li"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "option"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "tbody"
            | "tfoot"
            | "thead"
            | "title"
            | "tr"
            | "ul"
    )
}

/// Bytes that end a run of plain text.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'<' as usize] = true;
    t[b'&' as usize] = true;
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[0x0c] = true;
    t
};

/// Convert HTML to visible text. `max_out` bounds the output (bytes, approx.).
pub(crate) fn html_to_text(html: &str, max_out: usize) -> String {
    let mut c = Converter {
        out: String::with_capacity(html.len().min(max_out) / 2 + 16),
        pre: 0,
        max_out,
    };
    c.run(html);
    c.finish()
}

struct Converter {
    out: String,
    /// Depth of `<pre>`: white space is kept inside.
    pre: usize,
    max_out: usize,
}

impl Converter {
    fn run(&mut self, html: &str) {
        let bytes = html.as_bytes();
        let mut i = 0;
        let mut text_start = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if SPECIAL[b as usize] && self.out.len() > self.max_out {
                return;
            }
            match b {
                b'<' => {
                    self.text(&html[text_start..i]);
                    i = self.tag(html, i);
                    text_start = i;
                }
                b'&' => {
                    self.text(&html[text_start..i]);
                    i = self.entity(html, i);
                    text_start = i;
                }
                b' ' | b'\t' | b'\n' | b'\r' | 0x0c => {
                    self.text(&html[text_start..i]);
                    if self.pre > 0 {
                        if b == b'\n' {
                            self.out.push('\n');
                        } else if b != b'\r' {
                            self.out.push(' ');
                        }
                    } else {
                        self.space();
                    }
                    i += 1;
                    text_start = i;
                }
                _ => {
                    i += 1;
                    while i < bytes.len() && !SPECIAL[bytes[i] as usize] {
                        i += 1;
                    }
                }
            }
        }
        self.text(&html[text_start.min(html.len())..]);
    }

    fn text(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// Collapsible white space: one space, none after a line break or at the start.
    fn space(&mut self) {
        match self.out.as_bytes().last() {
            None | Some(b' ' | b'\n' | b'\t') => {}
            _ => self.out.push(' '),
        }
    }

    fn newline(&mut self) {
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn cell(&mut self) {
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        match self.out.as_bytes().last() {
            None | Some(b'\n' | b'\t') => {}
            _ => self.out.push('\t'),
        }
    }

    /// Handle markup starting at `i` (a `<`); returns the index after it.
    fn tag(&mut self, html: &str, i: usize) -> usize {
        let bytes = html.as_bytes();
        let rest = &bytes[i..];
        if rest.starts_with(b"<!--") {
            return match super::sniff::find(&rest[4..], b"-->") {
                Some(p) => i + 4 + p + 3,
                None => bytes.len(),
            };
        }
        let (closing, name_start) = match rest.get(1) {
            Some(b'/') => (true, i + 2),
            Some(b'!' | b'?') => return skip_to_gt(bytes, i + 1),
            Some(c) if c.is_ascii_alphabetic() => (false, i + 1),
            _ => {
                // A lone `<` is text.
                self.out.push('<');
                return i + 1;
            }
        };
        let mut name_end = name_start;
        while name_end < bytes.len()
            && (bytes[name_end].is_ascii_alphanumeric() || matches!(bytes[name_end], b':' | b'-'))
        {
            name_end += 1;
        }
        let end = skip_to_gt(bytes, name_end);
        let mut name_buf = [0u8; 16];
        let raw_name = &bytes[name_start..name_end];
        if raw_name.is_empty() || raw_name.len() > name_buf.len() {
            return end; // unknown tag: inline
        }
        for (d, s) in name_buf.iter_mut().zip(raw_name) {
            *d = s.to_ascii_lowercase();
        }
        let name = std::str::from_utf8(&name_buf[..raw_name.len()]).unwrap_or("");
        if !closing && skips_content(name) {
            return skip_element(bytes, end, name);
        }
        if name == "pre" {
            if closing {
                self.pre = self.pre.saturating_sub(1);
            } else {
                self.pre += 1;
            }
        }
        if name == "td" || name == "th" {
            if !closing {
                self.cell();
            }
        } else if is_block(name) {
            self.newline();
        }
        end
    }

    /// Decode an entity at `i` (a `&`); returns the index after it.
    fn entity(&mut self, html: &str, i: usize) -> usize {
        let bytes = html.as_bytes();
        let rest = &bytes[i + 1..];
        if let Some(num) = rest.strip_prefix(b"#") {
            let (hex, digits) = match num.first() {
                Some(b'x' | b'X') => (true, &num[1..]),
                _ => (false, num),
            };
            let len = digits
                .iter()
                .take_while(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
                .count();
            if len == 0 {
                self.out.push('&');
                return i + 1;
            }
            let text = std::str::from_utf8(&digits[..len]).unwrap_or("0");
            let value = u32::from_str_radix(text, if hex { 16 } else { 10 }).unwrap_or(0xFFFD);
            self.push_char_ref(value);
            let mut next = i + 2 + usize::from(hex) + len;
            if bytes.get(next) == Some(&b';') {
                next += 1;
            }
            return next;
        }
        let len = rest
            .iter()
            .take(40)
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if len > 0 {
            let name = std::str::from_utf8(&rest[..len]).unwrap_or("");
            let has_semicolon = rest.get(len) == Some(&b';');
            if has_semicolon && let Some(c) = math_letter_entity(name) {
                self.out.push(c);
                return i + 2 + len;
            }
            if (has_semicolon || LEGACY_NO_SEMICOLON.contains(&name))
                && let Some(s) =
                    common_entity(name).or_else(|| quick_xml::escape::resolve_html5_entity(name))
            {
                if s == "\u{a0}" {
                    self.space_nbsp();
                } else {
                    self.out.push_str(s);
                }
                return i + 1 + len + usize::from(has_semicolon);
            }
        }
        self.out.push('&');
        i + 1
    }

    /// A non-breaking space separates words like a space but does not collapse.
    fn space_nbsp(&mut self) {
        self.out.push(' ');
    }

    fn push_char_ref(&mut self, v: u32) {
        let c = match v {
            0x80..=0x9f => WINDOWS_1252_C1[(v - 0x80) as usize],
            0xa0 => ' ',
            0 => '\u{fffd}',
            _ => char::from_u32(v).unwrap_or('\u{fffd}'),
        };
        self.out.push(c);
    }

    fn finish(mut self) -> String {
        while self.out.ends_with([' ', '\n', '\t']) {
            self.out.pop();
        }
        self.out
    }
}

/// `&fscr;`, `&Ffr;`, `&zopf;`…: mathematical script, fraktur and double-struck
/// letters (astral code points, which quick-xml's table gets wrong). Letters
/// that live in the Letterlike Symbols block are left to the table.
fn math_letter_entity(name: &str) -> Option<char> {
    let bytes = name.as_bytes();
    let letter = *bytes.first()?;
    if !letter.is_ascii_alphabetic() {
        return None;
    }
    let (upper_base, lower_base, holes): (u32, u32, &[u8]) = match &name[1..] {
        "scr" => (0x1d49c, 0x1d4b6, b"BEFHILMRego"),
        "fr" => (0x1d504, 0x1d51e, b"CHIRZ"),
        "opf" => (0x1d538, 0x1d552, b"CHNPQRZ"),
        _ => return None,
    };
    if holes.contains(&letter) {
        return None;
    }
    let cp = if letter.is_ascii_uppercase() {
        upper_base + u32::from(letter - b'A')
    } else {
        lower_base + u32::from(letter - b'a')
    };
    char::from_u32(cp)
}

/// The entities mail actually uses, answered without quick-xml's table (a
/// match over two thousand names).
fn common_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "nbsp" => "\u{a0}",
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "rsquo" => "\u{2019}",
        "lsquo" => "\u{2018}",
        "rdquo" => "\u{201d}",
        "ldquo" => "\u{201c}",
        "ndash" => "\u{2013}",
        "mdash" => "\u{2014}",
        "hellip" => "\u{2026}",
        "pound" => "\u{a3}",
        "euro" => "\u{20ac}",
        "copy" => "\u{a9}",
        "reg" => "\u{ae}",
        "bull" => "\u{2022}",
        "middot" => "\u{b7}",
        _ => return None,
    })
}

/// Entities browsers accept without the semicolon (the common ones).
const LEGACY_NO_SEMICOLON: &[&str] = &["amp", "lt", "gt", "quot", "nbsp", "copy", "reg"];

/// Numeric references 128–159 mean Windows-1252 characters (HTML spec).
const WINDOWS_1252_C1: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// Index after the `>` that ends a tag, honouring quoted attribute values.
fn skip_to_gt(bytes: &[u8], mut i: usize) -> usize {
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'>' => return i + 1,
                _ => {}
            },
        }
        i += 1;
    }
    bytes.len()
}

/// Skip to after `</name ...>` (case-insensitive), or to the end.
fn skip_element(bytes: &[u8], mut i: usize, name: &str) -> usize {
    while i < bytes.len() {
        let Some(p) = super::sniff::find(&bytes[i..], b"</") else {
            return bytes.len();
        };
        let start = i + p + 2;
        let candidate = bytes.get(start..start + name.len());
        if candidate.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes()))
            && !bytes
                .get(start + name.len())
                .is_some_and(|b| b.is_ascii_alphanumeric())
        {
            return skip_to_gt(bytes, start + name.len());
        }
        i = start;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        html_to_text(s, usize::MAX)
    }

    #[test]
    fn inline_tags_do_not_split_words() {
        assert_eq!(t("f<b>u</b>ck"), "fuck");
        assert_eq!(
            t("<span style='x'>sh</span><i>i</i><font color=red>t</font>"),
            "shit"
        );
        assert_eq!(t("a<a href=\"x>y\">b</a>c"), "abc");
    }

    #[test]
    fn block_tags_make_lines() {
        assert_eq!(t("<p>one</p><p>two</p>"), "one\ntwo");
        assert_eq!(t("one<br>two<br/>three"), "one\ntwo\nthree");
        assert_eq!(t("<ul><li>a</li><li>b</li></ul>"), "a\nb");
        assert_eq!(
            t(
                "<table><tr><td>Name</td><td>DOB</td></tr><tr><td>Ann</td><td>1/2/2013</td></tr></table>"
            ),
            "Name\tDOB\nAnn\t1/2/2013"
        );
        assert_eq!(t("<div>x</div>\n\n  <div>y</div>"), "x\ny");
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(t("&#102;&#x75;&#99;&#X6B;"), "fuck");
        assert_eq!(
            t("fish &amp; chips &lt;3 &quot;q&quot;"),
            "fish & chips <3 \"q\""
        );
        assert_eq!(t("caf&eacute; &pound;5 &hellip;"), "café £5 …");
        assert_eq!(t("a&nbsp;b"), "a b");
        assert_eq!(t("&fscr;&Ufr;&copf;&Hscr;"), "𝒻𝔘𝕔ℋ");
        assert_eq!(t("&#150;"), "–");
        assert_eq!(t("AT&T &unknown; & x"), "AT&T &unknown; & x");
        assert_eq!(t("&lt;b&gt;"), "<b>");
    }

    #[test]
    fn scripts_styles_comments_dropped() {
        assert_eq!(
            t("<style>p{color:red}</style>hi<script>var a='</p>';</script> there<!-- hidden -->!"),
            "hi there!"
        );
        assert_eq!(t("<SCRIPT type=x>bad</SCRIPT >ok"), "ok");
        assert_eq!(t("<!DOCTYPE html><?xml x?>ok"), "ok");
        assert_eq!(t("x<script>never closed"), "x");
    }

    #[test]
    fn white_space_collapses_but_pre_keeps_lines() {
        assert_eq!(t("a  \r\n  b"), "a b");
        assert_eq!(t("<pre>a\n  b</pre>"), "a\n  b");
        assert_eq!(t("1 < 2"), "1 < 2");
    }

    #[test]
    fn output_is_bounded() {
        let big = "word ".repeat(10_000);
        assert!(html_to_text(&big, 100).len() < 200);
    }
}
