//! Who is told about an incident: the people the verdict names (head
//! teacher, or the Chair of Governors when the head teacher sent it; the DSL
//! as well for hate speech and threats), and whether the sender gets a notice.

use crate::config::Config;
use crate::incidents::NewIncident;

/// One person to alert and why they are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecipient {
    pub address: String,
    /// Roles as words, e.g. `["head teacher"]`.
    pub roles: Vec<&'static str>,
}

/// Does this incident raise an alert at all?
pub fn wants_alert(config: &Config, incident: &NewIncident) -> bool {
    let n = &config.notify;
    let held = incident.action == "quarantine";
    let tagged = incident.action == "tag" && n.tagged_alerts;
    (held || tagged)
        && incident
            .categories
            .iter()
            .any(|c| n.alert_categories.iter().any(|a| a == c))
}

/// The addresses to alert, one entry per address (a person in two roles is
/// told once).
pub fn alert_recipients(config: &Config, incident: &NewIncident) -> Vec<AlertRecipient> {
    let mut out: Vec<AlertRecipient> = Vec::new();
    for who in &incident.notify {
        let (list, role) = match who.as_str() {
            "head_teacher" => (&config.people.head_teacher, "the head teacher"),
            "chair_of_governors" => (&config.people.chair_of_governors, "the Chair of Governors"),
            "dsl" => (&config.people.dsl, "the Designated Safeguarding Lead"),
            _ => continue,
        };
        for address in list {
            let address = address.trim().to_ascii_lowercase();
            match out.iter_mut().find(|r| r.address == address) {
                Some(r) => {
                    if !r.roles.contains(&role) {
                        r.roles.push(role);
                    }
                }
                None => out.push(AlertRecipient {
                    address,
                    roles: vec![role],
                }),
            }
        }
    }
    // The head teacher is never alerted about their own message.
    if incident.sender_is_head {
        out.retain(|r| {
            !config
                .people
                .head_teacher
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&r.address))
        });
    }
    out
}

/// The address a "your message was held" notice goes to: only an identified
/// school sender (staff or pupil) whose message was held for a category with
/// notices switched on, and only at a school domain. Never an external sender.
pub fn notice_recipient(config: &Config, incident: &NewIncident) -> Option<String> {
    if incident.action != "quarantine"
        || incident.identified_sender.is_none()
        || !matches!(incident.sender_group.as_str(), "staff" | "pupil")
    {
        return None;
    }
    let on = incident
        .categories
        .iter()
        .any(|c| config.notify.notice_categories.iter().any(|n| n == c));
    if !on {
        return None;
    }
    let from = incident.mail_from.trim().to_ascii_lowercase();
    let (_, domain) = from.rsplit_once('@')?;
    config
        .school_domains()
        .any(|d| d == domain)
        .then_some(from)
        .filter(|a| crate::config::is_address(a))
}

/// Who a notice says has been told.
pub fn told_whom(incident: &NewIncident) -> &'static str {
    if incident.sender_is_head || incident.notify.iter().any(|n| n == "chair_of_governors") {
        "the Chair of Governors has been told"
    } else {
        "the head teacher has been told"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::FrontEnd;

    fn config() -> Config {
        Config::parse(
            r#"
[school]
staff_domains = ["oakfield.sch.uk"]
pupil_domains = ["pupils.oakfield.sch.uk"]
[people]
head_teacher = ["head@oakfield.sch.uk"]
chair_of_governors = ["chair@oakfield.sch.uk"]
dsl = ["dsl@oakfield.sch.uk", "head@oakfield.sch.uk"]
"#,
            "t.toml",
        )
        .unwrap()
    }

    pub(crate) fn incident(notify: &[&str], cats: &[&str]) -> NewIncident {
        NewIncident {
            at: 0,
            front_end: FrontEnd::Relay,
            queue_id: None,
            message_id: None,
            subject: None,
            mail_from: "d.price@oakfield.sch.uk".into(),
            rcpts: vec!["x@example.org".into()],
            client_ip: None,
            auth_user: Some("d.price".into()),
            direction: "outbound".into(),
            sender_group: "staff".into(),
            identified_sender: Some("d.price".into()),
            sender_is_head: false,
            action: "quarantine".into(),
            categories: cats.iter().map(|s| s.to_string()).collect(),
            rules: vec![],
            notify: notify.iter().map(|s| s.to_string()).collect(),
            clauses: vec![],
            size: 1,
            findings: vec![],
            held: None,
        }
    }

    #[test]
    fn head_and_dsl_once_each_address() {
        let c = config();
        let r = alert_recipients(&c, &incident(&["head_teacher", "dsl"], &["profanity"]));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].address, "head@oakfield.sch.uk");
        assert_eq!(
            r[0].roles,
            vec!["the head teacher", "the Designated Safeguarding Lead"]
        );
        assert_eq!(r[1].address, "dsl@oakfield.sch.uk");
    }

    #[test]
    fn head_sender_goes_to_the_chair_and_never_the_head() {
        let c = config();
        let mut i = incident(&["chair_of_governors", "dsl"], &["profanity"]);
        i.sender_is_head = true;
        let r = alert_recipients(&c, &i);
        let addrs: Vec<&str> = r.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(addrs, vec!["chair@oakfield.sch.uk", "dsl@oakfield.sch.uk"]);
        assert_eq!(told_whom(&i), "the Chair of Governors has been told");
    }

    #[test]
    fn notices_only_to_identified_school_senders() {
        let c = config();
        let i = incident(&["head_teacher"], &["personal_data"]);
        assert_eq!(
            notice_recipient(&c, &i).as_deref(),
            Some("d.price@oakfield.sch.uk")
        );
        let mut ext = i.clone();
        ext.sender_group = "external".into();
        ext.mail_from = "parent@example.com".into();
        assert_eq!(notice_recipient(&c, &ext), None);
        let mut anon = i.clone();
        anon.identified_sender = None;
        assert_eq!(notice_recipient(&c, &anon), None);
        let prof = incident(&["head_teacher"], &["profanity"]);
        assert_eq!(
            notice_recipient(&c, &prof),
            None,
            "off by default for profanity"
        );
        let mut tagged = i.clone();
        tagged.action = "tag".into();
        assert_eq!(notice_recipient(&c, &tagged), None);
    }

    #[test]
    fn tagged_alerts_are_off_by_default() {
        let c = config();
        let mut i = incident(&["head_teacher"], &["profanity"]);
        assert!(wants_alert(&c, &i));
        i.action = "tag".into();
        assert!(!wants_alert(&c, &i));
    }
}
