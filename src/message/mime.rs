//! Walk the MIME tree mail-parser built: body text and HTML become text
//! segments, every leaf becomes a [`Part`], attachments go to [`file`],
//! message/rfc822 parts are walked as forwarded messages, and S/MIME / PGP
//! encryption is recognised.
//!
//! mail-parser has already undone the transfer encodings and the charsets. Two
//! repairs: a text part whose declared charset was wrong (Latin-1 bytes called
//! UTF-8, or no charset at all) is re-decoded as Windows-1252 rather than left
//! full of U+FFFD; and a text *attachment* keeps its original bytes (so a PE
//! file declared `text/plain` is still a PE file to the detectors).

use super::ctx::Ctx;
use super::file::{self, Blob};
use super::smime::{self, Pkcs7Kind};
use super::{Encryption, Part, PartFacts, TextSource, html, sniff};
use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use std::borrow::Cow;
use std::sync::Arc;

/// Most parts (MIME leaves and archive members) kept for one message: each is
/// sent to clamd, so a message of 100,000 tiny parts must not cost 100,000 scans.
pub(crate) const MAX_PARTS: usize = 10_000;

/// Where in the message tree the walk is.
pub(crate) struct Scope {
    /// Location prefix: "" at the top, `message:fwd.eml/` inside a forwarded message.
    pub prefix: String,
    /// Inside the top-level message (not a forwarded one): whole-message
    /// encryption is recorded only here.
    pub top: bool,
    /// message/rfc822 nesting level.
    pub forwarded: usize,
    /// Set under multipart/encrypted: everything below is ciphertext.
    pub encrypted: Option<Encryption>,
    /// Forwarded messages without a file name seen in this message so far.
    pub unnamed_messages: usize,
}

impl Scope {
    pub fn top() -> Scope {
        Scope {
            prefix: String::new(),
            top: true,
            forwarded: 0,
            encrypted: None,
            unnamed_messages: 0,
        }
    }
}

/// Walk part `id` of `msg` (0 = the root) at MIME depth `depth`.
pub(crate) fn walk_part(
    ctx: &mut Ctx<'_>,
    msg: &Message<'_>,
    id: usize,
    scope: &mut Scope,
    depth: usize,
) {
    let Some(part) = msg.parts.get(id) else {
        return;
    };
    let declared = declared_type(part);
    let name = part
        .attachment_name()
        .map(clean_name)
        .filter(|n| !n.is_empty());
    if depth > ctx.limits.max_mime_depth {
        let location = attachment_location(scope, name.as_deref(), id);
        ctx.hit(
            &location,
            "mime_depth",
            format!(
                "MIME parts nested deeper than {}",
                ctx.limits.max_mime_depth
            ),
        );
        return;
    }
    if !matches!(part.body, PartType::Multipart(_) | PartType::Message(_))
        && ctx.out.parts.len() >= MAX_PARTS
    {
        if !ctx.parts_capped {
            ctx.parts_capped = true;
            ctx.hit(
                &attachment_location(scope, name.as_deref(), id),
                "mime_parts",
                format!("more than {MAX_PARTS} parts; the rest were not scanned"),
            );
        }
        return;
    }
    match &part.body {
        PartType::Multipart(children) => {
            let saved = scope.encrypted;
            if declared.as_deref() == Some("multipart/encrypted") {
                scope.encrypted = Some(Encryption::Pgp);
                if scope.top {
                    ctx.out.encrypted.get_or_insert(Encryption::Pgp);
                }
            }
            for &child in children {
                let child = child as usize;
                // Children always come after their parent; anything else is a loop.
                if child > id {
                    walk_part(ctx, msg, child, scope, depth + 1);
                }
            }
            scope.encrypted = saved;
        }
        PartType::Message(inner) => {
            forwarded(ctx, inner, name.as_deref(), scope, depth);
        }
        PartType::Text(text) | PartType::Html(text) => {
            let html = matches!(part.body, PartType::Html(_));
            let is_message = declared
                .as_deref()
                .is_some_and(|d| d == "message/rfc822" || d == "message/global");
            if is_message && try_forwarded(ctx, text.as_bytes(), name.as_deref(), scope, depth) {
                return;
            }
            let attachment_disposition = part
                .content_disposition()
                .is_some_and(|d| d.is_attachment());
            let body_type = matches!(declared.as_deref(), None | Some("text/plain" | "text/html"));
            if body_type && !attachment_disposition && name.is_none() && scope.encrypted.is_none() {
                body_text(ctx, msg, part, text, html, declared, scope);
            } else {
                let data = original_bytes(msg, part)
                    .map(Arc::from)
                    .unwrap_or_else(|| Arc::from(text.as_bytes()));
                attachment(ctx, part, id, name, declared, data, scope);
            }
        }
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            // A forwarded message sent as a file (`fwd.eml`, octet-stream) is
            // still a message.
            let is_message = declared
                .as_deref()
                .is_some_and(|d| d == "message/rfc822" || d == "message/global")
                || sniff::extension(name.as_deref()).as_deref() == Some("eml")
                    && sniff::looks_like_text(bytes);
            if is_message && try_forwarded(ctx, bytes, name.as_deref(), scope, depth) {
                return;
            }
            let ext = sniff::extension(name.as_deref());
            if scope.encrypted.is_none()
                && smime::is_pkcs7(declared.as_deref().unwrap_or(""), ext.as_deref())
            {
                let smime_type = part.content_type().and_then(|c| c.attribute("smime-type"));
                match smime::classify(smime_type, bytes) {
                    Pkcs7Kind::Enveloped => {
                        let attached = part
                            .content_disposition()
                            .is_some_and(|d| d.is_attachment());
                        if scope.top && (id == 0 || !attached) {
                            ctx.out.encrypted.get_or_insert(Encryption::Smime);
                        }
                        let saved = scope.encrypted.replace(Encryption::Smime);
                        attachment(ctx, part, id, name, declared, Arc::from(&bytes[..]), scope);
                        scope.encrypted = saved;
                        return;
                    }
                    Pkcs7Kind::Signed => {
                        attachment(ctx, part, id, name, declared, Arc::from(&bytes[..]), scope);
                        match smime::signed_content(bytes) {
                            Some(inner) => walk_entity(ctx, &inner, scope, depth + 1),
                            None => ctx.hit(
                                &attachment_location(scope, None, id),
                                "extract_failed",
                                "S/MIME signed-data could not be unwrapped",
                            ),
                        }
                        return;
                    }
                    Pkcs7Kind::Other => {}
                }
            }
            attachment(ctx, part, id, name, declared, Arc::from(&bytes[..]), scope);
        }
    }
}

/// A MIME entity found inside something else (S/MIME signed content): its parts
/// belong to the same message, at the same location prefix.
fn walk_entity(ctx: &mut Ctx<'_>, raw: &[u8], scope: &mut Scope, depth: usize) {
    if let Some(msg) = MessageParser::default().parse(raw) {
        walk_part(ctx, &msg, 0, scope, depth);
        dismantle(msg);
    }
}

/// A message/rfc822 part whose content mail-parser left unparsed.
fn try_forwarded(
    ctx: &mut Ctx<'_>,
    raw: &[u8],
    name: Option<&str>,
    scope: &mut Scope,
    depth: usize,
) -> bool {
    if depth + 1 > ctx.limits.max_mime_depth {
        ctx.hit(
            &attachment_location(scope, name, 0).replace("attachment:", "message:"),
            "mime_depth",
            format!(
                "MIME parts nested deeper than {}",
                ctx.limits.max_mime_depth
            ),
        );
        return true;
    }
    match MessageParser::default().parse(raw) {
        Some(msg) => {
            forwarded(ctx, &msg, name, scope, depth);
            dismantle(msg);
            true
        }
        None => false,
    }
}

/// A forwarded (attached) message: subject, body and attachments of its own,
/// located under `message:<name>/`.
fn forwarded(
    ctx: &mut Ctx<'_>,
    inner: &Message<'_>,
    name: Option<&str>,
    scope: &mut Scope,
    depth: usize,
) {
    let label = match name {
        Some(n) => n.to_string(),
        None => {
            scope.unnamed_messages += 1;
            match scope.unnamed_messages {
                1 => "forwarded.eml".to_string(),
                n => format!("forwarded-{n}.eml"),
            }
        }
    };
    let mut inner_scope = Scope {
        prefix: format!("{}message:{}/", scope.prefix, label),
        top: false,
        forwarded: scope.forwarded + 1,
        encrypted: scope.encrypted,
        unnamed_messages: 0,
    };
    ctx.out.forwarded_depth = ctx.out.forwarded_depth.max(inner_scope.forwarded);
    if depth + 1 > ctx.limits.max_mime_depth {
        ctx.hit(
            inner_scope.prefix.trim_end_matches('/'),
            "mime_depth",
            format!(
                "MIME parts nested deeper than {}",
                ctx.limits.max_mime_depth
            ),
        );
        return;
    }
    if let Some(subject) = inner.subject() {
        ctx.text(
            format!("{}subject", inner_scope.prefix),
            TextSource::Subject,
            subject.to_string(),
            None,
        );
    }
    walk_part(ctx, inner, 0, &mut inner_scope, depth + 1);
}

/// A text/plain or text/html body part.
fn body_text(
    ctx: &mut Ctx<'_>,
    msg: &Message<'_>,
    part: &MessagePart<'_>,
    text: &str,
    html: bool,
    declared: Option<String>,
    scope: &Scope,
) {
    let mut text: Cow<'_, str> = Cow::Borrowed(text);
    if text.contains('\u{fffd}')
        && let Some(raw) = original_bytes(msg, part)
        && std::str::from_utf8(&raw).is_err()
    {
        text = Cow::Owned(sniff::decode_text(&raw).into_owned());
    }
    let location = if html {
        format!("{}body:html", scope.prefix)
    } else {
        format!("{}body", scope.prefix)
    };
    let mut facts = PartFacts::default();
    let mut visible: Cow<'_, str> = Cow::Borrowed(text.as_ref());
    if !html
        && let Some(ct) = part.content_type()
        && ct
            .attribute("format")
            .is_some_and(|f| f.eq_ignore_ascii_case("flowed"))
    {
        let delsp = ct
            .attribute("delsp")
            .is_some_and(|d| d.eq_ignore_ascii_case("yes"));
        visible = Cow::Owned(unflow(&visible, delsp));
    }
    if visible.contains(sniff::PGP_BEGIN) {
        facts.encrypted = Some(Encryption::Pgp);
        if scope.top {
            ctx.out.encrypted.get_or_insert(Encryption::Pgp);
        }
        visible = Cow::Owned(sniff::strip_pgp_blocks(&visible));
    }
    let data: Arc<[u8]> = Arc::from(text.as_bytes());
    ctx.part(Part {
        location: location.clone(),
        name: None,
        declared_type: declared,
        sniffed_type: sniff::sniffed_type(&data),
        is_attachment: !scope.top,
        archive_depth: 0,
        facts,
        data,
    });
    if html {
        let visible = html::html_to_text(&visible, ctx.limits.max_text_per_part);
        ctx.text(location, TextSource::Html, visible, None);
    } else {
        ctx.text(location, TextSource::Body, visible.into_owned(), None);
    }
}

/// RFC 3676 format=flowed: a line ending in a space continues on the next
/// line (the space is dropped too with delsp=yes, which is how a word split by
/// the sender's wrapping comes back together); space-stuffing is undone.
fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let body = body.strip_prefix(' ').unwrap_or(body);
        if body.ends_with(' ') && body != "-- " {
            out.push_str(if delsp { &body[..body.len() - 1] } else { body });
        } else {
            out.push_str(body);
            if line.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

fn attachment(
    ctx: &mut Ctx<'_>,
    _part: &MessagePart<'_>,
    id: usize,
    name: Option<String>,
    declared: Option<String>,
    data: Arc<[u8]>,
    scope: &Scope,
) {
    let location = attachment_location(scope, name.as_deref(), id);
    file::scan_file(
        ctx,
        Blob {
            location,
            name,
            declared,
            data,
            archive_depth: 0,
            is_attachment: true,
            encrypted: scope.encrypted,
        },
    );
}

fn attachment_location(scope: &Scope, name: Option<&str>, id: usize) -> String {
    match name {
        Some(n) => format!("{}attachment:{}", scope.prefix, n),
        None => format!("{}attachment:part{}", scope.prefix, id),
    }
}

/// The part's bytes after transfer decoding but before charset decoding.
fn original_bytes(msg: &Message<'_>, part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let raw = msg
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        Encoding::Base64 => mail_parser::decoders::base64::base64_decode(raw),
        Encoding::QuotedPrintable => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(raw)
        }
        Encoding::None => Some(raw.to_vec()),
    }
}

/// Declared `type/subtype`, lower case.
pub(crate) fn declared_type<'x>(part: &impl MimeHeaders<'x>) -> Option<String> {
    part.content_type().map(|ct| match ct.subtype() {
        Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
        None => ct.ctype().to_ascii_lowercase(),
    })
}

/// File names are the sender's: no control characters, bounded length.
fn clean_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Drop a parsed message without recursion: a message nested a million levels
/// deep (message/rfc822 inside message/rfc822 …) would otherwise overflow the
/// stack in its destructor.
pub(crate) fn dismantle(msg: Message<'_>) {
    let mut stack = vec![msg];
    while let Some(mut m) = stack.pop() {
        for part in m.parts.iter_mut() {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                stack.push(inner);
            }
        }
    }
}
