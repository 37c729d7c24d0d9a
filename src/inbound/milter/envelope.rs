//! The envelope of a milter transaction, from Postfix's macros.
//!
//! Postfix sends the macros listed in `milter_connect_macros`,
//! `milter_mail_macros`, `milter_rcpt_macros` (and the other stage lists)
//! before each event. Those `main.cf` lists are what guarantees the values
//! the scanner needs; the list requested during option negotiation is only
//! a hint. A needed macro that never arrives is a configuration error,
//! logged once per process with the `main.cf` line that fixes it.

use crate::message::Envelope;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

/// The macros the scan needs, with the `main.cf` list each belongs in.
/// `{auth_authen}` is not here: Postfix sends it only after AUTH, so its
/// absence says nothing about the configuration.
pub const NEEDED: [(&str, &str); 5] = [
    ("daemon_name", "milter_connect_macros"),
    ("client_addr", "milter_connect_macros"),
    ("mail_addr", "milter_mail_macros"),
    ("rcpt_addr", "milter_rcpt_macros"),
    ("i", "milter_end_of_data_macros"),
];

/// The macro lists for `main.cf` (also requested at option negotiation):
/// what [`envelope`] reads and [`NEEDED`] checks, nothing more. Every macro is work for
/// Postfix on every message (`{mail_host}`, for one, costs smtpd an address
/// resolution) and a string to parse here.
pub const CONNECT_MACROS: &str = "{daemon_name} {client_addr} {client_name}";
pub const MAIL_MACROS: &str = "{auth_authen} {mail_addr}";
pub const RCPT_MACROS: &str = "{rcpt_addr}";
pub const EOD_MACROS: &str = "i";

/// The `main.cf` lines that send them (the README gives these; Postfix's
/// default `milter_helo_macros` are TLS details hallmonitor does not use).
pub fn main_cf_macro_lines() -> String {
    format!(
        "milter_connect_macros = {CONNECT_MACROS}\n\
         milter_helo_macros =\n\
         milter_mail_macros = {MAIL_MACROS}\n\
         milter_rcpt_macros = {RCPT_MACROS}\n\
         milter_end_of_data_macros = {EOD_MACROS}\n"
    )
}

static WARNED: [AtomicBool; NEEDED.len()] = [const { AtomicBool::new(false) }; NEEDED.len()];

/// `{name}` and `name` are the same macro.
pub fn macro_name(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    s.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_string()
}

/// Macro values of one milter connection, by stage.
#[derive(Debug, Default, Clone)]
pub struct Macros {
    /// Values sent with the connect and HELO events (kept for the connection).
    pub connection: HashMap<String, String>,
    /// Values sent for the current message (cleared between messages).
    pub message: HashMap<String, String>,
    /// `{rcpt_addr}` of each accepted recipient, in order.
    pub rcpt_addrs: Vec<String>,
}

impl Macros {
    /// Store the macros of one `SMFIC_MACRO` packet for command `code`.
    pub fn ingest<'a>(&mut self, code: u8, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) {
        for (name, value) in pairs {
            let name = macro_name(name);
            let value = String::from_utf8_lossy(value).into_owned();
            match code {
                b'C' | b'H' => {
                    self.connection.insert(name, value);
                }
                b'R' if name == "rcpt_addr" => self.rcpt_addrs.push(value),
                _ => {
                    self.message.insert(name, value);
                }
            }
        }
    }

    /// A value from this message, else from the connection; None if empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.message
            .get(name)
            .or_else(|| self.connection.get(name))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Forget the message's macros (SMFIC_ABORT / next message).
    pub fn end_message(&mut self) {
        self.message.clear();
        self.rcpt_addrs.clear();
    }

    /// Log each needed macro that did not arrive, once per process.
    pub fn warn_missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        for (i, (name, list)) in NEEDED.iter().enumerate() {
            let present = if *name == "rcpt_addr" {
                !self.rcpt_addrs.is_empty()
            } else {
                self.get(name).is_some()
            };
            if present {
                continue;
            }
            missing.push(*name);
            if !WARNED[i].swap(true, Ordering::Relaxed) {
                tracing::error!(
                    macro_name = %format!("{{{name}}}"),
                    main_cf = list,
                    "configuration error: Postfix did not send the macro {{{name}}}; add it to \
                     {list} in main.cf (see the README's milter section). Falling back to the \
                     milter events, which may not match content-filter mode."
                );
            }
        }
        missing
    }
}

/// What the milter events themselves said (fallbacks for missing macros).
#[derive(Debug, Default, Clone)]
pub struct Events {
    pub connect_host: Option<String>,
    pub connect_addr: Option<String>,
    /// Client port of the connect event; 0 for Postfix's non-SMTP emulation.
    pub connect_port: Option<u16>,
    pub helo: Option<String>,
    pub mail_from: Option<String>,
    pub rcpts: Vec<String>,
}

/// Strip `<…>` around an address from a MAIL/RCPT event.
pub fn bare_address(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(s)
        .trim()
        .to_string()
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let s = s
        .strip_prefix("IPv6:")
        .or_else(|| s.strip_prefix("IPV6:"))
        .unwrap_or(s);
    s.parse().ok()
}

/// Build the scanner's envelope: the macros first, the events as fallback.
pub fn envelope(macros: &Macros, events: &Events) -> Envelope {
    let mail_from = macros
        .get("mail_addr")
        .map(str::to_string)
        .or_else(|| events.mail_from.as_deref().map(bare_address))
        .unwrap_or_default();
    let rcpt_to = if macros.rcpt_addrs.is_empty() {
        events.rcpts.iter().map(|r| bare_address(r)).collect()
    } else {
        macros.rcpt_addrs.clone()
    };
    let client_ip = macros
        .get("client_addr")
        .and_then(parse_ip)
        .or_else(|| events.connect_addr.as_deref().and_then(parse_ip));
    let client_name = macros
        .get("client_name")
        .map(str::to_string)
        .or_else(|| events.connect_host.clone())
        .filter(|n| n != "unknown");
    Envelope {
        mail_from,
        rcpt_to,
        client_ip,
        client_name,
        helo: events.helo.clone(),
        auth_user: macros.get("auth_authen").map(str::to_string),
        queue_id: macros.get("i").map(str::to_string),
        local_submission: is_local_submission(macros, events),
    }
}

/// Mail that did not come over SMTP (`sendmail`, pickup): Postfix runs
/// `non_smtpd_milters` in its cleanup server and emulates the SMTP events
/// there with client `localhost`, `127.0.0.1`, port 0. A real SMTP client
/// never has port 0, so mail over SMTP from 127.0.0.1 is *not* local
/// submission, the same rule as `XFORWARD` in content-filter mode.
fn is_local_submission(macros: &Macros, events: &Events) -> bool {
    let has_client = macros.get("client_addr").and_then(parse_ip).is_some()
        || events.connect_addr.as_deref().and_then(parse_ip).is_some();
    events.connect_port == Some(0) || !has_client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(conn: &[(&str, &str)], msg: &[(&str, &str)], rcpts: &[&str]) -> Macros {
        let mut m = Macros::default();
        let c: Vec<(&[u8], &[u8])> = conn
            .iter()
            .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
            .collect();
        m.ingest(b'C', c.into_iter());
        let p: Vec<(&[u8], &[u8])> = msg
            .iter()
            .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
            .collect();
        m.ingest(b'M', p.into_iter());
        for r in rcpts {
            m.ingest(b'R', [(&b"{rcpt_addr}"[..], r.as_bytes())].into_iter());
        }
        m
    }

    #[test]
    fn envelope_comes_from_the_macros() {
        let m = with(
            &[
                ("{client_addr}", "192.0.2.7"),
                ("{client_name}", "mail.example.com"),
                ("{daemon_name}", "mx"),
            ],
            &[
                ("i", "4ABC"),
                ("{mail_addr}", "a@example.com"),
                ("{auth_authen}", "jsmith"),
            ],
            &["b@oakfield.sch.uk", "c@oakfield.sch.uk"],
        );
        let events = Events {
            mail_from: Some("<ignored@x>".into()),
            helo: Some("client.example".into()),
            ..Events::default()
        };
        let e = envelope(&m, &events);
        assert_eq!(e.mail_from, "a@example.com");
        assert_eq!(e.rcpt_to, vec!["b@oakfield.sch.uk", "c@oakfield.sch.uk"]);
        assert_eq!(e.client_ip, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(e.client_name.as_deref(), Some("mail.example.com"));
        assert_eq!(e.auth_user.as_deref(), Some("jsmith"));
        assert_eq!(e.queue_id.as_deref(), Some("4ABC"));
        assert_eq!(e.helo.as_deref(), Some("client.example"));
        assert!(!e.local_submission);
        assert!(m.warn_missing().is_empty());
    }

    #[test]
    fn falls_back_to_events_and_reports_missing_macros() {
        let m = Macros::default();
        let events = Events {
            connect_addr: Some("IPv6:2001:db8::1".into()),
            mail_from: Some("<a@b>".into()),
            rcpts: vec!["<c@d>".into()],
            ..Events::default()
        };
        let e = envelope(&m, &events);
        assert_eq!(e.mail_from, "a@b");
        assert_eq!(e.rcpt_to, vec!["c@d"]);
        assert_eq!(e.client_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(e.auth_user, None);
        assert_eq!(
            m.warn_missing(),
            vec!["daemon_name", "client_addr", "mail_addr", "rcpt_addr", "i"]
        );
    }

    #[test]
    fn readme_and_load_benchmark_configure_exactly_these_macros() {
        let macro_lines = main_cf_macro_lines();
        let lines = macro_lines.trim_end();
        for (file, text) in [
            ("README.md", include_str!("../../../README.md")),
            ("benches/load.sh", include_str!("../../../benches/load.sh")),
        ] {
            assert!(
                text.contains(lines),
                "{file} must give the milter macro lines hallmonitor reads:\n{lines}"
            );
        }
        // Every macro the envelope needs is in one of the lists.
        let all = [CONNECT_MACROS, MAIL_MACROS, RCPT_MACROS, EOD_MACROS].join(" ");
        for (name, _) in NEEDED {
            let braced = format!("{{{name}}}");
            assert!(
                all.split_whitespace().any(|m| m == braced || m == name),
                "{name} is not requested"
            );
        }
        assert!(all.contains("{auth_authen}"));
    }

    #[test]
    fn no_client_address_is_local_submission_and_abort_forgets_the_message() {
        let mut m = with(&[("{daemon_name}", "mx")], &[("i", "Q1")], &["x@y"]);
        assert!(envelope(&m, &Events::default()).local_submission);
        m.end_message();
        assert_eq!(m.get("i"), None);
        assert_eq!(m.get("daemon_name"), Some("mx"));
        assert!(m.rcpt_addrs.is_empty());
    }

    #[test]
    fn postfix_non_smtp_emulation_port_zero_is_local_submission() {
        let m = with(&[("{client_addr}", "127.0.0.1")], &[("i", "Q1")], &["x@y"]);
        let mut events = Events {
            connect_addr: Some("127.0.0.1".into()),
            connect_port: Some(40123),
            ..Events::default()
        };
        assert!(!envelope(&m, &events).local_submission);
        events.connect_port = Some(0);
        assert!(envelope(&m, &events).local_submission);
    }
}
