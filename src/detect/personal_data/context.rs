//! Where in a text a match sits: inside an organisation's signature block or a
//! registered-business paragraph (invoice, letterhead), where addresses and phone
//! numbers are a business's, not a person's.

use super::settings::{KeywordSet, Settings};

/// Byte ranges of one text that belong to organisations.
#[derive(Debug, Default)]
pub struct BusinessZones {
    ranges: Vec<(usize, usize)>,
}

/// Lines that end a signature block: the start of a quoted or forwarded message.
fn is_boundary(line: &str) -> bool {
    let l = line.trim_start_matches(['>', ' ']).to_ascii_lowercase();
    l.starts_with("-----")
        || l.starts_with("_____")
        || l.starts_with("from:")
        || l.starts_with("sent:")
        || l.starts_with("begin forwarded message")
        || (l.starts_with("on ") && l.trim_end().ends_with("wrote:"))
}

/// Is this line a sign-off ("Kind regards,", "Thanks, Jo", "--")?
fn is_signoff(line: &str, signoffs: &[String]) -> bool {
    let l = line.trim().trim_start_matches('>').trim().to_lowercase();
    if l == "--" || l == "-- " || l == "—" {
        return true;
    }
    if l.chars().count() > 40 {
        return false;
    }
    signoffs.iter().any(|s| {
        l.strip_prefix(s.as_str()).is_some_and(|rest| {
            // Only punctuation, or a short name after a comma ("Thanks, Jo").
            let rest = rest.trim();
            rest.is_empty()
                || rest.chars().all(|c| !c.is_alphanumeric())
                || (rest.starts_with(',')
                    && rest.chars().count() <= 25
                    && !rest.chars().any(|c| c.is_ascii_digit()))
        })
    })
}

impl BusinessZones {
    /// Find the organisation zones of `text`.
    ///
    /// 1. A signature block (the lines after a sign-off, up to a quoted/forwarded
    ///    message or `signature_lines`) that names an organisation — a company word,
    ///    a job title, a web address or the school's own name — belongs to it.
    /// 2. A paragraph with registration details (company number, VAT, registered
    ///    office) is a business letterhead or invoice.
    pub fn find(text: &str, s: &Settings, school: &KeywordSet) -> BusinessZones {
        let mut ranges = Vec::new();
        let mut lines: Vec<(usize, &str)> = Vec::new();
        let mut off = 0;
        for l in text.split_inclusive('\n') {
            lines.push((off, l));
            off += l.len();
        }
        let mut i = 0;
        while i < lines.len() {
            if is_signoff(lines[i].1, &s.signoffs) {
                let start = lines[i].0;
                let mut j = i + 1;
                while j < lines.len() && j <= i + s.signature_lines && !is_boundary(lines[j].1) {
                    j += 1;
                }
                let end = lines.get(j).map_or(text.len(), |l| l.0);
                let block = &text[start..end];
                if s.organisation.found_in(block) || school.found_in(block) {
                    ranges.push((start, end));
                }
                i = j.max(i + 1);
            } else {
                i += 1;
            }
        }
        if !s.registered.is_empty() {
            let mut para_start = 0;
            let mut k = 0;
            while k <= lines.len() {
                let blank = lines.get(k).is_none_or(|l| l.1.trim().is_empty());
                if blank {
                    let end = lines.get(k).map_or(text.len(), |l| l.0);
                    if end > para_start && s.registered.found_in(&text[para_start..end]) {
                        ranges.push((para_start, end));
                    }
                    para_start = lines.get(k).map_or(text.len(), |l| l.0 + l.1.len());
                }
                k += 1;
            }
        }
        BusinessZones { ranges }
    }

    /// Is byte offset `pos` inside an organisation's zone?
    pub fn contains(&self, pos: usize) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= pos && pos < b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let f = crate::rules::RuleSource::embedded()
            .load("personal_data.toml")
            .unwrap();
        Settings::load(&f).unwrap()
    }

    fn school() -> KeywordSet {
        KeywordSet::new(&["Hillcrest Academy".to_string()]).unwrap()
    }

    #[test]
    fn company_signature_is_a_zone() {
        let s = settings();
        let text = "Please find the quote attached.\n\nKind regards,\n\nPriya Shah\nNorthern Minibus Hire Ltd\n\
                    9 Canal Street, Wakefield WF1 2AB\nTel: 01924 496000\n";
        let z = BusinessZones::find(text, &s, &school());
        assert!(z.contains(text.find("WF1").unwrap()));
        assert!(!z.contains(text.find("quote").unwrap()));
    }

    #[test]
    fn staff_signature_with_school_name_is_a_zone() {
        let s = settings();
        let text = "See you then.\n\nThanks,\nJo\nHillcrest Academy\nMobile: 07700 900111\n";
        let z = BusinessZones::find(text, &s, &school());
        assert!(z.contains(text.find("07700").unwrap()));
    }

    #[test]
    fn parent_sign_off_is_not_a_zone() {
        let s = settings();
        let text =
            "Our new address is 12 Oak Avenue, Leeds LS17 6NJ.\n\nThanks,\nChloe\n07700 900364\n";
        let z = BusinessZones::find(text, &s, &school());
        assert!(!z.contains(text.find("LS17").unwrap()));
        assert!(!z.contains(text.find("07700").unwrap()));
    }

    #[test]
    fn zone_stops_at_a_forwarded_message() {
        let s = settings();
        let text = "Thanks,\nJo Smith\nHead of Year 9\n\n-----Original Message-----\nFrom: parent\n\
                    My new address is 3 Elm Road, York YO24 1AB\n";
        let z = BusinessZones::find(text, &s, &school());
        assert!(z.contains(text.find("Head of").unwrap()));
        assert!(!z.contains(text.find("YO24").unwrap()));
    }

    #[test]
    fn registered_office_paragraph_is_a_zone() {
        let s = settings();
        let text = "INVOICE 1234\n\nAcme Coaches\n4 Mill Road, Leeds LS1 1AA\nVAT Reg 123 4567 89\n\nTotal due: £120\n";
        let z = BusinessZones::find(text, &s, &school());
        assert!(z.contains(text.find("LS1").unwrap()));
        assert!(!z.contains(text.find("Total").unwrap()));
    }

    #[test]
    fn long_thank_you_sentence_is_not_a_sign_off() {
        assert!(!is_signoff(
            "Thanks for your help keeping everyone safe at lunchtime.",
            &settings().signoffs
        ));
        assert!(is_signoff("Kind regards,", &settings().signoffs));
        assert!(is_signoff("Thanks, Jo", &settings().signoffs));
        assert!(is_signoff("-- ", &settings().signoffs));
    }
}
