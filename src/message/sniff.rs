//! Magic-byte checks. The declared MIME type and the file name are chosen by the
//! sender, so every decision that matters (is this an executable, a zip, a PDF,
//! text?) is made from the content first and the name second.

use super::ExecutableKind;
use std::borrow::Cow;

/// The MIME type `infer` recognises from the content, if any. infer calls
/// anything starting with "MZ" a PE executable; that claim is dropped unless
/// the PE header is really there.
pub(crate) fn sniffed_type(data: &[u8]) -> Option<&'static str> {
    infer_type(data).map(|t| t.mime_type())
}

/// `infer::get`, minus its "MZ means executable" false positives.
pub(crate) fn infer_type(data: &[u8]) -> Option<infer::Type> {
    let t = infer::get(data)?;
    if t.mime_type() == "application/vnd.microsoft.portable-executable" && !is_pe(data) {
        return None;
    }
    Some(t)
}

/// Executable formats by magic bytes.
///
/// A PE file needs `MZ` *and* a `PE\0\0` signature at the offset stored at 0x3C
/// (`e_lfanew`): a CSV that happens to start with "MZ" is not an executable.
pub(crate) fn executable(data: &[u8]) -> Option<ExecutableKind> {
    if is_pe(data) {
        return Some(ExecutableKind::Pe);
    }
    if data.starts_with(b"\x7fELF") {
        return Some(ExecutableKind::Elf);
    }
    let magic = data.get(..4)?;
    match magic {
        // Thin Mach-O, 32/64 bit, either byte order.
        [0xfe, 0xed, 0xfa, 0xce]
        | [0xce, 0xfa, 0xed, 0xfe]
        | [0xfe, 0xed, 0xfa, 0xcf]
        | [0xcf, 0xfa, 0xed, 0xfe] => Some(ExecutableKind::MachO),
        // Fat (universal) Mach-O. 0xCAFEBABE is also a Java class file, whose next
        // four bytes are its version (>= 45); a fat header has a small arch count.
        [0xca, 0xfe, 0xba, 0xbe] | [0xca, 0xfe, 0xba, 0xbf] => {
            let n = u32::from_be_bytes(data.get(4..8)?.try_into().ok()?);
            (1..=30).contains(&n).then_some(ExecutableKind::MachO)
        }
        _ => None,
    }
}

fn is_pe(data: &[u8]) -> bool {
    if !data.starts_with(b"MZ") {
        return false;
    }
    let Some(off) = data
        .get(0x3c..0x40)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
    else {
        return false;
    };
    let off = off as usize;
    off >= 0x40 && data.get(off..off.saturating_add(4)) == Some(b"PE\0\0".as_slice())
}

pub(crate) fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

/// An end-of-central-directory record near the end: a zip with something
/// prepended (self-extractor stub, a picture glued in front), which zip readers
/// and so recipients still open.
pub(crate) fn has_zip_trailer(data: &[u8]) -> bool {
    let tail = &data[data.len().saturating_sub(65_557)..];
    find(tail, b"PK\x05\x06").is_some()
}

pub(crate) fn is_cfb(data: &[u8]) -> bool {
    data.starts_with(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])
}

/// `%PDF-` within the first KiB (readers accept leading junk, so attackers use it).
pub(crate) fn is_pdf(data: &[u8]) -> bool {
    let head = &data[..data.len().min(1024)];
    find(head, b"%PDF-").is_some()
}

/// Lower-case extension of a file name, without the dot.
pub(crate) fn extension(name: Option<&str>) -> Option<String> {
    let name = name?;
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (_, ext) = base.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 10).then(|| ext.to_ascii_lowercase())
}

/// Does the start of the content look like text (no NULs, few control bytes)?
pub(crate) fn looks_like_text(data: &[u8]) -> bool {
    if data.starts_with(&[0xff, 0xfe]) || data.starts_with(&[0xfe, 0xff]) {
        return true;
    }
    let sample = &data[..data.len().min(8192)];
    if sample.is_empty() {
        return true;
    }
    let mut control = 0usize;
    for &b in sample {
        match b {
            0 => return false,
            b'\t' | b'\n' | b'\r' | 0x0c | 0x1b => {}
            0x01..=0x1f | 0x7f => control += 1,
            _ => {}
        }
    }
    control * 100 <= sample.len()
}

/// Decode a text file of unknown charset: BOMs first, then UTF-8, then
/// BOM-less UTF-16 (every other byte NUL), then Windows-1252 (a superset of
/// ISO-8859-1 that never fails).
pub(crate) fn decode_text(data: &[u8]) -> Cow<'_, str> {
    use mail_parser::decoders::charsets::map::charset_decoder;
    if let Some(rest) = data.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        return String::from_utf8_lossy(rest);
    }
    let decode_with = |name: &[u8], bytes: &[u8]| -> Cow<'static, str> {
        match charset_decoder(name) {
            Some(f) => Cow::Owned(f(bytes)),
            None => Cow::Owned(String::from_utf8_lossy(bytes).into_owned()),
        }
    };
    if let Some(rest) = data.strip_prefix(&[0xff, 0xfe]) {
        return decode_with(b"utf-16le", rest);
    }
    if let Some(rest) = data.strip_prefix(&[0xfe, 0xff]) {
        return decode_with(b"utf-16be", rest);
    }
    let sample = &data[..data.len().min(512)];
    if sample.len() >= 4 {
        let odd_nuls = sample
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count();
        let even_nuls = sample.iter().step_by(2).filter(|&&b| b == 0).count();
        let half = sample.len() / 2;
        if odd_nuls * 10 >= half * 9 && even_nuls == 0 {
            return decode_with(b"utf-16le", data);
        }
        if even_nuls * 10 >= half * 9 && odd_nuls == 0 {
            return decode_with(b"utf-16be", data);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        return Cow::Borrowed(s);
    }
    decode_with(b"windows-1252", data)
}

/// Byte-string search (short needles; inputs are bounded by the callers).
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return None,
            Some(p) => {
                i += p;
                if hay[i..].starts_with(needle) {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// ASCII-armoured OpenPGP message (not a clear-signed message, which is readable).
pub(crate) const PGP_BEGIN: &str = "-----BEGIN PGP MESSAGE-----";
pub(crate) const PGP_END: &str = "-----END PGP MESSAGE-----";

pub(crate) fn has_pgp_message(data: &[u8]) -> bool {
    find(data, PGP_BEGIN.as_bytes()).is_some()
}

/// Remove every armoured PGP message block from a text, keeping what is around it.
pub(crate) fn strip_pgp_blocks(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut rest = text;
    while let Some(start) = rest.find(PGP_BEGIN) {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        match after.find(PGP_END) {
            Some(end) => rest = &after[end + PGP_END.len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pe_stub() -> Vec<u8> {
        let mut v = vec![0u8; 0x80];
        v[0] = b'M';
        v[1] = b'Z';
        v[0x3c] = 0x40;
        v[0x40..0x44].copy_from_slice(b"PE\0\0");
        v
    }

    #[test]
    fn pe_needs_the_pe_header() {
        assert_eq!(executable(&pe_stub()), Some(ExecutableKind::Pe));
        assert_eq!(
            executable(b"MZ,Country,Code\r\nZA,South Africa,27\r\n"),
            None
        );
        let mut bad = pe_stub();
        bad[0x3c] = 0xff; // e_lfanew points past the end
        assert_eq!(executable(&bad), None);
        assert_eq!(executable(b"MZ"), None);
    }

    #[test]
    fn elf_and_macho_variants() {
        assert_eq!(
            executable(b"\x7fELF\x02\x01\x01"),
            Some(ExecutableKind::Elf)
        );
        for magic in [
            [0xfe, 0xed, 0xfa, 0xce],
            [0xce, 0xfa, 0xed, 0xfe],
            [0xfe, 0xed, 0xfa, 0xcf],
            [0xcf, 0xfa, 0xed, 0xfe],
        ] {
            let mut v = magic.to_vec();
            v.extend_from_slice(&[0; 16]);
            assert_eq!(executable(&v), Some(ExecutableKind::MachO), "{magic:x?}");
        }
        // Fat binary with two architectures.
        assert_eq!(
            executable(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2, 0, 0]),
            Some(ExecutableKind::MachO)
        );
        // Java class file version 52: not Mach-O.
        assert_eq!(executable(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]), None);
    }

    #[test]
    fn text_decoding_charsets() {
        assert_eq!(decode_text(b"caf\xc3\xa9"), "café");
        assert_eq!(decode_text(b"caf\xe9"), "café");
        assert_eq!(decode_text(b"\xef\xbb\xbfhello"), "hello");
        assert_eq!(decode_text(b"\xff\xfeh\0i\0"), "hi");
        assert_eq!(decode_text(b"h\0e\0l\0l\0o\0"), "hello");
    }

    #[test]
    fn text_likeness() {
        assert!(looks_like_text(b"plain words\r\n"));
        assert!(!looks_like_text(b"\x89PNG\r\n\x1a\n\0\0"));
    }

    #[test]
    fn pgp_blocks_are_removed() {
        let t = "Hi\n-----BEGIN PGP MESSAGE-----\nabc\n-----END PGP MESSAGE-----\nBye";
        assert!(has_pgp_message(t.as_bytes()));
        assert_eq!(strip_pgp_blocks(t), "Hi\n\nBye");
        assert!(!has_pgp_message(b"-----BEGIN PGP SIGNED MESSAGE-----"));
    }

    #[test]
    fn find_works() {
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"", b"a"), None);
    }
}
