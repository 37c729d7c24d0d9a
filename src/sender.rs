//! Who sent the message and which way it is going: identification, sender
//! group and direction, computed once per message and shared by detectors and policy.

use crate::config::{Config, network_contains, parse_network};
use crate::message::{Envelope, ScannedMessage};
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderGroup {
    Staff,
    Pupil,
    External,
}

impl SenderGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderGroup::Staff => "staff",
            SenderGroup::Pupil => "pupil",
            SenderGroup::External => "external",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        }
    }
}

/// How the sender was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifiedBy {
    /// SMTP AUTH login.
    Login,
    /// Client address in `senders.identified_networks`.
    Network,
    /// Submitted locally on the mail server.
    Local,
}

/// The sender as far as hallmonitor can tell.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub identified_by: Option<IdentifiedBy>,
    /// The SMTP AUTH login, lower case.
    pub login: Option<String>,
    pub group: SenderGroup,
    /// The first `From:` address, lower case.
    pub from_address: Option<String>,
    /// The From address is in one of the school's domains.
    pub from_is_school: bool,
    pub direction: Direction,
}

impl Identity {
    pub fn is_identified(&self) -> bool {
        self.identified_by.is_some()
    }
}

/// School-domain helper shared by detectors and policy.
#[derive(Debug, Clone)]
pub struct SchoolDomains {
    staff: Vec<String>,
    pupil: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

impl SchoolDomains {
    pub fn new(config: &Config) -> SchoolDomains {
        let norm = |v: &Vec<String>| {
            v.iter()
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect::<Vec<_>>()
        };
        SchoolDomains {
            staff: norm(&config.school.staff_domains),
            pupil: norm(&config.school.pupil_domains),
            networks: config
                .senders
                .identified_networks
                .iter()
                .filter_map(|n| parse_network(n))
                .collect(),
        }
    }

    fn domain_of(address: &str) -> Option<String> {
        address
            .trim()
            .trim_matches(|c| c == '<' || c == '>')
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
    }

    /// Exact domain match (subdomains of a school domain are not school domains
    /// unless listed: `pupils.school…` is listed separately).
    pub fn group_of(&self, address: &str) -> Option<SenderGroup> {
        let domain = Self::domain_of(address)?;
        if self.pupil.contains(&domain) {
            Some(SenderGroup::Pupil)
        } else if self.staff.contains(&domain) {
            Some(SenderGroup::Staff)
        } else {
            None
        }
    }

    pub fn is_school(&self, address: &str) -> bool {
        self.group_of(address).is_some()
    }

    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.staff
            .iter()
            .chain(self.pupil.iter())
            .map(String::as_str)
    }

    pub fn identified_network(&self, ip: IpAddr) -> bool {
        self.networks
            .iter()
            .any(|&(net, len)| network_contains(net, len, ip))
    }
}

/// Compute the sender identity and the direction of a message.
pub fn identify(
    config: &Config,
    domains: &SchoolDomains,
    envelope: &Envelope,
    message: &ScannedMessage,
) -> Identity {
    let login = envelope
        .auth_user
        .as_deref()
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| !l.is_empty());
    let identified_by = if login.is_some() {
        Some(IdentifiedBy::Login)
    } else if envelope.local_submission && config.senders.trust_local_submission {
        Some(IdentifiedBy::Local)
    } else if envelope
        .client_ip
        .is_some_and(|ip| domains.identified_network(ip))
    {
        Some(IdentifiedBy::Network)
    } else {
        None
    };
    let from_address = message
        .headers
        .from
        .as_ref()
        .and_then(|v| v.iter().find_map(|m| m.address.clone()))
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty());
    let from_is_school = from_address
        .as_deref()
        .is_some_and(|a| domains.is_school(a));

    // Sender group comes from the identified login (or, for identified hosts,
    // the address they send as); an unidentified school-domain From is external.
    let group = match (&identified_by, &login) {
        (Some(IdentifiedBy::Login), Some(l)) => login_group(domains, l)
            .or_else(|| from_address.as_deref().and_then(|a| domains.group_of(a)))
            .unwrap_or(SenderGroup::External),
        (Some(_), _) => from_address
            .as_deref()
            .and_then(|a| domains.group_of(a))
            .or_else(|| domains.group_of(&envelope.mail_from))
            .unwrap_or(SenderGroup::Staff),
        (None, _) => SenderGroup::External,
    };

    let outside = envelope.rcpt_to.iter().any(|r| !domains.is_school(r));
    let direction = if outside {
        Direction::Outbound
    } else if identified_by.is_some() {
        Direction::Internal
    } else {
        Direction::Inbound
    };

    Identity {
        identified_by,
        login,
        group,
        from_address,
        from_is_school,
        direction,
    }
}

fn login_group(domains: &SchoolDomains, login: &str) -> Option<SenderGroup> {
    if login.contains('@') {
        domains.group_of(login)
    } else {
        // A bare login (`jsmith`) is staff unless configured otherwise.
        Some(SenderGroup::Staff)
    }
}

/// May `login` send as `address`? Case-insensitive; the alias map is honoured;
/// a login (or alias) without `@` matches its local part at any school domain.
pub fn login_may_send_as(
    config: &Config,
    domains: &SchoolDomains,
    login: &str,
    address: &str,
) -> bool {
    let address = address.trim().to_ascii_lowercase();
    let login = login.trim().to_ascii_lowercase();
    let matches = |candidate: &str| -> bool {
        let candidate = candidate.trim().to_ascii_lowercase();
        if candidate.contains('@') {
            candidate == address
        } else {
            match address.rsplit_once('@') {
                Some((local, domain)) => local == candidate && domains.all().any(|d| d == domain),
                None => false,
            }
        }
    };
    if matches(&login) {
        return true;
    }
    config
        .senders
        .aliases
        .iter()
        .filter(|(k, _)| {
            let k = k.trim().to_ascii_lowercase();
            k == login || (!k.contains('@') && login.split('@').next() == Some(k.as_str()))
        })
        .flat_map(|(_, v)| v.iter())
        .any(|a| matches(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Mailbox;

    fn config() -> Config {
        Config::parse(
            r#"
[school]
staff_domains = ["school.example.sch.uk"]
pupil_domains = ["pupils.school.example.sch.uk"]
[senders]
identified_networks = ["10.1.2.3"]
[senders.aliases]
"office" = ["reception@school.example.sch.uk"]
"#,
            "t.toml",
        )
        .unwrap()
    }

    fn msg(from: &str) -> ScannedMessage {
        let mut m = ScannedMessage::default();
        m.headers.from = Some(vec![Mailbox {
            name: None,
            address: Some(from.into()),
        }]);
        m
    }

    fn env(from: &str, rcpt: &[&str], auth: Option<&str>, ip: &str) -> Envelope {
        Envelope {
            mail_from: from.into(),
            rcpt_to: rcpt.iter().map(|s| s.to_string()).collect(),
            auth_user: auth.map(str::to_string),
            client_ip: ip.parse().ok(),
            ..Envelope::default()
        }
    }

    #[test]
    fn directions() {
        let c = config();
        let d = SchoolDomains::new(&c);
        let staff = "a@school.example.sch.uk";
        let id = identify(
            &c,
            &d,
            &env(staff, &["x@gmail.com"], Some(staff), "198.51.100.1"),
            &msg(staff),
        );
        assert_eq!(id.direction, Direction::Outbound);
        assert_eq!(id.group, SenderGroup::Staff);
        let id = identify(
            &c,
            &d,
            &env(
                staff,
                &["b@pupils.school.example.sch.uk"],
                Some(staff),
                "10.0.0.1",
            ),
            &msg(staff),
        );
        assert_eq!(id.direction, Direction::Internal);
        let id = identify(
            &c,
            &d,
            &env(
                "p@gmail.com",
                &["b@school.example.sch.uk"],
                None,
                "198.51.100.1",
            ),
            &msg("p@gmail.com"),
        );
        assert_eq!(id.direction, Direction::Inbound);
        assert_eq!(id.group, SenderGroup::External);
    }

    #[test]
    fn unidentified_school_from_is_external() {
        let c = config();
        let d = SchoolDomains::new(&c);
        let staff = "head@school.example.sch.uk";
        let id = identify(
            &c,
            &d,
            &env(staff, &["b@school.example.sch.uk"], None, "198.51.100.1"),
            &msg(staff),
        );
        assert!(!id.is_identified());
        assert_eq!(id.group, SenderGroup::External);
        assert!(id.from_is_school);
    }

    #[test]
    fn identified_network_counts_as_identified() {
        let c = config();
        let d = SchoolDomains::new(&c);
        let mis = "mis@school.example.sch.uk";
        let id = identify(
            &c,
            &d,
            &env(mis, &["b@school.example.sch.uk"], None, "10.1.2.3"),
            &msg(mis),
        );
        assert_eq!(id.identified_by, Some(IdentifiedBy::Network));
        assert_eq!(id.direction, Direction::Internal);
    }

    #[test]
    fn pupil_login_is_pupil() {
        let c = config();
        let d = SchoolDomains::new(&c);
        let p = "24kid@pupils.school.example.sch.uk";
        let id = identify(
            &c,
            &d,
            &env(p, &["t@school.example.sch.uk"], Some(p), "10.0.0.1"),
            &msg(p),
        );
        assert_eq!(id.group, SenderGroup::Pupil);
    }

    #[test]
    fn send_as_rules() {
        let c = config();
        let d = SchoolDomains::new(&c);
        assert!(login_may_send_as(
            &c,
            &d,
            "ERobinson@School.Example.Sch.Uk",
            "erobinson@school.example.sch.uk"
        ));
        assert!(login_may_send_as(
            &c,
            &d,
            "jsmith",
            "jsmith@pupils.school.example.sch.uk"
        ));
        assert!(!login_may_send_as(&c, &d, "jsmith", "jsmith@gmail.com"));
        assert!(login_may_send_as(
            &c,
            &d,
            "office@school.example.sch.uk",
            "reception@school.example.sch.uk"
        ));
        assert!(!login_may_send_as(
            &c,
            &d,
            "cholt@school.example.sch.uk",
            "harry@school.example.sch.uk"
        ));
    }
}
