//! Masking of evidence so that notifications, logs and the web UI never show a
//! full identifier or a full offensive word.

/// Mask an identifier, keeping the first four and the last character of its
/// alphanumeric content: `AB123456C` → `AB12****C`. Short values keep less.
pub fn identifier(value: &str) -> String {
    let chars: Vec<char> = value.chars().filter(|c| c.is_alphanumeric()).collect();
    let n = chars.len();
    let (head, tail) = match n {
        0 => return String::new(),
        1..=4 => (1, 0),
        5..=7 => (2, 1),
        _ => (4, 1),
    };
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', n - head - tail));
    out.extend(chars[n - tail..].iter());
    out
}

/// Mask a word: keep its first character, `fuck` → `f***`.
pub fn word(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => {
            let mut out = String::new();
            out.push(first);
            out.extend(chars.map(|c| if c.is_whitespace() { c } else { '*' }));
            out
        }
        None => String::new(),
    }
}

/// Mask an e-mail address for display: `jane.smith@example.com` → `j********@example.com`.
pub fn address(value: &str) -> String {
    match value.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{}", word(local), domain),
        None => word(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ni_number_is_masked_like_the_policy_says() {
        assert_eq!(identifier("AB123456C"), "AB12****C");
        assert_eq!(identifier("AB 12 34 56 C"), "AB12****C");
    }

    #[test]
    fn card_number_never_shows_in_full() {
        let masked = identifier("4111 1111 1111 1111");
        assert_eq!(masked, "4111***********1");
        assert!(!masked.contains("41111111"));
    }

    #[test]
    fn words_keep_only_first_letter() {
        assert_eq!(word("fuck"), "f***");
        assert_eq!(word(""), "");
        assert_eq!(address("jane@example.com"), "j***@example.com");
    }
}
