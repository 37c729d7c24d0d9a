//! The bar chart (categories × weeks) as a PNG, drawn by hand and encoded
//! with a minimal PNG writer (zlib via flate2, CRC via crc32fast). It has
//! no text: the figures are in the table next to it.

use super::weekly::{CATEGORIES, Summary};
use std::io::Write;

pub const WIDTH: u32 = 720;
pub const HEIGHT: u32 = 260;

const PALETTE: [[u8; 3]; 6] = [
    [0xd6, 0x27, 0x28],
    [0x1f, 0x77, 0xb4],
    [0xff, 0x7f, 0x0e],
    [0x94, 0x67, 0xbd],
    [0x2c, 0xa0, 0x2c],
    [0x8c, 0x56, 0x4b],
];

/// The colour of category `i` (this week's bar; older weeks are paler).
pub fn category_colour(i: usize) -> [u8; 3] {
    PALETTE[i % PALETTE.len()]
}

/// Draw the chart.
pub fn render(s: &Summary) -> Vec<u8> {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut px = vec![255u8; w * h * 3];
    let mut rect = |x0: usize, y0: usize, x1: usize, y1: usize, c: [u8; 3]| {
        for y in y0.min(h)..y1.min(h) {
            for x in x0.min(w)..x1.min(w) {
                let i = (y * w + x) * 3;
                px[i..i + 3].copy_from_slice(&c);
            }
        }
    };
    let (left, right, top, bottom) = (20usize, 10usize, 10usize, 20usize);
    let plot_h = h - top - bottom;
    let max = s
        .trend
        .iter()
        .flat_map(|(_, c)| c.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as usize;
    // Grid lines at quarters.
    for q in 0..=4 {
        let y = top + plot_h - plot_h * q / 4;
        rect(left, y, w - right, y + 1, [0xdd, 0xdd, 0xdd]);
    }
    let groups = CATEGORIES.len();
    let group_w = (w - left - right) / groups;
    let weeks = s.trend.len().max(1);
    let bar_w = (group_w - 16) / weeks;
    for (ci, _) in CATEGORIES.iter().enumerate() {
        let base = category_colour(ci);
        for (wi, (_, counts)) in s.trend.iter().enumerate() {
            let n = counts[ci] as usize;
            let bh = plot_h * n / max;
            // Older weeks paler: blend with white.
            let shade = (wi + 1) as f32 / weeks as f32;
            let c = base.map(|v| (255.0 - (255.0 - f32::from(v)) * (0.25 + 0.75 * shade)) as u8);
            let x0 = left + ci * group_w + 8 + wi * bar_w;
            let y0 = top + plot_h - bh;
            rect(x0, y0, x0 + bar_w.saturating_sub(2), top + plot_h, c);
        }
    }
    // Axis.
    rect(
        left,
        top + plot_h,
        w - right,
        top + plot_h + 2,
        [0x33, 0x33, 0x33],
    );
    rect(left - 2, top, left, top + plot_h + 2, [0x33, 0x33, 0x33]);
    encode_rgb(WIDTH, HEIGHT, &px)
}

/// Encode 8-bit RGB pixels as a PNG.
pub fn encode_rgb(width: u32, height: u32, px: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(px.len() + height as usize);
    for row in px.chunks(width as usize * 3) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Standard base64 (for a `data:` URI when the HTML is written to a file).
pub use crate::outbound::headers::base64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_signature_header_and_valid_crc() {
        let png = encode_rgb(2, 1, &[255, 0, 0, 0, 0, 255]);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        let crc = u32::from_be_bytes(png[29..33].try_into().unwrap());
        let mut h = crc32fast::Hasher::new();
        h.update(&png[12..29]);
        assert_eq!(crc, h.finalize());
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
