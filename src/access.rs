//! Who may see, read, release and delete which held message. Pure functions
//! over a [`HeldItem`]: the CLI and the web UI both ask here, and the README's
//! role table is this file written out.
//!
//! | | admin (ICT) | head | dsl | chair | governor |
//! |---|---|---|---|---|---|
//! | list/metadata, ordinary item | yes | yes | yes | no | no |
//! | list/metadata, sender is the head | yes | **no** | no | yes | no |
//! | read body, hate/threat item | yes | yes | yes | no | no |
//! | read body, other item | yes | yes | no | no | no |
//! | read body, sender is the head | yes | no | no | yes | no |
//! | release | nobody releases a virus; other banned attachments: admin only; encrypted archives only: admin, head, dsl (if they can see the item); otherwise whoever may read the body |
//! | delete | yes | items they can see | no | items they can see | no |
//! | download attachments | yes | no | no | no | no |

use crate::incidents::HeldItem;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// ICT administrator.
    Admin,
    /// Head teacher.
    Head,
    /// Designated safeguarding lead.
    Dsl,
    /// Chair of governors.
    Chair,
    /// Governor: weekly summaries only.
    Governor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Head,
        Role::Dsl,
        Role::Chair,
        Role::Governor,
    ];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Head => "head",
            Role::Dsl => "dsl",
            Role::Chair => "chair",
            Role::Governor => "governor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hate or threat findings (safeguarding matters for the DSL).
pub fn is_hate_or_threat(item: &HeldItem) -> bool {
    item.rules
        .iter()
        .any(|r| r == "profanity/hate" || r == "profanity/threat")
}

fn has_category(item: &HeldItem, category: &str) -> bool {
    item.categories.iter().any(|c| c == category)
}

/// Whether the role sees the item at all (its metadata in lists).
pub fn can_list(role: Role, item: &HeldItem) -> bool {
    match role {
        Role::Admin => true,
        Role::Head | Role::Dsl => !item.sender_is_head,
        Role::Chair => item.sender_is_head,
        Role::Governor => false,
    }
}

/// Whether the role may read the message body (and its headers).
pub fn can_view_body(role: Role, item: &HeldItem) -> bool {
    if !can_list(role, item) {
        return false;
    }
    match role {
        Role::Admin => true,
        Role::Chair => item.sender_is_head,
        Role::Head => true,
        Role::Dsl => is_hate_or_threat(item),
        Role::Governor => false,
    }
}

/// Whether the role may release the item; the error is the reason shown.
pub fn can_release(role: Role, item: &HeldItem) -> Result<(), &'static str> {
    if has_category(item, "virus") {
        return Err("nobody may release a message that contains a virus");
    }
    if role == Role::Governor {
        return Err("governors see the weekly summaries only");
    }
    if !can_list(role, item) {
        return Err("this message is not visible to your role");
    }
    if has_category(item, "banned_attachment") {
        let banned: Vec<&String> = item
            .rules
            .iter()
            .filter(|r| r.starts_with("banned_attachment/"))
            .collect();
        let only_encrypted = !banned.is_empty()
            && banned
                .iter()
                .all(|r| r.as_str() == "banned_attachment/encrypted_archive");
        return match role {
            Role::Admin => Ok(()),
            Role::Head | Role::Dsl if only_encrypted => Ok(()),
            _ if only_encrypted => {
                Err("an encrypted archive may be released by admin, head or dsl only")
            }
            _ => Err("a banned attachment may be released by admin only"),
        };
    }
    if can_view_body(role, item) {
        Ok(())
    } else {
        Err("your role may not read this message, so it may not release it")
    }
}

/// Whether the role may delete the item; the error is the reason shown.
pub fn can_delete(role: Role, item: &HeldItem) -> Result<(), &'static str> {
    match role {
        Role::Admin => Ok(()),
        Role::Head | Role::Chair if can_list(role, item) => Ok(()),
        Role::Head | Role::Chair => Err("this message is not visible to your role"),
        Role::Dsl => Err("the dsl may not delete held messages"),
        Role::Governor => Err("governors see the weekly summaries only"),
    }
}

/// Whether the role may download attachments as files.
pub fn can_download_attachments(role: Role) -> bool {
    role == Role::Admin
}

/// Whether the role may purge old items (retention).
pub fn can_purge(role: Role) -> bool {
    role == Role::Admin
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn item(categories: &[&str], rules: &[&str], sender_is_head: bool) -> HeldItem {
        HeldItem {
            id: "1764000000000000000-1-0".into(),
            incident_id: 1,
            status: "held".into(),
            held_at: 1_764_000_000,
            next_hop: "127.0.0.1:10026".into(),
            reviewed_at: None,
            reviewed_by: None,
            review_reason: None,
            last_error: None,
            queue_id: None,
            message_id: None,
            subject: None,
            mail_from: "x@oakfield.sch.uk".into(),
            rcpts: vec!["y@example.org".into()],
            direction: "outbound".into(),
            sender_group: "staff".into(),
            identified_sender: None,
            sender_is_head,
            categories: categories.iter().map(|s| s.to_string()).collect(),
            rules: rules.iter().map(|s| s.to_string()).collect(),
            notify: vec![],
            clauses: vec![],
            size: 10,
        }
    }

    /// Roles for which `f` is true, in `Role::ALL` order.
    fn who(f: impl Fn(Role) -> bool) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| f(*r)).collect()
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("Admin"), None);
    }

    #[test]
    fn listing() {
        let pd = item(&["personal_data"], &["personal_data/ni_number"], false);
        assert_eq!(who(|r| can_list(r, &pd)), vec![Admin, Head, Dsl]);
        let head = item(&["personal_data"], &["personal_data/ni_number"], true);
        assert_eq!(who(|r| can_list(r, &head)), vec![Admin, Chair]);
    }

    #[test]
    fn reading_bodies() {
        let pd = item(&["personal_data"], &["personal_data/ni_number"], false);
        assert_eq!(who(|r| can_view_body(r, &pd)), vec![Admin, Head]);
        let hate = item(&["profanity"], &["profanity/hate"], false);
        assert_eq!(who(|r| can_view_body(r, &hate)), vec![Admin, Head, Dsl]);
        let threat = item(
            &["profanity"],
            &["profanity/strong", "profanity/threat"],
            false,
        );
        assert_eq!(who(|r| can_view_body(r, &threat)), vec![Admin, Head, Dsl]);
        let head_hate = item(&["profanity"], &["profanity/hate"], true);
        assert_eq!(who(|r| can_view_body(r, &head_hate)), vec![Admin, Chair]);
    }

    #[test]
    fn nobody_releases_a_virus() {
        let v = item(&["virus"], &["virus/clamd"], false);
        assert_eq!(who(|r| can_release(r, &v).is_ok()), vec![]);
        assert!(can_release(Admin, &v).unwrap_err().contains("virus"));
        let mixed = item(
            &["banned_attachment", "virus"],
            &["banned_attachment/encrypted_archive", "virus/clamd"],
            false,
        );
        assert_eq!(who(|r| can_release(r, &mixed).is_ok()), vec![]);
    }

    #[test]
    fn banned_attachments_admin_only_except_encrypted_archives() {
        let exe = item(
            &["banned_attachment"],
            &["banned_attachment/executable"],
            false,
        );
        assert_eq!(who(|r| can_release(r, &exe).is_ok()), vec![Admin]);
        assert!(can_release(Head, &exe).unwrap_err().contains("admin only"));
        let enc = item(
            &["banned_attachment"],
            &["banned_attachment/encrypted_archive"],
            false,
        );
        assert_eq!(
            who(|r| can_release(r, &enc).is_ok()),
            vec![Admin, Head, Dsl]
        );
        let enc_and_exe = item(
            &["banned_attachment"],
            &[
                "banned_attachment/encrypted_archive",
                "banned_attachment/executable",
            ],
            false,
        );
        assert_eq!(who(|r| can_release(r, &enc_and_exe).is_ok()), vec![Admin]);
        let head_enc = item(
            &["banned_attachment"],
            &["banned_attachment/encrypted_archive"],
            true,
        );
        assert_eq!(who(|r| can_release(r, &head_enc).is_ok()), vec![Admin]);
        let unscannable = item(
            &["banned_attachment"],
            &["banned_attachment/unscannable"],
            false,
        );
        assert_eq!(who(|r| can_release(r, &unscannable).is_ok()), vec![Admin]);
    }

    #[test]
    fn other_items_are_released_by_whoever_may_read_them() {
        let pd = item(&["personal_data"], &["personal_data/ni_number"], false);
        assert_eq!(who(|r| can_release(r, &pd).is_ok()), vec![Admin, Head]);
        let hate = item(&["profanity"], &["profanity/hate"], false);
        assert_eq!(
            who(|r| can_release(r, &hate).is_ok()),
            vec![Admin, Head, Dsl]
        );
        let head = item(&["personal_data"], &["personal_data/ni_number"], true);
        assert_eq!(who(|r| can_release(r, &head).is_ok()), vec![Admin, Chair]);
        assert!(
            can_release(Head, &head)
                .unwrap_err()
                .contains("not visible")
        );
        assert!(
            can_release(Governor, &pd)
                .unwrap_err()
                .contains("summaries")
        );
    }

    #[test]
    fn deleting_and_downloading() {
        let pd = item(&["personal_data"], &["personal_data/ni_number"], false);
        assert_eq!(who(|r| can_delete(r, &pd).is_ok()), vec![Admin, Head]);
        let head = item(&["personal_data"], &["personal_data/ni_number"], true);
        assert_eq!(who(|r| can_delete(r, &head).is_ok()), vec![Admin, Chair]);
        let v = item(&["virus"], &["virus/clamd"], false);
        assert_eq!(who(|r| can_delete(r, &v).is_ok()), vec![Admin, Head]);
        assert_eq!(who(can_download_attachments), vec![Admin]);
        assert_eq!(who(can_purge), vec![Admin]);
    }
}
