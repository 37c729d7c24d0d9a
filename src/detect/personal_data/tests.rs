//! Behaviour tests for the personal_data detector: what a school would see flagged,
//! and the traps that must stay clean. All people, numbers and addresses are invented
//! (numbers are generated to pass or fail their checks; phone numbers are Ofcom
//! drama ranges).

use super::*;
use crate::config::Config;
use crate::message::{Encryption, Envelope, ScannedMessage, Table, TextSegment};
use crate::sender::{SchoolDomains, identify};
use proptest::prelude::*;

const CONFIG: &str = r#"
[school]
name = "Hillcrest Academy"
staff_domains = ["hillcrest.example.sch.uk"]
addresses = ["Beacon Lane, Ridgeford, Leeds LS29 8QT"]
postcodes = ["LS29 8QT"]
phones = ["0113 496 0500"]
"#;

/// Built once: compiling the detector per proptest case would dominate the run time.
fn detector() -> &'static (PersonalData, Config) {
    static D: std::sync::OnceLock<(PersonalData, Config)> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let config = Config::parse(CONFIG, "test.toml").unwrap();
        let d = PersonalData::new(&config, &RuleSource::embedded()).unwrap();
        (d, config)
    })
}

fn seg(location: &str, text: &str) -> TextSegment {
    TextSegment {
        location: location.into(),
        source: TextSource::Body,
        text: text.into(),
        table: None,
    }
}

fn sheet(location: &str, csv: &str) -> TextSegment {
    let rows: Vec<Vec<String>> = csv
        .lines()
        .map(|l| l.split(',').map(|c| c.trim().to_string()).collect())
        .collect();
    TextSegment {
        location: location.into(),
        source: TextSource::Attachment,
        text: csv.replace(',', "\t"),
        table: Some(Table { rows }),
    }
}

fn run_segments(texts: Vec<TextSegment>, encrypted: Option<Encryption>) -> Vec<Finding> {
    let (d, config) = detector();
    let message = ScannedMessage {
        texts,
        encrypted,
        ..ScannedMessage::default()
    };
    let envelope = Envelope::default();
    let domains = SchoolDomains::new(config);
    let identity = identify(config, &domains, &envelope, &message);
    let ctx = ScanContext {
        envelope: &envelope,
        message: &message,
        identity: &identity,
        domains: &domains,
        config,
    };
    let mut out = Vec::new();
    d.inspect(&ctx, &mut out).unwrap();
    out
}

fn run(text: &str) -> Vec<Finding> {
    run_segments(vec![seg("body", text)], None)
}

fn rules(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.rule.as_str()).collect()
}

fn only(text: &str, rule: &str) -> Finding {
    let f = run(text);
    assert_eq!(rules(&f), [rule], "{text}\n{f:#?}");
    f.into_iter().next().unwrap()
}

fn clean(text: &str) {
    let f = run(text);
    assert!(f.is_empty(), "expected nothing for {text:?}, got {f:#?}");
}

// ---- NI numbers -------------------------------------------------------------------

#[test]
fn ni_number_with_context_is_found_and_masked() {
    let f = only(
        "Please add Tom to payroll.\nNational Insurance number: JG 10 37 59 A\nThanks",
        "personal_data/ni_number",
    );
    assert_eq!(f.evidence, "NI number JG10****A");
    assert!(!f.evidence.contains("103759"));
    assert_eq!(f.severity, Severity::Medium);
    assert!(f.confidence > 0.9);
}

#[test]
fn bare_ni_number_counts_with_lower_confidence() {
    let f = only(
        "His number is CE 00 00 00 D if you need it.",
        "personal_data/ni_number",
    );
    assert!(f.confidence < 0.9);
}

#[test]
fn ni_shaped_reference_is_clean() {
    clean("Booking ref: JG103759A, please quote it when you call.");
}

#[test]
fn ni_shaped_codes_with_invalid_prefix_or_suffix_are_clean() {
    clean("Order codes: TN123456A, QQ123456E, BG123456A, ZZ123456B, AO123456C.");
    clean("Part number ab123456c from the catalogue."); // lower case, no context
}

// ---- NHS numbers and ULNs ---------------------------------------------------------

#[test]
fn nhs_number_needs_context() {
    only("NHS number: 434 771 2782", "personal_data/nhs_number");
    only("Her NHS no. is 4423938499.", "personal_data/nhs_number");
    // The same valid number without context is a reference of some kind.
    clean("Your parcel with tracking number 4347712782 will arrive today.");
    clean("Meeting ID 434 771 2782, passcode 1234");
}

#[test]
fn nhs_number_failing_mod11_is_clean_even_with_context() {
    clean("NHS number: 434 771 2783");
}

#[test]
fn isbn10_passes_mod11_but_is_not_an_nhs_number() {
    // Every digit-only ISBN-10 passes the NHS check: context decides.
    assert!(validators::nhs_number("0-306-40615-2"));
    clean("Please order 30 copies (ISBN 0-306-40615-2) and 30 of ISBN 978-0-306-40615-7.");
}

#[test]
fn uln_with_context() {
    let f = only(
        "Further to your request, her Unique Learner Number is 3132480060.",
        "personal_data/uln",
    );
    assert_eq!(f.evidence, "ULN 3132*****0");
    clean("Invoice 3132480060 is now overdue.");
}

#[test]
fn many_nhs_numbers_in_a_list_are_one_high_finding() {
    let nums = [
        "434 771 2782",
        "442 393 8499",
        "409 740 2358",
        "406 642 3868",
        "459 771 4383",
        "460 598 5840",
    ];
    let mut text = String::from("NHS numbers for the flu clinic:\n");
    for n in nums {
        text.push_str(&format!("- {n}\n"));
    }
    let f = only(&text, "personal_data/nhs_number");
    assert_eq!(f.count, 6);
    assert_eq!(f.severity, Severity::High);
    assert!(
        f.evidence.starts_with("6 NHS numbers, e.g. 434"),
        "{}",
        f.evidence
    );
}

#[test]
fn same_number_in_plain_and_html_bodies_counts_once_per_location() {
    let f = run_segments(
        vec![
            seg("body", "NHS number: 434 771 2782"),
            seg("body", "NHS number: 434 771 2782"),
        ],
        None,
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].count, 1);
}

// ---- UPNs -------------------------------------------------------------------------

#[test]
fn upn_found_with_and_without_context() {
    let f = only(
        "Their UPN is L947636260719; the CTF is uploaded.",
        "personal_data/upn",
    );
    assert!(f.confidence > 0.9);
    let f = only(
        "Transfer file for F685072439847 attached.",
        "personal_data/upn",
    );
    assert!(f.confidence < 0.9);
}

#[test]
fn upn_with_wrong_check_letter_or_as_order_reference_is_clean() {
    clean("UPN: A947636260719"); // wrong check letter
    clean("Your order reference is Z957024504972."); // valid shape, but an order reference
}

// ---- Payment cards ----------------------------------------------------------------

#[test]
fn card_number_with_context() {
    let f = only(
        "Please take it from my card: 4682 8064 4587 1921, expiry 09/27.",
        "personal_data/payment_card",
    );
    assert_eq!(f.evidence, "payment card number 4682***********1");
    // Card grouping alone is enough for a Luhn-valid Visa number.
    only("4348-2150-9587-9067", "personal_data/payment_card");
}

#[test]
fn card_followed_by_expiry_digits_is_still_found() {
    only(
        "Card 4802 6372 4776 9269 07 28",
        "personal_data/payment_card",
    );
}

#[test]
fn order_references_and_luhn_failures_are_clean() {
    // Luhn-valid but no card issuer starts with 8.
    clean("Thank you for your order. Your order reference is 8264 5773 7373 7627.");
    // Visa prefix but fails Luhn.
    clean("Card number 4831 4704 0998 2812");
    // Luhn-valid Visa-shaped number as an order reference, no card words.
    clean("Order reference 4348 2150 9587 9067, delivery in 5 days.");
    // Sixteen bare digits without context or grouping.
    clean("Ref 4348215095879067");
}

// ---- Dates of birth -----------------------------------------------------------------

#[test]
fn dob_in_many_formats() {
    for text in [
        "Details: Maya Osei, date of birth 10/10/2009, previous school St Anne's.",
        "DOB: 3rd May 2011",
        "D.O.B. 2011-05-03",
        "She was born on 14 February 2012 in Leeds.",
        "Jo Reid (DOB 07/06/10) will start on Monday.",
        "Date of birth:\n21.11.2012",
        "12/01/2013 (DOB)",
        "Birthday: March 3, 2011",
    ] {
        only(text, "personal_data/date_of_birth");
    }
}

#[test]
fn dob_evidence_keeps_only_the_year() {
    let f = only("DOB: 10/10/2009", "personal_data/date_of_birth");
    assert_eq!(f.evidence, "date of birth **/**/2009");
}

#[test]
fn empty_dob_field_and_event_dates_are_clean() {
    clean(
        "Date of visit: 17/09/2025. Please return the form below by 12/09/2025.\n\n\
         Child's name: ____________________\nDate of birth: ___ / ___ / ______\nForm: ______\n",
    );
    clean("Date of birth: ____________\nDate of trip: 03/04/2024\nReturn by: 01/03/2024");
    clean("Parents' evening is on 14/11/2024 and reports go home on 20/12/2024.");
    clean("Happy birthday to the school! We were founded on 01/09/1965.");
}

#[test]
fn impossible_and_future_dates_are_not_dobs() {
    clean("DOB: 31/02/2010");
    clean("DOB: 01/01/2999");
}

#[test]
fn dob_column_in_a_pasted_table() {
    // HTML tables rendered to text without cell separators still keep the
    // "Date of birth" heading over a run of old dates.
    let text = "Here are the pupils for the course:\nName Form Date of birth \
                Maya Osei 8C 21/11/2012 Theo Reid 12 06/03/2009 Isla Lam 11B 22/02/2010 \
                Arlo Quinn 10C 25/09/2010\nThanks";
    let f = only(text, "personal_data/date_of_birth");
    assert_eq!(f.count, 4);
}

#[test]
fn more_date_formats() {
    only("DOB 2011/05/03", "personal_data/date_of_birth");
    // US order is recognised when the month cannot be a month.
    only("Date of birth: 05/23/2011", "personal_data/date_of_birth");
    clean("Date of birth: 35/23/2011");
}

#[test]
fn business_word_between_keyword_and_number_wins() {
    clean("Harrogate NHS Foundation Trust, invoice 434 771 2782, due in 30 days.");
    only(
        "Invoice query: her NHS number is 434 771 2782.",
        "personal_data/nhs_number",
    );
    clean("Learner services order ref 3132480060");
}

// ---- Home addresses ---------------------------------------------------------------

#[test]
fn home_address_with_street_and_postcode() {
    let f = only(
        "Please update our records - our new address is 17 Larch Grove, Wakefield WF2 7QB.",
        "personal_data/home_address",
    );
    assert!(!f.evidence.contains("Larch"));
    assert!(!f.evidence.contains("WF2 7QB"));
    only(
        "She lives at Rose Cottage, Fell Side, Otley LS21 3HN",
        "personal_data/home_address",
    );
    only(
        "Flat 4\n22 Kings Road\nHarrogate\nHG1 5JW",
        "personal_data/home_address",
    );
}

#[test]
fn school_address_and_switchboard_are_clean() {
    clean(
        "Thanks,\n\nSam Green\nReception\nHillcrest Academy\nBeacon Lane, Ridgeford, Leeds LS29 8QT\n\
         Tel: 0113 496 0500",
    );
    // The school's postcode is excluded even in a sentence.
    clean("Deliveries to 1 Beacon Lane, Leeds LS29 8QT please.");
}

#[test]
fn business_signature_address_and_phone_are_clean() {
    clean(
        "Please find our quote attached.\n\nKind regards,\n\nPriya Shah\nNorthern Minibus Hire Ltd\n\
         9 Canal Street, Wakefield WF1 2AB\nMobile: 07700 900456\n",
    );
    clean(
        "Hello,\n\nYour order has shipped.\n\nBest wishes,\nTom Hale\nBrightpath Educational Supplies\n\
         12 Commerce Way, Leeds LS11 5QR\nTel: 0113 496 0123\n",
    );
    clean(
        "INVOICE 4471\n\nGreenfield Coaches\n4 Mill Road, Leeds LS1 1AA\nVAT Reg 123 4567 89\n\n\
         Amount due: £320.00\n",
    );
}

#[test]
fn signature_with_contact_labels_is_an_organisation() {
    // No company word, but a contact block (Tel, e-mail) after the sign-off.
    clean(
        "Thanks for your order.\n\nBest wishes,\nSam Patel\nPatel & Daughter\n\
         27 Market Street, Otley LS21 3AF\nTel: 01943 496000 | sam@patel.example.co.uk\n",
    );
    // A parent's address in the body is still found.
    only(
        "Hello, we have moved to 27 Birch Close, Otley LS21 3AF.\n\nThanks,\nSam",
        "personal_data/home_address",
    );
}

#[test]
fn venue_and_postcode_without_street_are_clean() {
    clean("The trip is to Fountains Hall, Ripon HG4 3DY. The coach leaves at 8.45am.");
    clean("The match is held at 12 Station Road, Leeds LS1 4DY (venue: Leeds Sports Centre).");
    clean("Parking for parents' evening is at 3 Mill Lane, Leeds LS2 7AB.");
    clean(
        "The Year 7 disco is on Friday at the Civic Hall, 2 Market Place, Otley LS21 3AQ, 6-8pm.",
    );
    clean("Otley LS21 3AQ hosts the gala: 2 Market Place, Otley LS21 3AQ. Tickets £3.");
    only(
        "Please update his address to 4 Church Lane, Leeds LS2 7AB.",
        "personal_data/home_address",
    );
}

#[test]
fn parent_address_in_forwarded_part_is_found() {
    let f = run_segments(
        vec![
            seg(
                "body",
                "FYI - can you update the record?\n\nThanks,\nJo\nOffice Manager\nHillcrest Academy",
            ),
            seg(
                "message:fwd.eml/body",
                "Hi,\nFrom Monday our new address is 85 Elm Lane, Harrogate HG2 6TP.\nThanks, Rhys",
            ),
        ],
        None,
    );
    assert_eq!(rules(&f), ["personal_data/home_address"]);
    assert_eq!(f[0].location, "message:fwd.eml/body");
}

// ---- Phone numbers ----------------------------------------------------------------

#[test]
fn personal_mobile_with_context() {
    let f = only(
        "Please update my contact number for Ava to 07700 900364.",
        "personal_data/phone_number",
    );
    assert_eq!(f.evidence, "personal phone number 0770******4");
    only(
        "Mum's mobile: +44 7700 900123",
        "personal_data/phone_number",
    );
    only(
        "Call me on 07700900987 after 6.",
        "personal_data/phone_number",
    );
    only(
        "Emergency contact (grandma, home): 0113 496 0871",
        "personal_data/phone_number",
    );
}

#[test]
fn more_phone_contexts() {
    only(
        "Home: 0113 496 0872, Work: 0113 496 0500",
        "personal_data/phone_number",
    );
    only(
        "Dad - 07700 900124 (after 5pm)",
        "personal_data/phone_number",
    );
    only(
        "You can reach me on 07700900125.",
        "personal_data/phone_number",
    );
}

#[test]
fn landline_needs_personal_context() {
    // A landline in running text with only "Tel" is an organisation's.
    clean("For bookings: Tel 0113 496 0222 (box office).");
}

#[test]
fn school_and_freephone_numbers_are_clean() {
    clean("Please ring the school office on 0113 496 0500 if your child is absent.");
    // A direct line in the school's number block is the school's too.
    clean("Please call me on my direct line, 0113 496 0531, after 3pm.");
    clean("Call our helpline on 0808 157 0107, lines open 9-5.");
}

// ---- Tables and pupil lists ---------------------------------------------------------

const PUPILS: [&str; 7] = [
    "Maya Osei",
    "Theo Reid",
    "Isla Lam",
    "Arlo Quinn",
    "Freya Nowak",
    "George Doyle",
    "Olivia Barker",
];

#[test]
fn pupil_list_without_identifiers() {
    let mut csv = String::from("Surname,Forename,Form,SEN,FSM\n");
    for p in PUPILS {
        let (f, l) = p.split_once(' ').unwrap();
        csv.push_str(&format!("{l},{f},9B,K,N\n"));
    }
    let f = run_segments(
        vec![sheet("attachment:SEN register.xlsx#Sheet1", &csv)],
        None,
    );
    assert_eq!(rules(&f), ["personal_data/pupil_list"]);
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(f[0].count, 7);
    assert!(
        f[0].evidence.contains("Surname, Forename, Form, SEN, FSM"),
        "{}",
        f[0].evidence
    );
    assert!(!f[0].evidence.contains("Osei"));
}

#[test]
fn pupil_list_with_nhs_column_reports_both() {
    let nhs = [
        "434 771 2782",
        "442 393 8499",
        "409 740 2358",
        "406 642 3868",
        "459 771 4383",
        "460 598 5840",
        "408 789 1151",
    ];
    let mut csv = String::from("Name,Form,NHS Number,Medical\n");
    for (p, n) in PUPILS.iter().zip(nhs) {
        csv.push_str(&format!("{p},10D,{n},Asthma\n"));
    }
    let f = run_segments(vec![sheet("attachment:Medical.csv", &csv)], None);
    let mut r = rules(&f);
    r.sort();
    assert_eq!(r, ["personal_data/nhs_number", "personal_data/pupil_list"]);
    let nhs = f.iter().find(|f| f.rule.ends_with("nhs_number")).unwrap();
    assert_eq!(
        nhs.count, 7,
        "the column header gives every row its context"
    );
    assert_eq!(nhs.severity, Severity::High);
}

#[test]
fn contact_sheet_columns_give_context() {
    let mut csv = String::from("Pupil,Form,Parent mobile,Home address\n");
    for (i, p) in PUPILS.iter().enumerate() {
        csv.push_str(&format!(
            "{p},7A,07700 9001{i:02},\"{} Oak Avenue LS17 6NJ\"\n",
            i + 2
        ));
    }
    // (a naive split; the address cell keeps its quotes, which is fine here)
    let f = run_segments(vec![sheet("attachment:trip.zip/Trip.csv", &csv)], None);
    let mut r = rules(&f);
    r.sort();
    assert_eq!(
        r,
        [
            "personal_data/home_address",
            "personal_data/phone_number",
            "personal_data/pupil_list"
        ]
    );
}

#[test]
fn phone_typed_as_a_number_in_a_sheet() {
    let mut csv = String::from("Name,Parent mobile\n");
    csv.push_str("Maya Osei,7700900123\n");
    let f = run_segments(vec![sheet("attachment:contacts.xlsx#Sheet1", &csv)], None);
    assert_eq!(rules(&f), ["personal_data/phone_number"]);
    assert_eq!(f[0].evidence, "personal phone number 0770******3");
}

#[test]
fn supplier_contact_sheet_is_not_personal() {
    let csv = "Company,Service,Phone,Address\n\
               Dales Catering,Lunches,07700 900501,\"4 Mill Road, York YO26 7NH\"\n\
               Acorn Print,Printing,07700 900502,\"9 Canal Street, Leeds LS1 2AB\"\n";
    let f = run_segments(vec![sheet("attachment:suppliers.csv", csv)], None);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn pupil_list_pasted_as_text_table() {
    let mut text = String::from("Class list below.\n\nName\tForm\tTutor group\n");
    for p in PUPILS {
        text.push_str(&format!("{p}\t8\t8R\n"));
    }
    let f = run(&text);
    assert_eq!(rules(&f), ["personal_data/pupil_list"]);
}

#[test]
fn pupil_list_from_a_word_table_one_cell_per_line() {
    let mut text = String::from("Reading group\nSurname\nForename\nForm\n");
    for p in PUPILS {
        let (f, l) = p.split_once(' ').unwrap();
        text.push_str(&format!("{l}\n{f}\n7C\n"));
    }
    text.push_str(
        "Please return by Friday with any changes you would like us to make to the groups.\n",
    );
    let f = run_segments(vec![seg("attachment:groups.docx", &text)], None);
    assert_eq!(rules(&f), ["personal_data/pupil_list"]);
    assert_eq!(f[0].count, 7);
}

#[test]
fn pupil_list_from_a_pdf_table_with_single_spaces() {
    let mut text = String::from("Swimming groups\nName Form Tutor group\n");
    for p in PUPILS {
        text.push_str(&format!("{p} 8C Mr Hale\n"));
    }
    let f = run_segments(vec![seg("attachment:groups.pdf", &text)], None);
    assert_eq!(rules(&f), ["personal_data/pupil_list"]);
    // A rota laid out the same way is staff.
    let mut rota = String::from("Name Monday Tuesday\n");
    for p in [
        "Mr Barker",
        "Mrs Quinn",
        "Dr Osei",
        "Ms Lam",
        "Miss Doyle",
        "Mr Reid",
    ] {
        rota.push_str(&format!("{p} Canteen Gate\n"));
    }
    assert!(run_segments(vec![seg("attachment:rota.pdf", &rota)], None).is_empty());
}

#[test]
fn html_table_with_empty_cells_is_still_a_pupil_list() {
    // The HTML extractor separates cells with tabs and collapses empty ones.
    let mut text = String::from("Hi,\nName\tForm\tAllergies\n");
    for (i, p) in PUPILS.iter().enumerate() {
        if i % 2 == 0 {
            text.push_str(&format!("{p}\t9C\tNuts\n"));
        } else {
            text.push_str(&format!("{p}\t9C\n"));
        }
    }
    let f = run_segments(vec![seg("body:html", &text)], None);
    assert_eq!(rules(&f), ["personal_data/pupil_list"]);
}

#[test]
fn staff_rota_stock_list_and_timetable_are_clean() {
    let rota = "Name,Monday,Tuesday,Wednesday,Thursday,Friday\nMr Barker,Canteen,-,Gate,Field,Library\n\
                Mrs Quinn,Field,Gate,-,-,Canteen\nDr Osei,-,Library,Canteen,Gate,-\nMs Lam,Gate,-,Field,Library,-\n\
                Miss Doyle,Library,Canteen,-,-,Gate\nMr Reid,-,Field,Library,Canteen,Field\n";
    let stock = "Item,Qty,Unit cost\nGlue sticks,300,0.40\nRulers,200,0.20\nA4 paper,50,3.10\n\
                 Scissors,60,1.10\nStaplers,12,4.00\nWhiteboard pens,500,0.55\n";
    let exams = "Date,Session,Subject,Paper,Duration,Room\n07/05,AM,History,Paper 2,1h 45m,E7\n\
                 03/05,PM,Music,Paper 1,2h 30m,Sports hall\n28/02,AM,Science,Paper 2,1h 15m,Main hall\n\
                 13/01,AM,English,Paper 3,2h 30m,E7\n20/04,AM,PE,Paper 1,1h 15m,Main hall\n";
    let f = run_segments(
        vec![
            sheet("attachment:Duty rota.xlsx#Sheet1", rota),
            sheet("attachment:Stock.xlsx#Sheet1", stock),
            sheet("attachment:Exams.xlsx#Sheet1", exams),
        ],
        None,
    );
    assert!(f.is_empty(), "{f:#?}");
}

// ---- Encryption and ordinary mail -------------------------------------------------

#[test]
fn encrypted_message_is_never_reported() {
    let f = run_segments(
        vec![seg("body", "NHS number: 434 771 2782, DOB: 10/10/2009")],
        Some(Encryption::Smime),
    );
    assert!(f.is_empty());
}

#[test]
fn ordinary_school_mail_is_clean() {
    clean(
        "Dear Parents and Carers,\n\nYear 9 Parents' Evening is on Friday 31 October from 4.00pm \
         to 7.00pm. The cost of the trip is £103.50, payable by 04/11/2025. Please call the office \
         on 0113 496 0500 with any questions. Room 12, Block B.\n\nKind regards,\n\nA. Head\n\
         Headteacher\nHillcrest Academy\nBeacon Lane, Ridgeford, Leeds LS29 8QT\n",
    );
    clean("u coming to football at lunch? we need 2 more for 5 a side, meet by the 3G pitch");
}

#[test]
fn header_segments_are_ignored() {
    let mut s = seg("header:from", "NHS number 434 771 2782");
    s.source = TextSource::Header;
    assert!(run_segments(vec![s], None).is_empty());
}

// ---- Robustness ---------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn detector_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let _ = run(&text);
    }

    #[test]
    fn detector_never_panics_on_digit_heavy_text(
        text in "[0-9A-Za-z £+()/.:,\\-\n\t|_]{0,300}"
    ) {
        let _ = run(&format!("NHS DOB card mobile address UPN ULN {text}"));
    }

    #[test]
    fn detector_never_panics_on_arbitrary_tables(
        rows in proptest::collection::vec(proptest::collection::vec("\\PC{0,12}", 0..6), 0..10)
    ) {
        let seg = TextSegment {
            location: "attachment:x.csv".into(),
            source: TextSource::Attachment,
            text: String::new(),
            table: Some(Table { rows }),
        };
        let _ = run_segments(vec![seg], None);
    }

    #[test]
    fn masked_evidence_never_holds_the_full_number(i in 0usize..12) {
        let nums = ["4347712782", "4423938499", "4097402358", "4066423868", "4597714383",
            "4605985840", "4087891151", "4489846746", "4289845088", "4882535017", "4530098818",
            "4419779047"];
        let f = run(&format!("NHS number {}", nums[i]));
        prop_assert_eq!(f.len(), 1);
        prop_assert!(!f[0].evidence.contains(nums[i]));
    }
}

/// Dev aid: print the text segments the extractor gives for the messages named in
/// `PD_DUMP` (comma-separated paths) and what this detector finds in them. Run with
/// `PD_DUMP=a.eml,b.eml cargo test --lib pd_dump -- --ignored --nocapture`.
#[test]
#[ignore]
fn pd_dump() {
    let Ok(list) = std::env::var("PD_DUMP") else {
        return;
    };
    let ex = crate::message::Extractor::new(
        crate::config::Limits::default(),
        crate::message::PdfMode::InProcess,
    );
    for path in list.split(',') {
        let raw = std::fs::read(path).unwrap();
        let m = ex.extract(&raw);
        println!(
            "===== {path} (encrypted: {:?}, fwd depth {})",
            m.encrypted, m.forwarded_depth
        );
        for s in &m.texts {
            println!(
                "--- {} {:?} table={:?}",
                s.location,
                s.source,
                s.table.as_ref().map(|t| t.rows.len())
            );
            println!("{}", s.text);
        }
        let start = std::time::Instant::now();
        let found = run_segments(m.texts.clone(), m.encrypted);
        println!("--- findings ({:?}): {found:#?}", start.elapsed());
        let cl = crate::detect::chain_letter::ChainLetter::new(&RuleSource::embedded()).unwrap();
        let (_, config) = detector();
        let envelope = Envelope::default();
        let domains = SchoolDomains::new(config);
        let identity = identify(config, &domains, &envelope, &m);
        let ctx = ScanContext {
            envelope: &envelope,
            message: &m,
            identity: &identity,
            domains: &domains,
            config,
        };
        let start = std::time::Instant::now();
        let mut out = Vec::new();
        cl.inspect(&ctx, &mut out).unwrap();
        println!("--- chain letter ({:?}): {out:#?}", start.elapsed());
    }
}
