//! Raw message → [`ScannedMessage`]: header facts, every piece of text with its
//! location, every decoded part with its facts, and the limits reached.
//!
//! # Locations
//!
//! | location | what |
//! |---|---|
//! | `subject` | the Subject header (RFC 2047 decoded) |
//! | `body` | a text/plain body part |
//! | `body:html` | the visible text of a text/html body part |
//! | `attachment:NAME` | an attachment (`attachment:partN` when it has no name; N = MIME part index) |
//! | `attachment:NAME/PATH` | a member of an attached zip, at any depth (`attachment:a.zip/b.zip/c.txt`) |
//! | `attachment:NAME#SHEET` | one sheet of a spreadsheet (`attachment:pupils.zip/list.xlsx#Sheet2`) |
//! | `message:NAME/…` | inside a forwarded message/rfc822 part: `message:fwd.eml/subject`, `message:fwd.eml/body`, `message:fwd.eml/attachment:notes.txt`; unnamed ones are `forwarded.eml`, `forwarded-2.eml`, … and nest (`message:a.eml/message:forwarded.eml/body`) |
//!
//! A limit or failure is reported at the location of the thing it stopped
//! (a zip member, a sheet, a part).
//!
//! # What becomes a part
//!
//! Every decoded leaf MIME part, body text parts included (`is_attachment`
//! false for the top-level message's own body parts), and every file inside a
//! zip (`archive_depth` ≥ 1). Documents (docx, xlsx, odt…) are not expanded
//! into parts; their zip layer is read only for text and macro/encryption facts.
//! Encrypted content (S/MIME enveloped, PGP, password-protected zips entries,
//! PDFs and Office files) is a part with `facts.encrypted` and yields no text;
//! `ScannedMessage::encrypted` is set when the message body itself is encrypted.
//!
//! # Never fails
//!
//! Unparseable input is scanned as far as it goes; each attachment is analysed
//! behind `catch_unwind`; PDFs run in a sandboxed worker process (see
//! `message::pdf`); zips are expanded only within the limits (see
//! `message::archive`). The fast path — a small text or HTML message without
//! attachments — is one mail-parser pass plus a linear HTML scan.

use super::ctx::Ctx;
use super::mime::{self, Scope};
use super::{HeaderFacts, Mailbox, ScannedMessage, TextSource};
use crate::config::Limits;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use std::path::PathBuf;

/// How PDFs are turned into text.
#[derive(Debug, Clone)]
pub enum PdfMode {
    /// In this process (tests, benchmarks): panics are caught, runaways are not.
    InProcess,
    /// In a worker process (`EXE extract-pdf`) with rlimits and a timeout.
    Worker(PathBuf),
    /// Not here: the message is extracted again on a thread that may block
    /// (see [`Extractor::extract_inline`]).
    Defer,
}

/// Bytes that archives and documents of a message extracted on an async
/// worker thread may expand to (a few milliseconds of inflating at most).
pub const INLINE_EXPANDED_BYTES: u64 = 1024 * 1024;

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
        self.extract_with(raw, &self.limits, &self.pdf).0
    }

    /// Extract a small message cheaply enough to do on an async worker
    /// thread, or None when it needs [`Extractor::extract`] on a thread that
    /// may block: it holds a PDF (read by a worker process), or its archives
    /// and documents expand beyond [`INLINE_EXPANDED_BYTES`].
    pub fn extract_inline(&self, raw: &[u8]) -> Option<ScannedMessage> {
        let mut limits = self.limits.clone();
        let budget = INLINE_EXPANDED_BYTES.min(limits.max_expanded_bytes);
        limits.max_expanded_bytes = budget;
        let (message, deferred) = self.extract_with(raw, &limits, &PdfMode::Defer);
        let over_budget = budget < self.limits.max_expanded_bytes
            && message
                .limits_hit
                .iter()
                .any(|l| l.limit == "expanded_bytes");
        (!deferred && !over_budget).then_some(message)
    }

    /// The extraction; true when a PDF was left for a thread that may block.
    fn extract_with(&self, raw: &[u8], limits: &Limits, pdf: &PdfMode) -> (ScannedMessage, bool) {
        let mut ctx = Ctx::new(limits, pdf, raw.len());
        let mut raw = raw;
        if raw.len() > limits.max_message_bytes {
            ctx.hit(
                "message",
                "message_size",
                format!(
                    "{} bytes; only the first {} were scanned",
                    raw.len(),
                    limits.max_message_bytes
                ),
            );
            raw = &raw[..limits.max_message_bytes];
        }
        let Some(msg) = MessageParser::default().parse(raw) else {
            // No header could be parsed: scan the bytes as one text body.
            ctx.hit("message", "extract_failed", "no message headers found");
            ctx.text(
                "body".into(),
                TextSource::Body,
                super::sniff::decode_text(raw).into_owned(),
                None,
            );
            return (ctx.out, ctx.pdf_deferred);
        };
        ctx.out.headers = header_facts(&msg);
        if let Some(s) = msg.subject() {
            ctx.text("subject".into(), TextSource::Subject, s.to_string(), None);
        }
        mime::walk_part(&mut ctx, &msg, 0, &mut Scope::top(), 0);
        mime::dismantle(msg);
        (ctx.out, ctx.pdf_deferred)
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
    super::pdf::worker_main()
}

#[cfg(test)]
mod tests;
