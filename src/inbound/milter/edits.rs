//! The header section as the milter sees it (one `SMFIC_HEADER` per field),
//! the message bytes rebuilt from it for the scanner, and the header changes
//! for a passed or tagged message: every `X-Hallmonitor-*` field already in
//! the message deleted (index-based `SMFIR_CHGHEADER` with an empty value),
//! ours added, and for `tag` the Subject changed. The text of the new
//! Subject comes from the relay's own rewriting code, so both front-ends
//! write the same prefix.

use crate::disposition::Marking;
use crate::outbound::headers::{self, Edits};

/// One header field as received: name and value (no leading space, folded
/// lines with CRLF), and its 1-based index among fields of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
    pub index: u32,
}

/// A change to send at end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Delete (empty value) or replace the `index`th field called `name`.
    Change {
        index: u32,
        name: String,
        value: String,
    },
    /// Append a field to the header section.
    Add { name: String, value: String },
}

/// The fields of the message being received.
#[derive(Debug, Default, Clone)]
pub struct HeaderSection {
    pub fields: Vec<Field>,
    /// Bytes of the header section as rebuilt (for the size limit).
    pub bytes: usize,
}

/// Folded values: Postfix may send line breaks as LF; the scanner gets CRLF.
fn crlf(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut prev = '\0';
    for c in value.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

impl HeaderSection {
    pub fn push(&mut self, name: &str, value: &str) {
        let index = self
            .fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .count() as u32
            + 1;
        let value = crlf(value);
        self.bytes += name.len() + 2 + value.len() + 2;
        self.fields.push(Field {
            name: name.to_string(),
            value,
            index,
        });
    }

    /// The header section as it travelled (`Name: value` CRLF …), then the
    /// blank line.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for f in &self.fields {
            out.extend_from_slice(f.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(f.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The changes that put `marking` on the message.
    pub fn changes(&self, marking: &Marking) -> Vec<Change> {
        let mut out = Vec::new();
        // Delete from the last index down, so no deletion shifts the index
        // of another one, whatever the MTA does with deleted slots.
        for f in self.fields.iter().rev() {
            if is_ours(&f.name) {
                out.push(Change::Change {
                    index: f.index,
                    name: f.name.clone(),
                    value: String::new(),
                });
            }
        }
        for (name, value) in &marking.headers {
            out.push(Change::Add {
                name: (*name).to_string(),
                value: one_line(value),
            });
        }
        if let Some(prefix) = &marking.subject_prefix {
            let subject = self
                .fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case("Subject"));
            let new = new_subject(subject.map(|f| f.value.as_str()), prefix);
            match subject {
                Some(f) => out.push(Change::Change {
                    index: f.index,
                    name: f.name.clone(),
                    value: new,
                }),
                None => out.push(Change::Add {
                    name: "Subject".into(),
                    value: new,
                }),
            }
        }
        out
    }
}

fn is_ours(name: &str) -> bool {
    name.len() >= 14 && name[..14].eq_ignore_ascii_case("x-hallmonitor-")
}

fn one_line(v: &str) -> String {
    v.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// The tagged Subject value, written by the relay's header rewriter.
fn new_subject(old: Option<&str>, prefix: &str) -> String {
    let mut raw = Vec::new();
    if let Some(v) = old {
        raw.extend_from_slice(b"Subject: ");
        raw.extend_from_slice(v.as_bytes());
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    let edits = Edits {
        add: Vec::new(),
        subject_prefix: Some(prefix.to_string()),
        strip_auth_comment: false,
    };
    let (header, _) = headers::rewrite_header(&raw, &edits);
    let text = String::from_utf8_lossy(&header);
    let text = text.trim_end_matches(['\r', '\n']);
    let value = text.split_once(':').map_or(text, |(_, v)| v);
    value.strip_prefix(' ').unwrap_or(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marking(prefix: Option<&str>) -> Marking {
        Marking {
            headers: vec![
                ("X-Hallmonitor-Verdict", "tag".into()),
                ("X-Hallmonitor-Categories", "profanity".into()),
            ],
            subject_prefix: prefix.map(str::to_string),
        }
    }

    #[test]
    fn rebuilds_the_header_section_with_crlf() {
        let mut h = HeaderSection::default();
        h.push("From", "a@b");
        h.push("Subject", "one\n\ttwo");
        let mut out = Vec::new();
        h.write_to(&mut out);
        assert_eq!(out, b"From: a@b\r\nSubject: one\r\n\ttwo\r\n\r\n");
        assert_eq!(h.bytes, out.len() - 2);
    }

    #[test]
    fn deletes_old_verdict_headers_from_the_last_and_tags_the_subject() {
        let mut h = HeaderSection::default();
        h.push("X-Hallmonitor-Verdict", "pass");
        h.push("Subject", "Hello");
        h.push("x-hallmonitor-verdict", "pass");
        h.push("X-Hallmonitor-Version", "0");
        let c = h.changes(&marking(Some("[SUSPECT]")));
        assert_eq!(
            c[..3],
            [
                Change::Change {
                    index: 1,
                    name: "X-Hallmonitor-Version".into(),
                    value: String::new()
                },
                Change::Change {
                    index: 2,
                    name: "x-hallmonitor-verdict".into(),
                    value: String::new()
                },
                Change::Change {
                    index: 1,
                    name: "X-Hallmonitor-Verdict".into(),
                    value: String::new()
                },
            ]
        );
        assert_eq!(
            c[3],
            Change::Add {
                name: "X-Hallmonitor-Verdict".into(),
                value: "tag".into()
            }
        );
        assert_eq!(
            c[5],
            Change::Change {
                index: 1,
                name: "Subject".into(),
                value: "[SUSPECT] Hello".into()
            }
        );
    }

    #[test]
    fn adds_a_subject_when_there_is_none_and_encodes_non_ascii() {
        let h = HeaderSection::default();
        let c = h.changes(&marking(Some("[Geprüft]")));
        assert_eq!(
            c.last(),
            Some(&Change::Add {
                name: "Subject".into(),
                value: "=?UTF-8?B?W0dlcHLDvGZ0XQ==?=".into()
            })
        );
        assert_eq!(h.changes(&marking(None)).len(), 2);
    }
}
