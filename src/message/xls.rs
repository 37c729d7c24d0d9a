//! Legacy Excel (BIFF8 `.xls`) cells → one table per sheet.
//!
//! calamine's xls reader builds every sheet's full bounding box when the file
//! is opened (a cell at A1 and one at IV65536 is 16 million cells per sheet),
//! so this small reader walks the BIFF records itself: the shared string table
//! (SST + CONTINUE, whose character data restarts with a fresh flags byte at
//! each record boundary), BOUNDSHEET names, XF/FORMAT records to tell dates
//! from numbers, and the cell records LABELSST, LABEL, NUMBER, RK, MULRK and
//! cached FORMULA numbers. Every read is bounds-checked; anything unexpected
//! ends the walk with what was read so far.

use super::sheets::{SheetBuilder, excel_date_text};
use std::collections::HashMap;

const BOF: u16 = 0x0809;
const BOUNDSHEET: u16 = 0x0085;
const SST: u16 = 0x00fc;
const CONTINUE: u16 = 0x003c;
const FORMAT: u16 = 0x041e;
const XF: u16 = 0x00e0;
const LABELSST: u16 = 0x00fd;
const LABEL: u16 = 0x0204;
const NUMBER: u16 = 0x0203;
const RK: u16 = 0x027e;
const MULRK: u16 = 0x00bd;
const FORMULA: u16 = 0x0006;
const FILEPASS: u16 = 0x002f;

/// What the workbook stream held.
pub(crate) enum Workbook {
    /// One (sheet name, cells) per sheet, in file order.
    Sheets(Vec<(String, SheetBuilder)>),
    /// FILEPASS: the workbook is password-encrypted.
    Encrypted,
    /// Not BIFF8 (BIFF5 and older are not read).
    Unsupported,
}

/// Read a BIFF8 workbook stream; `max` bounds the text kept per sheet.
pub(crate) fn read(stream: &[u8], max: usize) -> Workbook {
    let mut records = Records { stream, pos: 0 }.peekable();
    match records.peek() {
        Some(r) if r.kind == BOF && r.data.get(..2) == Some(&[0x00, 0x06]) => {}
        _ => return Workbook::Unsupported,
    }
    let mut sheet_names: HashMap<usize, String> = HashMap::new();
    let mut formats: HashMap<u16, bool> = HashMap::new();
    let mut xf_is_date: Vec<bool> = Vec::new();
    let mut strings: Vec<String> = Vec::new();
    let mut sheets: Vec<(String, SheetBuilder)> = Vec::new();
    let mut in_globals = true;
    let mut first = true;
    while let Some(r) = records.next() {
        match r.kind {
            FILEPASS if in_globals => return Workbook::Encrypted,
            BOF if !first => {
                in_globals = false;
                let name = sheet_names
                    .get(&r.offset)
                    .cloned()
                    .unwrap_or_else(|| format!("Sheet{}", sheets.len() + 1));
                sheets.push((name, SheetBuilder::new(max)));
            }
            BOUNDSHEET if in_globals => {
                if let (Some(pos), Some(name)) = (u32_at(r.data, 0), short_string(r.data, 6)) {
                    sheet_names.insert(pos as usize, name);
                }
            }
            FORMAT if in_globals => {
                if let (Some(id), Some(code)) = (u16_at(r.data, 0), unicode_string(r.data, 2)) {
                    formats.insert(id, is_date_format(&code));
                }
            }
            XF if in_globals && xf_is_date.len() < 65_536 => {
                let fmt = u16_at(r.data, 2).unwrap_or(0);
                let date = formats
                    .get(&fmt)
                    .copied()
                    .unwrap_or(matches!(fmt, 14..=22 | 45..=47));
                xf_is_date.push(date);
            }
            SST if in_globals => {
                let mut segments = vec![r.data];
                while let Some(next) = records.next_if(|n| n.kind == CONTINUE) {
                    segments.push(next.data);
                }
                strings = read_sst(&segments, max);
            }
            _ if !in_globals => {
                if let Some((_, sheet)) = sheets.last_mut() {
                    cell_record(&r, &strings, &xf_is_date, sheet);
                }
            }
            _ => {}
        }
        first = false;
    }
    Workbook::Sheets(sheets)
}

struct Record<'a> {
    kind: u16,
    /// Offset of the record header in the stream (BOUNDSHEET points here).
    offset: usize,
    data: &'a [u8],
}

/// BIFF records in stream order (stops at the first truncated record).
struct Records<'a> {
    stream: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;
    fn next(&mut self) -> Option<Record<'a>> {
        let kind = u16_at(self.stream, self.pos)?;
        let len = u16_at(self.stream, self.pos + 2)? as usize;
        let data = self.stream.get(self.pos + 4..self.pos + 4 + len)?;
        let offset = self.pos;
        self.pos += 4 + len;
        Some(Record { kind, offset, data })
    }
}

fn cell_record(r: &Record<'_>, strings: &[String], xf_is_date: &[bool], sheet: &mut SheetBuilder) {
    let d = r.data;
    let (Some(row), Some(col)) = (u16_at(d, 0), u16_at(d, 2)) else {
        return;
    };
    let (row, col) = (u32::from(row), u32::from(col));
    let is_date = |xf: Option<u16>| {
        xf.and_then(|x| xf_is_date.get(x as usize))
            .copied()
            .unwrap_or(false)
    };
    let number = |v: f64, xf: Option<u16>| {
        if is_date(xf) {
            excel_date_text(v)
        } else if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    };
    match r.kind {
        LABELSST => {
            if let Some(s) = u32_at(d, 6).and_then(|k| strings.get(k as usize)) {
                sheet.add(row, col, s.clone());
            }
        }
        LABEL => {
            if let Some(s) = unicode_string(d, 6) {
                sheet.add(row, col, s);
            }
        }
        NUMBER => {
            if let Some(v) = d.get(6..14).and_then(|b| b.try_into().ok()) {
                sheet.add(row, col, number(f64::from_le_bytes(v), u16_at(d, 4)));
            }
        }
        RK => {
            if let Some(rk) = u32_at(d, 6) {
                sheet.add(row, col, number(rk_value(rk), u16_at(d, 4)));
            }
        }
        MULRK => {
            let mut pos = 4;
            let mut c = col;
            // Each entry is (xf u16, rk u32); the last two bytes are the last column.
            while pos + 6 <= d.len().saturating_sub(2) {
                if let Some(rk) = u32_at(d, pos + 2) {
                    sheet.add(row, c, number(rk_value(rk), u16_at(d, pos)));
                }
                pos += 6;
                c += 1;
            }
        }
        FORMULA => {
            // Cached result: a number unless the last two bytes are 0xFFFF.
            if let Some(v) = d.get(6..14)
                && v.get(6..8) != Some(&[0xff, 0xff])
                && let Ok(b) = v.try_into()
            {
                sheet.add(row, col, number(f64::from_le_bytes(b), u16_at(d, 4)));
            }
        }
        _ => {}
    }
}

fn rk_value(rk: u32) -> f64 {
    let v = if rk & 0x02 != 0 {
        f64::from((rk as i32) >> 2)
    } else {
        f64::from_bits(u64::from(rk & 0xffff_fffc) << 32)
    };
    if rk & 0x01 != 0 { v / 100.0 } else { v }
}

/// Does a number format show a date (y, m, d or h outside quotes and brackets)?
fn is_date_format(code: &str) -> bool {
    let mut quoted = false;
    let mut bracket = false;
    for c in code.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => bracket = true,
            ']' if !quoted => bracket = false,
            'y' | 'Y' | 'd' | 'D' | 'm' | 'M' if !quoted && !bracket => return true,
            _ => {}
        }
    }
    false
}

/// BIFF8 short string: cch u8, flags u8, characters.
fn short_string(d: &[u8], pos: usize) -> Option<String> {
    let cch = *d.get(pos)? as usize;
    let flags = *d.get(pos + 1)?;
    chars(d.get(pos + 2..)?, cch, flags & 1 != 0).map(|(s, _)| s)
}

/// BIFF8 XLUnicodeString: cch u16, flags u8, characters.
fn unicode_string(d: &[u8], pos: usize) -> Option<String> {
    let cch = u16_at(d, pos)? as usize;
    let flags = *d.get(pos + 2)?;
    chars(d.get(pos + 3..)?, cch, flags & 1 != 0).map(|(s, _)| s)
}

/// `n` characters, 8-bit (Latin-1) or UTF-16LE; returns the string and bytes used.
fn chars(d: &[u8], n: usize, wide: bool) -> Option<(String, usize)> {
    if wide {
        let bytes = d.get(..n.checked_mul(2)?)?;
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Some((String::from_utf16_lossy(&units), n * 2))
    } else {
        let bytes = d.get(..n)?;
        Some((bytes.iter().map(|&b| char::from(b)).collect(), n))
    }
}

/// The shared strings, across the SST record and its CONTINUE records.
fn read_sst(segments: &[&[u8]], max: usize) -> Vec<String> {
    let mut r = SegReader {
        segments,
        seg: 0,
        pos: 8, // cstTotal, cstUnique
    };
    let unique = segments.first().and_then(|s| u32_at(s, 4)).unwrap_or(0) as usize;
    let mut out = Vec::with_capacity(unique.min(65_536));
    let mut total = 0usize;
    while out.len() < unique && total <= max.saturating_mul(4) {
        match r.string() {
            Some(s) => {
                total += s.len();
                out.push(s);
            }
            None => break,
        }
    }
    out
}

/// Reads across record boundaries.
struct SegReader<'a> {
    segments: &'a [&'a [u8]],
    seg: usize,
    pos: usize,
}

impl SegReader<'_> {
    fn current(&mut self) -> Option<&[u8]> {
        while self.pos >= self.segments.get(self.seg)?.len() {
            self.seg += 1;
            self.pos = 0;
        }
        self.segments.get(self.seg).map(|s| &s[self.pos..])
    }

    fn u8(&mut self) -> Option<u8> {
        let b = *self.current()?.first()?;
        self.pos += 1;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }

    fn skip(&mut self, mut n: usize) -> Option<()> {
        while n > 0 {
            let available = self.current()?.len();
            let step = available.min(n);
            self.pos += step;
            n -= step;
        }
        Some(())
    }

    /// XLUnicodeRichExtendedString.
    fn string(&mut self) -> Option<String> {
        let mut cch = self.u16()? as usize;
        let flags = self.u8()?;
        let mut wide = flags & 0x01 != 0;
        let runs = if flags & 0x08 != 0 { self.u16()? } else { 0 };
        let ext = if flags & 0x04 != 0 { self.u32()? } else { 0 };
        let mut s = String::new();
        while cch > 0 {
            let at_start = self.pos;
            let first = *self.current()?.first()?;
            if self.pos == 0 && at_start != 0 {
                // Moved to a CONTINUE record mid-string: a new flags byte.
                wide = first & 0x01 != 0;
                self.pos = 1;
                continue;
            }
            let width = if wide { 2 } else { 1 };
            let pos = self.pos;
            let data = self.segments.get(self.seg)?.get(pos..)?;
            let n = (data.len() / width).min(cch);
            if n == 0 {
                return None;
            }
            let (part, used) = chars(data, n, wide)?;
            s.push_str(&part);
            self.pos += used;
            cch -= n;
        }
        self.skip(runs as usize * 4)?;
        self.skip(ext as usize)?;
        Some(s)
    }
}

fn u16_at(d: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(pos..pos + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(pos..pos + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rk_numbers() {
        assert_eq!(rk_value((91 << 2) | 0x02), 91.0);
        assert_eq!(rk_value((1225 << 2) | 0x03), 12.25);
        let bits = (1.5f64.to_bits() >> 32) as u32;
        assert_eq!(rk_value(bits), 1.5);
    }

    #[test]
    fn date_formats() {
        assert!(is_date_format("DD/MM/YYYY"));
        assert!(is_date_format("d-mmm-yy"));
        assert!(!is_date_format("0.00"));
        assert!(!is_date_format("\"days\" 0"));
        assert!(!is_date_format("[Red]0"));
    }

    #[test]
    fn sst_string_split_across_continue() {
        // One 6-character string: 3 bytes of 8-bit text, then a CONTINUE that
        // switches to UTF-16 for the rest.
        let sst: Vec<u8> = [
            &1u32.to_le_bytes()[..],
            &1u32.to_le_bytes(),
            &[6, 0, 0],
            b"abc",
        ]
        .concat();
        let cont: Vec<u8> = [&[1u8][..], &[b'd', 0, b'e', 0, 0xe9, 0]].concat();
        assert_eq!(read_sst(&[&sst, &cont], 1000), vec!["abcdeé".to_string()]);
    }

    #[test]
    fn garbage_does_not_panic() {
        assert!(matches!(read(b"", 100), Workbook::Unsupported));
        assert!(matches!(
            read(&[0x09, 0x08, 0xff, 0xff], 100),
            Workbook::Unsupported
        ));
        let mut s = vec![0x09, 0x08, 4, 0, 0, 6, 0, 0];
        s.extend_from_slice(&[
            0xfc, 0x00, 8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        assert!(matches!(read(&s, 100), Workbook::Sheets(_)));
    }
}
