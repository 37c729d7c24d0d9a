//! Benchmark of the scan pipeline (extraction, all detectors except clamd, policy),
//! single-threaded. Prints messages per second for:
//!   - a 10 KB plain-text school message;
//!   - a message carrying a ~200 KB xlsx attachment.
//!
//! Run: `cargo bench --bench scan_pipeline` (uses the release profile).
//! `BENCH_SECONDS` sets the measuring time per case (default 3).

use hallmonitor::config::Config;
use hallmonitor::message::{Envelope, PdfMode};
use hallmonitor::scan::{Scanner, ScannerOptions};
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

/// A small deterministic pseudo-random generator so the inputs are the same every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() as usize) % items.len()]
    }
}

const WORDS: &[&str] = &[
    "the",
    "pupils",
    "will",
    "meet",
    "in",
    "the",
    "main",
    "hall",
    "after",
    "lunch",
    "for",
    "a",
    "rehearsal",
    "of",
    "the",
    "spring",
    "concert",
    "please",
    "remind",
    "your",
    "form",
    "group",
    "that",
    "homework",
    "is",
    "due",
    "on",
    "Friday",
    "and",
    "the",
    "library",
    "closes",
    "early",
    "this",
    "week",
    "because",
    "of",
    "staff",
    "training",
    "thank",
    "you",
    "for",
    "all",
    "your",
    "help",
    "with",
    "the",
    "trip",
    "to",
    "the",
    "museum",
    "letters",
    "went",
    "home",
    "yesterday",
    "Scunthorpe",
    "analysis",
    "assessment",
    "governors",
    "timetable",
    "exams",
    "coursework",
];

fn text_message(target: usize) -> Vec<u8> {
    let mut rng = Lcg(7);
    let mut body = String::new();
    while body.len() < target {
        let mut line = String::new();
        while line.len() < 70 {
            line.push_str(rng.pick(WORDS));
            line.push(' ');
        }
        body.push_str(line.trim_end());
        body.push_str("\r\n");
        if rng.next().is_multiple_of(6) {
            body.push_str("\r\n");
        }
    }
    format!(
        "From: Ms Jane Carter <j.carter@school.example.sch.uk>\r\n\
         To: Year 9 Tutors <year9@school.example.sch.uk>\r\n\
         Subject: Spring concert rehearsal and homework reminders\r\n\
         Date: Mon, 23 Nov 2026 09:12:00 +0000\r\n\
         Message-ID: <bench-10k@school.example.sch.uk>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n-- \r\nJane Carter\r\nHead of Year 9\r\n"
    )
    .into_bytes()
}

/// A minimal but valid xlsx workbook (one sheet of stock-list rows, inline strings).
fn xlsx(target_compressed: usize) -> Vec<u8> {
    let mut rng = Lcg(11);
    let items = [
        "Glue sticks",
        "A4 paper",
        "Whiteboard pens",
        "Rulers",
        "Calculators",
        "Test tubes",
        "Paint brushes",
        "Exercise books",
        "Scissors",
        "Graph paper",
    ];
    let mut rows = 0usize;
    let mut out = Vec::new();
    let mut step = 2000usize;
    loop {
        rows += step;
        let mut sheet = String::from(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
        );
        sheet.push_str(r#"<row r="1"><c r="A1" t="inlineStr"><is><t>Item</t></is></c><c r="B1" t="inlineStr"><is><t>Department</t></is></c><c r="C1" t="inlineStr"><is><t>Quantity</t></is></c><c r="D1" t="inlineStr"><is><t>Unit cost</t></is></c></row>"#);
        for r in 2..rows + 2 {
            let item = items[(rng.next() as usize) % items.len()];
            let dept = rng.pick(&["Science", "Maths", "Art", "English", "Humanities"]);
            let qty = rng.next() % 500;
            let cost = rng.next() % 10_000;
            sheet.push_str(&format!(
                r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{item} {}</t></is></c><c r="B{r}" t="inlineStr"><is><t>{dept}</t></is></c><c r="C{r}"><v>{qty}</v></c><c r="D{r}"><v>{}.{:02}</v></c></row>"#,
                rng.next() % 1000,
                cost / 100,
                cost % 100
            ));
        }
        sheet.push_str("</sheetData></worksheet>");
        out.clear();
        {
            let mut zw = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            let files: [(&str, String); 5] = [
                ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.into()),
                ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.into()),
                ("xl/workbook.xml", r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Stock" sheetId="1" r:id="rId1"/></sheets></workbook>"#.into()),
                ("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.into()),
                ("xl/worksheets/sheet1.xml", sheet),
            ];
            for (name, content) in files {
                zw.start_file(name, opts).expect("zip entry");
                zw.write_all(content.as_bytes()).expect("zip write");
            }
            zw.finish().expect("zip finish");
        }
        if out.len() >= target_compressed {
            return out;
        }
        if out.len() * 2 > target_compressed {
            step = 200;
        }
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            s.push_str("\r\n");
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

fn xlsx_message(xlsx: &[u8]) -> Vec<u8> {
    format!(
        "From: Ms Jane Carter <j.carter@school.example.sch.uk>\r\n\
         To: Bursar <bursar@school.example.sch.uk>\r\n\
         Subject: Science stock check\r\n\
         Message-ID: <bench-xlsx@school.example.sch.uk>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hi, the stock check for this term is attached.\r\nThanks, Tom\r\n\
         --b1\r\nContent-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; name=\"stock.xlsx\"\r\n\
         Content-Disposition: attachment; filename=\"stock.xlsx\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        base64(xlsx)
    )
    .into_bytes()
}

fn measure(name: &str, scanner: &Scanner, envelope: &Envelope, raw: &[u8], seconds: f64) {
    // Warm-up, and a sanity check that the message is scanned cleanly.
    let report = scanner.scan(envelope, raw);
    let findings: Vec<&str> = report
        .verdict
        .findings
        .iter()
        .map(|f| f.rule.as_str())
        .collect();
    for _ in 0..20 {
        black_box(scanner.scan(envelope, raw));
    }
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        black_box(scanner.scan(black_box(envelope), black_box(raw)));
        n += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{name:<34} {:>8} bytes  {:>10.0} msgs/s  {:>9.1} µs/msg  ({n} scans, action {}, findings {:?})",
        raw.len(),
        n as f64 / elapsed,
        elapsed * 1e6 / n as f64,
        report.verdict.action.as_str(),
        findings,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let scanner = Scanner::new(
        Config::parse(
            "[school]\nstaff_domains = [\"school.example.sch.uk\"]\npupil_domains = [\"pupils.school.example.sch.uk\"]\n",
            "bench.toml",
        )
        .expect("bench config"),
        ScannerOptions {
            runtime: None, // clamd excluded
            pdf: PdfMode::InProcess,
            parallel: false, // single-threaded
        },
    )
    .expect("scanner");
    let envelope = Envelope {
        mail_from: "j.carter@school.example.sch.uk".into(),
        rcpt_to: vec!["year9@school.example.sch.uk".into()],
        auth_user: Some("j.carter@school.example.sch.uk".into()),
        client_ip: "10.0.0.20".parse().ok(),
        ..Envelope::default()
    };
    println!("scan pipeline, single thread, clamd excluded, {seconds} s per case");
    let text = text_message(10 * 1024);
    measure("10 KB text message", &scanner, &envelope, &text, seconds);
    let book = xlsx(200 * 1024);
    let msg = xlsx_message(&book);
    measure(
        &format!("message + {} KB xlsx", book.len() / 1024),
        &scanner,
        &envelope,
        &msg,
        seconds,
    );
    // BENCH_MESSAGE=FILE adds a message of your own (e.g. the load
    // benchmark's, from benches/load/make-messages.py).
    if let Some(path) = std::env::var_os("BENCH_MESSAGE") {
        match std::fs::read(&path) {
            Ok(raw) => {
                let name = std::path::Path::new(&path)
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                measure(&name, &scanner, &envelope, &raw, seconds);
            }
            Err(e) => eprintln!("BENCH_MESSAGE {}: {e}", path.to_string_lossy()),
        }
    }
}
