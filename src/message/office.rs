//! Office documents: OOXML (docx/pptx/xlsx and their macro-enabled variants),
//! ODF (odt/ods/odp) and OLE compound files (legacy Office, password-protected
//! OOXML, VBA projects).
//!
//! What is looked for, whatever the file is called:
//! - macros: a `vbaProject.bin` anywhere in an OOXML zip (a `.docx` name does not
//!   hide it), an OLE file with a `Macros`, `_VBA_PROJECT_CUR` or `VBA` storage,
//!   Basic modules in an ODF file;
//! - encryption: an OLE container with `EncryptionInfo`/`EncryptedPackage`
//!   streams (a password-protected OOXML file), an ODF manifest with
//!   `encryption-data`, a legacy Word file with the fEncrypted flag, a legacy
//!   Excel file with a FILEPASS record. Encrypted documents yield no text.
//! - text: `w:t` runs of Word parts, `a:t` runs of slides, paragraphs of ODF
//!   text, one line per paragraph; spreadsheets go to [`super::sheets`].

use super::archive::{self, Zip};
use super::ctx::Ctx;
use super::file::{Blob, set_facts};
use super::{Encryption, TextSource, sheets, xls};
use quick_xml::events::Event;
use std::io::{Cursor, Read};

/// A zip: an OOXML or ODF document, or a plain archive.
pub(crate) fn scan_zip(ctx: &mut Ctx<'_>, idx: usize, blob: &Blob, mut zip: Zip<'_>) {
    let names = archive::names(&zip);
    let has = |n: &str| names.iter().any(|x| x == n);
    if has("[Content_Types].xml") {
        let macros = names.iter().any(|n| {
            n.rsplit('/')
                .next()
                .is_some_and(|base| base.eq_ignore_ascii_case("vbaProject.bin"))
        });
        if macros {
            set_facts(ctx, idx, |f| f.macros = true);
        }
        if has("word/document.xml") {
            let parts = word_parts(&names);
            let text = xml_parts_text(ctx, &mut zip, &names, &parts, &blob.location, Flavor::Word);
            ctx.text(blob.location.clone(), TextSource::Attachment, text, None);
        } else if has("ppt/presentation.xml") {
            let parts = slide_parts(&names);
            let text = xml_parts_text(
                ctx,
                &mut zip,
                &names,
                &parts,
                &blob.location,
                Flavor::Drawing,
            );
            ctx.text(blob.location.clone(), TextSource::Attachment, text, None);
        } else if has("xl/workbook.xml") || names.iter().any(|n| n.ends_with("workbook.xml")) {
            sheets::scan_xlsx(ctx, idx, blob, zip);
        }
        return;
    }
    if has("content.xml") && (has("mimetype") || has("META-INF/manifest.xml")) {
        scan_odf(ctx, idx, blob, zip, &names);
        return;
    }
    archive::scan_archive(ctx, idx, blob, zip);
}

/// Word parts with text, main document first.
fn word_parts(names: &[String]) -> Vec<usize> {
    let mut main = Vec::new();
    let mut rest = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let Some(base) = n.strip_prefix("word/") else {
            continue;
        };
        if base == "document.xml" {
            main.push(i);
        } else if !base.contains('/')
            && base.ends_with(".xml")
            && (base.starts_with("header")
                || base.starts_with("footer")
                || base == "footnotes.xml"
                || base == "endnotes.xml"
                || base == "comments.xml")
        {
            rest.push(i);
        }
    }
    main.extend(rest);
    main
}

/// Slides in slide order (slide2 before slide10), then speaker notes.
fn slide_parts(names: &[String]) -> Vec<usize> {
    let number = |n: &str, prefix: &str| -> Option<u32> {
        n.strip_prefix(prefix)?.strip_suffix(".xml")?.parse().ok()
    };
    let mut slides: Vec<(u32, usize)> = Vec::new();
    let mut notes: Vec<(u32, usize)> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(k) = number(n, "ppt/slides/slide") {
            slides.push((k, i));
        } else if let Some(k) = number(n, "ppt/notesSlides/notesSlide") {
            notes.push((k, i));
        }
    }
    slides.sort_unstable();
    notes.sort_unstable();
    slides.into_iter().chain(notes).map(|(_, i)| i).collect()
}

fn xml_parts_text(
    ctx: &mut Ctx<'_>,
    zip: &mut Zip<'_>,
    names: &[String],
    parts: &[usize],
    location: &str,
    flavor: Flavor,
) -> String {
    let max = ctx.limits.max_text_per_part;
    let mut text = String::new();
    for &i in parts {
        if text.len() > max {
            break;
        }
        let member = names.get(i).map(String::as_str).unwrap_or("");
        let Ok(xml) = archive::read_member(ctx, zip, i, &format!("{location}/{member}")) else {
            continue;
        };
        let xml = String::from_utf8_lossy(&xml);
        match xml_text(&xml, flavor, max.saturating_sub(text.len()) + 1) {
            Ok(t) => {
                if !text.is_empty() && !t.is_empty() {
                    text.push('\n');
                }
                text.push_str(&t);
            }
            Err((partial, e)) => {
                ctx.hit(location, "extract_failed", format!("{member}: {e}"));
                text.push_str(&partial);
            }
        }
    }
    text
}

/// Which vocabulary of XML text markup to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// WordprocessingML: text in `w:t`/`w:delText`, paragraphs `w:p`, `w:tab`, `w:br`.
    Word,
    /// DrawingML (slides): text in `a:t`, paragraphs `a:p`, `a:br`.
    Drawing,
    /// ODF: all text inside `text:p`/`text:h`, `text:s`, `text:tab`, `text:line-break`.
    Odf,
}

/// The text of an XML document part, one line per paragraph. On malformed XML
/// returns what was read so far with the error.
pub(crate) fn xml_text(xml: &str, flavor: Flavor, max: usize) -> Result<String, (String, String)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = String::new();
    // Depth inside elements whose text is content.
    let mut inside = 0usize;
    loop {
        if out.len() > max {
            return Ok(out);
        }
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err((out, format!("XML: {e}"))),
        };
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if is_text_element(flavor, name) {
                    inside += 1;
                }
                break_element(flavor, name, &mut out);
            }
            Event::Empty(e) => {
                let name = e.local_name();
                break_element(flavor, name.as_ref(), &mut out);
            }
            Event::End(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if is_text_element(flavor, name) {
                    inside = inside.saturating_sub(1);
                }
                if is_paragraph(flavor, name) && !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            Event::Text(t) if inside > 0 => out.push_str(&t.xml10_content()),
            Event::CData(t) if inside > 0 => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if inside > 0 => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_xml_entity(&r.xml10_content()) {
                    out.push_str(s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    while out.ends_with('\n') {
        out.pop();
    }
    Ok(out)
}

fn is_text_element(flavor: Flavor, name: &str) -> bool {
    match flavor {
        Flavor::Word => name == "t" || name == "delText",
        Flavor::Drawing => name == "t",
        Flavor::Odf => name == "p" || name == "h",
    }
}

fn is_paragraph(flavor: Flavor, name: &str) -> bool {
    match flavor {
        Flavor::Word | Flavor::Drawing => name == "p",
        Flavor::Odf => name == "p" || name == "h",
    }
}

/// Elements that stand for white space inside a paragraph.
fn break_element(flavor: Flavor, name: &str, out: &mut String) {
    let s = match (flavor, name) {
        (Flavor::Word, "tab") | (Flavor::Odf, "tab") => "\t",
        (Flavor::Word, "br" | "cr") | (Flavor::Drawing, "br") | (Flavor::Odf, "line-break") => "\n",
        (Flavor::Odf, "s") => " ",
        _ => return,
    };
    out.push_str(s);
}

/// OpenDocument: text, spreadsheets, presentations.
fn scan_odf(ctx: &mut Ctx<'_>, idx: usize, blob: &Blob, mut zip: Zip<'_>, names: &[String]) {
    let index = |n: &str| names.iter().position(|x| x == n);
    if let Some(i) = index("META-INF/manifest.xml") {
        let loc = format!("{}/META-INF/manifest.xml", blob.location);
        if let Ok(manifest) = archive::read_member(ctx, &mut zip, i, &loc)
            && super::sniff::find(&manifest, b"encryption-data").is_some()
        {
            set_facts(ctx, idx, |f| f.encrypted = Some(Encryption::Office));
            return;
        }
    }
    // Basic macro modules live in Basic/<library>/<module>.xml.
    let macros = names.iter().any(|n| {
        n.strip_prefix("Basic/").is_some_and(|rest| {
            rest.contains('/') && !rest.ends_with("script-lb.xml") && rest.ends_with(".xml")
        }) || n.starts_with("Scripts/") && !n.ends_with('/')
    });
    if macros {
        set_facts(ctx, idx, |f| f.macros = true);
    }
    let spreadsheet = index("mimetype")
        .and_then(|i| {
            let loc = format!("{}/mimetype", blob.location);
            archive::read_member(ctx, &mut zip, i, &loc).ok()
        })
        .is_some_and(|m| super::sniff::find(&m, b"spreadsheet").is_some());
    let Some(i) = index("content.xml") else {
        return;
    };
    let loc = format!("{}/content.xml", blob.location);
    let Ok(content) = archive::read_member(ctx, &mut zip, i, &loc) else {
        return;
    };
    let content = String::from_utf8_lossy(&content);
    if spreadsheet {
        sheets::scan_ods(ctx, blob, &content);
        return;
    }
    let max = ctx.limits.max_text_per_part;
    let text = match xml_text(&content, Flavor::Odf, max) {
        Ok(t) => t,
        Err((t, e)) => {
            ctx.hit(&blob.location, "extract_failed", e);
            t
        }
    };
    ctx.text(blob.location.clone(), TextSource::Attachment, text, None);
}

/// OLE compound file: encrypted OOXML, legacy Office, a bare VBA project.
pub(crate) fn scan_ole(ctx: &mut Ctx<'_>, idx: usize, blob: &Blob) {
    let mut cf = match cfb::CompoundFile::open(Cursor::new(&blob.data[..])) {
        Ok(cf) => cf,
        Err(e) => {
            ctx.hit(
                &blob.location,
                "extract_failed",
                format!("OLE compound file: {e}"),
            );
            return;
        }
    };
    let mut encryption_info = false;
    let mut encrypted_package = false;
    let mut macros = false;
    let mut word = None;
    let mut workbook = None;
    for entry in cf.walk() {
        let name = entry.name();
        let top = entry.path().parent() == Some(std::path::Path::new("/"));
        if entry.is_storage()
            && (name.eq_ignore_ascii_case("Macros")
                || name.eq_ignore_ascii_case("_VBA_PROJECT_CUR")
                || name.eq_ignore_ascii_case("VBA"))
        {
            macros = true;
        }
        if entry.is_stream() && top {
            match name {
                "EncryptionInfo" => encryption_info = true,
                "EncryptedPackage" => encrypted_package = true,
                "WordDocument" => word = Some(entry.path().to_path_buf()),
                "Workbook" | "Book" => workbook = Some(entry.path().to_path_buf()),
                _ => {}
            }
        }
    }
    if macros {
        set_facts(ctx, idx, |f| f.macros = true);
    }
    if encryption_info || encrypted_package {
        set_facts(ctx, idx, |f| f.encrypted = Some(Encryption::Office));
        return;
    }
    if let Some(path) = word {
        let mut fib = [0u8; 12];
        if let Ok(mut s) = cf.open_stream(&path)
            && s.read_exact(&mut fib).is_ok()
        {
            // FIB: wIdent 0xA5EC, then flags at 0x0A; bit 8 is fEncrypted.
            let ident = u16::from_le_bytes([fib[0], fib[1]]);
            let flags = u16::from_le_bytes([fib[10], fib[11]]);
            if ident == 0xa5ec && flags & 0x0100 != 0 {
                set_facts(ctx, idx, |f| f.encrypted = Some(Encryption::Office));
            }
        }
    }
    if let Some(path) = workbook {
        scan_workbook_stream(ctx, idx, blob, &mut cf, &path);
    }
}

/// Legacy Excel: encrypted (FILEPASS) or one table per sheet.
fn scan_workbook_stream(
    ctx: &mut Ctx<'_>,
    idx: usize,
    blob: &Blob,
    cf: &mut cfb::CompoundFile<Cursor<&[u8]>>,
    path: &std::path::Path,
) {
    if cf.open_stream(path).is_ok_and(biff_has_filepass) {
        set_facts(ctx, idx, |f| f.encrypted = Some(Encryption::Office));
        return;
    }
    let mut stream = Vec::new();
    // A stream cannot be larger than the file that holds it.
    let read = cf
        .open_stream(path)
        .and_then(|s| s.take(blob.data.len() as u64).read_to_end(&mut stream));
    if let Err(e) = read {
        ctx.hit(&blob.location, "extract_failed", format!("xls: {e}"));
        return;
    }
    match xls::read(&stream, ctx.limits.max_text_per_part) {
        xls::Workbook::Encrypted => {
            set_facts(ctx, idx, |f| f.encrypted = Some(Encryption::Office));
        }
        xls::Workbook::Unsupported => {}
        xls::Workbook::Sheets(sheets) => {
            for (name, sheet) in sheets {
                sheets::push_sheet(ctx, format!("{}#{}", blob.location, name), sheet);
            }
        }
    }
}

/// Scan the workbook globals of a BIFF stream for a FILEPASS (0x002F) record,
/// which marks a password-encrypted legacy Excel file. Stops at the first EOF
/// record (end of the globals) or after a bounded number of records.
fn biff_has_filepass(mut s: impl Read) -> bool {
    let mut header = [0u8; 4];
    let mut skip = vec![0u8; 8224];
    for _ in 0..10_000 {
        if s.read_exact(&mut header).is_err() {
            return false;
        }
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let len = u16::from_le_bytes([header[2], header[3]]) as usize;
        match kind {
            0x002f => return true,
            0x000a => return false,
            _ => {}
        }
        let Some(buf) = skip.get_mut(..len) else {
            return false;
        };
        if s.read_exact(buf).is_err() {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_xml_runs_join_and_paragraphs_split() {
        let xml = r#"<w:document xmlns:w="x"><w:body>
            <w:p><w:r><w:t>Hel</w:t></w:r><w:r><w:t xml:space="preserve">lo &amp; </w:t></w:r><w:r><w:t>bye</w:t></w:r></w:p>
            <w:p><w:r><w:t>second</w:t><w:tab/><w:t>col</w:t></w:r></w:p>
            <w:p><w:r><w:instrText>HYPERLINK</w:instrText></w:r></w:p>
        </w:body></w:document>"#;
        assert_eq!(
            xml_text(xml, Flavor::Word, usize::MAX).unwrap(),
            "Hello & bye\nsecond\tcol"
        );
    }

    #[test]
    fn odf_text_with_spans_and_spaces() {
        let xml = r#"<office:document-content><office:body><office:text>
            <text:h>Title</text:h>
            <text:p>a<text:span>b</text:span>c<text:s/>d<text:line-break/>e</text:p>
        </office:text></office:body></office:document-content>"#;
        assert_eq!(
            xml_text(xml, Flavor::Odf, usize::MAX).unwrap(),
            "Title\nabc d\ne"
        );
    }

    #[test]
    fn malformed_xml_keeps_partial_text() {
        let r = xml_text(
            "<w:p><w:t>kept</w:t></w:p><w:p><w:t>x</w:q>",
            Flavor::Word,
            100,
        );
        let (partial, _) = r.unwrap_err();
        assert!(partial.starts_with("kept"));
    }

    #[test]
    fn filepass_found_in_globals() {
        let mut biff = Vec::new();
        biff.extend_from_slice(&[0x09, 0x08, 2, 0, 0, 0]); // BOF
        biff.extend_from_slice(&[0x2f, 0x00, 2, 0, 1, 0]); // FILEPASS
        assert!(biff_has_filepass(&biff[..]));
        let mut plain = Vec::new();
        plain.extend_from_slice(&[0x09, 0x08, 2, 0, 0, 0]);
        plain.extend_from_slice(&[0x0a, 0x00, 0, 0]); // EOF
        plain.extend_from_slice(&[0x2f, 0x00, 2, 0, 1, 0]);
        assert!(!biff_has_filepass(&plain[..]));
    }
}
