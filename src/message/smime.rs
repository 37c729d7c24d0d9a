//! S/MIME (`application/pkcs7-mime`): is it encrypted (enveloped-data,
//! authEnveloped-data) or opaque signed-data, whose content is clear text that
//! must be scanned like any body? The `smime-type` parameter decides when
//! present; otherwise the content-type OID at the start of the DER does.
//!
//! Opaque signed-data is unwrapped with a small BER reader (definite and
//! indefinite lengths, constructed OCTET STRINGs) that only follows
//! ContentInfo → SignedData → encapContentInfo → eContent; it never panics and
//! gives up (`None`) on anything unexpected.

/// What a PKCS#7 / CMS blob is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pkcs7Kind {
    Enveloped,
    Signed,
    Other,
}

const OID_SIGNED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_ENVELOPED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
const OID_AUTH_ENVELOPED: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
];
/// Limit on BER nesting (real CMS is a handful of levels deep).
const MAX_DEPTH: usize = 24;

/// Is this part S/MIME content (by declared type or `.p7m` name)?
pub(crate) fn is_pkcs7(declared: &str, ext: Option<&str>) -> bool {
    matches!(
        declared,
        "application/pkcs7-mime" | "application/x-pkcs7-mime"
    ) || matches!(ext, Some("p7m" | "p7z"))
}

pub(crate) fn classify(smime_type: Option<&str>, data: &[u8]) -> Pkcs7Kind {
    if let Some(t) = smime_type {
        let t = t.trim().to_ascii_lowercase();
        match t.as_str() {
            "enveloped-data" | "authenveloped-data" => return Pkcs7Kind::Enveloped,
            "signed-data" => return Pkcs7Kind::Signed,
            "certs-only" | "compressed-data" => return Pkcs7Kind::Other,
            _ => {}
        }
    }
    match content_type_oid(data) {
        Some(oid) if oid == OID_ENVELOPED || oid == OID_AUTH_ENVELOPED => Pkcs7Kind::Enveloped,
        Some(oid) if oid == OID_SIGNED => Pkcs7Kind::Signed,
        _ => Pkcs7Kind::Other,
    }
}

/// The OID of the outer ContentInfo.
fn content_type_oid(data: &[u8]) -> Option<&[u8]> {
    let (tag, content, _) = tlv(data, 0)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = tlv(content, 0)?;
    (tag == 0x06).then_some(oid)
}

/// The encapsulated content of opaque signed-data (a MIME entity).
pub(crate) fn signed_content(data: &[u8]) -> Option<Vec<u8>> {
    let (tag, content_info, _) = tlv(data, 0)?;
    if tag != 0x30 {
        return None;
    }
    let mut items = Children::new(content_info);
    let (t, oid) = items.next()?;
    if t != 0x06 || oid != OID_SIGNED {
        return None;
    }
    let (t, explicit) = items.next()?;
    if t != 0xa0 {
        return None;
    }
    let (t, signed_data) = Children::new(explicit).next()?;
    if t != 0x30 {
        return None;
    }
    // SignedData: version, digestAlgorithms, encapContentInfo, ...
    let mut fields = Children::new(signed_data);
    let _version = fields.next()?;
    let _digests = fields.next()?;
    let (t, encap) = fields.next()?;
    if t != 0x30 {
        return None;
    }
    let mut encap = Children::new(encap);
    let _oid = encap.next()?;
    let (t, econtent) = encap.next()?;
    if t != 0xa0 {
        return None;
    }
    let (t, octets) = Children::new(econtent).next()?;
    let mut out = Vec::new();
    collect_octets(t, octets, &mut out, 0)?;
    Some(out)
}

fn collect_octets(tag: u8, content: &[u8], out: &mut Vec<u8>, depth: usize) -> Option<()> {
    match tag {
        0x04 => out.extend_from_slice(content),
        0x24 if depth < MAX_DEPTH => {
            for (t, c) in Children::new(content) {
                collect_octets(t, c, out, depth + 1)?;
            }
        }
        _ => return None,
    }
    Some(())
}

/// Iterator over the TLVs of a constructed value's content.
struct Children<'a> {
    rest: &'a [u8],
}

impl<'a> Children<'a> {
    fn new(content: &'a [u8]) -> Children<'a> {
        Children { rest: content }
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.rest.starts_with(&[0, 0]) {
            return None;
        }
        let (tag, content, used) = tlv(self.rest, 0)?;
        self.rest = self.rest.get(used..)?;
        Some((tag, content))
    }
}

/// One BER TLV: (tag, content, bytes used). Single-byte tags only.
fn tlv(data: &[u8], depth: usize) -> Option<(u8, &[u8], usize)> {
    if depth > MAX_DEPTH {
        return None;
    }
    let tag = *data.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *data.get(1)?;
    if first == 0x80 {
        // Indefinite length: children up to the end-of-contents octets.
        if tag & 0x20 == 0 {
            return None;
        }
        let mut pos = 2;
        loop {
            let rest = data.get(pos..)?;
            if rest.starts_with(&[0, 0]) {
                return Some((tag, data.get(2..pos)?, pos + 2));
            }
            let (_, _, used) = tlv(rest, depth + 1)?;
            pos = pos.checked_add(used)?;
        }
    }
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for &b in data.get(2..2 + n)? {
            len = (len << 8) | b as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, data.get(header..end)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 128 {
            v.push(content.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(content);
        v
    }

    fn signed(inner: &[u8]) -> Vec<u8> {
        let encap = [der(0x06, &OID_SIGNED[..8]), der(0xa0, &der(0x04, inner))].concat();
        let signed_data = [
            der(0x02, &[1]),
            der(0x31, &[]),
            der(0x30, &encap),
            der(0x31, &[]),
        ]
        .concat();
        der(
            0x30,
            &[der(0x06, OID_SIGNED), der(0xa0, &der(0x30, &signed_data))].concat(),
        )
    }

    #[test]
    fn classifies_by_parameter_then_oid() {
        assert_eq!(
            classify(Some("enveloped-data"), b"junk"),
            Pkcs7Kind::Enveloped
        );
        assert_eq!(
            classify(Some("authEnveloped-data"), b""),
            Pkcs7Kind::Enveloped
        );
        let env = der(0x30, &[der(0x06, OID_ENVELOPED), der(0xa0, &[])].concat());
        assert_eq!(classify(None, &env), Pkcs7Kind::Enveloped);
        assert_eq!(classify(None, &signed(b"x")), Pkcs7Kind::Signed);
        assert_eq!(classify(None, b"\x30\x80"), Pkcs7Kind::Other);
    }

    #[test]
    fn unwraps_definite_and_indefinite_signed_data() {
        let inner = b"Content-Type: text/plain\r\n\r\nsigned words\r\n";
        assert_eq!(signed_content(&signed(inner)).as_deref(), Some(&inner[..]));
        // Indefinite-length eContent with a constructed OCTET STRING in two chunks.
        let chunks = [der(0x04, &inner[..10]), der(0x04, &inner[10..])].concat();
        let mut econtent = vec![0x24, 0x80];
        econtent.extend_from_slice(&chunks);
        econtent.extend_from_slice(&[0, 0]);
        let encap = [der(0x06, &OID_SIGNED[..8]), der(0xa0, &econtent)].concat();
        let sd = [der(0x02, &[1]), der(0x31, &[]), der(0x30, &encap)].concat();
        let mut ci = vec![0x30, 0x80];
        ci.extend_from_slice(&der(0x06, OID_SIGNED));
        ci.extend_from_slice(&der(0xa0, &der(0x30, &sd)));
        ci.extend_from_slice(&[0, 0]);
        assert_eq!(signed_content(&ci).as_deref(), Some(&inner[..]));
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(signed_content(b""), None);
        assert_eq!(signed_content(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(signed_content(&[0x30, 0x80, 0x30, 0x80, 0x30, 0x80]), None);
    }
}
