//! The SMTP envelope, as every front-end (content filter, milter, CLI) hands it to the scanner.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// `MAIL FROM` address; empty for the null sender `<>`.
    pub mail_from: String,
    /// `RCPT TO` addresses.
    pub rcpt_to: Vec<String>,
    /// Address of the client that handed the message to the school's MTA.
    pub client_ip: Option<IpAddr>,
    /// Client host name (reverse DNS) as the MTA saw it.
    pub client_name: Option<String>,
    /// HELO/EHLO name the client gave.
    pub helo: Option<String>,
    /// SMTP AUTH login, when the client authenticated.
    pub auth_user: Option<String>,
    /// MTA queue id (Postfix `{i}` / XFORWARD IDENT).
    pub queue_id: Option<String>,
    /// Submitted locally (sendmail command, pickup) rather than over the network.
    pub local_submission: bool,
}

impl Envelope {
    pub fn is_null_sender(&self) -> bool {
        self.mail_from.trim().is_empty() || self.mail_from.trim() == "<>"
    }
}
