use super::*;
use std::sync::OnceLock;

fn shipped() -> &'static Profanity {
    static P: OnceLock<Profanity> = OnceLock::new();
    P.get_or_init(|| Profanity::new(&RuleSource::embedded()).unwrap())
}

#[test]
fn shipped_rules_load() {
    let p = shipped();
    eprintln!("patterns: {}", p.pattern_count());
    assert!(p.pattern_count() > 1000);
}

/// Timing check, run with `cargo test --release --lib profanity::tests::perf -- --ignored --nocapture`.
#[test]
#[ignore]
fn perf() {
    let t = std::time::Instant::now();
    let p = Profanity::new(&RuleSource::embedded()).unwrap();
    let build = t.elapsed();
    let mem = p.automaton.as_ref().map_or(0, |a| a.dfa.memory_usage());
    let para = "Dear parents, thank you for your support with the Year 8 trip to the Science Museum \
        on Thursday 14 March. Pupils should arrive at 8:15am and bring a packed lunch, a waterproof \
        coat and a pencil case. We will return at about 4:30pm. If your child has medication, please \
        let the school office know by Monday; forms are available from reception or the website. \
        The class passed their assessment with flying colours, and Mr Hancock said it was a hell of a \
        performance. ";
    let mut text = String::new();
    while text.len() < 10_000 {
        text.push_str(para);
    }
    let n = 2000;
    let t = std::time::Instant::now();
    let mut hits = 0;
    for _ in 0..n {
        hits += p.hits(&text).len();
    }
    let per = t.elapsed() / n;
    let mut norm = Normalized::new();
    let t = std::time::Instant::now();
    for _ in 0..n {
        norm.normalize(&text);
    }
    let per_norm = t.elapsed() / n;
    let t = std::time::Instant::now();
    let mut sink = 0usize;
    for _ in 0..n {
        let l = std::hint::black_box(&text).to_ascii_lowercase();
        sink += l.len();
    }
    let per_lower = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        sink += std::hint::black_box(&text)
            .bytes()
            .filter(|&b| b == b'e')
            .count();
    }
    let per_count = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        norm.normalize_unmapped(&text);
    }
    let per_unmapped = t.elapsed() / n;
    use aho_corasick::automaton::Automaton;
    let ac = p.automaton.as_ref().unwrap();
    let t = std::time::Instant::now();
    let mut m = 0;
    for _ in 0..n {
        let mut sid = ac.start;
        for &b in norm.text() {
            sid = ac.dfa.next_state(aho_corasick::Anchored::No, sid, b);
            if ac.dfa.is_special(sid) && ac.dfa.is_match(sid) {
                m += ac.dfa.match_len(sid);
            }
        }
    }
    eprintln!(
        "unmapped normalise {per_unmapped:?}, automaton alone {:?} ({m} matches)",
        t.elapsed() / n
    );
    let small = aho_corasick::dfa::DFA::builder()
        .match_kind(aho_corasick::MatchKind::Standard)
        .prefilter(false)
        .build(["fuck", "shit", "cunt", "bitch", "twat"])
        .unwrap();
    let sstart = small.start_state(aho_corasick::Anchored::No).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut sid = sstart;
        for &b in norm.text() {
            sid = small.next_state(aho_corasick::Anchored::No, sid, b);
            if small.is_special(sid) && small.is_match(sid) {
                m += small.match_len(sid);
            }
        }
    }
    eprintln!("small automaton walk {:?} ({m})", t.elapsed() / n);
    let plain: String = text
        .chars()
        .map(|c| if c.is_ascii_alphabetic() { c } else { ' ' })
        .collect();
    let t = std::time::Instant::now();
    for _ in 0..n {
        norm.normalize(std::hint::black_box(&plain));
    }
    eprintln!("plain letters+spaces normalise: {:?}", t.elapsed() / n);
    eprintln!("baseline: to_ascii_lowercase {per_lower:?}, count {per_count:?} ({sink})");
    eprintln!(
        "patterns {} build {:?} memory {} KiB; 10 KB text: {:?} per scan ({:?} normalise), hits {}",
        p.pattern_count(),
        build,
        mem / 1024,
        per,
        per_norm,
        hits
    );
}

#[test]
#[ignore]
fn expansion_sizes() {
    let file = RuleSource::embedded().load(PROFANITY_FILE).unwrap();
    let mut d = Defines::default();
    let mut total = 0;
    for (no, line) in file.lines() {
        if let Some(rest) = line.strip_prefix("@define") {
            d.define(rest).unwrap();
            continue;
        }
        let p = terms::parse_profane_line(line).unwrap();
        let n = d.expand(&p.term).unwrap().len();
        total += n;
        if n > 300 {
            eprintln!("{no}: {n} {}", &line[..line.len().min(60)]);
        }
    }
    eprintln!("total {total}");
}
