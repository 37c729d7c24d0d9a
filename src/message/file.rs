//! One decoded file (a MIME attachment or an archive member) → a [`Part`] with
//! its facts, plus its text. The kind of file is decided from the content
//! (magic bytes) first and the name and declared type second, so a renamed
//! executable, a zip called `.pdf` or a `.docx` carrying macros are still seen
//! for what they are.
//!
//! Each file is analysed inside `catch_unwind`: the document parsers are
//! third-party code fed by strangers, and one bad attachment must not cost the
//! scan of the rest of the message.

use super::ctx::Ctx;
use super::{Encryption, Part, PartFacts, TextSource, archive, html, office, pdf, sheets, sniff};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A decoded file to analyse.
pub(crate) struct Blob {
    pub location: String,
    pub name: Option<String>,
    /// Declared MIME type, lower case (None for archive members).
    pub declared: Option<String>,
    pub data: Arc<[u8]>,
    pub archive_depth: usize,
    pub is_attachment: bool,
    /// Known from the context to be encrypted (e.g. under multipart/encrypted).
    pub encrypted: Option<Encryption>,
}

/// Extensions whose content is read as text even when the type is not declared.
const TEXT_EXTENSIONS: &[&str] = &[
    "txt", "text", "csv", "tsv", "tab", "log", "md", "json", "xml", "ics", "vcf", "htm", "html",
    "xhtml", "rtf", "eml", "asc", "ini", "cfg", "yaml", "yml", "srt", "vtt",
];

/// Record the part and extract what can be extracted from it.
pub(crate) fn scan_file(ctx: &mut Ctx<'_>, blob: Blob) {
    let idx = ctx.part(Part {
        location: blob.location.clone(),
        name: blob.name.clone(),
        declared_type: blob.declared.clone(),
        sniffed_type: sniff::sniffed_type(&blob.data),
        is_attachment: blob.is_attachment,
        archive_depth: blob.archive_depth,
        facts: PartFacts::default(),
        data: blob.data.clone(),
    });
    if catch_unwind(AssertUnwindSafe(|| analyse(ctx, idx, &blob))).is_err() {
        tracing::warn!(
            location = blob.location.as_str(),
            "document parser panicked"
        );
        ctx.hit(
            &blob.location,
            "extract_failed",
            "the document parser crashed on this file",
        );
    }
}

pub(crate) fn set_facts(ctx: &mut Ctx<'_>, idx: usize, f: impl FnOnce(&mut PartFacts)) {
    if let Some(p) = ctx.out.parts.get_mut(idx) {
        f(&mut p.facts);
    }
}

fn analyse(ctx: &mut Ctx<'_>, idx: usize, blob: &Blob) {
    let data: &[u8] = &blob.data;
    if let Some(enc) = blob.encrypted {
        set_facts(ctx, idx, |f| f.encrypted = Some(enc));
        return;
    }
    if let Some(kind) = sniff::executable(data) {
        set_facts(ctx, idx, |f| f.executable = Some(kind));
        return;
    }
    if sniff::is_pdf(data) {
        pdf::scan_pdf(ctx, idx, blob);
        return;
    }
    if sniff::is_zip(data) {
        match archive::open(data) {
            Ok(zip) => office::scan_zip(ctx, idx, blob, zip),
            Err(e) => ctx.hit(&blob.location, "extract_failed", e),
        }
        return;
    }
    if sniff::is_cfb(data) {
        office::scan_ole(ctx, idx, blob);
        return;
    }
    if sniff::has_zip_trailer(data) {
        // Only when it really opens: the four bytes may be chance.
        if let Ok(zip) = archive::open(data) {
            office::scan_zip(ctx, idx, blob, zip);
            return;
        }
    }
    let head = &data[..data.len().min(64 * 1024)];
    if sniff::has_pgp_message(head) {
        set_facts(ctx, idx, |f| f.encrypted = Some(Encryption::Pgp));
        return;
    }
    let ext = sniff::extension(blob.name.as_deref());
    let declared = blob.declared.as_deref().unwrap_or("");
    if !is_text(declared, ext.as_deref(), data) {
        return;
    }
    let text = sniff::decode_text(data);
    let ext = ext.as_deref().unwrap_or("");
    if declared == "text/html" || matches!(ext, "htm" | "html" | "xhtml") {
        let visible = html::html_to_text(&text, ctx.limits.max_text_per_part);
        ctx.text(blob.location.clone(), TextSource::Attachment, visible, None);
    } else if matches!(
        declared,
        "text/csv" | "text/tab-separated-values" | "application/csv"
    ) || matches!(ext, "csv" | "tsv" | "tab")
    {
        let table = sheets::parse_csv(&text, ctx.limits.max_text_per_part);
        ctx.text(
            blob.location.clone(),
            TextSource::Attachment,
            text.into_owned(),
            Some(table),
        );
    } else {
        ctx.text(
            blob.location.clone(),
            TextSource::Attachment,
            text.into_owned(),
            None,
        );
    }
}

/// Is this file text? Known binary content never is; declared text types, text
/// extensions and content that looks like text are.
fn is_text(declared: &str, ext: Option<&str>, data: &[u8]) -> bool {
    if let Some(t) = sniff::infer_type(data)
        && t.matcher_type() != infer::MatcherType::Text
    {
        return false;
    }
    if declared.starts_with("text/")
        || matches!(
            declared,
            "application/json" | "application/xml" | "application/javascript" | "application/rtf"
        )
        || ext.is_some_and(|e| TEXT_EXTENSIONS.contains(&e))
    {
        return sniff::looks_like_text(data) || data.starts_with(&[0xff, 0xfe]);
    }
    sniff::looks_like_text(data)
}
