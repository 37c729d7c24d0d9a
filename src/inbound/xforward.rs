//! Postfix's `XFORWARD` command (<https://www.postfix.org/XFORWARD_README.html>).
//!
//! In content-filter mode Postfix's smtp client sends, after EHLO and before
//! MAIL, the attributes of the client that originally submitted the message:
//! `XFORWARD NAME=… ADDR=… PROTO=… HELO=… IDENT=… SOURCE=…`. smtp-proto does
//! not know this command, so the session recognises the line before handing
//! anything to smtp-proto. We keep the values exactly as received (xtext), so
//! they can be forwarded to the re-injection smtpd unchanged, and decode them
//! for the scanner's [`Envelope`](crate::message::Envelope).

use std::net::IpAddr;

/// The attributes we advertise and accept.
pub const ATTRIBUTES: [&str; 6] = ["NAME", "ADDR", "PROTO", "HELO", "IDENT", "SOURCE"];

/// Postfix's value for "not known" (e.g. ADDR of a message from `sendmail`).
const UNAVAILABLE: &str = "[UNAVAILABLE]";

/// Attributes received so far in this session (they apply to the next
/// transaction and are cleared by RSET/EHLO, as in Postfix's smtpd).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XForward {
    /// (attribute name in upper case, raw xtext value), in arrival order.
    pub raw: Vec<(String, String)>,
}

/// Why an XFORWARD line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XForwardError {
    #[error("XFORWARD needs at least one NAME=value attribute")]
    Empty,
    #[error("bad XFORWARD attribute syntax")]
    Syntax,
    #[error("unknown XFORWARD attribute {0}")]
    Unknown(String),
}

/// True if `line` (without CRLF) is an XFORWARD command.
pub fn is_xforward(line: &[u8]) -> bool {
    line.len() >= 8
        && line[..8].eq_ignore_ascii_case(b"XFORWARD")
        && line.get(8).is_none_or(|b| *b == b' ' || *b == b'\t')
}

impl XForward {
    /// Add the attributes of one XFORWARD line (without CRLF). A later value
    /// for the same attribute replaces the earlier one.
    pub fn ingest(&mut self, line: &str) -> Result<(), XForwardError> {
        let args = line.get(8..).unwrap_or("").trim();
        if args.is_empty() {
            return Err(XForwardError::Empty);
        }
        let mut parsed = Vec::new();
        for item in args.split_ascii_whitespace() {
            let (name, value) = item.split_once('=').ok_or(XForwardError::Syntax)?;
            let name = name.to_ascii_uppercase();
            if !ATTRIBUTES.contains(&name.as_str()) {
                return Err(XForwardError::Unknown(name));
            }
            parsed.push((name, value.to_string()));
        }
        for (name, value) in parsed {
            self.raw.retain(|(n, _)| *n != name);
            self.raw.push((name, value));
        }
        Ok(())
    }

    /// The decoded value of an attribute, None if absent or `[UNAVAILABLE]`.
    pub fn get(&self, name: &str) -> Option<String> {
        let (_, raw) = self.raw.iter().find(|(n, _)| n == name)?;
        let value = xtext_decode(raw);
        if value.is_empty() || value.eq_ignore_ascii_case(UNAVAILABLE) {
            None
        } else {
            Some(value)
        }
    }

    /// The client address (`ADDR`, with Postfix's `IPV6:` prefix removed).
    pub fn client_ip(&self) -> Option<IpAddr> {
        let addr = self.get("ADDR")?;
        let addr = addr
            .strip_prefix("IPV6:")
            .or_else(|| addr.strip_prefix("ipv6:"))
            .unwrap_or(&addr);
        addr.parse().ok()
    }

    /// The message came from a local program (sendmail/pickup): Postfix
    /// forwards attributes but has no client address for it.
    pub fn is_local_submission(&self) -> bool {
        !self.raw.is_empty()
            && self.client_ip().is_none()
            && self
                .get("SOURCE")
                .is_none_or(|s| s.eq_ignore_ascii_case("LOCAL"))
    }

    /// XFORWARD lines for a next hop that advertised `supported`, each
    /// shorter than the 512-octet command limit.
    pub fn commands(&self, supported: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut line = String::from("XFORWARD");
        for (name, value) in &self.raw {
            if !supported.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                continue;
            }
            let item = format!(" {name}={value}");
            if line.len() + item.len() > 500 && line.len() > 8 {
                out.push(format!("{line}\r\n"));
                line = String::from("XFORWARD");
            }
            line.push_str(&item);
        }
        if line.len() > 8 {
            out.push(format!("{line}\r\n"));
        }
        out
    }
}

/// RFC 3461 xtext: `+XX` is the byte with hex value XX; a malformed escape
/// is kept literally (these values are informational, never trusted).
pub fn xtext_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postfix_attributes_and_decodes_xtext() {
        let mut x = XForward::default();
        x.ingest("XFORWARD NAME=mail.example.com ADDR=192.0.2.7 PROTO=ESMTP")
            .unwrap();
        x.ingest("XFORWARD HELO=client+2Eexample IDENT=4Fxyz123 SOURCE=REMOTE")
            .unwrap();
        assert_eq!(x.client_ip(), Some("192.0.2.7".parse().unwrap()));
        assert_eq!(x.get("HELO").as_deref(), Some("client.example"));
        assert_eq!(x.get("IDENT").as_deref(), Some("4Fxyz123"));
        assert!(!x.is_local_submission());
    }

    #[test]
    fn ipv6_prefix_and_unavailable() {
        let mut x = XForward::default();
        x.ingest("xforward ADDR=IPV6:2001:db8::1 NAME=[UNAVAILABLE]")
            .unwrap();
        assert_eq!(x.client_ip(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(x.get("NAME"), None);
    }

    #[test]
    fn pickup_mail_is_local() {
        let mut x = XForward::default();
        x.ingest("XFORWARD ADDR=[UNAVAILABLE] SOURCE=LOCAL IDENT=ABC")
            .unwrap();
        assert!(x.is_local_submission());
    }

    #[test]
    fn rejects_unknown_and_malformed() {
        let mut x = XForward::default();
        assert_eq!(
            x.ingest("XFORWARD LOGIN=x"),
            Err(XForwardError::Unknown("LOGIN".into()))
        );
        assert_eq!(x.ingest("XFORWARD ADDR"), Err(XForwardError::Syntax));
        assert_eq!(x.ingest("XFORWARD"), Err(XForwardError::Empty));
        assert!(x.raw.is_empty());
    }

    #[test]
    fn recognises_the_command_only() {
        assert!(is_xforward(b"XFORWARD ADDR=1.2.3.4"));
        assert!(is_xforward(b"xforward"));
        assert!(!is_xforward(b"XFORWARDX"));
        assert!(!is_xforward(b"MAIL FROM:<>"));
    }

    #[test]
    fn forwards_only_supported_attributes() {
        let mut x = XForward::default();
        x.ingest("XFORWARD ADDR=192.0.2.7 IDENT=Q1 SOURCE=REMOTE")
            .unwrap();
        let cmds = x.commands(&["ADDR".into(), "IDENT".into()]);
        assert_eq!(
            cmds,
            vec!["XFORWARD ADDR=192.0.2.7 IDENT=Q1\r\n".to_string()]
        );
    }
}
