//! The PDF worker (`hallmonitor extract-pdf`) through the real binary: PDF text
//! reaches the detectors, password-protected PDFs are recognised, and a hostile
//! PDF costs a worker process, never the scanner.

mod common;

use common::{Env, HALLMONITOR, clamd, scan_with, test_config};
use std::io::Write;
use std::process::{Command, Stdio};

/// A one-page PDF whose page shows `text` (Helvetica, uncompressed content),
/// with a correct cross-reference table.
fn pdf_with_text(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn extract_pdf(input: &[u8]) -> std::process::Output {
    let mut child = Command::new(HALLMONITOR)
        .arg("extract-pdf")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start extract-pdf");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write pdf");
    child.wait_with_output().expect("extract-pdf output")
}

fn message_with_pdf(name: &str, pdf: &[u8]) -> String {
    use std::fmt::Write as _;
    let b64 = common::base64_lines(pdf);
    let mut m = String::new();
    let _ = write!(
        m,
        "From: Ava Brown <ava.brown@pupils.oakfield.sch.uk>\r\n\
         To: Leo Patel <leo.patel@pupils.oakfield.sch.uk>\r\n\
         Subject: my story\r\n\
         Message-ID: <pdf-worker-test@oakfield.sch.uk>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n\
         --XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --XX\r\nContent-Type: application/pdf; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XX--\r\n"
    );
    m
}

#[test]
fn worker_prints_the_text_of_every_page() {
    let out = extract_pdf(&std::fs::read(common::fixture("files/letter.pdf")).unwrap());
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("saffron trombone parade"), "{text}");
    assert!(text.contains("gooseberry lighthouse minutes"), "{text}");
}

#[test]
fn worker_says_when_a_pdf_needs_a_password() {
    let out = extract_pdf(&std::fs::read(common::fixture("files/secret.pdf")).unwrap());
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "no text may leak from an encrypted PDF"
    );
}

#[test]
fn worker_fails_cleanly_on_garbage() {
    let out = extract_pdf(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\ntrailer garbage");
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn offensive_text_inside_a_pdf_is_found_through_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("story.eml");
    std::fs::write(
        &eml,
        message_with_pdf("story.pdf", &pdf_with_text("you are a fucking idiot")),
    )
    .unwrap();
    let env =
        Env::internal("ava.brown@pupils.oakfield.sch.uk").to("leo.patel@pupils.oakfield.sch.uk");
    let s = scan_with(&test_config(), &clamd().address(), &env, &eml);
    let hits = s.in_category("profanity");
    assert!(!hits.is_empty(), "{}", s.explain());
    assert_eq!(
        hits[0]["location"],
        "attachment:story.pdf",
        "{}",
        s.explain()
    );
    assert!(!s.run.stdout.contains("fucking"), "evidence must be masked");
}

#[test]
fn a_broken_pdf_does_not_stop_the_scan_of_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("broken.eml");
    let mut body = message_with_pdf("broken.pdf", b"%PDF-1.4\n%%%% not really a pdf \xff\xfe");
    body = body.replace("see attached", "you are a fucking idiot");
    std::fs::write(&eml, body).unwrap();
    let env =
        Env::internal("ava.brown@pupils.oakfield.sch.uk").to("leo.patel@pupils.oakfield.sch.uk");
    let s = scan_with(&test_config(), &clamd().address(), &env, &eml);
    assert_ne!(s.action(), "tempfail", "{}", s.explain());
    assert!(s.has_category("profanity"), "{}", s.explain());
}
