//! Reading the SMTP AUTH login from the `Received:` header the school's own
//! Postfix added (content-filter mode).
//!
//! In content-filter mode Postfix hands the message to hallmonitor over SMTP and
//! passes client, HELO and queue id with XFORWARD, but **not** the SASL login. The
//! only place the login survives is the comment Postfix writes into the
//! `Received:` header it adds itself when `smtpd_sasl_authenticated_header = yes`:
//!
//! ```text
//! Received: from laptop (host [198.51.100.7])
//!         (Authenticated sender: jsmith@school.example.sch.uk)
//!         by mx.school.example.sch.uk (Postfix) with ESMTPSA id 4dQ1bX2yZ3z9t
//!         for <a@b.example>; Tue, 30 Sep 2025 17:46:36 +0100 (BST)
//! ```
//!
//! Anyone can put a header like that into a message before sending it, so the
//! login is taken only from the **topmost** `Received:` header whose `id` is the
//! queue id Postfix gave us in XFORWARD IDENT — the one header our Postfix wrote
//! for this very transaction. Headers further down are never consulted, even when
//! that header has no login comment: a forged lower header must not make an
//! unauthenticated sender look authenticated.

/// The SMTP AUTH login Postfix recorded for queue id `queue_id`, if any.
///
/// `received` holds the raw `Received:` values, topmost first (as in
/// [`super::HeaderFacts::received`]); a leading `Received:` name and folding
/// (CRLF + whitespace) are tolerated. Returns `None` when the queue id is empty,
/// when no header carries that id, or when the matching header has no
/// `(Authenticated sender: …)` comment.
pub fn auth_login_from_received(received: &[String], queue_id: &str) -> Option<String> {
    let queue_id = queue_id.trim();
    if queue_id.is_empty() {
        return None;
    }
    let header = received
        .iter()
        .map(|raw| unfold(raw))
        .find(|h| has_queue_id(h, queue_id))?;
    let login = authenticated_sender(&header);
    match &login {
        Some(l) => {
            tracing::debug!(queue_id, login = %crate::mask::address(l), "AUTH login from Received header")
        }
        None => tracing::debug!(
            queue_id,
            "Received header for this queue id has no AUTH login"
        ),
    }
    login
}

/// Join folded lines and drop a leading `Received:` header name.
fn unfold(raw: &str) -> String {
    let joined: String = raw
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    match joined.get(..9) {
        Some(prefix) if prefix.eq_ignore_ascii_case("received:") => joined[9..].trim().to_string(),
        _ => joined,
    }
}

/// Remove parenthesised comments (RFC 5322 CFWS, nested), so a queue id named
/// inside a comment does not count as the header's `id` clause.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for c in s.chars() {
        if depth > 0 {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '(' {
                depth += 1;
            } else if c == ')' {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
        } else if c == '(' {
            depth = 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// Does the header's `id` clause name exactly this queue id? Postfix queue ids
/// are case-sensitive (the long form uses mixed case), so they compare exactly.
fn has_queue_id(header: &str, queue_id: &str) -> bool {
    let bare = strip_comments(header);
    let tokens: Vec<&str> = bare.split_whitespace().collect();
    tokens
        .windows(2)
        .any(|w| w[0].eq_ignore_ascii_case("id") && w[1].trim_end_matches([';', ',']) == queue_id)
}

/// The value of an `(Authenticated sender: LOGIN)` comment, matched case-insensitively.
fn authenticated_sender(header: &str) -> Option<String> {
    const MARK: &str = "authenticated sender:";
    let lower = header.to_ascii_lowercase();
    let start = lower.find(MARK)? + MARK.len();
    // `to_ascii_lowercase` keeps byte offsets, so `start` is valid in `header`.
    let rest = header.get(start..)?;
    let end = rest.find(')').unwrap_or(rest.len());
    let login = rest[..end].trim().trim_matches(['<', '>']).trim();
    (!login.is_empty() && !login.contains(char::is_whitespace)).then(|| login.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(queue_id: &str, login: Option<&str>) -> String {
        let auth = login
            .map(|l| format!("\r\n\t(Authenticated sender: {l})"))
            .unwrap_or_default();
        format!(
            "from laptop.home.example (unknown [198.51.100.7]){auth}\r\n\tby mx.school.example.sch.uk (Postfix) with ESMTPSA id {queue_id}\r\n\tfor <someone@example.org>; Tue, 30 Sep 2025 17:46:36 +0100 (BST)"
        )
    }

    #[test]
    fn login_comes_from_our_header() {
        let received = vec![ours("4dQ1bX2yZ3z9t", Some("jsmith@school.example.sch.uk"))];
        assert_eq!(
            auth_login_from_received(&received, "4dQ1bX2yZ3z9t").as_deref(),
            Some("jsmith@school.example.sch.uk")
        );
    }

    #[test]
    fn forged_lower_header_is_ignored_when_ours_has_no_login() {
        // The sender did not authenticate, but planted a header with our queue id
        // further down: only the topmost header with the id counts.
        let received = vec![
            ours("4dQ1bX2yZ3z9t", None),
            ours("4dQ1bX2yZ3z9t", Some("head@school.example.sch.uk")),
        ];
        assert_eq!(auth_login_from_received(&received, "4dQ1bX2yZ3z9t"), None);
    }

    #[test]
    fn forged_lower_header_with_other_id_is_ignored() {
        let received = vec![
            ours("ABC123", None),
            ours("FORGED99", Some("head@school.example.sch.uk")),
        ];
        assert_eq!(auth_login_from_received(&received, "ABC123"), None);
        // And a header for another transaction never lends its login to ours.
        assert_eq!(auth_login_from_received(&received, "ZZZ999"), None);
    }

    #[test]
    fn mismatching_queue_id_gives_nothing() {
        let received = vec![ours("4dQ1bX2yZ3z9t", Some("jsmith"))];
        assert_eq!(auth_login_from_received(&received, "4dQ1bX2yZ3z9"), None);
        assert_eq!(auth_login_from_received(&received, "4DQ1BX2YZ3Z9T"), None);
        assert_eq!(auth_login_from_received(&received, ""), None);
    }

    #[test]
    fn topmost_matching_header_wins_over_a_later_one() {
        // A relay above ours (e.g. an internal hop) does not have our id; the first
        // header that does is used.
        let received = vec![
            "from mx.school.example.sch.uk by filter.school.example.sch.uk with ESMTP id Q1; Tue, 30 Sep 2025".to_string(),
            ours("Q2", Some("Real.User@School.Example.Sch.Uk")),
            ours("Q2", Some("someone.else@school.example.sch.uk")),
        ];
        assert_eq!(
            auth_login_from_received(&received, "Q2").as_deref(),
            Some("Real.User@School.Example.Sch.Uk")
        );
    }

    #[test]
    fn comment_is_case_insensitive_and_header_name_is_tolerated() {
        let received = vec![
            "Received: from x (x [10.0.0.5])\n (AUTHENTICATED SENDER: jsmith)\n by mx (Postfix) with ESMTPSA id 7F3A21C0B4;\n Tue, 30 Sep 2025".to_string(),
        ];
        assert_eq!(
            auth_login_from_received(&received, "7F3A21C0B4").as_deref(),
            Some("jsmith")
        );
    }

    #[test]
    fn queue_id_inside_a_comment_does_not_count() {
        let received = vec![
            "from x (helo id 7F3A21C0B4) (Authenticated sender: evil) by mx with ESMTP id OTHER1; Tue".to_string(),
        ];
        assert_eq!(auth_login_from_received(&received, "7F3A21C0B4"), None);
        assert_eq!(
            auth_login_from_received(&received, "OTHER1").as_deref(),
            Some("evil")
        );
    }

    #[test]
    fn empty_comment_is_no_login() {
        let received =
            vec!["from x (Authenticated sender: ) by mx with ESMTPSA id Q7; Tue".to_string()];
        assert_eq!(auth_login_from_received(&received, "Q7"), None);
    }
}
