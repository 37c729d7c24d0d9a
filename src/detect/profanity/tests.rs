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

/// Timing check, run with `cargo test --release --lib profanity::tests::perf -- --ignored
/// --nocapture`. Reports the best of many short batches, which is robust against a busy box.
#[test]
#[ignore]
fn perf() {
    use aho_corasick::automaton::Automaton;
    fn best<F: FnMut()>(mut f: F) -> std::time::Duration {
        let mut best = std::time::Duration::MAX;
        for _ in 0..300 {
            let t = std::time::Instant::now();
            for _ in 0..10 {
                f();
            }
            best = best.min(t.elapsed() / 10);
        }
        best
    }
    let t = std::time::Instant::now();
    let p = Profanity::new(&RuleSource::embedded()).unwrap();
    let build = t.elapsed();
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
    let plain: String = text
        .chars()
        .map(|c| if c.is_ascii_alphabetic() { c } else { ' ' })
        .collect();
    let mut norm = Normalized::new();
    let scan = best(|| {
        std::hint::black_box(p.hits(std::hint::black_box(&text)));
    });
    let mapped = best(|| norm.normalize(std::hint::black_box(&text)));
    let unmapped = best(|| norm.normalize_unmapped(std::hint::black_box(&text)));
    let plain_t = best(|| norm.normalize_unmapped(std::hint::black_box(&plain)));
    norm.normalize_unmapped(&text);
    let ac = p.automaton.as_ref().unwrap();
    let walk = best(|| {
        let mut m = 0;
        ac.walk(norm.text(), |_, sid| m += ac.dfa.match_len(sid));
        std::hint::black_box(m);
    });
    let small = aho_corasick::dfa::DFA::builder()
        .match_kind(aho_corasick::MatchKind::Standard)
        .prefilter(false)
        .build(["fuck", "shit"])
        .unwrap();
    let sstart = small.start_state(aho_corasick::Anchored::No).unwrap();
    let single = best(|| {
        let mut sid = sstart;
        let mut m = 0;
        for &b in norm.text() {
            sid = small.next_state(aho_corasick::Anchored::No, sid, b);
            if small.is_special(sid) && small.is_match(sid) {
                m += 1;
            }
        }
        std::hint::black_box(m);
    });
    eprintln!(
        "patterns {} build {build:?} dfa {} KiB | 10 KB: scan {scan:?} = normalise {unmapped:?} \
         (plain {plain_t:?}, mapped {mapped:?}) + 4-lane walk {walk:?} (1-lane 2-pattern walk {single:?})",
        p.pattern_count(),
        ac.dfa.memory_usage() / 1024,
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
