//! Behaviour tests for the profanity detector: what a school would notice. Every text here
//! was written for these tests.

use super::*;
use crate::config::Config;
use crate::message::{Envelope, ScannedMessage, TextSegment, TextSource};
use crate::rules::RulesError;
use crate::sender::{SchoolDomains, identify};
use std::borrow::Cow;
use std::sync::OnceLock;

/// The shipped rules, built once for all tests.
fn shipped() -> &'static Profanity {
    static P: OnceLock<Profanity> = OnceLock::new();
    P.get_or_init(|| Profanity::new(&RuleSource::embedded()).unwrap())
}

/// The tiers hit in `text`, graver first, without repeats.
fn tiers(text: &str) -> Vec<Tier> {
    let mut t: Vec<Tier> = shipped().hits(text).into_iter().map(|h| h.tier).collect();
    t.sort_by(|a, b| b.cmp(a));
    t.dedup();
    t
}

/// The worst tier in `text`, if any.
fn worst(text: &str) -> Option<Tier> {
    tiers(text).first().copied()
}

/// The original slices of the hits in `text`.
fn slices(text: &str) -> Vec<String> {
    shipped()
        .hits(text)
        .into_iter()
        .map(|h| text[h.range].to_string())
        .collect()
}

fn assert_clean(texts: &[&str]) {
    for t in texts {
        let hits = shipped().hits(t);
        assert!(
            hits.is_empty(),
            "{t:?} should be clean but hit {:?}",
            slices(t)
        );
    }
}

fn assert_tier(texts: &[&str], tier: Tier) {
    for t in texts {
        assert_eq!(worst(t), Some(tier), "{t:?}: hits {:?}", slices(t));
    }
}

fn rule_file(name: &str, text: &str) -> RuleFile {
    RuleFile {
        origin: format!("test/{name}"),
        text: Cow::Owned(text.to_string()),
    }
}

fn custom(words: &str, allow: &str) -> Result<Profanity, RulesError> {
    Profanity::from_files(
        &rule_file(PROFANITY_FILE, words),
        &rule_file(ALLOW_FILE, allow),
    )
}

/// Run the detector over a message made of `(location, source, text)` segments.
fn inspect(segments: &[(&str, TextSource, &str)]) -> Vec<Finding> {
    let config = Config::default();
    let message = ScannedMessage {
        texts: segments
            .iter()
            .map(|(location, source, text)| TextSegment {
                location: location.to_string(),
                source: *source,
                text: text.to_string(),
                table: None,
            })
            .collect(),
        ..ScannedMessage::default()
    };
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
    let mut out = Vec::new();
    shipped().inspect(&ctx, &mut out).unwrap();
    out
}

// ------------------------------------------------------------------ tiers and word lists

#[test]
fn shipped_rules_load_into_one_automaton() {
    let p = shipped();
    assert!(p.pattern_count() > 5_000, "{}", p.pattern_count());
    assert!(p.automaton.is_some());
}

#[test]
fn tiers_follow_the_rule_file() {
    assert_eq!(worst("that was bloody annoying"), Some(Tier::Mild));
    assert_eq!(worst("this is shit"), Some(Tier::Medium));
    assert_eq!(worst("fuck this"), Some(Tier::Strong));
    assert_eq!(worst("go home you paki"), Some(Tier::Hate));
    assert_eq!(worst("I'll kill you"), Some(Tier::Threat));
}

#[test]
fn uk_slang_tiers() {
    assert_tier(
        &[
            "you slag",
            "she's a slapper",
            "daft bint",
            "total tosser",
            "bollocks to that",
            "what a munter",
        ],
        Tier::Medium,
    );
    assert_tier(
        &[
            "he's a nonce",
            "what a bellend",
            "absolute knobhead",
            "you wanker",
            "stupid twat",
            "dickhead",
            "you prick",
        ],
        Tier::Strong,
    );
    assert_tier(
        &[
            "you pillock",
            "what a minger",
            "you div",
            "oh sod off",
            "this is crap",
            "bugger",
            "what a plonker",
            "you silly cow",
            "stupid git",
        ],
        Tier::Mild,
    );
}

#[test]
fn us_slang_is_caught() {
    assert_tier(
        &["asshole", "bullshit", "son of a bitch", "you asshat"],
        Tier::Medium,
    );
    assert_tier(
        &["you dumbass", "what a jackass", "douchebag", "scumbag"],
        Tier::Mild,
    );
    assert_tier(&["motherfucker", "mofo", "pussy"], Tier::Strong);
}

#[test]
fn inflections_and_compounds_are_covered() {
    assert_tier(
        &[
            "fucking",
            "fucked",
            "fucker",
            "motherfucking",
            "absofuckinglutely",
            "fuckwit",
            "cunts",
            "wankers",
            "twatted",
            "bastards",
            "dickheads",
        ],
        Tier::Strong,
    );
    assert_tier(
        &[
            "shitty",
            "shithead",
            "bitches",
            "bitchy",
            "pissed off",
            "bollocks",
            "arseholes",
            "gobshite",
        ],
        Tier::Medium,
    );
}

// ------------------------------------------------------------------ disguises

#[test]
fn masked_words_are_caught() {
    assert_tier(
        &[
            "f*ck off",
            "what the f**k",
            "f***ing hell",
            "you c*nt",
            "tw*t",
            "w*nker",
            "motherf***er",
        ],
        Tier::Strong,
    );
    assert_tier(&["sh*t", "b*tch", "a**hole", "sh!t", "b#tch"], Tier::Medium);
    assert_eq!(worst("you b@stard"), Some(Tier::Strong));
    assert_eq!(worst("dirty n*gger"), Some(Tier::Hate));
    // A lone first letter is not guessed at, and footnote stars are not masks.
    assert_clean(&["f*** knows", "see note*", "*important*", "5*3=15"]);
}

#[test]
fn separated_letters_are_caught() {
    assert_tier(
        &[
            "f.u.c.k",
            "f-u-c-k you",
            "f_u_c_k",
            "F U C K",
            "f u c k i n g",
        ],
        Tier::Strong,
    );
    assert_tier(&["you b i t c h", "s h i t", "s.h.i.t."], Tier::Medium);
    // `a` before the letters is a word of its own.
    assert_eq!(worst("I don't give a f u c k"), Some(Tier::Strong));
    // Separators between real words are left alone.
    assert_clean(&[
        "as she said",
        "but tit for tat is fair",
        "I'm a ss teacher",
        "Plan A, B or C",
        "e.g. i.e. etc.",
    ]);
}

#[test]
fn leetspeak_is_caught() {
    assert_tier(&["sh1t", "$hit", "a55hole", "b1tch"], Tier::Medium);
    assert_tier(
        &["fvck", "fvcking", "w4nker", "c0ck", "phuck"],
        Tier::Strong,
    );
    // Numbers and road names are not leetspeak.
    assert_clean(&[
        "Room 455",
        "the A55 was closed",
        "meet at 5:55pm",
        "Year 7B",
    ]);
}

#[test]
fn stretched_letters_are_caught() {
    assert_tier(&["fuuuuck", "FUUUUUCK", "fuuuck", "fuckkkk"], Tier::Strong);
    assert_eq!(worst("biitch"), Some(Tier::Medium));
    assert_eq!(worst("kiss my asssssss"), Some(Tier::Mild));
    assert_eq!(worst("twaaaaaat"), Some(Tier::Strong));
    assert_eq!(worst("shiiiit"), Some(Tier::Medium));
    // `as` is not `ass`, and a doubled consonant is a spelling, not a stretch (Pratt, Twatt).
    assert_clean(&[
        "as good as it gets",
        "Mr Pratt",
        "Twatt, Orkney",
        "a noob",
        "woops",
    ]);
}

#[test]
fn lookalike_letters_are_caught() {
    assert_eq!(worst("oh ѕһіt"), Some(Tier::Medium)); // Cyrillic
    assert_eq!(worst("ΒΙΤϹΗ"), Some(Tier::Medium)); // Greek
    assert_eq!(worst("ｆｕｃｋ ｏｆｆ"), Some(Tier::Strong)); // full-width
    assert_eq!(worst("𝐟𝐮𝐜𝐤"), Some(Tier::Strong)); // mathematical bold
    assert_eq!(worst("𝔣𝔲𝔠𝔨"), Some(Tier::Strong)); // mathematical fraktur
    assert_eq!(worst("ꜰᴜᴄᴋ"), Some(Tier::Strong)); // small capitals
}

#[test]
fn accents_and_invisible_characters_are_caught() {
    assert_eq!(worst("fücking hell"), Some(Tier::Strong));
    assert_eq!(worst("fu\u{0308}cking"), Some(Tier::Strong));
    assert_eq!(worst("f\u{200B}u\u{200C}c\u{200D}k"), Some(Tier::Strong));
    assert_eq!(worst("sh\u{00AD}it"), Some(Tier::Medium));
    assert_eq!(worst("bi\u{2060}tch"), Some(Tier::Medium));
    assert_eq!(worst("&#102;uck"), Some(Tier::Strong));
    assert_eq!(worst("<b>f</b>uck"), Some(Tier::Strong));
}

#[test]
fn evidence_points_at_the_original_text() {
    assert_eq!(slices("oh ѕһіt, really"), vec!["ѕһіt"]);
    assert_eq!(slices("a f.u.c.k.i.n.g joke"), vec!["f.u.c.k.i.n.g"]);
    assert_eq!(slices("x fuuuuck y"), vec!["fuuuuck"]);
    assert_eq!(slices("ｆｕｃｋ!"), vec!["ｆｕｃｋ"]);
    assert_eq!(slices("&#102;uck"), vec!["&#102;uck"]);
    assert_eq!(slices("I'll kill you!"), vec!["I'll kill you"]);
    let f = inspect(&[("body", TextSource::Body, "oh ѕһіt")]);
    assert_eq!(f[0].evidence, "ѕ***");
}

// ------------------------------------------------------------------ traps

#[test]
fn uk_places_are_not_profanity() {
    assert_clean(&[
        "Scunthorpe United won",
        "Penistone Grammar",
        "Essex, Sussex, Middlesex and Wessex",
        "a trip to Cockermouth",
        "Shitterton in Dorset",
        "Clitheroe Castle",
        "Lightwater Country Park",
        "Scrotby",
        "Twatt",
        "Pratts Bottom",
        "Bitchfield",
        "Cockfosters station",
        "Penistone",
        "Fukushima",
    ]);
}

#[test]
fn names_and_titles_are_not_profanity() {
    assert_clean(&[
        "Charles Dickens",
        "Matt Hancock",
        "Mrs Cockburn",
        "Dick Whittington panto",
        "reading Moby Dick",
        "Dominic Cummings",
        "Mr Butts",
        "Ms Glasscock",
        "Alfred Hitchcock",
        "Dick Turpin",
        "Dick Fosbury",
        "Philip K. Dick",
        "Fanny Burney",
        "spotted dick and custard",
        "Camille Pissarro",
        "a Wankel engine",
        "Injun Joe",
    ]);
}

#[test]
fn innocent_words_are_not_profanity() {
    assert_clean(&[
        "assassin",
        "cocktail",
        "analysis",
        "therapist",
        "shiitake mushrooms",
        "a classic",
        "the class passed",
        "Arsenal",
        "Sextant",
        "cum laude",
        "summa cum laude",
        "pussy willow",
        "grape",
        "scrapbook",
        "shuttlecock",
        "peacock",
        "Cockney",
        "titmouse",
        "snigger",
        "don't niggle",
        "niggardly",
        "Shiite and Sunni Muslims",
        "a mishit",
        "spick and span",
        "blue tits and great tits",
        "tit for tat",
        "cock-up",
        "a bloody nose",
        "Bloody Mary",
        "shag pile carpet",
        "Homo sapiens",
        "kaffir lime leaves",
        "a chink of light",
        "a nonce word",
        "slag heap",
        "sod's law",
        "Offa's Dyke",
        "prick your finger",
        "fag end",
        "faggots and peas",
        "spastic diplegia",
        "flame retardant",
        "retard the growth",
        "Mong Kok",
        "the cock crowed",
        "Scunthorpe's",
        "hotels and spas",
        "a spanner",
        "people who're late",
        "damning evidence",
        "divvy up the sweets",
        "the island of Lesbos",
        "twattle",
        "a faggot of sticks",
    ]);
}

#[test]
fn anatomy_and_rse_are_not_profanity() {
    assert_clean(&[
        "In sex education we label the penis, vagina, vulva, testicles and scrotum.",
        "breast cancer awareness",
        "the clitoris and the anus",
        "sexual health clinic",
        "RSE: puberty, periods and erections",
        "Essex sex education forum",
    ]);
}

#[test]
fn hell_and_damn_stay_mild() {
    assert_clean(&[
        "what a hell of a match",
        "it was a hell of a performance",
        "hell",
        "Hell's Kitchen",
    ]);
    assert_eq!(worst("what the hell"), Some(Tier::Mild));
    assert_eq!(worst("damn it"), Some(Tier::Mild));
    assert_eq!(worst("damn"), Some(Tier::Mild));
    assert_clean(&["the souls of the damned in Dante"]);
}

// ------------------------------------------------------------------ hate and threats

#[test]
fn slurs_are_hate() {
    assert_tier(
        &[
            "you paki",
            "nigger",
            "n1gger",
            "faggot",
            "you fag",
            "poofter",
            "tranny",
            "retard",
            "you spaz",
            "spastic",
            "you mong",
            "kike",
            "pikey",
            "gyppo",
            "chinky",
            "raghead",
            "that's so gay",
            "batty boy",
            "dyke",
            "coon",
            "wog",
            "lezza",
            "shemale",
            "window licker",
        ],
        Tier::Hate,
    );
}

#[test]
fn threats_are_threat() {
    assert_tier(
        &[
            "I'll kill you",
            "ill kill u",
            "im gonna smash your face in",
            "watch your back",
            "you're dead",
            "ur dead after school",
            "I know where you live",
            "i will literally stab u",
            "I'm going to beat you up",
            "kys",
            "kill yourself",
            "I'll fucking kill you",
            "gonna kick your head in",
            "I'll break your legs",
            "we know where you live",
            "I hope you die",
            "im gonna shoot up the school",
        ],
        Tier::Threat,
    );
}

#[test]
fn everyday_phrases_are_not_threats() {
    for t in [
        "I'll shoot you an email",
        "you're dead right",
        "you'll be dead tired after the trip",
        "It won't kill you to say thanks",
        "you will pay for this on ParentPay",
        "mind your backs please",
        "I'll get you a copy",
        "you're going to get it tomorrow",
        "I'll cut you a slice",
        "I'll see you after school",
        "your time is up, pens down",
        "I'll kick you off the list",
        "I'll beat you at chess",
        "watch your back when lifting boxes",
        "your dead grandmother's medal",
        "I could kill for a coffee",
    ] {
        assert!(
            !tiers(t).contains(&Tier::Threat),
            "{t:?} is not a threat: {:?}",
            slices(t)
        );
    }
}

#[test]
fn quoted_abuse_still_counts() {
    let report = "Incident report: at break J. shouted \"you fucking twat\" at another pupil.";
    assert_eq!(worst(report), Some(Tier::Strong));
    let story = "In my story the villain says: 'I know where you live.'";
    assert_eq!(worst(story), Some(Tier::Threat));
}

// ------------------------------------------------------------------ findings

#[test]
fn one_finding_per_tier_and_location_with_counts() {
    let f = inspect(&[
        ("subject", TextSource::Subject, "you slag"),
        (
            "body",
            TextSource::Body,
            "fuck this, fuck that, f*ck everything. This is shit.",
        ),
        (
            "attachment:story.docx",
            TextSource::Attachment,
            "I'll kill you",
        ),
        (
            "message:fwd.eml/body",
            TextSource::Body,
            "Charles Dickens in Scunthorpe",
        ),
    ]);
    let summary: Vec<(&str, &str, u32)> = f
        .iter()
        .map(|f| (f.rule.as_str(), f.location.as_str(), f.count))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("profanity/medium", "subject", 1),
            ("profanity/medium", "body", 1),
            ("profanity/strong", "body", 3),
            ("profanity/threat", "attachment:story.docx", 1),
        ]
    );
    let strong = &f[2];
    assert_eq!(strong.category, Category::Profanity);
    assert_eq!(strong.severity, Severity::High);
    // Distinct masked forms only: `fuck` and `f*ck` both show as `f***`.
    assert_eq!(strong.evidence, "f***");
    assert!(!strong.evidence.contains("fuck"));
    assert_eq!(f[3].severity, Severity::Critical);
    assert_eq!(f[0].severity, Severity::Medium);
}

#[test]
fn severities_and_confidence_follow_the_tier() {
    let f = inspect(&[("body", TextSource::Body, "bloody hell. you paki. f*ck.")]);
    let by_rule = |r: &str| f.iter().find(|f| f.rule == r).unwrap();
    assert_eq!(by_rule("profanity/mild").severity, Severity::Low);
    assert_eq!(by_rule("profanity/hate").severity, Severity::Critical);
    assert!(by_rule("profanity/mild").confidence < by_rule("profanity/hate").confidence);
    // Only a masked form: less sure.
    assert!(by_rule("profanity/strong").confidence < Tier::Strong.confidence());
}

#[test]
fn long_texts_are_scanned_to_the_end() {
    let mut text = "The quick brown fox jumps over the lazy dog. ".repeat(60_000);
    text.push_str("Signed, a wanker.");
    let f = inspect(&[("attachment:big.txt", TextSource::Attachment, &text)]);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].rule.as_str(), f[0].evidence.as_str()),
        ("profanity/strong", "w*****")
    );
    // Matches straddling the boundaries between the interleaved walks are found once.
    let mut many = String::new();
    while many.len() < 40_000 {
        many.push_str("fuck ");
    }
    let count = many.matches("fuck").count();
    assert_eq!(shipped().hits(&many).len(), count);
}

#[test]
fn clean_message_has_no_findings() {
    let f = inspect(&[
        ("subject", TextSource::Subject, "Year 8 trip to Cockermouth"),
        (
            "body",
            TextSource::Body,
            "Dear parents, the class passed their analysis assessment. Mr Hancock says it was a hell of a performance.",
        ),
    ]);
    assert!(f.is_empty(), "{f:?}");
}

// ------------------------------------------------------------------ rule files

#[test]
fn bad_severity_names_file_line_and_rule() {
    let err = custom("# comment\nfuck  strong\nshite  strng\n", "").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("test/profanity.txt:3"), "{msg}");
    assert!(msg.contains("shite  strng"), "{msg}");
    assert!(msg.contains("unknown severity `strng`"), "{msg}");
    match err {
        RulesError::Invalid { line, .. } => assert_eq!(line, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_rule_errors_are_reported() {
    let missing = custom("fuck\n", "").unwrap_err().to_string();
    assert!(missing.contains("missing severity"), "{missing}");
    let brace = custom("wank{|s  strong\n", "").unwrap_err().to_string();
    assert!(
        brace.contains("test/profanity.txt:1") && brace.contains("`{` without `}`"),
        "{brace}"
    );
    let define = custom("<NOPE> you  threat\n", "").unwrap_err().to_string();
    assert!(define.contains("not defined"), "{define}");
    let empty = custom("***  strong\n", "").unwrap_err().to_string();
    assert!(empty.contains("no letters"), "{empty}");
    let allow = custom("fuck strong\n", "ok\nbad{brace\n")
        .unwrap_err()
        .to_string();
    assert!(allow.contains("test/profanity_allow.txt:2"), "{allow}");
}

#[test]
fn schools_can_add_regrade_and_allow_words() {
    let p = custom(
        "@define YOU = you | u\nplonker  mild\nplonker  strong\nmuppet  medium\n<YOU> wally  mild\n",
        "muppet show\n",
    )
    .unwrap();
    let tier = |t: &str| p.hits(t).first().map(|h| h.tier);
    assert_eq!(tier("what a plonker"), Some(Tier::Strong));
    assert_eq!(tier("you muppet"), Some(Tier::Medium));
    assert_eq!(tier("the muppet show"), None);
    assert_eq!(tier("you wally"), Some(Tier::Mild));
    assert_eq!(tier("where's wally"), None);
}

#[test]
fn modes_control_word_boundaries() {
    let p = custom(
        "tit  mild\nshit  medium  prefix\nfucker  strong  suffix\nfuck  strong  embedded\n",
        "",
    )
    .unwrap();
    let hit = |t: &str| !p.hits(t).is_empty();
    assert!(hit("you tit") && !hit("title") && !hit("constitution"));
    assert!(hit("shitty") && !hit("mishit"));
    assert!(hit("motherfucker") && hit("absofuckinglutely"));
}

#[test]
fn empty_rules_find_nothing() {
    let p = custom("# nothing\n", "").unwrap();
    assert!(p.hits("fuck").is_empty());
}

/// Words of an English dictionary that the shipped rules flag. Run with a word list at
/// /usr/share/dict (`apt-get install wbritish-large`); prints what it finds for review.
#[test]
#[ignore]
fn dictionary_words() {
    for path in [
        "/usr/share/dict/british-english-large",
        "/usr/share/dict/american-english-large",
    ] {
        let Ok(words) = std::fs::read_to_string(path) else {
            continue;
        };
        let flagged: Vec<String> = words
            .lines()
            .filter(|w| !shipped().hits(w).is_empty())
            .map(|w| format!("{w}:{:?}", worst(w).unwrap()))
            .collect();
        eprintln!("{path}: {} flagged\n{}", flagged.len(), flagged.join(" "));
    }
}
