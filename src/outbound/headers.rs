//! Changes hallmonitor makes to a message it passes on — header section only.
//!
//! The body is never touched: a clean message must arrive byte-identical apart
//! from our headers. We work on raw bytes rather than re-serialising a parsed
//! message, because a parser round trip would re-fold, re-encode and
//! re-order what the sender wrote (and break DKIM signatures).

/// What to change in the header section.
#[derive(Debug, Clone, Default)]
pub struct Edits<'a> {
    /// Our headers, `(name, value)`, added at the top.
    pub add: Vec<(&'a str, String)>,
    /// Prefix for the Subject (a new Subject is added if there is none).
    pub subject_prefix: Option<String>,
    /// Remove `(Authenticated sender: …)` from the topmost Received header.
    pub strip_auth_comment: bool,
}

/// Split `raw` into (header section without the blank line, rest from the
/// blank line on). A message without a blank line is all header.
fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    while i < raw.len() {
        let line_end = raw[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| i + p + 1);
        let line = &raw[i..line_end];
        if line == b"\r\n" || line == b"\n" {
            return (&raw[..i], &raw[i..]);
        }
        i = line_end;
    }
    (raw, &[])
}

/// The header section (without the blank line) and the body after it.
pub fn header_and_body(raw: &[u8]) -> (&[u8], &[u8]) {
    let (header, rest) = split(raw);
    let body_start = rest
        .iter()
        .position(|&b| b == b'\n')
        .map_or(rest.len(), |p| p + 1);
    (header, &rest[body_start..])
}

/// Unfolded, trimmed values of the header fields called `name`.
pub fn header_values(header: &[u8], name: &str) -> Vec<String> {
    fields(header)
        .into_iter()
        .filter(|f| is_named(f, name))
        .map(|f| {
            let colon = f.iter().position(|&b| b == b':').map_or(f.len(), |p| p + 1);
            String::from_utf8_lossy(&f[colon..])
                .split('\n')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Header fields: each is its first line plus continuation lines, raw.
fn fields(header: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        let end = header[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |p| i + p + 1);
        let is_continuation = matches!(header[i], b' ' | b'\t');
        if !is_continuation && i > start {
            out.push(&header[start..i]);
            start = i;
        }
        i = end;
    }
    if start < header.len() {
        out.push(&header[start..]);
    }
    out
}

fn name_of(field: &[u8]) -> &[u8] {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(0);
    let name = &field[..colon];
    let trimmed = name.iter().rposition(|b| !b.is_ascii_whitespace());
    trimmed.map_or(&name[..0], |p| &name[..=p])
}

fn is_named(field: &[u8], name: &str) -> bool {
    name_of(field).eq_ignore_ascii_case(name.as_bytes())
}

/// All Received header values, topmost first (for the AUTH login lookup).
pub fn received_headers(raw: &[u8]) -> Vec<String> {
    let (header, _) = split(raw);
    fields(header)
        .into_iter()
        .filter(|f| is_named(f, "Received"))
        .map(|f| {
            let colon = f.iter().position(|&b| b == b':').unwrap_or(0);
            String::from_utf8_lossy(&f[(colon + 1).min(f.len())..]).into_owned()
        })
        .collect()
}

/// Apply `edits` to `raw`; the body is copied unchanged.
pub fn rewrite(raw: &[u8], edits: &Edits<'_>) -> Vec<u8> {
    let (mut out, body_start) = rewrite_header(raw, edits);
    out.extend_from_slice(&raw[body_start..]);
    out
}

/// The new header section, and where in `raw` the unchanged rest (from the
/// blank line on) starts. Sending the two parts separately avoids copying a
/// large body just to change a few header lines.
pub fn rewrite_header(raw: &[u8], edits: &Edits<'_>) -> (Vec<u8>, usize) {
    let (header, _) = split(raw);
    let crlf: &[u8] = if header.windows(2).any(|w| w == b"\r\n") || header.is_empty() {
        b"\r\n"
    } else {
        b"\n"
    };
    let mut out = Vec::with_capacity(header.len() + 256);
    for (name, value) in &edits.add {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(sanitize(value).as_bytes());
        out.extend_from_slice(crlf);
    }
    let mut subject_done = edits.subject_prefix.is_none();
    let mut received_seen = false;
    for field in fields(header) {
        let name = name_of(field);
        if name.len() >= 14 && name[..14].eq_ignore_ascii_case(b"x-hallmonitor-") {
            continue;
        }
        if !subject_done && is_named(field, "Subject") {
            if let Some(prefix) = &edits.subject_prefix {
                out.extend_from_slice(&prefix_subject(field, prefix));
            }
            subject_done = true;
            continue;
        }
        if is_named(field, "Received") && !received_seen {
            received_seen = true;
            if edits.strip_auth_comment {
                out.extend_from_slice(&strip_auth_comment(field));
                continue;
            }
        }
        out.extend_from_slice(field);
        if !field.ends_with(b"\n") {
            out.extend_from_slice(crlf);
        }
    }
    if !subject_done && let Some(prefix) = &edits.subject_prefix {
        out.extend_from_slice(b"Subject: ");
        out.extend_from_slice(encode_if_needed(prefix).as_bytes());
        out.extend_from_slice(crlf);
    }
    (out, header.len())
}

/// Header values we write must stay one line.
fn sanitize(v: &str) -> String {
    v.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// `Subject: rest` → `Subject: PREFIX rest`. The prefix is a separate word
/// (followed by a space), so an RFC 2047 encoded word that starts `rest`
/// stays an encoded word; a non-ASCII prefix is itself encoded.
fn prefix_subject(field: &[u8], prefix: &str) -> Vec<u8> {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(0);
    let mut value_start = colon + 1;
    while field
        .get(value_start)
        .is_some_and(|b| *b == b' ' || *b == b'\t')
    {
        value_start += 1;
    }
    let mut out = Vec::with_capacity(field.len() + prefix.len() + 2);
    out.extend_from_slice(&field[..=colon.min(field.len().saturating_sub(1))]);
    out.push(b' ');
    out.extend_from_slice(encode_if_needed(prefix).as_bytes());
    let rest = &field[value_start.min(field.len())..];
    if !(rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n")) {
        out.push(b' ');
    }
    out.extend_from_slice(rest);
    if !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Plain ASCII stays as it is; anything else becomes one `=?UTF-8?B?…?=` word.
fn encode_if_needed(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    format!("=?UTF-8?B?{}?=", base64(text.as_bytes()))
}

/// Standard base64 (RFC 4648, padded).
pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Remove `(Authenticated sender: …)` and the whitespace before it. Postfix
/// writes the comment on its own folded line; removing that line keeps the
/// rest of the Received header (and its queue id) intact.
fn strip_auth_comment(field: &[u8]) -> Vec<u8> {
    let lower: Vec<u8> = field.to_ascii_lowercase();
    let needle = b"(authenticated sender:";
    let Some(start) = lower.windows(needle.len()).position(|w| w == needle) else {
        return field.to_vec();
    };
    let Some(close) = field[start..].iter().position(|&b| b == b')') else {
        return field.to_vec();
    };
    let end = start + close + 1;
    let mut cut = start;
    while cut > 0 && matches!(field[cut - 1], b' ' | b'\t' | b'\r' | b'\n') {
        cut -= 1;
    }
    let mut out = field[..cut].to_vec();
    out.extend_from_slice(&field[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Received: from pc (pc [10.0.0.9])\r\n\t(Authenticated sender: j.smith)\r\n\tby mx (Postfix) with ESMTPSA id 4ABC\r\nX-Hallmonitor-Verdict: pass\r\nSubject: Hello\r\nx-hallmonitor-categories: none\r\n\r\nBody\r\n.line\r\n";

    #[test]
    fn strips_forged_headers_and_keeps_body() {
        let out = rewrite(
            MSG,
            &Edits {
                add: vec![("X-Hallmonitor-Verdict", "tag".into())],
                ..Edits::default()
            },
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("X-Hallmonitor-Verdict: tag\r\nReceived:"));
        assert_eq!(s.matches("allmonitor").count(), 1, "{s}");
        assert!(s.ends_with("\r\n\r\nBody\r\n.line\r\n"));
    }

    #[test]
    fn prefixes_subject_and_encoded_subject() {
        let e = Edits {
            subject_prefix: Some("[Flagged: profanity]".into()),
            ..Edits::default()
        };
        let s = String::from_utf8(rewrite(MSG, &e)).unwrap();
        assert!(
            s.contains("\r\nSubject: [Flagged: profanity] Hello\r\n"),
            "{s}"
        );
        let enc = b"Subject: =?UTF-8?Q?Caf=C3=A9?=\r\n\r\nx";
        let s = String::from_utf8(rewrite(enc, &e)).unwrap();
        assert!(s.starts_with("Subject: [Flagged: profanity] =?UTF-8?Q?Caf=C3=A9?=\r\n"));
    }

    #[test]
    fn adds_subject_when_missing_and_encodes_non_ascii_prefix() {
        let e = Edits {
            subject_prefix: Some("[Signalé]".into()),
            ..Edits::default()
        };
        let s = String::from_utf8(rewrite(b"From: a@b\r\n\r\nx", &e)).unwrap();
        assert_eq!(
            s,
            "From: a@b\r\nSubject: =?UTF-8?B?W1NpZ25hbMOpXQ==?=\r\n\r\nx"
        );
    }

    #[test]
    fn removes_auth_comment_from_topmost_received_only() {
        let e = Edits {
            strip_auth_comment: true,
            ..Edits::default()
        };
        let s = String::from_utf8(rewrite(MSG, &e)).unwrap();
        assert!(!s.contains("Authenticated"), "{s}");
        assert!(
            s.contains(
                "Received: from pc (pc [10.0.0.9])\r\n\tby mx (Postfix) with ESMTPSA id 4ABC\r\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn received_values_topmost_first() {
        let r = received_headers(MSG);
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("Authenticated sender: j.smith"));
    }
}
