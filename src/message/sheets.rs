//! Tables: CSV, xlsx (calamine's streaming cell reader) and ods (own streaming
//! reader). One text segment per sheet, located `<file>#<sheet name>`, with
//! `table` filled so detectors can use the column headers. Every sheet is read,
//! hidden and very hidden ones too.
//!
//! Memory stays proportional to the text kept (`max_text_per_part` per sheet):
//! calamine's `worksheet_range` allocates the whole bounding box of the used
//! cells (one cell in A1 and one in XFD1048576 is 17 billion cells) and its ods
//! reader expands repeated rows/columns up to 100 million cells, so neither is
//! used. Cells are collected sparsely and rows padded only up to `MAX_COLUMNS`.

use super::archive::{self, Zip};
use super::ctx::Ctx;
use super::file::{Blob, set_facts};
use super::{Encryption, Table, TextSource};
use calamine::{DataRef, Reader, SheetType, Xlsx, XlsxError};
use quick_xml::events::{BytesStart, Event};
use std::io::Cursor;

/// Columns beyond this are appended to their row without padding.
const MAX_COLUMNS: u32 = 1024;
/// A repeated non-empty ODS cell or row is emitted at most this many times.
const MAX_REPEAT: u32 = 16;

/// Sparse cells of one sheet, bounded by the text they hold.
pub(crate) struct SheetBuilder {
    cells: Vec<(u32, u32, String)>,
    bytes: usize,
    max: usize,
    pub truncated: bool,
}

impl SheetBuilder {
    pub fn new(max: usize) -> SheetBuilder {
        SheetBuilder {
            cells: Vec::new(),
            bytes: 0,
            max,
            truncated: false,
        }
    }

    /// Add a non-empty cell; false once the sheet holds `max` bytes of text.
    pub fn add(&mut self, row: u32, col: u32, value: String) -> bool {
        if value.is_empty() {
            return true;
        }
        if self.bytes + value.len() + 1 > self.max {
            self.truncated = true;
            return false;
        }
        self.bytes += value.len() + 1;
        self.cells.push((row, col, value));
        true
    }

    /// Rows in order (empty rows dropped), cells aligned on columns; the text is
    /// cells joined by tabs, rows by newlines.
    pub fn finish(mut self) -> (String, Table) {
        self.cells.sort_by_key(|c| (c.0, c.1));
        let min_col = self.cells.iter().map(|c| c.1).min().unwrap_or(0);
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut current: Option<u32> = None;
        for (row, col, value) in self.cells {
            if current != Some(row) {
                rows.push(Vec::new());
                current = Some(row);
            }
            let Some(cells) = rows.last_mut() else {
                continue;
            };
            let col = (col - min_col).min(MAX_COLUMNS) as usize;
            while cells.len() < col {
                cells.push(String::new());
            }
            cells.push(value);
        }
        let mut text = String::with_capacity(self.bytes + rows.len());
        for row in &rows {
            text.push_str(&row.join("\t"));
            text.push('\n');
        }
        (text, Table { rows })
    }
}

/// CSV/TSV with quoted fields; the separator (`,` `;` or tab) is guessed from
/// the first line.
pub(crate) fn parse_csv(text: &str, max: usize) -> Table {
    let first = text.lines().next().unwrap_or("");
    let sep = [',', ';', '\t']
        .into_iter()
        .max_by_key(|&c| first.matches(c).count())
        .filter(|&c| first.contains(c))
        .unwrap_or(',');
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut bytes = 0usize;
    while let Some(c) = chars.next() {
        bytes += c.len_utf8();
        if bytes > max {
            break;
        }
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && field.is_empty() {
            quoted = true;
        } else if c == sep {
            row.push(std::mem::take(&mut field));
        } else if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            row.push(std::mem::take(&mut field));
            if row.iter().any(|f| !f.is_empty()) {
                rows.push(std::mem::take(&mut row));
            } else {
                row.clear();
            }
        } else {
            field.push(c);
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        if row.iter().any(|f| !f.is_empty()) {
            rows.push(row);
        }
    }
    Table { rows }
}

/// xlsx/xlsm: every worksheet, through calamine's streaming cell reader, after
/// proving the container stays within the expansion limits.
pub(crate) fn scan_xlsx(ctx: &mut Ctx<'_>, idx: usize, blob: &Blob, mut zip: Zip<'_>) {
    if !archive::check_expansion(ctx, &mut zip, &blob.location, implausible_string_count) {
        return;
    }
    drop(zip);
    let mut wb: Xlsx<_> = match Xlsx::new(Cursor::new(&blob.data[..])) {
        Ok(wb) => wb,
        Err(XlsxError::Password) => {
            set_facts(ctx, idx, |f| f.encrypted = Some(Encryption::Office));
            return;
        }
        Err(e) => {
            ctx.hit(&blob.location, "extract_failed", format!("xlsx: {e}"));
            return;
        }
    };
    let sheets: Vec<_> = wb
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect();
    let max = ctx.limits.max_text_per_part;
    for name in sheets {
        let location = format!("{}#{}", blob.location, name);
        let mut reader = match wb.worksheet_cells_reader(&name) {
            Ok(r) => r,
            Err(e) => {
                ctx.hit(&location, "extract_failed", format!("xlsx sheet: {e}"));
                continue;
            }
        };
        let mut sheet = SheetBuilder::new(max);
        loop {
            match reader.next_cell() {
                Ok(Some(cell)) => {
                    let (row, col) = cell.get_position();
                    if !sheet.add(row, col, cell_text(cell.get_value())) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    ctx.hit(&location, "extract_failed", format!("xlsx sheet: {e}"));
                    break;
                }
            }
        }
        push_sheet(ctx, location, sheet);
    }
}

pub(crate) fn push_sheet(ctx: &mut Ctx<'_>, location: String, sheet: SheetBuilder) {
    if sheet.truncated {
        ctx.hit(
            &location,
            "text_per_part",
            format!(
                "sheet holds more than {} bytes of text; the rest was not scanned",
                ctx.limits.max_text_per_part
            ),
        );
    }
    let (text, table) = sheet.finish();
    ctx.text(location, TextSource::Attachment, text, Some(table));
}

/// calamine reserves room for `uniqueCount` shared strings before reading them;
/// a forged count would make it allocate without bound. A real count cannot
/// exceed the number of `<si>` elements the part has room for.
fn implausible_string_count(name: &str, xml: &[u8]) -> Option<String> {
    if !name.to_ascii_lowercase().ends_with(".xml") {
        return None;
    }
    let head = &xml[..xml.len().min(4096)];
    let pos = super::sniff::find(head, b"uniqueCount=")?;
    let digits: String = head
        .get(pos + 13..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    let count: u128 = digits.parse().unwrap_or(0);
    (digits.len() > 12 || count > (xml.len() as u128) / 7 + 16).then(|| {
        format!(
            "{name}: claims {digits} shared strings in {} bytes",
            xml.len()
        )
    })
}

/// A cell as text: whole numbers without `.0`, dates as dd/mm/yyyy (as UK Excel shows them).
fn cell_text(v: &DataRef<'_>) -> String {
    match v {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_text(*f),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        DataRef::DateTime(d) => {
            if d.is_datetime() {
                excel_date_text(d.as_f64())
            } else {
                number_text(d.as_f64())
            }
        }
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => format!("#{e:?}"),
    }
}

fn number_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Excel serial date (1900 system) → `dd/mm/yyyy` (plus ` HH:MM` when it has a time).
pub(crate) fn excel_date_text(serial: f64) -> String {
    if !serial.is_finite() || !(0.0..3_000_000.0).contains(&serial) {
        return number_text(serial);
    }
    let days = serial.floor() as i64;
    // Serial 1 is 1900-01-01 and Excel counts a 29 Feb 1900 that never was, so
    // from serial 61 on the epoch is 1899-12-30.
    let days_from_epoch = if days >= 61 { days } else { days + 1 };
    let (y, m, d) = civil_from_days(days_from_epoch - 25_569); // 1899-12-30 → 1970-01-01
    let minutes = ((serial - serial.floor()) * 1440.0).round() as i64;
    if minutes > 0 && minutes < 1440 {
        format!(
            "{d:02}/{m:02}/{y:04} {:02}:{:02}",
            minutes / 60,
            minutes % 60
        )
    } else {
        format!("{d:02}/{m:02}/{y:04}")
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// ods: every `table:table` of content.xml, with repeat counts honoured but capped.
pub(crate) fn scan_ods(ctx: &mut Ctx<'_>, blob: &Blob, content: &str) {
    let max = ctx.limits.max_text_per_part;
    let mut reader = quick_xml::Reader::from_str(content);
    let mut sheet: Option<(String, SheetBuilder)> = None;
    let mut row: u32 = 0;
    let mut row_repeat: u32 = 1;
    let mut col: u32 = 0;
    let mut cell: Option<(u32, String)> = None;
    let mut in_p = 0usize;
    let mut full = false;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                ctx.hit(&blob.location, "extract_failed", format!("ods: {e}"));
                break;
            }
        };
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "table" => {
                    let name = attr(&e, "table:name").unwrap_or_else(|| "Sheet".to_string());
                    sheet = Some((name, SheetBuilder::new(max)));
                    row = 0;
                    full = false;
                }
                "table-row" => {
                    row_repeat = repeat(&e, "table:number-rows-repeated");
                    col = 0;
                }
                "table-cell" | "covered-table-cell" => {
                    cell = Some((repeat(&e, "table:number-columns-repeated"), String::new()));
                }
                "p" | "h" if cell.is_some() => {
                    if let Some((_, text)) = cell.as_mut()
                        && !text.is_empty()
                    {
                        text.push('\n');
                    }
                    in_p += 1;
                }
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "table-cell" | "covered-table-cell" => {
                    col = col.saturating_add(repeat(&e, "table:number-columns-repeated"));
                }
                "table-row" => {
                    row = row.saturating_add(repeat(&e, "table:number-rows-repeated"));
                }
                "s" if in_p > 0 => push_cell_text(&mut cell, " "),
                "tab" if in_p > 0 => push_cell_text(&mut cell, "\t"),
                "line-break" if in_p > 0 => push_cell_text(&mut cell, "\n"),
                _ => {}
            },
            Event::Text(t) if in_p > 0 => push_cell_text(&mut cell, &t.xml10_content()),
            Event::GeneralRef(r) if in_p > 0 => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    push_cell_text(&mut cell, c.encode_utf8(&mut [0; 4]));
                } else if let Some(s) = quick_xml::escape::resolve_xml_entity(&r.xml10_content()) {
                    push_cell_text(&mut cell, s);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "p" | "h" => in_p = in_p.saturating_sub(1),
                "table-cell" | "covered-table-cell" => {
                    if let Some((n, text)) = cell.take() {
                        if let (Some((_, b)), false) = (sheet.as_mut(), text.is_empty() || full) {
                            'rows: for r in 0..row_repeat.min(MAX_REPEAT) {
                                for c in 0..n.min(MAX_REPEAT) {
                                    if !b.add(row + r, col.saturating_add(c), text.clone()) {
                                        full = true;
                                        break 'rows;
                                    }
                                }
                            }
                        }
                        col = col.saturating_add(n);
                    }
                }
                "table-row" => {
                    row = row.saturating_add(row_repeat);
                    row_repeat = 1;
                }
                "table" => {
                    if let Some((name, b)) = sheet.take() {
                        push_sheet(ctx, format!("{}#{}", blob.location, name), b);
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some((name, b)) = sheet.take() {
        push_sheet(ctx, format!("{}#{}", blob.location, name), b);
    }
}

fn push_cell_text(cell: &mut Option<(u32, String)>, s: &str) {
    if let Some((_, text)) = cell.as_mut()
        && text.len() < 64 * 1024
    {
        text.push_str(s);
    }
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .ok()
        .flatten()
        .map(|a| a.value.into_owned())
}

fn repeat(e: &BytesStart<'_>, name: &str) -> u32 {
    attr(e, name)
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_separators() {
        let t = parse_csv(
            "Name;Form;Note\r\n\"Smith, Ann\";7B;\"said \"\"hi\"\"\"\r\n\r\nLee;8C;\n",
            usize::MAX,
        );
        assert_eq!(
            t.rows,
            vec![
                vec!["Name", "Form", "Note"],
                vec!["Smith, Ann", "7B", "said \"hi\""],
                vec!["Lee", "8C", ""],
            ]
        );
    }

    #[test]
    fn excel_dates() {
        assert_eq!(excel_date_text(1.0), "01/01/1900");
        assert_eq!(excel_date_text(61.0), "01/03/1900");
        assert_eq!(excel_date_text(40_000.0), "06/07/2009");
        assert_eq!(excel_date_text(45_000.5), "15/03/2023 12:00");
    }

    #[test]
    fn builder_aligns_sparse_cells() {
        let mut b = SheetBuilder::new(1000);
        b.add(5, 2, "Name".into());
        b.add(5, 4, "DOB".into());
        b.add(7, 2, "Ann".into());
        b.add(7, 4, "01/02/2013".into());
        let (text, table) = b.finish();
        assert_eq!(table.rows[0], vec!["Name", "", "DOB"]);
        assert_eq!(text, "Name\t\tDOB\nAnn\t\t01/02/2013\n");
        // Far-away columns do not make huge rows.
        let mut b = SheetBuilder::new(1000);
        b.add(0, 0, "a".into());
        b.add(0, 16_000, "b".into());
        let (_, table) = b.finish();
        assert!(table.rows[0].len() <= MAX_COLUMNS as usize + 1);
    }

    #[test]
    fn builder_is_bounded() {
        let mut b = SheetBuilder::new(10);
        assert!(b.add(0, 0, "12345".into()));
        assert!(!b.add(0, 1, "123456".into()));
        assert!(b.truncated);
    }
}
