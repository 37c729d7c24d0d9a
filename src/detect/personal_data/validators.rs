//! Check-digit and format validators for UK personal identifiers, and date parsing.
//!
//! All of these are our own code (no crate): the rules are short, published, and we
//! want them unit-tested against valid, invalid and near-miss values. Every function
//! takes untrusted text and never panics.

/// Only the ASCII digits of `s`, as numbers 0–9.
pub fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// Only the ASCII alphanumerics of `s`, upper-cased (`gy 77 09 52 d` → `GY770952D`).
pub fn compact(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// UK National Insurance number: two prefix letters, six digits, suffix A–D.
///
/// HMRC rules: the first letter is not D, F, I, Q, U or V; the second is not D, F, I,
/// O, Q, U or V; the prefixes BG, GB, NK, KN, TN, NT and ZZ are never issued.
/// Spaces are allowed anywhere (`QQ 12 34 56 C`); case is ignored.
pub fn ni_number(s: &str) -> bool {
    let c = compact(s);
    let b = c.as_bytes();
    if b.len() != 9 {
        return false;
    }
    let (first, second) = (b[0], b[1]);
    if !first.is_ascii_alphabetic() || !second.is_ascii_alphabetic() {
        return false;
    }
    if b"DFIQUV".contains(&first) || b"DFIOQUV".contains(&second) {
        return false;
    }
    if matches!(
        &b[..2],
        b"BG" | b"GB" | b"NK" | b"KN" | b"TN" | b"NT" | b"ZZ"
    ) {
        return false;
    }
    b[2..8].iter().all(u8::is_ascii_digit) && matches!(b[8], b'A'..=b'D')
}

/// Sum of the first nine digits weighted 10, 9, … 2 (NHS numbers and ULNs share it).
fn weighted_nine(d: &[u8]) -> u32 {
    d.iter()
        .take(9)
        .zip((2..=10u32).rev())
        .map(|(&x, w)| u32::from(x) * w)
        .sum()
}

/// NHS number (England, Wales, Isle of Man): ten digits, the last a modulus-11 check
/// digit. Check = 11 − (weighted sum mod 11); 11 becomes 0 and 10 means the number
/// is invalid (never issued). Separators are ignored: `943 476 5919`.
pub fn nhs_number(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 10 {
        return false;
    }
    // All-same-digit numbers pass the arithmetic (e.g. 0000000000) but are not issued.
    if d.iter().all(|&x| x == d[0]) {
        return false;
    }
    let check = match 11 - weighted_nine(&d) % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    u32::from(d[9]) == check
}

/// Unique Learner Number (Learning Records Service): ten digits, the first non-zero.
///
/// Published check (HESA / LRS): the sum of all ten digits weighted 10, 9, … 1 leaves
/// remainder 10 modulo 11; equivalently check digit = 10 − (sum of the first nine
/// weighted 10…2, mod 11), and a remainder of 0 (which would need check digit 10) is
/// invalid. Example from the specification: 9276308686.
/// It is designed never to collide with an NHS number.
pub fn uln(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 10 || d[0] == 0 {
        return false;
    }
    let r = weighted_nine(&d) % 11;
    if r == 0 {
        return false;
    }
    u32::from(d[9]) == 10 - r
}

/// The DfE check-letter alphabet for UPNs (no I, O, S).
const UPN_LETTERS: &[u8; 23] = b"ABCDEFGHJKLMNPQRTUVWXYZ";

/// Unique Pupil Number (DfE): 13 characters, a check letter then 12 digits, or 11 digits
/// and a letter for a temporary UPN.
///
/// Check letter = UPN_LETTERS[(Σ value(char i) × i for i in 2..=13) mod 23], where a
/// temporary UPN's final letter takes its index in the same alphabet as its value.
pub fn upn(s: &str) -> bool {
    let c = compact(s);
    let b = c.as_bytes();
    if b.len() != 13 || !b[1..12].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let value = |ch: u8| -> Option<u32> {
        if ch.is_ascii_digit() {
            Some(u32::from(ch - b'0'))
        } else {
            UPN_LETTERS.iter().position(|&l| l == ch).map(|p| p as u32)
        }
    };
    let mut sum = 0u32;
    for (i, &ch) in b.iter().enumerate().skip(1) {
        match value(ch) {
            Some(v) => sum += v * (i as u32 + 1),
            None => return false,
        }
    }
    UPN_LETTERS[(sum % 23) as usize] == b[0]
}

/// Luhn (mod 10) check over the digits of `s`.
pub fn luhn(s: &str) -> bool {
    let d = digits(s);
    if d.len() < 2 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Card scheme of a primary account number by its issuer prefix and length, if any.
pub fn card_issuer(d: &[u8]) -> Option<&'static str> {
    let len = d.len();
    if !(12..=19).contains(&len) {
        return None;
    }
    let prefix = |n: usize| -> u32 { d.iter().take(n).fold(0u32, |a, &x| a * 10 + u32::from(x)) };
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    let scheme = if p1 == 4 && matches!(len, 13 | 16 | 19) {
        "Visa"
    } else if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16 {
        "Mastercard"
    } else if matches!(p2, 34 | 37) && len == 15 {
        "American Express"
    } else if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && (16..=19).contains(&len) {
        "Discover"
    } else if (3528..=3589).contains(&p4) && (16..=19).contains(&len) {
        "JCB"
    } else if ((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && (14..=19).contains(&len)
    {
        "Diners Club"
    } else if p2 == 62 && (16..=19).contains(&len) {
        "UnionPay"
    } else if (p2 == 50 || (56..=69).contains(&p2)) && (12..=19).contains(&len) {
        "Maestro"
    } else {
        return None;
    };
    Some(scheme)
}

/// A payment card number: 13–19 digits, a known issuer prefix, Luhn valid.
pub fn payment_card(s: &str) -> bool {
    let d = digits(s);
    (13..=19).contains(&d.len()) && card_issuer(&d).is_some() && luhn(s)
}

/// Normalise a UK postcode: upper case, single space before the inward code
/// (`s102ra` → `S10 2RA`). Returns None if it is not postcode-shaped.
pub fn postcode(s: &str) -> Option<String> {
    let c = compact(s);
    if c == "GIR0AA" {
        return Some("GIR 0AA".into());
    }
    let b = c.as_bytes();
    if !(5..=7).contains(&b.len()) {
        return None;
    }
    let (outward, inward) = c.split_at(b.len() - 3);
    let ib = inward.as_bytes();
    let inward_ok = ib[0].is_ascii_digit()
        && ib[1..]
            .iter()
            .all(|&x| x.is_ascii_uppercase() && !b"CIKMOV".contains(&x));
    let ob = outward.as_bytes();
    // A9, A9A, A99, AA9, AA9A, AA99; first letter not Q V X, second not I J Z.
    let outward_ok = match ob {
        [a, d] => a.is_ascii_uppercase() && d.is_ascii_digit(),
        [a, x, y] => {
            a.is_ascii_uppercase()
                && ((x.is_ascii_digit() && (y.is_ascii_digit() || y.is_ascii_uppercase()))
                    || (x.is_ascii_uppercase() && y.is_ascii_digit()))
        }
        [a, x, d, y] => {
            a.is_ascii_uppercase()
                && x.is_ascii_uppercase()
                && d.is_ascii_digit()
                && (y.is_ascii_digit() || y.is_ascii_uppercase())
        }
        _ => false,
    } && !b"QVX".contains(&ob[0])
        && !(ob[1].is_ascii_uppercase() && b"IJZ".contains(&ob[1]));
    (inward_ok && outward_ok).then(|| format!("{outward} {inward}"))
}

/// Normalise a UK phone number to national form with a leading 0
/// (`+44 (0)7700 900364` → `07700900364`). None if it is not 10–11 digits nationally.
pub fn uk_phone(s: &str) -> Option<String> {
    let t = s.trim();
    let international = t.starts_with('+') || t.starts_with("00");
    let mut d: String = t.chars().filter(char::is_ascii_digit).collect();
    if international {
        let rest = d.strip_prefix("0044").or_else(|| d.strip_prefix("44"))?;
        // +44 (0)7700 … writes the trunk 0 as well.
        let rest = rest.strip_prefix('0').unwrap_or(rest);
        d = format!("0{rest}");
    }
    let ok = d.starts_with('0') && (10..=11).contains(&d.len());
    ok.then_some(d)
}

/// Kinds of UK phone number the detector cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneKind {
    /// 07… (not 070 personal numbering, not 076 pagers except 07624 Isle of Man).
    Mobile,
    /// 01… and 02… geographic numbers.
    Landline,
}

/// Classify a national-form number (from [`uk_phone`]).
pub fn phone_kind(national: &str) -> Option<PhoneKind> {
    let b = national.as_bytes();
    match b {
        [b'0', b'7', rest @ ..] if b.len() == 11 => {
            let third = rest.first().copied()?;
            if third == b'0' || (third == b'6' && !national.starts_with("07624")) {
                None
            } else {
                Some(PhoneKind::Mobile)
            }
        }
        [b'0', b'1' | b'2', ..] => Some(PhoneKind::Landline),
        _ => None,
    }
}

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

impl Date {
    /// A real date (31 April and 29 February 2023 are not).
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        let dim = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if is_leap(year) => 29,
            2 => 28,
            _ => return None,
        };
        (day >= 1 && day <= dim).then_some(Date { year, month, day })
    }

    /// Today's date (UTC) from the system clock.
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Date::from_days((secs / 86_400) as i64)
    }

    /// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    pub fn from_days(z: i64) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }
}

/// Month number from an English month name or abbreviation (`Sept`, `october`).
pub fn month_from_name(s: &str) -> Option<u32> {
    let l = s.trim_end_matches('.').to_ascii_lowercase();
    const NAMES: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if l.len() < 3 {
        return None;
    }
    if l == "sept" {
        return Some(9);
    }
    NAMES
        .iter()
        .position(|n| n.starts_with(&l) && (l.len() == 3 || l.len() == n.len()))
        .map(|i| i as u32 + 1)
}

/// Expand a two-digit year: within the last 100 years of `today`.
pub fn full_year(y: i32, today: Date) -> i32 {
    if y >= 100 {
        return y;
    }
    let century = today.year - today.year % 100;
    let candidate = century + y;
    if candidate > today.year {
        candidate - 100
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ni_numbers_valid() {
        for ok in [
            "AB123456C",
            "ab 12 34 56 c",
            "GY 77 09 52 D",
            "JG103759A",
            "CE000000D",
        ] {
            assert!(ni_number(ok), "{ok}");
        }
    }

    #[test]
    fn ni_numbers_invalid_prefixes_and_letters() {
        for bad in [
            "DA123456A", // first letter D
            "FA123456A",
            "IA123456A",
            "QA123456A",
            "UA123456A",
            "VA123456A",
            "AO123456A", // second letter O
            "AD123456A",
            "AV123456A",
            "BG123456A",
            "GB123456A",
            "NK123456A",
            "KN123456A",
            "TN123456A",
            "NT123456A",
            "ZZ123456A",
        ] {
            assert!(!ni_number(bad), "{bad}");
        }
    }

    #[test]
    fn ni_numbers_near_misses() {
        assert!(!ni_number("AB123456E"), "suffix must be A-D");
        assert!(!ni_number("AB12345C"), "five digits");
        assert!(!ni_number("AB1234567C"), "seven digits");
        assert!(!ni_number("A1123456C"), "digit in prefix");
        assert!(!ni_number(""));
    }

    #[test]
    fn nhs_numbers() {
        // Valid: 943 476 5919 is the NHS's own published example.
        assert!(nhs_number("943 476 5919"));
        assert!(nhs_number("9434765919"));
        assert!(nhs_number("401-023-2137"));
        // Wrong check digit.
        assert!(!nhs_number("943 476 5918"));
        // Check digit would be 10: never issued.
        assert!(!nhs_number("1000000010"));
        // Length.
        assert!(!nhs_number("943 476 591"));
        assert!(!nhs_number("94347659190"));
        assert!(!nhs_number("0000000000"));
    }

    #[test]
    fn nhs_check_digit_edge_cases() {
        // First nine 000000014: 1×3 + 4×2 = 11 ≡ 0 → check 11 → written as 0.
        assert!(nhs_number("0000000140"));
        assert!(!nhs_number("0000000141"));
        // 000000001: sum 2 → check 9.
        assert!(nhs_number("0000000019"));
        // 110000000: 10 + 9 = 19 ≡ 8 → check 3.
        assert!(nhs_number("1100000003"));
        assert!(!nhs_number("1100000004"));
    }

    #[test]
    fn ulns_follow_the_published_algorithm() {
        assert!(uln("9276308686"), "the HESA example");
        assert!(!uln("9276308687"));
        assert!(!uln("0276308686"), "first digit must be non-zero");
        assert!(!uln("927630868"), "nine digits");
        // An NHS-valid number is never ULN-valid (the schemes are disjoint).
        assert!(nhs_number("9434765919") && !uln("9434765919"));
    }

    #[test]
    fn nhs_and_uln_never_overlap() {
        for n in (1_000_000_000u64..1_000_200_000).step_by(7) {
            let s = n.to_string();
            assert!(!(nhs_number(&s) && uln(&s)), "{s}");
        }
    }

    #[test]
    fn upns() {
        // Computed: digits 2..13 of "?801200001001": choose a known-good by construction.
        let body = "801200001001";
        let sum: u32 = body
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * (i as u32 + 2))
            .sum();
        let letter = UPN_LETTERS[(sum % 23) as usize] as char;
        let good = format!("{letter}{body}");
        assert!(upn(&good), "{good}");
        // Any other letter fails.
        let other = if letter == 'A' { 'B' } else { 'A' };
        assert!(!upn(&format!("{other}{body}")));
        // Lower case is accepted (compact upper-cases).
        assert!(upn(&good.to_lowercase()));
        // Letters I, O and S are never check letters.
        assert!(!upn(&format!("I{body}")));
        // Wrong length.
        assert!(!upn(&format!("{letter}{}", &body[1..])));
    }

    #[test]
    fn temporary_upn_with_final_letter() {
        // Build a temporary UPN: 11 digits and a final letter.
        let digits11 = "80120000100";
        let last = 'B'; // value 1
        let mut sum: u32 = digits11
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * (i as u32 + 2))
            .sum();
        sum += 13; // 'B' = 1 × weight 13
        let letter = UPN_LETTERS[(sum % 23) as usize] as char;
        assert!(upn(&format!("{letter}{digits11}{last}")));
        assert!(
            !upn(&format!("{letter}{digits11}S")),
            "S is not in the alphabet"
        );
    }

    #[test]
    fn luhn_and_issuers() {
        assert!(payment_card("4111 1111 1111 1111"), "Visa test number");
        assert!(
            payment_card("5555-5555-5555-4444"),
            "Mastercard test number"
        );
        assert!(payment_card("2221 0000 0000 0009"), "Mastercard 2-series");
        assert!(payment_card("3782 822463 10005"), "Amex test number");
        assert!(payment_card("6011111111111117"), "Discover test number");
        // Luhn fails.
        assert!(!payment_card("4111 1111 1111 1112"));
        // Luhn passes but no issuer starts with 1 or 9.
        assert!(luhn("1111111111111117"));
        assert!(!payment_card("1111111111111117"));
        // Too short.
        assert!(!payment_card("4111 1111 1111"));
        // Visa with a length Visa never issues.
        assert!(card_issuer(&digits("41111111111111")).is_none());
    }

    #[test]
    fn postcodes() {
        for (raw, norm) in [
            ("S10 2RA", "S10 2RA"),
            ("s102ra", "S10 2RA"),
            ("EC1A 1BB", "EC1A 1BB"),
            ("W1A 0AX", "W1A 0AX"),
            ("M1 1AE", "M1 1AE"),
            ("B33 8TH", "B33 8TH"),
            ("CR2 6XH", "CR2 6XH"),
            ("DN55 1PT", "DN55 1PT"),
            ("GIR 0AA", "GIR 0AA"),
        ] {
            assert_eq!(postcode(raw).as_deref(), Some(norm), "{raw}");
        }
        for bad in [
            "Q1 1AA", "AB1 1CA", "S10 2R", "12345", "AAA 1AA", "V1 2AB", "AJ1 2AB",
        ] {
            assert_eq!(postcode(bad), None, "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(uk_phone("07700 900364").as_deref(), Some("07700900364"));
        assert_eq!(uk_phone("+44 7700 900364").as_deref(), Some("07700900364"));
        assert_eq!(
            uk_phone("+44 (0)7700 900364").as_deref(),
            Some("07700900364")
        );
        assert_eq!(uk_phone("0044 7700 900364").as_deref(), Some("07700900364"));
        assert_eq!(uk_phone("+33 6 12 34 56 78"), None);
        assert_eq!(phone_kind("07700900364"), Some(PhoneKind::Mobile));
        assert_eq!(phone_kind("07012345678"), None, "070 is personal numbering");
        assert_eq!(phone_kind("07624123456"), Some(PhoneKind::Mobile));
        assert_eq!(phone_kind("01632960100"), Some(PhoneKind::Landline));
        assert_eq!(phone_kind("02079460000"), Some(PhoneKind::Landline));
        assert_eq!(phone_kind("08081570107"), None, "freephone");
        assert_eq!(phone_kind("0770090036"), None, "mobile must be 11 digits");
    }

    #[test]
    fn dates() {
        assert!(Date::new(2024, 2, 29).is_some());
        assert!(Date::new(2023, 2, 29).is_none());
        assert!(Date::new(2000, 2, 29).is_some());
        assert!(Date::new(1900, 2, 29).is_none());
        assert!(Date::new(2010, 4, 31).is_none());
        assert!(Date::new(2010, 13, 1).is_none());
        assert_eq!(
            Date::from_days(0),
            Date {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        assert_eq!(
            Date::from_days(19_723),
            Date {
                year: 2024,
                month: 1,
                day: 1
            }
        );
        assert_eq!(month_from_name("Sept"), Some(9));
        assert_eq!(month_from_name("oct."), Some(10));
        assert_eq!(month_from_name("Octo"), None);
        assert_eq!(month_from_name("May"), Some(5));
        let today = Date {
            year: 2025,
            month: 6,
            day: 1,
        };
        assert_eq!(full_year(7, today), 2007);
        assert_eq!(full_year(30, today), 1930);
        assert_eq!(full_year(25, today), 2025);
    }

    proptest! {
        #[test]
        fn validators_never_panic(s in "\\PC{0,40}") {
            let _ = ni_number(&s);
            let _ = nhs_number(&s);
            let _ = uln(&s);
            let _ = upn(&s);
            let _ = luhn(&s);
            let _ = payment_card(&s);
            let _ = postcode(&s);
            if let Some(p) = uk_phone(&s) { let _ = phone_kind(&p); }
            let _ = month_from_name(&s);
        }

        #[test]
        fn validators_never_panic_on_digit_soup(s in "[0-9A-Z +()-]{0,30}") {
            let _ = ni_number(&s);
            let _ = nhs_number(&s);
            let _ = uln(&s);
            let _ = upn(&s);
            let _ = payment_card(&s);
            let _ = postcode(&s);
            if let Some(p) = uk_phone(&s) { let _ = phone_kind(&p); }
        }

        #[test]
        fn one_digit_change_breaks_nhs(n in 1_000_000_000u64..9_999_999_999u64, pos in 0usize..10, delta in 1u8..10) {
            let s = n.to_string();
            if nhs_number(&s) {
                let mut b = s.into_bytes();
                b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
                let t = String::from_utf8(b).unwrap();
                prop_assert!(!nhs_number(&t), "{t}");
            }
        }

        #[test]
        fn days_round_trip_is_a_real_date(z in -100_000i64..200_000) {
            let d = Date::from_days(z);
            prop_assert!(Date::new(d.year, d.month, d.day).is_some());
        }
    }
}
