//! Behaviour of the whole extractor on messages built here and on the
//! attachment fixtures in `fixtures/files/` (see `fixtures/make_fixtures.py`).

use super::*;
use crate::message::{Encryption, ExecutableKind, Part, TextSegment};

fn ex() -> Extractor {
    Extractor::new(Limits::default(), PdfMode::InProcess)
}

fn ex_with(f: impl FnOnce(&mut Limits)) -> Extractor {
    let mut limits = Limits::default();
    f(&mut limits);
    Extractor::new(limits, PdfMode::InProcess)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/files/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (n, chunk) in data.chunks(3).enumerate() {
        if n > 0 && n % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const HEAD: &str = "From: Ms Ada Testwell <a.testwell@school.example.sch.uk>\r\n\
To: staff@school.example.sch.uk\r\n\
Message-ID: <t1@school.example.sch.uk>\r\n\
MIME-Version: 1.0\r\n";

/// A multipart/mixed message with a short text body and one base64 attachment.
fn with_attachment(name: &str, ctype: &str, data: &[u8]) -> Vec<u8> {
    format!(
        "{HEAD}Subject: see attached\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n\
--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease see the attachment.\r\n\
--XYZ\r\nContent-Type: {ctype}; name=\"{name}\"\r\n\
Content-Disposition: attachment; filename=\"{name}\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--XYZ--\r\n",
        base64(data)
    )
    .into_bytes()
}

fn simple(headers: &str, body: &str) -> Vec<u8> {
    format!("{HEAD}{headers}\r\n{body}").into_bytes()
}

fn text<'m>(m: &'m ScannedMessage, location: &str) -> &'m str {
    seg(m, location).text.as_str()
}

fn seg<'m>(m: &'m ScannedMessage, location: &str) -> &'m TextSegment {
    m.texts
        .iter()
        .find(|t| t.location == location)
        .unwrap_or_else(|| {
            let locs: Vec<_> = m.texts.iter().map(|t| t.location.as_str()).collect();
            panic!("no text at {location}; have {locs:?}")
        })
}

fn part<'m>(m: &'m ScannedMessage, location: &str) -> &'m Part {
    m.parts
        .iter()
        .find(|p| p.location == location)
        .unwrap_or_else(|| {
            let locs: Vec<_> = m.parts.iter().map(|p| p.location.as_str()).collect();
            panic!("no part at {location}; have {locs:?}")
        })
}

fn all_text(m: &ScannedMessage) -> String {
    m.texts
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn limit<'m>(m: &'m ScannedMessage, name: &str) -> &'m LimitHit {
    m.limits_hit
        .iter()
        .find(|l| l.limit == name)
        .unwrap_or_else(|| panic!("no {name} limit hit; have {:?}", m.limits_hit))
}

use crate::message::LimitHit;

// --- bodies, charsets, encodings -------------------------------------------

#[test]
fn plain_body_subject_and_header_facts() {
    let m = ex().extract(&simple(
        "Subject: Trip to the museum\r\nContent-Type: text/plain; charset=us-ascii\r\n",
        "Coaches leave at nine.\r\n",
    ));
    assert_eq!(text(&m, "subject"), "Trip to the museum");
    assert_eq!(seg(&m, "subject").source, TextSource::Subject);
    assert_eq!(text(&m, "body").trim(), "Coaches leave at nine.");
    assert_eq!(seg(&m, "body").source, TextSource::Body);
    assert_eq!(
        m.headers.message_id.as_deref(),
        Some("t1@school.example.sch.uk")
    );
    let from = m.headers.from.as_ref().unwrap();
    assert_eq!(from[0].name.as_deref(), Some("Ms Ada Testwell"));
    let body = part(&m, "body");
    assert!(!body.is_attachment);
    assert_eq!(body.declared_type.as_deref(), Some("text/plain"));
    assert!(m.limits_hit.is_empty());
    assert_eq!(m.encrypted, None);
}

#[test]
fn rfc2047_subjects_are_decoded() {
    let m = ex().extract(&simple(
        "Subject: =?UTF-8?B?Q2Fmw6kgbWVudQ==?= and =?ISO-8859-1?Q?cr=E8me_br=FBl=E9e?=\r\n",
        "x\r\n",
    ));
    assert_eq!(text(&m, "subject"), "Café menu and crème brûlée");
}

#[test]
fn quoted_printable_rejoins_soft_breaks() {
    let m = ex().extract(&simple(
        "Subject: qp\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
        "The word is sh=\r\nambolic and caf=C3=A9 =3D ok\r\n",
    ));
    assert_eq!(
        text(&m, "body").trim(),
        "The word is shambolic and café = ok"
    );
}

#[test]
fn base64_body() {
    let body = base64("Forward this to ten friends before midnight".as_bytes());
    let m = ex().extract(&simple(
        "Subject: b64\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
        &format!("{body}\r\n"),
    ));
    assert_eq!(
        text(&m, "body"),
        "Forward this to ten friends before midnight"
    );
}

#[test]
fn latin1_bodies_declared_and_mislabelled() {
    let mut raw = simple(
        "Subject: l1\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n",
        "",
    );
    raw.extend_from_slice(b"Cr\xe8me br\xfbl\xe9e\r\n");
    let m = ex().extract(&raw);
    assert_eq!(text(&m, "body").trim(), "Crème brûlée");

    // Declared UTF-8 but really Latin-1: repaired instead of U+FFFD.
    let mut raw = simple(
        "Subject: l1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
        "",
    );
    raw.extend_from_slice(b"Cr\xe8me br\xfbl\xe9e\r\n");
    let m = ex().extract(&raw);
    assert_eq!(text(&m, "body").trim(), "Crème brûlée");
}

#[test]
fn bare_lf_messages_parse() {
    let raw = b"From: a@example.com\nSubject: bare lf\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nline one\n--b\nContent-Type: text/csv; name=x.csv\n\nA,B\n1,2\n--b--\n";
    let m = ex().extract(raw);
    assert_eq!(text(&m, "subject"), "bare lf");
    assert_eq!(text(&m, "body").trim(), "line one");
    assert_eq!(
        seg(&m, "attachment:x.csv").table.as_ref().unwrap().rows[0],
        ["A", "B"]
    );
}

#[test]
fn html_only_body_is_visible_text() {
    let m = ex().extract(&simple(
        "Subject: h\r\nContent-Type: text/html; charset=utf-8\r\n",
        "<html><head><style>p{x:y}</style></head><body><p>What the f<b>u</b>ck &amp; &#115;hit</p>\
         <script>alert('x')</script><!-- note --><p>Next&nbsp;line</p></body></html>\r\n",
    ));
    let s = seg(&m, "body:html");
    assert_eq!(s.source, TextSource::Html);
    assert_eq!(s.text, "What the fuck & shit\nNext line");
    assert!(!all_text(&m).contains("alert"));
}

#[test]
fn alternative_gives_plain_and_html_bodies_and_both_parts() {
    let m = ex().extract(&simple(
        "Subject: alt\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n",
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain words\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html <i>wor</i>ds</p>\r\n--b1--\r\n",
    ));
    assert_eq!(text(&m, "body").trim(), "plain words");
    assert_eq!(text(&m, "body:html"), "html words");
    assert_eq!(m.parts.len(), 2);
    assert!(m.parts.iter().all(|p| !p.is_attachment));
    assert!(
        std::str::from_utf8(&part(&m, "body:html").data)
            .unwrap()
            .contains("<i>")
    );
}

#[test]
fn related_and_nested_mixed() {
    let m = ex().extract(&simple(
        "Subject: rel\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n",
        "--o\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/html\r\n\r\n<p>see <img src=cid:i1>logo</p>\r\n\
         --r\r\nContent-Type: image/png; name=\"logo.png\"\r\nContent-ID: <i1>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\r\n--r--\r\n\
         --o\r\nContent-Type: text/plain; name=\"notes.txt\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\nbanana notes\r\n--o--\r\n",
    ));
    assert_eq!(text(&m, "body:html"), "see logo");
    let logo = part(&m, "attachment:logo.png");
    assert_eq!(logo.sniffed_type, Some("image/png"));
    assert!(logo.is_attachment);
    assert_eq!(text(&m, "attachment:notes.txt").trim(), "banana notes");
    assert_eq!(
        seg(&m, "attachment:notes.txt").source,
        TextSource::Attachment
    );
}

#[test]
fn dsn_report_facts() {
    let m = ex().extract(&simple(
        "Subject: Undelivered\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n",
        "--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\
         --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; x@example.com\r\nStatus: 5.1.1\r\n\
         --r\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: original\r\n--r--\r\n",
    ));
    assert!(m.headers.is_dsn_or_mdn());
    assert!(all_text(&m).contains("Status: 5.1.1"));
}

// --- forwarded messages ------------------------------------------------------

const INNER: &str = "From: Someone <s@example.org>\r\nSubject: Little Tom needs help\r\n\
Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n\
--in\r\nContent-Type: text/plain\r\n\r\nSend this to 10 friends.\r\n\
--in\r\nContent-Type: text/plain; name=\"notes.txt\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\ninner attachment words\r\n--in--\r\n";

#[test]
fn forwarded_message_is_walked_with_prefixed_locations() {
    let m = ex().extract(&simple(
        "Subject: FW: help\r\nContent-Type: multipart/mixed; boundary=\"out\"\r\n",
        &format!(
            "--out\r\nContent-Type: text/plain\r\n\r\nFYI\r\n\
             --out\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n{INNER}\r\n--out--\r\n"
        ),
    ));
    assert_eq!(
        text(&m, "message:forwarded.eml/subject"),
        "Little Tom needs help"
    );
    assert_eq!(
        text(&m, "message:forwarded.eml/body").trim(),
        "Send this to 10 friends."
    );
    assert_eq!(
        text(&m, "message:forwarded.eml/attachment:notes.txt").trim(),
        "inner attachment words"
    );
    assert_eq!(m.forwarded_depth, 1);
    assert_eq!(text(&m, "body").trim(), "FYI");
}

#[test]
fn named_and_encoded_and_nested_forwards() {
    let level2 = format!(
        "Subject: level one\r\nContent-Type: multipart/mixed; boundary=\"l1\"\r\n\r\n\
         --l1\r\nContent-Type: text/plain\r\n\r\nmiddle\r\n\
         --l1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--l1--\r\n",
        base64(INNER.as_bytes())
    );
    let m = ex().extract(&simple(
        "Subject: FW: FW\r\nContent-Type: multipart/mixed; boundary=\"out\"\r\n",
        &format!(
            "--out\r\nContent-Type: message/rfc822; name=\"fwd.eml\"\r\nContent-Disposition: attachment; filename=\"fwd.eml\"\r\n\r\n{level2}\r\n--out--\r\n"
        ),
    ));
    assert_eq!(text(&m, "message:fwd.eml/subject"), "level one");
    assert_eq!(
        text(&m, "message:fwd.eml/message:forwarded.eml/body").trim(),
        "Send this to 10 friends."
    );
    assert_eq!(m.forwarded_depth, 2);
}

#[test]
fn very_deep_rfc822_nesting_does_not_overflow_the_stack() {
    let mut raw = String::from("From: a@example.com\r\nSubject: deep\r\n");
    for _ in 0..100_000 {
        raw.push_str("Content-Type: message/rfc822\r\n\r\nSubject: x\r\n");
    }
    raw.push_str("Content-Type: text/plain\r\n\r\nbottom\r\n");
    let m = ex().extract(raw.as_bytes());
    assert_eq!(limit(&m, "mime_depth").limit, "mime_depth");
    assert!(m.forwarded_depth <= Limits::default().max_mime_depth + 1);
}

// --- limits --------------------------------------------------------------------

fn nested_multiparts(levels: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 0..levels {
        body.push_str(&format!(
            "--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n",
            i + 1
        ));
    }
    body.push_str(&format!(
        "--b{levels}\r\nContent-Type: text/plain\r\n\r\nvery deep words\r\n--b{levels}--\r\n"
    ));
    simple(
        "Subject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n",
        &body,
    )
}

#[test]
fn mime_depth_limit() {
    let m = ex_with(|l| l.max_mime_depth = 10).extract(&nested_multiparts(30));
    limit(&m, "mime_depth");
    assert!(!all_text(&m).contains("very deep words"));
    let m = ex_with(|l| l.max_mime_depth = 10).extract(&nested_multiparts(8));
    assert!(m.limits_hit.iter().all(|l| l.limit != "mime_depth"));
    assert!(all_text(&m).contains("very deep words"));
}

#[test]
fn message_size_limit_scans_the_start() {
    let body = format!("start words {}\r\nend words\r\n", "x".repeat(5000));
    let m = ex_with(|l| l.max_message_bytes = 2000).extract(&simple(
        "Subject: big\r\nContent-Type: text/plain\r\n",
        &body,
    ));
    assert_eq!(limit(&m, "message_size").location, "message");
    assert!(text(&m, "body").starts_with("start words"));
    assert!(!all_text(&m).contains("end words"));
    assert!(m.raw_size > 5000);
}

#[test]
fn text_per_part_limit() {
    let body = format!("{}tail-marker\r\n", "word ".repeat(1000));
    let m = ex_with(|l| l.max_text_per_part = 100).extract(&simple(
        "Subject: long\r\nContent-Type: text/plain\r\n",
        &body,
    ));
    assert_eq!(limit(&m, "text_per_part").location, "body");
    assert!(text(&m, "body").len() <= 100);
}

// --- attachments: text and tables ----------------------------------------------

#[test]
fn csv_attachment_has_table_and_text() {
    let m = ex().extract(&with_attachment(
        "pupils.csv",
        "text/csv",
        &fixture("pupils.csv"),
    ));
    let s = seg(&m, "attachment:pupils.csv");
    assert_eq!(s.source, TextSource::Attachment);
    assert!(s.text.contains("Tamsin,Wobblecourt"));
    let rows = &s.table.as_ref().unwrap().rows;
    assert_eq!(rows[0], ["Forename", "Surname", "Form", "Date of birth"]);
    assert_eq!(rows[2][0], "Oswin, Jr");
    assert_eq!(rows.len(), 4);
}

#[test]
fn csv_in_windows_1252_declared_as_octet_stream() {
    let m = ex().extract(&with_attachment(
        "list.csv",
        "application/octet-stream",
        b"Name;Town\r\nZo\xeb;Cr\xe8vecoeur\r\n",
    ));
    let rows = &seg(&m, "attachment:list.csv").table.as_ref().unwrap().rows;
    assert_eq!(rows[1], ["Zoë", "Crèvecoeur"]);
}

#[test]
fn text_attachment_named_jpg_is_read_as_text() {
    let m = ex().extract(&with_attachment(
        "IMG_0001.jpg",
        "image/jpeg",
        b"not a picture, just a quiet turnip sentence\r\n",
    ));
    assert!(text(&m, "attachment:IMG_0001.jpg").contains("quiet turnip"));
}

#[test]
fn docx_text_with_runs_joined() {
    let m = ex().extract(&with_attachment(
        "report.docx",
        "application/octet-stream",
        &fixture("report.docx"),
    ));
    let t = text(&m, "attachment:report.docx");
    assert!(t.contains("The marmalade heron sings at dawn"), "{t}");
    assert!(
        t.contains("Second paragraph: velvet turnip & friends"),
        "{t}"
    );
    assert!(t.contains("cobalt badger"), "{t}");
    let p = part(&m, "attachment:report.docx");
    assert!(!p.facts.macros);
    assert!(!p.facts.archive);
    assert_eq!(m.parts.len(), 2, "document members are not listed as parts");
}

#[test]
fn pptx_slides_in_order() {
    let m = ex().extract(&with_attachment(
        "slides.pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        &fixture("slides.pptx"),
    ));
    let t = text(&m, "attachment:slides.pptx");
    let one = t.find("jade").unwrap();
    let two = t.find("crimson abacus").unwrap();
    let ten = t.find("ivory kettle").unwrap();
    assert!(one < two && two < ten, "{t}");
    assert!(t.contains("Slide one: jade\npenguin choir"), "{t}");
}

#[test]
fn odt_text() {
    let m = ex().extract(&with_attachment(
        "notes.odt",
        "application/vnd.oasis.opendocument.text",
        &fixture("notes.odt"),
    ));
    assert_eq!(
        text(&m, "attachment:notes.odt"),
        "Lantern quokka rehearsal notes\nBring the sapphire kazoo on Tuesday."
    );
}

#[test]
fn xlsx_all_sheets_including_hidden() {
    let m = ex().extract(&with_attachment(
        "marks.xlsx",
        "application/octet-stream",
        &fixture("marks.xlsx"),
    ));
    let s = seg(&m, "attachment:marks.xlsx#Class 7B");
    let rows = &s.table.as_ref().unwrap().rows;
    assert_eq!(rows[0], ["Forename", "Surname", "Date of birth", "Mark"]);
    assert_eq!(rows[1], ["Hollis", "Brackenbury", "09/04/2013", "42"]);
    assert_eq!(rows[2][3], "37.5");
    assert!(s.text.contains("Wren\tMallowfield"));
    assert_eq!(
        text(&m, "attachment:marks.xlsx#Secret tab").trim(),
        "Hidden walnut ledger"
    );
}

#[test]
fn ods_sheets_with_repeats_bounded() {
    let m = ex().extract(&with_attachment(
        "marks.ods",
        "application/vnd.oasis.opendocument.spreadsheet",
        &fixture("marks.ods"),
    ));
    let rows = &seg(&m, "attachment:marks.ods#Marks")
        .table
        .as_ref()
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1], ["Percival Thistlewood", "17"]);
    assert_eq!(
        text(&m, "attachment:marks.ods#Notes").trim(),
        "Gooseberry fortnight"
    );
}

#[test]
fn pdf_text_of_all_pages() {
    let m = ex().extract(&with_attachment(
        "letter.pdf",
        "application/pdf",
        &fixture("letter.pdf"),
    ));
    let t = text(&m, "attachment:letter.pdf");
    assert!(t.contains("saffron trombone parade"), "{t}");
    assert!(t.contains("gooseberry lighthouse minutes"), "{t}");
    assert!(!t.contains("paradePage"), "pages run together: {t}");
    assert_eq!(part(&m, "attachment:letter.pdf").facts.encrypted, None);
}

#[test]
fn owner_password_pdf_is_extracted() {
    let m = ex().extract(&with_attachment(
        "owner-only.pdf",
        "application/pdf",
        &fixture("owner-only.pdf"),
    ));
    assert!(text(&m, "attachment:owner-only.pdf").contains("saffron trombone"));
    assert_eq!(part(&m, "attachment:owner-only.pdf").facts.encrypted, None);
}

#[test]
fn user_password_pdf_is_encrypted_without_text() {
    let m = ex().extract(&with_attachment(
        "secret.pdf",
        "application/pdf",
        &fixture("secret.pdf"),
    ));
    assert_eq!(
        part(&m, "attachment:secret.pdf").facts.encrypted,
        Some(Encryption::Pdf)
    );
    assert!(!all_text(&m).contains("saffron"));
    assert!(m.limits_hit.is_empty(), "{:?}", m.limits_hit);
}

#[test]
fn broken_pdf_is_pdf_failed_and_kept() {
    let m = ex().extract(&with_attachment(
        "broken.pdf",
        "application/pdf",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nthis is not a pdf\n",
    ));
    assert_eq!(limit(&m, "pdf_failed").location, "attachment:broken.pdf");
    part(&m, "attachment:broken.pdf");
}

// --- macros, encryption, executables ----------------------------------------------

#[test]
fn macros_in_ooxml_whatever_the_name() {
    for name in ["macro.docm", "macro-renamed.docx"] {
        let m = ex().extract(&with_attachment(
            name,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            &fixture(name),
        ));
        let p = part(&m, &format!("attachment:{name}"));
        assert!(p.facts.macros, "{name}");
        assert!(text(&m, &format!("attachment:{name}")).contains("marmalade heron"));
    }
}

fn ole(build: impl FnOnce(&mut cfb::CompoundFile<std::io::Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut cf = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).unwrap();
    build(&mut cf);
    cf.flush().unwrap();
    cf.into_inner().into_inner()
}

fn legacy_macro_doc() -> Vec<u8> {
    use std::io::Write;
    ole(|cf| {
        let mut fib = vec![0u8; 4096];
        fib[0] = 0xec;
        fib[1] = 0xa5;
        cf.create_stream("/WordDocument")
            .unwrap()
            .write_all(&fib)
            .unwrap();
        cf.create_storage("/Macros").unwrap();
        cf.create_storage("/Macros/VBA").unwrap();
        cf.create_stream("/Macros/VBA/dir")
            .unwrap()
            .write_all(b"stand-in")
            .unwrap();
    })
}

/// Regenerates `fixtures/files/legacy-macro.doc` (run with `--ignored`).
#[test]
#[ignore]
fn generate_ole_fixture() {
    let path = format!(
        "{}/fixtures/files/legacy-macro.doc",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::write(path, legacy_macro_doc()).unwrap();
}

#[test]
fn legacy_ole_macros_and_encryption() {
    let m = ex().extract(&with_attachment(
        "legacy-macro.doc",
        "application/msword",
        &fixture("legacy-macro.doc"),
    ));
    assert!(part(&m, "attachment:legacy-macro.doc").facts.macros);

    let excel = ole(|cf| {
        cf.create_storage("/_VBA_PROJECT_CUR").unwrap();
    });
    let m = ex().extract(&with_attachment(
        "book.xls",
        "application/vnd.ms-excel",
        &excel,
    ));
    assert!(part(&m, "attachment:book.xls").facts.macros);

    let plain = ole(|cf| {
        cf.create_stream("/WordDocument").unwrap();
    });
    let m = ex().extract(&with_attachment("plain.doc", "application/msword", &plain));
    let p = part(&m, "attachment:plain.doc");
    assert!(!p.facts.macros);
    assert_eq!(p.facts.encrypted, None);

    use std::io::Write;
    let locked = ole(|cf| {
        let mut fib = vec![0u8; 4096];
        fib[0] = 0xec;
        fib[1] = 0xa5;
        fib[11] = 0x01; // fEncrypted
        cf.create_stream("/WordDocument")
            .unwrap()
            .write_all(&fib)
            .unwrap();
    });
    let m = ex().extract(&with_attachment(
        "locked.doc",
        "application/msword",
        &locked,
    ));
    assert_eq!(
        part(&m, "attachment:locked.doc").facts.encrypted,
        Some(Encryption::Office)
    );
}

#[test]
fn password_protected_ooxml_is_office_encrypted() {
    let m = ex().extract(&with_attachment(
        "encrypted.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &fixture("encrypted.xlsx"),
    ));
    let p = part(&m, "attachment:encrypted.xlsx");
    assert_eq!(p.facts.encrypted, Some(Encryption::Office));
    assert!(!all_text(&m).contains("Brackenbury"));
}

#[test]
fn encrypted_odf_manifest() {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    use std::io::Write;
    w.start_file("mimetype", opts).unwrap();
    w.write_all(b"application/vnd.oasis.opendocument.text")
        .unwrap();
    w.start_file("META-INF/manifest.xml", opts).unwrap();
    w.write_all(b"<manifest:manifest><manifest:file-entry manifest:full-path=\"content.xml\"><manifest:encryption-data/></manifest:file-entry></manifest:manifest>").unwrap();
    w.start_file("content.xml", opts).unwrap();
    w.write_all(b"\x93\x01garbage").unwrap();
    let data = w.finish().unwrap().into_inner();
    let m = ex().extract(&with_attachment(
        "locked.odt",
        "application/octet-stream",
        &data,
    ));
    assert_eq!(
        part(&m, "attachment:locked.odt").facts.encrypted,
        Some(Encryption::Office)
    );
}

#[test]
fn executables_by_magic_not_name() {
    let m = ex().extract(&with_attachment(
        "holiday.jpg",
        "image/jpeg",
        &fixture("stub.exe"),
    ));
    assert_eq!(
        part(&m, "attachment:holiday.jpg").facts.executable,
        Some(ExecutableKind::Pe)
    );
    let m = ex().extract(&with_attachment(
        "tool",
        "application/octet-stream",
        &fixture("stub.elf"),
    ));
    assert_eq!(
        part(&m, "attachment:tool").facts.executable,
        Some(ExecutableKind::Elf)
    );
    let m = ex().extract(&with_attachment(
        "country_codes.csv",
        "text/csv",
        &fixture("mz-text.csv"),
    ));
    let p = part(&m, "attachment:country_codes.csv");
    assert_eq!(p.facts.executable, None);
    assert!(text(&m, "attachment:country_codes.csv").contains("Zanzibar Isles"));
}

#[test]
fn pe_declared_as_text_keeps_its_bytes() {
    let pe = fixture("stub.exe");
    let raw = format!(
        "{HEAD}Subject: t\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8; name=\"readme.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        base64(&pe)
    );
    let m = ex().extract(raw.as_bytes());
    let p = part(&m, "attachment:readme.txt");
    assert_eq!(p.facts.executable, Some(ExecutableKind::Pe));
    assert_eq!(&p.data[..], &pe[..]);
}

// --- zips ----------------------------------------------------------------------------

#[test]
fn zipcrypto_and_aes_zips_are_marked_and_not_read() {
    for name in ["zipcrypto.zip", "aes.zip"] {
        let m = ex().extract(&with_attachment(name, "application/zip", &fixture(name)));
        let zip = part(&m, &format!("attachment:{name}"));
        assert!(zip.facts.archive);
        assert_eq!(zip.facts.encrypted, Some(Encryption::ZipEntry), "{name}");
        let members: Vec<&Part> = m.parts.iter().filter(|p| p.archive_depth == 1).collect();
        assert_eq!(members.len(), 1, "{name}");
        assert_eq!(members[0].facts.encrypted, Some(Encryption::ZipEntry));
        assert!(members[0].data.is_empty());
        assert!(!all_text(&m).contains("Wobblecourt"), "{name}");
    }
}

#[test]
fn nested_zip_members_are_parts_with_depth_and_text() {
    let m = ex().extract(&with_attachment(
        "nested.zip",
        "application/zip",
        &fixture("nested.zip"),
    ));
    let deep = part(&m, "attachment:nested.zip/inner.zip/deep/notes.txt");
    assert_eq!(deep.archive_depth, 2);
    assert!(deep.is_attachment);
    assert_eq!(deep.name.as_deref(), Some("deep/notes.txt"));
    assert_eq!(
        text(&m, "attachment:nested.zip/inner.zip/deep/notes.txt").trim(),
        "The tangerine walrus waits at depth two"
    );
    assert!(part(&m, "attachment:nested.zip/inner.zip").facts.archive);
    let csv = seg(&m, "attachment:nested.zip/pupils.csv");
    assert_eq!(csv.table.as_ref().unwrap().rows[1][1], "Wobblecourt");
}

#[test]
fn archive_depth_limit() {
    let m = ex_with(|l| l.max_archive_depth = 1).extract(&with_attachment(
        "nested.zip",
        "application/zip",
        &fixture("nested.zip"),
    ));
    assert_eq!(
        limit(&m, "archive_depth").location,
        "attachment:nested.zip/inner.zip"
    );
    assert!(!all_text(&m).contains("tangerine walrus"));
    assert!(all_text(&m).contains("pewter umbrella"));
}

#[test]
fn archive_entries_limit() {
    let m = ex_with(|l| l.max_archive_entries = 2).extract(&with_attachment(
        "nested.zip",
        "application/zip",
        &fixture("nested.zip"),
    ));
    limit(&m, "archive_entries");
    assert!(m.parts.iter().filter(|p| p.archive_depth >= 1).count() <= 2);
}

#[test]
fn zip_bomb_is_stopped_by_the_ratio() {
    let m = ex().extract(&with_attachment(
        "bomb.zip",
        "application/zip",
        &fixture("bomb.zip"),
    ));
    let hit = limit(&m, "expansion_ratio");
    assert_eq!(hit.location, "attachment:bomb.zip/zeros.bin");
    let member = part(&m, "attachment:bomb.zip/zeros.bin");
    assert!(member.data.is_empty());
}

#[test]
fn expanded_bytes_budget_for_the_message() {
    // 20 MiB of zeros is fine for the ratio check when the ratio is huge, but
    // not for a 1 MiB budget.
    let m = ex_with(|l| {
        l.max_expansion_ratio = 1_000_000;
        l.max_expanded_bytes = 1024 * 1024;
    })
    .extract(&with_attachment(
        "bomb.zip",
        "application/zip",
        &fixture("bomb.zip"),
    ));
    limit(&m, "expanded_bytes");
}

#[test]
fn lying_zip_header_cannot_expand_past_the_cap() {
    // A stored member whose headers claim 10 bytes but hold 2 MiB.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    use std::io::Write;
    w.start_file("big.txt", opts).unwrap();
    w.write_all(&vec![b'a'; 4 * 1024 * 1024]).unwrap();
    let mut data = w.finish().unwrap().into_inner();
    // Patch the declared uncompressed size (local header offset 22, central
    // directory entry offset 24) to 10 bytes.
    data[22..26].copy_from_slice(&10u32.to_le_bytes());
    let cd = data.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    data[cd + 24..cd + 28].copy_from_slice(&10u32.to_le_bytes());
    let m = ex().extract(&with_attachment("liar.zip", "application/zip", &data));
    assert!(
        m.limits_hit
            .iter()
            .any(|l| l.limit == "expansion_ratio" || l.limit == "extract_failed"),
        "{:?}",
        m.limits_hit
    );
    assert!(m.parts.iter().all(|p| p.data.len() <= 4 * 1024 * 1024));
}

#[test]
fn corrupt_zip_is_extract_failed_and_kept() {
    let mut data = fixture("report.docx");
    data.truncate(data.len() / 2);
    let m = ex().extract(&with_attachment(
        "report.docx",
        "application/octet-stream",
        &data,
    ));
    assert_eq!(
        limit(&m, "extract_failed").location,
        "attachment:report.docx"
    );
    assert_eq!(part(&m, "attachment:report.docx").data.len(), data.len());
}

// --- S/MIME and PGP ------------------------------------------------------------------

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag, 0x82];
    v.extend_from_slice(&(content.len() as u16).to_be_bytes());
    v.extend_from_slice(content);
    v
}

const OID_SIGNED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_ENVELOPED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];

#[test]
fn smime_enveloped_message_is_encrypted() {
    let blob = der(
        0x30,
        &[der(0x06, OID_ENVELOPED), der(0xa0, &[1, 2, 3])].concat(),
    );
    let raw = format!(
        "{HEAD}Subject: SEN register\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n\
Content-Disposition: attachment; filename=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        base64(&blob)
    );
    let m = ex().extract(raw.as_bytes());
    assert_eq!(m.encrypted, Some(Encryption::Smime));
    assert_eq!(
        part(&m, "attachment:smime.p7m").facts.encrypted,
        Some(Encryption::Smime)
    );
    assert_eq!(m.texts.len(), 1, "only the subject: {:?}", m.texts);
    // Without smime-type the OID decides.
    let m = ex().extract(raw.replace("smime-type=enveloped-data; ", "").as_bytes());
    assert_eq!(m.encrypted, Some(Encryption::Smime));
}

#[test]
fn smime_opaque_signed_content_is_scanned() {
    let inner =
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nSigned yet readable zebra minutes\r\n";
    let encap = [der(0x06, &OID_SIGNED[..8]), der(0xa0, &der(0x04, inner))].concat();
    let sd = [
        der(0x02, &[1]),
        der(0x31, &[]),
        der(0x30, &encap),
        der(0x31, &[]),
    ]
    .concat();
    let blob = der(
        0x30,
        &[der(0x06, OID_SIGNED), der(0xa0, &der(0x30, &sd))].concat(),
    );
    let raw = format!(
        "{HEAD}Subject: signed\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        base64(&blob)
    );
    let m = ex().extract(raw.as_bytes());
    assert_eq!(m.encrypted, None);
    assert!(text(&m, "body").contains("zebra minutes"));
    part(&m, "attachment:smime.p7m");
}

#[test]
fn pgp_mime_is_encrypted() {
    let m = ex().extract(&simple(
        "Subject: Trip list\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"e\"\r\n",
        "--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\
         --e\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n\
         -----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA1234\r\n-----END PGP MESSAGE-----\r\n--e--\r\n",
    ));
    assert_eq!(m.encrypted, Some(Encryption::Pgp));
    assert_eq!(m.parts.len(), 2);
    assert!(
        m.parts
            .iter()
            .all(|p| p.facts.encrypted == Some(Encryption::Pgp))
    );
    assert_eq!(m.texts.len(), 1, "only the subject");
}

#[test]
fn inline_pgp_is_encrypted_but_signed_is_not() {
    let m = ex().extract(&simple(
        "Subject: x\r\nContent-Type: text/plain\r\n",
        "Hello\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA1234secret\r\n-----END PGP MESSAGE-----\r\n",
    ));
    assert_eq!(m.encrypted, Some(Encryption::Pgp));
    assert_eq!(part(&m, "body").facts.encrypted, Some(Encryption::Pgp));
    assert!(!all_text(&m).contains("hQEMA"));

    let m = ex().extract(&simple(
        "Subject: x\r\nContent-Type: text/plain\r\n",
        "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nreadable words\r\n-----BEGIN PGP SIGNATURE-----\r\nabc\r\n-----END PGP SIGNATURE-----\r\n",
    ));
    assert_eq!(m.encrypted, None);
    assert!(text(&m, "body").contains("readable words"));
}

#[test]
fn pgp_armoured_attachment_is_encrypted() {
    let m = ex().extract(&with_attachment(
        "data.asc",
        "application/octet-stream",
        b"-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA\r\n-----END PGP MESSAGE-----\r\n",
    ));
    assert_eq!(
        part(&m, "attachment:data.asc").facts.encrypted,
        Some(Encryption::Pgp)
    );
    assert_eq!(m.encrypted, None);
}

// --- malformed input -------------------------------------------------------------------

#[test]
fn headerless_input_is_scanned_as_text() {
    let m = ex().extract(b"\r\n\r\njust some words without headers");
    assert!(all_text(&m).contains("just some words"));
}

#[test]
fn unterminated_multipart_is_scanned_as_far_as_possible() {
    let m = ex().extract(&simple(
        "Subject: cut\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n",
        "--b\r\nContent-Type: text/plain\r\n\r\nfirst part words\r\n--b\r\nContent-Type: text/plain; name=a.txt\r\n\r\nsecond part cut off",
    ));
    let all = all_text(&m);
    assert!(all.contains("first part words"));
    assert!(all.contains("second part cut off"));
}

// --- PDF worker (runner logic, with stand-in worker scripts) --------------------------

fn script(body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("worker.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, path)
}

fn worker(body: &str, f: impl FnOnce(&mut Limits)) -> ScannedMessage {
    let (_dir, exe) = script(body);
    let mut limits = Limits::default();
    f(&mut limits);
    let raw = with_attachment("letter.pdf", "application/pdf", &fixture("letter.pdf"));
    Extractor::new(limits, PdfMode::Worker(exe)).extract(&raw)
}

#[test]
fn worker_text_is_used() {
    let m = worker(
        "[ \"$1\" = extract-pdf ] || exit 9\ncat >/dev/null\necho 'worker said hello'",
        |_| {},
    );
    assert_eq!(
        text(&m, "attachment:letter.pdf").trim(),
        "worker said hello"
    );
}

#[test]
fn worker_timeout_is_a_limit() {
    let started = std::time::Instant::now();
    let m = worker("cat >/dev/null\nexec sleep 30", |l| l.pdf_timeout_secs = 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(limit(&m, "pdf_timeout").location, "attachment:letter.pdf");
}

#[test]
fn worker_failure_and_password_exit_codes() {
    let m = worker(
        "cat >/dev/null\necho 'PDF: broken xref' >&2\nexit 4",
        |_| {},
    );
    assert_eq!(limit(&m, "pdf_failed").detail, "PDF: broken xref");
    let m = worker("cat >/dev/null\nexit 3", |_| {});
    assert_eq!(
        part(&m, "attachment:letter.pdf").facts.encrypted,
        Some(Encryption::Pdf)
    );
}

#[test]
fn worker_runs_under_rlimits() {
    let m = worker(
        "cat >/dev/null\necho \"mem=$(ulimit -v) cpu=$(ulimit -t)\"",
        |l| {
            l.pdf_memory_mib = 300;
            l.pdf_timeout_secs = 4;
        },
    );
    assert_eq!(
        text(&m, "attachment:letter.pdf").trim(),
        format!("mem={} cpu=5", 300 * 1024)
    );
}

#[test]
fn missing_worker_is_pdf_failed() {
    let raw = with_attachment("letter.pdf", "application/pdf", &fixture("letter.pdf"));
    let m = Extractor::new(
        Limits::default(),
        PdfMode::Worker("/nonexistent/hallmonitor".into()),
    )
    .extract(&raw);
    limit(&m, "pdf_failed");
}

// --- property tests ----------------------------------------------------------------------

fn rich_message() -> Vec<u8> {
    let mut raw = format!(
        "{HEAD}Subject: =?UTF-8?Q?caf=C3=A9?=\r\nContent-Type: multipart/mixed; boundary=\"M\"\r\n\r\n\
--M\r\nContent-Type: multipart/alternative; boundary=\"A\"\r\n\r\n\
--A\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 soft=\r\nbreak\r\n\
--A\r\nContent-Type: text/html\r\n\r\n<p>f<b>u</b>n &amp; &#102;</p>\r\n--A--\r\n\
--M\r\nContent-Type: message/rfc822\r\n\r\n{INNER}\r\n"
    )
    .into_bytes();
    for (name, ctype) in [
        ("report.docx", "application/octet-stream"),
        ("nested.zip", "application/zip"),
        ("marks.xlsx", "application/octet-stream"),
        ("marks.ods", "application/octet-stream"),
        ("letter.pdf", "application/pdf"),
    ] {
        raw.extend_from_slice(
            format!(
                "--M\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64(&fixture(name))
            )
            .as_bytes(),
        );
    }
    raw.extend_from_slice(b"--M--\r\n");
    raw
}

#[test]
fn rich_message_extracts_everything() {
    let m = ex().extract(&rich_message());
    assert!(m.limits_hit.is_empty(), "{:?}", m.limits_hit);
    assert_eq!(text(&m, "body:html"), "fun & f");
    assert!(text(&m, "body").contains("café softbreak"));
    assert!(all_text(&m).contains("tangerine walrus"));
    assert!(all_text(&m).contains("saffron trombone"));
}

/// Decoded attachments: mutating these exercises the document parsers rather
/// than just the base64 decoder.
fn fixture_message(name: &str, data: &[u8]) -> Vec<u8> {
    with_attachment(name, "application/octet-stream", data)
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    static RICH: LazyLock<Vec<u8>> = LazyLock::new(rich_message);
    static DOCS: LazyLock<Vec<(&'static str, Vec<u8>)>> = LazyLock::new(|| {
        [
            "report.docx",
            "nested.zip",
            "marks.xlsx",
            "marks.ods",
            "notes.odt",
            "slides.pptx",
            "encrypted.xlsx",
            "legacy-macro.doc",
            "aes.zip",
            "legacy.xls",
        ]
        .into_iter()
        .map(|n| (n, fixture(n)))
        .collect()
    });

    fn mutate(base: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
        let mut v = base.to_vec();
        for &(pos, byte) in edits {
            if !v.is_empty() {
                let i = pos % v.len();
                v[i] = byte;
            }
        }
        if let Some(c) = cut {
            v.truncate(c % (v.len() + 1));
        }
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::default())]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let m = ex().extract(&data);
            prop_assert_eq!(m.raw_size, data.len());
        }

        #[test]
        fn mutated_messages_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..24),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let raw = mutate(&RICH, &edits, cut);
            let _ = ex().extract(&raw);
        }

        #[test]
        fn mutated_documents_never_panic(
            which in 0usize..10,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let (name, data) = &DOCS[which % DOCS.len()];
            let doc = mutate(data, &edits, cut);
            let _ = ex().extract(&fixture_message(name, &doc));
        }
    }
}

/// Development aid: summarise extraction of every message in the shared
/// development corpus (not part of the repository). Run with
/// `cargo test --release --lib corpus_summary -- --ignored --nocapture`.
#[test]
#[ignore]
fn corpus_summary() {
    let dir = format!("{}/../shared/corpus-dev", env!("CARGO_MANIFEST_DIR"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    let exe = std::env::var_os("HALLMONITOR_EXE").map(std::path::PathBuf::from);
    let mode = exe.map(PdfMode::Worker).unwrap_or(PdfMode::InProcess);
    let x = Extractor::new(Limits::default(), mode);
    for f in files {
        let raw = std::fs::read(&f).unwrap();
        let t = std::time::Instant::now();
        let m = x.extract(&raw);
        let us = t.elapsed().as_micros();
        println!(
            "{} {us}us enc={:?} fwd={} texts={:?}",
            f.file_name().unwrap().to_string_lossy(),
            m.encrypted,
            m.forwarded_depth,
            m.texts
                .iter()
                .map(|t| format!("{}({})", t.location, t.text.len()))
                .collect::<Vec<_>>()
        );
        for p in &m.parts {
            if p.is_attachment || p.facts.encrypted.is_some() {
                println!(
                    "    part {} d={} sniff={:?} {:?} len={}",
                    p.location,
                    p.archive_depth,
                    p.sniffed_type,
                    p.facts,
                    p.data.len()
                );
            }
        }
        for l in &m.limits_hit {
            println!("    LIMIT {} {} {}", l.limit, l.location, l.detail);
        }
    }
}

#[test]
fn part_flood_is_capped() {
    let mut body = String::new();
    for i in 0..(crate::message::mime::MAX_PARTS + 50) {
        body.push_str(&format!(
            "--b\r\nContent-Type: application/octet-stream; name=f{i}.bin\r\n\r\nx\r\n"
        ));
    }
    body.push_str("--b--\r\n");
    let m = ex().extract(&simple(
        "Subject: flood\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n",
        &body,
    ));
    assert_eq!(m.parts.len(), crate::message::mime::MAX_PARTS);
    assert_eq!(
        m.limits_hit
            .iter()
            .filter(|l| l.limit == "mime_parts")
            .count(),
        1
    );
}

#[test]
fn zip_glued_behind_a_picture_is_opened() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let mut data = png.to_vec();
    data.extend_from_slice(&fixture("nested.zip"));
    let m = ex().extract(&with_attachment("cat.png", "image/png", &data));
    assert!(part(&m, "attachment:cat.png").facts.archive);
    assert!(all_text(&m).contains("pewter umbrella"));
}

#[test]
fn legacy_xls_sheets_with_dates_and_hidden_sheet() {
    let m = ex().extract(&with_attachment(
        "legacy.xls",
        "application/vnd.ms-excel",
        &fixture("legacy.xls"),
    ));
    let s = seg(&m, "attachment:legacy.xls#Tutor group");
    let rows = &s.table.as_ref().unwrap().rows;
    assert_eq!(rows[0], ["Forename", "Surname", "Date of birth", "Score"]);
    assert_eq!(rows[1], ["Ottoline", "Fernsby", "17/05/2013", "91"]);
    assert_eq!(rows[2], ["Caspian", "Larkspur-Dene", "", "12.25"]);
    assert!(rows[3][0].starts_with("Long string xxx") && rows[3][0].len() == 9012);
    assert_eq!(
        text(&m, "attachment:legacy.xls#Hidden notes").trim(),
        "Ginger pelican archive"
    );
    let p = part(&m, "attachment:legacy.xls");
    assert_eq!(p.facts.encrypted, None);
    assert!(!p.facts.macros);
}

#[test]
fn format_flowed_lines_are_rejoined() {
    let m = ex().extract(&simple(
        "Subject: f\r\nContent-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n",
        "What a sham \r\nbolic day. Next  \r\nline\r\n>quoted\r\n From here\r\n",
    ));
    assert_eq!(
        text(&m, "body"),
        "What a shambolic day. Next line\n>quoted\nFrom here\n"
    );
    let m = ex().extract(&simple(
        "Subject: f\r\nContent-Type: text/plain; format=flowed\r\n",
        "soft \r\nwrap\r\n",
    ));
    assert_eq!(text(&m, "body"), "soft wrap\n");
}

#[test]
fn long_worker_output_is_cut_once() {
    let m = worker("cat >/dev/null\nyes 'many words' | head -c 500000", |l| {
        l.max_text_per_part = 1000
    });
    assert!(text(&m, "attachment:letter.pdf").len() <= 1000);
    assert_eq!(
        m.limits_hit
            .iter()
            .filter(|l| l.limit == "text_per_part")
            .count(),
        1
    );
}

#[test]
fn eml_file_attachment_is_walked_as_a_message() {
    let m = ex().extract(&with_attachment(
        "old thread.eml",
        "application/octet-stream",
        INNER.as_bytes(),
    ));
    assert_eq!(
        text(&m, "message:old thread.eml/subject"),
        "Little Tom needs help"
    );
    assert_eq!(m.forwarded_depth, 1);
}

#[test]
fn inline_extraction_leaves_pdfs_to_a_thread_that_may_block() {
    // The worker process for PDFs is never started from an async thread.
    let raw = with_attachment("letter.pdf", "application/pdf", &fixture("letter.pdf"));
    let worker = Extractor::new(
        Limits::default(),
        PdfMode::Worker("/nonexistent/hallmonitor".into()),
    );
    assert!(worker.extract_inline(&raw).is_none());
    // The same message extracted in full is read (here in process).
    let full = ex().extract(&raw);
    let t = text(&full, "attachment:letter.pdf");
    assert!(t.contains("saffron trombone parade"), "{t}");
}

#[test]
fn inline_extraction_hands_over_what_expands_beyond_its_budget() {
    // 20 MiB of zeros passes a huge ratio limit and the message budget, but
    // not the inline budget: that message is extracted on the blocking pool,
    // where it is read up to the real limits.
    let raw = with_attachment("bomb.zip", "application/zip", &fixture("bomb.zip"));
    let big = ex_with(|l| {
        l.max_expansion_ratio = 1_000_000;
        l.max_expanded_bytes = 64 * 1024 * 1024;
    });
    assert!(big.extract_inline(&raw).is_none());
    let full = big.extract(&raw);
    assert!(
        !full.limits_hit.iter().any(|l| l.limit == "expanded_bytes"),
        "{:?}",
        full.limits_hit
    );
    // A message budget below the inline one is the real limit: the inline
    // extraction stands, limit hit included.
    let small = ex_with(|l| {
        l.max_expansion_ratio = 1_000_000;
        l.max_expanded_bytes = 512 * 1024;
    });
    let m = small.extract_inline(&raw).expect("within the real limits");
    limit(&m, "expanded_bytes");
}

#[test]
fn inline_extraction_of_everyday_mail_matches_the_full_one() {
    let raw = with_attachment(
        "report.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        &fixture("report.docx"),
    );
    let inline = ex().extract_inline(&raw).expect("small and simple");
    let full = ex().extract(&raw);
    assert_eq!(inline.parts.len(), full.parts.len());
    assert!(!full.texts.is_empty());
    assert_eq!(inline.texts.len(), full.texts.len());
    for (a, b) in inline.texts.iter().zip(&full.texts) {
        assert_eq!(a.text, b.text);
        assert_eq!(a.location, b.location);
    }
}
