//! Behaviour tests for the chain_letter detector: chain letters of every family are
//! caught, wherever they hide; ordinary forwards and school wording stay clean.
//! The texts are written for these tests.

use super::*;
use crate::config::Config;
use crate::message::{Envelope, HeaderFacts, Mailbox, ScannedMessage, TextSegment};
use crate::sender::{SchoolDomains, identify};
use proptest::prelude::*;
use std::borrow::Cow;

/// Built once: compiling the rule set per proptest case would dominate the run time.
fn detector() -> &'static ChainLetter {
    static D: std::sync::OnceLock<ChainLetter> = std::sync::OnceLock::new();
    D.get_or_init(|| ChainLetter::new(&RuleSource::embedded()).unwrap())
}

struct Msg {
    subject: &'static str,
    texts: Vec<(&'static str, TextSource, String)>,
    forwarded_depth: usize,
    recipients: usize,
}

fn msg(subject: &'static str, body: &str) -> Msg {
    Msg {
        subject,
        texts: vec![("body", TextSource::Body, body.to_string())],
        forwarded_depth: 0,
        recipients: 1,
    }
}

fn scanned(m: &Msg) -> ScannedMessage {
    let mut texts = vec![TextSegment {
        location: "subject".into(),
        source: TextSource::Subject,
        text: m.subject.into(),
        table: None,
    }];
    for (loc, source, text) in &m.texts {
        texts.push(TextSegment {
            location: (*loc).into(),
            source: *source,
            text: text.clone(),
            table: None,
        });
    }
    ScannedMessage {
        headers: HeaderFacts {
            subject: Some(m.subject.into()),
            to: (0..m.recipients)
                .map(|i| Mailbox {
                    name: None,
                    address: Some(format!("p{i}@example.org")),
                })
                .collect(),
            ..HeaderFacts::default()
        },
        texts,
        forwarded_depth: m.forwarded_depth,
        ..ScannedMessage::default()
    }
}

fn with_ctx<T>(m: &Msg, f: impl FnOnce(&ScanContext<'_>) -> T) -> T {
    let config = Config::default();
    let message = scanned(m);
    let envelope = Envelope::default();
    let domains = SchoolDomains::new(&config);
    let identity = identify(&config, &domains, &envelope, &message);
    let ctx = ScanContext {
        envelope: &envelope,
        message: &message,
        identity: &identity,
        domains: &domains,
        config: &config,
    };
    f(&ctx)
}

fn findings(m: &Msg) -> Vec<Finding> {
    let d = detector();
    with_ctx(m, |ctx| {
        let mut out = Vec::new();
        d.inspect(ctx, &mut out).unwrap();
        out
    })
}

fn score(m: &Msg) -> Score {
    let d = detector();
    with_ctx(m, |ctx| d.score(ctx))
}

fn flagged(m: &Msg) -> Finding {
    let f = findings(m);
    assert_eq!(f.len(), 1, "expected a chain letter: {:#?}", score(m));
    assert_eq!(f[0].rule, "chain_letter/score");
    f.into_iter().next().unwrap()
}

fn clean(m: &Msg) {
    let f = findings(m);
    assert!(f.is_empty(), "expected clean, got {f:#?} / {:#?}", score(m));
}

// ---- The pattern language ------------------------------------------------------------

#[test]
fn normalise_flattens_punctuation_quotes_and_case() {
    assert_eq!(
        normalise("Forward THIS,\n> to 10 people!!"),
        "forward this to 10 people "
    );
    assert_eq!(normalise("Don’t break it"), "don't break it ");
    assert_eq!(normalise("£4,300 or £224.50."), "£4300 or £224.50 ");
    assert_eq!(normalise(""), "");
}

#[test]
fn pattern_syntax() {
    let m = |p: &str, t: &str| {
        BytesRegex::new(&compile_pattern(p).unwrap())
            .unwrap()
            .is_match(normalise(t).as_bytes())
    };
    assert!(m("forward this to {n} people", "Forward this to 10 people"));
    assert!(m(
        "forward this to {n} people",
        "forward this to ten people"
    ));
    assert!(m(
        "forward this to {n} people",
        "forward this to a hundred people"
    ));
    assert!(!m(
        "forward this to {n} people",
        "forward this to your people"
    ));
    assert!(m(
        "donat* ** for every (forward|person you)",
        "donates 5p to the appeal for every person you"
    ));
    assert!(m("don't break the chain", "dont break the chain"));
    assert!(m("(forward|send) (on )?to", "send on to"));
    assert!(m("(forward|send) (on )?to", "send to"));
    assert!(m("{money} per forward", "£245 per forward"));
    assert!(m("{money} per forward", "5p per forward"));
    assert!(!m("bad luck", "badluck"), "whole words only");
    assert!(!m("luck", "bad luckily"));
    assert!(m("make a * wish", "make a really big wish"));
}

#[test]
fn bad_patterns_and_settings_name_the_line() {
    for (text, want) in [
        ("5 (a|b\n", "chain_letter.txt:1"),
        ("5 a)\n", "chain_letter.txt:1"),
        ("x forward this\n", "chain_letter.txt:1"),
        ("# c\n5 ok\nset threshold banana\n", "chain_letter.txt:3"),
        ("5 ok\nset colour 3\n", "chain_letter.txt:2"),
        ("5 {x}\n", "chain_letter.txt:1"),
    ] {
        let f = RuleFile {
            origin: "rules/chain_letter.txt".into(),
            text: Cow::Owned(text.into()),
        };
        let e = ChainLetter::from_file(&f).err().expect(text).to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn gate_skips_messages_that_ask_nothing_to_be_passed_on() {
    let with_gate = detector();
    assert!(with_gate.gate.is_some());
    // Weak phrases only, and no word about passing anything on: not even scored.
    let m = msg(
        "Birthday",
        "Make a wish! Bad luck about the rain, it's not a joke.",
    );
    assert_eq!(score(&m).phrases, 0);
    // The same rules without the gate score the phrases (and still do not flag them).
    let text = crate::rules::RuleSource::embedded()
        .load("chain_letter.txt")
        .unwrap()
        .text;
    let ungated = RuleFile {
        origin: "test".into(),
        text: Cow::Owned(
            text.lines()
                .filter(|l| !l.starts_with("gate "))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    let d = ChainLetter::from_file(&ungated).unwrap();
    assert!(d.gate.is_none());
}

#[test]
fn shipped_rules_parse_with_documented_settings() {
    let d = detector();
    assert_eq!(d.scoring().threshold, 10);
    assert!(d.phrases.len() > 40);
}

// ---- Chain letter families ------------------------------------------------------------

#[test]
fn forward_to_n_people_or_bad_luck() {
    let f = flagged(&msg(
        "Fwd: READ THIS",
        "Send this on to 12 friends before midnight or you will have bad luck for 3 years. \
         Don't break the chain!",
    ));
    assert!(f.evidence.contains("break the chain"), "{}", f.evidence);
    // A phrase inside a longer one already shown is not repeated.
    assert_eq!(
        f.evidence.matches("break the chain").count(),
        1,
        "{}",
        f.evidence
    );
    assert_eq!(f.location, "body");
}

#[test]
fn sympathy_hoax_with_donation_per_forward() {
    flagged(&msg(
        "please help",
        "Baby Josh is 3 and has a rare illness. The family can't afford the treatment. \
         A big phone company will donate 10p to his hospital for every person you send this to. \
         Please send it to everyone you know!",
    ));
}

#[test]
fn virus_hoax() {
    flagged(&msg(
        "URGENT virus warning",
        "If you get an email called 'Dancing Penguins' do not open it! It wipes everything on your \
         hard drive. This was confirmed by McAfee this morning. Warn all your friends and send this \
         to everyone in your address book.",
    ));
}

#[test]
fn money_for_forwarding() {
    flagged(&msg(
        "FW: free money",
        "Apple is giving away its fortune! They will pay you $50 for every friend you forward this \
         email to. I got a cheque for $800 last week.",
    ));
}

#[test]
fn wish_chain() {
    flagged(&msg(
        "Fwd: make a wish",
        "Close your eyes and make a wish. Now pass this on to 9 people within the next 20 minutes \
         and your wish will come true. Send it back to me too if you're my friend!",
    ));
}

#[test]
fn copy_and_paste_chain() {
    flagged(&msg(
        "",
        "Only 3% of people will copy and paste this. 97 people have ignored this already. \
         Copy and paste this into a new email and send it to 10 people.",
    ));
}

#[test]
fn chain_letter_deep_in_a_forward_chain_and_quoted() {
    let body = "lol\n\n-----Original Message-----\nFrom: a\nSubject: FW: FW: luck\n\npass it on\n\n\
                -----Original Message-----\nFrom: b\n\n> > Forward this to 10\n> > people in the next hour \
                or\n> > you'll have bad luck for 5 years!!";
    let s = score(&msg("Fwd: FW: Fwd: luck", body));
    assert!(s.structure > 0, "{s:#?}");
    flagged(&msg("Fwd: FW: Fwd: luck", body));
}

#[test]
fn chain_letter_in_a_forwarded_attachment_or_html() {
    let mut m = msg("see below", "thought you'd like this x");
    m.texts.push((
        "message:fwd.eml/body",
        TextSource::Attachment,
        "For every time this email is forwarded, a charity gets 5p. Don't break the chain!".into(),
    ));
    m.forwarded_depth = 1;
    let f = flagged(&m);
    assert_eq!(f.location, "message:fwd.eml/body");

    let mut h = msg("hi", "");
    h.texts = vec![(
        "body",
        TextSource::Html,
        "WARNING!!! If you receive an email titled \"Free Pizza\" DO NOT open it. It will erase \
         everything on your hard drive. Forward this to everyone you know!!"
            .into(),
    )];
    flagged(&h);
}

#[test]
fn evidence_lists_phrases_and_structure() {
    let mut m = msg(
        "Fwd: Fw: Fwd: lucky",
        "Forward this to 10 people or you will have bad luck for 7 years. This is not a joke.",
    );
    m.recipients = 8;
    let f = flagged(&m);
    assert!(f.evidence.starts_with("score "), "{}", f.evidence);
    assert!(
        f.evidence.contains("forward this to 10 people"),
        "{}",
        f.evidence
    );
    assert!(
        f.evidence.contains("forwarded repeatedly"),
        "{}",
        f.evidence
    );
    assert!(f.evidence.contains("many recipients"), "{}", f.evidence);
}

#[test]
fn phrases_in_both_bodies_count_once() {
    let mut m = msg("x", "make a wish and pass it on");
    m.texts
        .push(("body", TextSource::Html, "Make a wish! Pass it on.".into()));
    assert_eq!(score(&m).phrases, 8);
}

#[test]
fn more_chain_letter_wordings() {
    for (subject, body) in [
        (
            "RE: cute",
            "Send this prayer to 12 friends and you will receive a miracle tomorrow. \
             3 people ignored it and were cursed.",
        ),
        (
            "help Jess",
            "Hi, I am 7 years old and I have cancer. Every time this e-mail is forwarded, a charity \
             will donate 3 cents to my treatment. Please don't delete it.",
        ),
        (
            "Microsoft beta test",
            "When you forward this e-mail to friends, Microsoft will track it. For every person that \
             you send this e-mail to, Microsoft will pay you $245.",
        ),
        (
            "VIRUS!!",
            "If you receive an e-mail with the subject 'Life is beautiful' delete it immediately. \
             Do not open it. It will erase your whole hard drive. Please tell everyone in your contacts.",
        ),
        (
            "aww",
            "Copy and paste this to your status if you know someone with cancer. 93% won't.",
        ),
        (
            "FW: FW: scary",
            "A girl called Clara died in 1995. Forward this to 15 people or she will come to your \
             room tonight. You will have 10 years of bad luck.",
        ),
        (
            "free voucher",
            "Share this with 20 friends and the supermarket will give you a £500 voucher! It's real, \
             for every share they donate 10p to charity.",
        ),
    ] {
        let f = findings(&msg(subject, body));
        assert_eq!(
            f.len(),
            1,
            "missed: {body}\n{:#?}",
            score(&msg(subject, body))
        );
    }
}

#[test]
fn forward_to_n_people_alone_is_not_enough() {
    clean(&msg(
        "Trip volunteers",
        "Please forward this to 2 people who might be interested in helping on the trip.",
    ));
    clean(&msg(
        "FW: Sponsored walk",
        "We will donate £1 for every lap completed. Please share this with other parents.",
    ));
    clean(&msg(
        "Birthday",
        "Don't forget to make a wish when you blow out the candles! Bad luck about the rain.",
    ));
}

// ---- Legitimate mail ----------------------------------------------------------------------

#[test]
fn ordinary_forwards_stay_clean() {
    let mut m = msg(
        "FW: FW: Staff meeting minutes",
        "Hi all, forwarding the minutes from Monday's meeting for those who couldn't make it.\n\n\
         -----Original Message-----\nFrom: Head\n\nMinutes attached.\n\n-----Original Message-----\n\
         From: Clerk\n\nHere are the minutes.",
    );
    m.forwarded_depth = 1;
    m.recipients = 40;
    clean(&m);
    clean(&msg(
        "Fwd: CPD course",
        "Please forward this to your line manager if you would like to attend - it needs their approval.",
    ));
    clean(&msg(
        "Cover",
        "Please forward to all staff before Friday. Thanks!",
    ));
    clean(&msg(
        "Newsletter",
        "Please share this newsletter with other parents who may not be on our mailing list.",
    ));
}

#[test]
fn school_wording_near_chain_phrases_stays_clean() {
    clean(&msg(
        "FW: FW: Make-A-Wish bake sale",
        "We are raising money for Make-A-Wish on Friday. Please pass it on to your child and \
         send the form back to me by Thursday. Bad luck to the U13s on Saturday!",
    ));
    let mut it = msg(
        "FW: FW: Phishing warning",
        "If you receive an email titled 'Invoice overdue' do not open it. Please forward it to the \
         IT helpdesk and delete it. Do not forward it to anyone else.",
    );
    it.forwarded_depth = 1;
    clean(&it);
    clean(&msg(
        "Job advert",
        "We are recruiting a teaching assistant. Please forward this to everyone who might be interested.",
    ));
    clean(&msg(
        "First aid",
        "It only takes a minute to learn CPR and it could save a life. Sign up by Friday.",
    ));
}

// ---- Robustness ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn never_panics(subject in "\\PC{0,60}", body in "\\PC{0,400}") {
        let d = detector();
        let m = Msg { subject: "", texts: vec![("body", TextSource::Body, format!("{subject}\n{body}"))], forwarded_depth: 0, recipients: 2 };
        with_ctx(&m, |ctx| {
            let mut out = Vec::new();
            d.inspect(ctx, &mut out).unwrap();
        });
    }

    #[test]
    fn normalise_is_idempotent(s in "\\PC{0,200}") {
        let once = normalise(&s);
        prop_assert_eq!(normalise(&once), once);
    }
}
