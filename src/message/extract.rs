//! MIME tree → [`ScannedMessage`]: header facts, text with locations, decoded parts.
//! (Minimal first version: top-level text and attachments; archives and documents to come.)

use super::{HeaderFacts, Mailbox, Part, ScannedMessage, TextSegment, TextSource};
use crate::config::Limits;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use std::path::PathBuf;
use std::sync::Arc;

/// How PDFs are turned into text.
#[derive(Debug, Clone)]
pub enum PdfMode {
    /// In this process (tests, benchmarks): panics are caught, runaways are not.
    InProcess,
    /// In a worker process (`EXE extract-pdf`) with rlimits and a timeout.
    Worker(PathBuf),
}

/// Extracts a message, within limits.
#[derive(Debug, Clone)]
pub struct Extractor {
    pub limits: Limits,
    pub pdf: PdfMode,
}

impl Extractor {
    pub fn new(limits: Limits, pdf: PdfMode) -> Extractor {
        Extractor { limits, pdf }
    }

    /// Parse and extract. Never fails: what cannot be parsed is recorded in `limits_hit`.
    pub fn extract(&self, raw: &[u8]) -> ScannedMessage {
        let mut out = ScannedMessage {
            raw_size: raw.len(),
            ..ScannedMessage::default()
        };
        let Some(msg) = MessageParser::default().parse(raw) else {
            out.texts.push(TextSegment {
                location: "body".into(),
                source: TextSource::Body,
                text: String::from_utf8_lossy(raw).into_owned(),
                table: None,
            });
            return out;
        };
        out.headers = header_facts(&msg);
        if let Some(s) = msg.subject() {
            out.texts.push(TextSegment {
                location: "subject".into(),
                source: TextSource::Subject,
                text: s.to_string(),
                table: None,
            });
        }
        for i in 0..msg.text_body_count() {
            if let Some(t) = msg.body_text(i) {
                out.texts.push(TextSegment {
                    location: "body".into(),
                    source: TextSource::Body,
                    text: t.into_owned(),
                    table: None,
                });
            }
        }
        for att in msg.attachments() {
            let name = att.attachment_name().map(str::to_string);
            let declared = att.content_type().map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            });
            let data: Arc<[u8]> = Arc::from(att.contents());
            out.parts.push(Part {
                location: format!("attachment:{}", name.as_deref().unwrap_or("unnamed")),
                name,
                declared_type: declared,
                sniffed_type: infer::get(&data).map(|t| t.mime_type()),
                is_attachment: true,
                archive_depth: 0,
                facts: Default::default(),
                data,
            });
        }
        out
    }
}

fn mailboxes(v: &HeaderValue<'_>) -> Vec<Mailbox> {
    match v {
        HeaderValue::Address(a) => a
            .iter()
            .map(|m| Mailbox {
                name: m.name().map(str::to_string),
                address: m.address().map(str::to_string),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn header_facts(msg: &mail_parser::Message<'_>) -> HeaderFacts {
    let mut h = HeaderFacts::default();
    for header in msg.headers() {
        let name = header.name().to_string();
        let raw = msg
            .raw_message()
            .get(header.offset_start() as usize..header.offset_end() as usize)
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .unwrap_or_default();
        match name.to_ascii_lowercase().as_str() {
            "from" => h.from = Some(mailboxes(header.value())),
            "sender" => h.sender = mailboxes(header.value()).into_iter().next(),
            "reply-to" => h.reply_to = mailboxes(header.value()),
            "to" => h.to = mailboxes(header.value()),
            "cc" => h.cc = mailboxes(header.value()),
            "received" => h.received.push(raw.clone()),
            "auto-submitted" => h.auto_submitted = Some(raw.clone()),
            _ => {}
        }
        h.all.push((name, raw));
    }
    h.subject = msg.subject().map(str::to_string);
    h.message_id = msg.message_id().map(str::to_string);
    if let Some(ct) = msg.content_type() {
        h.content_type = Some(match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        });
        h.report_type = ct.attribute("report-type").map(str::to_string);
    }
    h
}

/// Entry point of the `extract-pdf` worker process: PDF on stdin, text on stdout.
pub fn pdf_worker_main() -> anyhow::Result<std::process::ExitCode> {
    use std::io::{Read, Write};
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf)?;
    let text = pdf_extract::extract_text_from_mem(&buf).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(std::process::ExitCode::SUCCESS)
}
