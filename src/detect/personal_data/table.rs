//! Tables: spreadsheets and CSV arrive with their cells (`TextSegment::table`); tables
//! pasted into a message body arrive as text and are recovered here from their
//! delimiters. A pupil list is a table whose header names people and describes pupils
//! (form, DOB, SEN…) and whose rows hold enough person-like names.

use super::settings::Settings;

/// Rows of cells; the first row that looks like a header is found by [`header_row`].
pub type Rows = Vec<Vec<String>>;

/// How a line of text splits into cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delim {
    Tab,
    Pipe,
    Semicolon,
    Comma,
    Spaces,
}

fn split_csv(line: &str, sep: char) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => cells.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    cells.push(cur.trim().to_string());
    cells
}

fn split_line(line: &str, d: Delim) -> Vec<String> {
    match d {
        Delim::Tab => line.split('\t').map(|c| c.trim().to_string()).collect(),
        Delim::Pipe => {
            let t = line.trim().trim_matches('|');
            t.split('|').map(|c| c.trim().to_string()).collect()
        }
        Delim::Semicolon => split_csv(line, ';'),
        Delim::Comma => split_csv(line, ','),
        Delim::Spaces => line
            .trim()
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
    }
}

fn delim_of(line: &str) -> Option<Delim> {
    if line.contains('\t') {
        Some(Delim::Tab)
    } else if line.matches('|').count() >= 1 && line.trim().len() > 2 {
        Some(Delim::Pipe)
    } else if line.contains(';') {
        Some(Delim::Semicolon)
    } else if line.contains(',') {
        Some(Delim::Comma)
    } else if line.trim().contains("  ") {
        Some(Delim::Spaces)
    } else {
        None
    }
}

/// Number of cells `line` splits into with `d`, without allocating.
fn cell_count(line: &str, d: Delim) -> usize {
    let outside_quotes = |sep: char| {
        let mut quoted = false;
        let mut n = 1;
        for c in line.chars() {
            if c == '"' {
                quoted = !quoted;
            } else if c == sep && !quoted {
                n += 1;
            }
        }
        n
    };
    match d {
        Delim::Tab => line.split('\t').count(),
        Delim::Pipe => line.trim().trim_matches('|').split('|').count(),
        Delim::Semicolon => outside_quotes(';'),
        Delim::Comma => outside_quotes(','),
        Delim::Spaces => line
            .trim()
            .split("  ")
            .filter(|c| !c.trim().is_empty())
            .count(),
    }
}

/// Tables and pupil lists recovered from plain text.
#[derive(Debug, Default)]
pub struct FoundInText {
    pub tables: Vec<Rows>,
    pub lists: Vec<PupilList>,
}

/// Look for tables in `text`. A table's header names a person or an identifier column,
/// so one keyword pass over the whole text finds the candidate header lines and only
/// those are examined: prose costs one Aho-Corasick scan.
pub fn find_in_text(text: &str, s: &Settings, min_rows: usize) -> FoundInText {
    let mut found = FoundInText::default();
    let mut matches = s
        .table_words
        .find_all(text)
        .map(|(start, _)| start)
        .peekable();
    if matches.peek().is_none() {
        return found;
    }
    let mut lines: Vec<&str> = Vec::new();
    let mut candidates: Vec<usize> = Vec::new();
    let mut off = 0;
    for raw in text.split_inclusive('\n') {
        let end = off + raw.len();
        let mut hit = false;
        while matches.peek().is_some_and(|&m| m < end) {
            matches.next();
            hit = true;
        }
        if hit {
            candidates.push(lines.len());
        }
        lines.push(raw.trim_end_matches(['\n', '\r']));
        off = end;
    }
    found.tables = text_tables_at(&lines, &candidates, min_rows + 1);
    found
        .tables
        .extend(vertical_tables_at(&lines, &candidates, s, min_rows));
    found.lists = space_pupil_lists_at(&lines, &candidates, s, min_rows);
    found
}

/// Tables written as text: from a candidate header line, the run of consecutive
/// non-blank lines that split into the same number (≥ 2) of cells with the same
/// delimiter, at least `min_lines` long. Blank lines inside a run are skipped (HTML
/// tables often render with blank lines between rows). Lines are only split into cells
/// once a run is long enough.
fn text_tables_at(lines: &[&str], candidates: &[usize], min_lines: usize) -> Vec<Rows> {
    let mut out = Vec::new();
    let mut done = 0;
    // Lines of quoted replies keep their table shape after the quote marks.
    fn unquote(l: &str) -> &str {
        l.trim_start_matches(['>', ' '])
    }
    let shape = |l: &str| -> Option<(Delim, usize)> {
        let l = unquote(l);
        let d = delim_of(l)?;
        let n = cell_count(l, d);
        // HTML and sheet text collapse empty cells, so tab- and pipe-separated rows
        // may differ in length; other delimiters must agree exactly.
        (n >= 2).then_some((
            d,
            if matches!(d, Delim::Tab | Delim::Pipe) {
                0
            } else {
                n
            },
        ))
    };
    for &c in candidates {
        if c < done {
            continue;
        }
        let Some(head) = shape(lines[c]) else {
            continue;
        };
        let mut run = vec![unquote(lines[c])];
        let mut j = c + 1;
        while j < lines.len() {
            if lines[j].trim().is_empty() {
                j += 1;
                continue;
            }
            if shape(lines[j]) != Some(head) {
                break;
            }
            run.push(unquote(lines[j]));
            j += 1;
        }
        if run.len() >= min_lines {
            out.push(run.iter().map(|l| split_line(l, head.0)).collect());
            done = j;
        }
    }
    out
}

/// Is this line a plausible column header (short, and a known column word)?
fn header_like(line: &str, s: &Settings) -> bool {
    let t = line.trim();
    !t.is_empty()
        && t.len() <= 120
        && t.chars().count() <= 30
        && (s.person_columns.found_in(t)
            || s.pupil_words.found_in(t)
            || s.pupil_columns.found_in(t)
            || s.staff_columns.found_in(t)
            || is_identifier_header(t, s))
}

/// Tables written one cell per line (Word and OpenDocument tables: each cell is a
/// paragraph). A run of 2 to 12 header-like lines that includes a person column is
/// the header; the lines after it, k at a time, are the rows, until a long line.
fn vertical_tables_at(
    lines: &[&str],
    candidates: &[usize],
    s: &Settings,
    min_rows: usize,
) -> Vec<Rows> {
    let mut out = Vec::new();
    let mut done = 0;
    for &c in candidates {
        if c < done || !header_like(lines[c], s) {
            continue;
        }
        let mut start = c;
        while start > done && c - start < 12 && header_like(lines[start - 1], s) {
            start -= 1;
        }
        let mut end = c + 1;
        while end < lines.len() && end - start < 12 && header_like(lines[end], s) {
            end += 1;
        }
        let header: Vec<&str> = lines[start..end].iter().map(|l| l.trim()).collect();
        let k = header.len();
        let has_person = header
            .iter()
            .any(|h| s.person_columns.found_in(h) || s.pupil_words.found_in(h));
        if k < 2 || !has_person {
            continue;
        }
        let mut rows: Rows = vec![header.iter().map(|h| h.to_string()).collect()];
        let mut j = end;
        while j + k <= lines.len() {
            let chunk = &lines[j..j + k];
            if chunk.iter().any(|c| c.chars().count() > 80) {
                break;
            }
            rows.push(chunk.iter().map(|c| c.trim().to_string()).collect());
            j += k;
        }
        if rows.len() > min_rows {
            out.push(rows);
            done = j;
        }
    }
    out
}

/// Rows laid out with single spaces between cells (text extracted from a PDF table):
/// a header line naming a person column and a pupil column, then at least
/// `min_rows` lines that each start with a two- or three-word name followed by more
/// cells. Only the name can be split off such a line reliably, so the list is judged
/// on the header line as a whole and the names.
fn space_pupil_lists_at(
    lines: &[&str],
    candidates: &[usize],
    s: &Settings,
    min_rows: usize,
) -> Vec<PupilList> {
    let mut out = Vec::new();
    let mut done = 0;
    for &c in candidates {
        let h = lines[c].trim();
        let mut i = c + 1;
        // The next line must start with a capitalised name.
        if c < done || !lines.get(i).is_some_and(|l| starts_capitalised_pair(l)) {
            continue;
        }
        let words = h.split_whitespace().count();
        let says_pupil = s.pupil_words.found_in(h);
        let is_header = (2..=12).contains(&words)
            && h.chars().count() <= 100
            && !h.chars().any(|c| c.is_ascii_digit())
            && (s.person_columns.found_in(h) || says_pupil)
            && (says_pupil || s.pupil_columns.found_in(h))
            && (says_pupil || !s.staff_columns.found_in(h));
        if !is_header {
            continue;
        }
        let (mut named, mut titled) = (0usize, 0usize);
        while i < lines.len() {
            let line = lines[i].trim();
            let toks: Vec<&str> = line.split_whitespace().collect();
            if toks.len() < 3 || line.chars().count() > 120 {
                break;
            }
            let name = (2..=3)
                .rev()
                .filter(|&n| n < toks.len())
                .map(|n| toks[..n].join(" "))
                .find(|n| name_like(n));
            let Some(name) = name else { break };
            named += 1;
            if has_staff_title(&name, s) {
                titled += 1;
            }
            i += 1;
        }
        if named >= min_rows && titled * 2 < named {
            out.push(PupilList {
                rows: named,
                headers: h.split_whitespace().map(str::to_string).collect(),
            });
            done = i;
        }
    }
    out
}

/// Does the line start with two capitalised words ("Maya Osei …")?
fn starts_capitalised_pair(line: &str) -> bool {
    let mut it = line.split_whitespace();
    let cap = |w: Option<&str>| {
        w.and_then(|w| w.chars().next())
            .is_some_and(|c| c.is_uppercase())
    };
    cap(it.next()) && cap(it.next())
}

/// Index of the header row: the first of the first five rows with at least two
/// non-empty cells of which one names a person or an identifier column. Spreadsheets
/// often start with a title row ("Year 7 class lists") above the headers.
pub fn header_row(rows: &Rows, s: &Settings) -> Option<usize> {
    rows.iter().take(5).position(|row| {
        row.iter().filter(|c| !c.trim().is_empty()).count() >= 2
            && row.iter().any(|c| {
                c.chars().count() <= 40
                    && (s.person_columns.found_in(c)
                        || s.pupil_words.found_in(c)
                        || s.pupil_columns.found_in(c)
                        || is_identifier_header(c, s))
            })
    })
}

/// Does a header cell name one of the identifier kinds?
fn is_identifier_header(c: &str, s: &Settings) -> bool {
    [
        &s.ni.columns,
        &s.nhs.columns,
        &s.upn.columns,
        &s.uln.columns,
        &s.card.columns,
        &s.dob.columns,
        &s.address.columns,
        &s.phone.columns,
    ]
    .iter()
    .any(|k| k.found_in(c))
}

/// Is this cell a person's name ("Amelia Johnson", "O'Brien", "Smith, Jo")?
pub fn name_like(cell: &str) -> bool {
    let t = cell.trim();
    let n = t.chars().count();
    if !(2..=60).contains(&n) {
        return false;
    }
    let tokens: Vec<&str> = t
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    if tokens.is_empty() || tokens.len() > 5 {
        return false;
    }
    let all_upper = t
        .chars()
        .filter(|c| c.is_alphabetic())
        .all(char::is_uppercase);
    tokens.iter().all(|w| {
        let mut chars = w.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_alphabetic() && (c.is_uppercase() || all_upper));
        first_ok
            && w.chars().all(|c| {
                c.is_alphabetic() || matches!(c, '-' | '\'' | '\u{2019}' | '.' | '(' | ')')
            })
    }) && tokens.iter().any(|w| w.chars().count() >= 2)
}

fn has_staff_title(cell: &str, s: &Settings) -> bool {
    cell.split_whitespace().next().is_some_and(|w| {
        let w = w.trim_end_matches('.').to_lowercase();
        s.staff_titles.contains(&w)
    })
}

/// A table recognised as a list of pupils.
#[derive(Debug, Clone, PartialEq)]
pub struct PupilList {
    /// Data rows with a person-like name.
    pub rows: usize,
    /// The header cells, for the evidence (headers are not personal data).
    pub headers: Vec<String>,
}

/// Is this table a list of pupils?
///
/// It needs a header naming people (Name, Forename, Surname, Pupil…), either a header
/// that says pupil/student/child or a column describing pupils (Form, Year, DOB, SEN,
/// FSM, Medical, Parent…), no staff-list column (Role, Department, Monday…) unless a
/// header says pupil, and at least `pupil_list_min_rows` data rows whose name cells look
/// like names, most of them without a staff title (Mr, Mrs, Dr…).
pub fn pupil_list(rows: &Rows, s: &Settings) -> Option<PupilList> {
    let h = header_row(rows, s)?;
    let header = &rows[h];
    let short = |c: &String| c.chars().count() <= 40;
    let person_cols: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, c)| short(c) && (s.person_columns.found_in(c) || s.pupil_words.found_in(c)))
        .map(|(i, _)| i)
        .collect();
    if person_cols.is_empty() {
        return None;
    }
    let says_pupil = header.iter().any(|c| short(c) && s.pupil_words.found_in(c));
    let describes_pupils = header
        .iter()
        .enumerate()
        .any(|(i, c)| short(c) && !person_cols.contains(&i) && s.pupil_columns.found_in(c));
    let staff_list = header
        .iter()
        .any(|c| short(c) && s.staff_columns.found_in(c));
    if !says_pupil && (!describes_pupils || staff_list) {
        return None;
    }
    let data = &rows[h + 1..];
    // The person column whose cells look most like names.
    let (named, titled) = person_cols
        .iter()
        .map(|&col| {
            let cells = data.iter().filter_map(|r| r.get(col));
            let mut named = 0usize;
            let mut titled = 0usize;
            for c in cells {
                if name_like(c) {
                    named += 1;
                    if has_staff_title(c, s) {
                        titled += 1;
                    }
                }
            }
            (named, titled)
        })
        .max_by_key(|&(n, _)| n)?;
    let nonempty = data
        .iter()
        .filter(|r| r.iter().any(|c| !c.trim().is_empty()))
        .count();
    let enough = named >= s.pupil_list_min_rows && named * 10 >= nonempty * 6;
    let staff = titled * 2 >= named;
    (enough && !staff).then(|| PupilList {
        rows: named,
        headers: header
            .iter()
            .filter(|c| !c.trim().is_empty())
            .map(|c| c.trim().to_string())
            .collect(),
    })
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

    fn rows(csv: &str) -> Rows {
        csv.lines().map(|l| split_csv(l, ',')).collect()
    }

    const FIRST: [&str; 8] = [
        "Olivia", "Noah", "Isla", "George", "Freya", "Arlo", "Maisie", "Theo",
    ];
    const LAST: [&str; 8] = [
        "Barker", "Quinn", "Fletcher", "Osei", "Lam", "Nowak", "Doyle", "Reid",
    ];

    fn names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{} {}", FIRST[i % 8], LAST[(i * 3 + 1) % 8]))
            .collect()
    }

    #[test]
    fn names_look_like_names() {
        for ok in [
            "Olivia Barker",
            "O'Neill",
            "Jean-Luc Picard",
            "Smith, Jo",
            "Siân Lloyd",
            "BARKER",
        ] {
            assert!(name_like(ok), "{ok}");
        }
        for bad in [
            "7A",
            "Canteen duty 12:30",
            "olivia barker",
            "",
            "Paper 2",
            "£12.50",
            "x",
        ] {
            assert!(!name_like(bad), "{bad}");
        }
    }

    #[test]
    fn pupil_list_without_identifier_columns() {
        let s = settings();
        let mut csv = String::from("Name,Form,SEN\n");
        for n in names(6) {
            csv.push_str(&format!("{n},9B,K\n"));
        }
        let pl = pupil_list(&rows(&csv), &s).expect("pupil list");
        assert_eq!(pl.rows, 6);
        assert_eq!(pl.headers, ["Name", "Form", "SEN"]);
    }

    #[test]
    fn pupil_header_alone_is_enough() {
        let s = settings();
        let mut csv = String::from("Pupil,Teacher comment\n");
        for n in names(5) {
            csv.push_str(&format!("{n},Good effort\n"));
        }
        assert!(pupil_list(&rows(&csv), &s).is_some());
    }

    #[test]
    fn title_row_above_the_headers() {
        let s = settings();
        let mut csv = String::from("Year 8 groups,,\n,,\nSurname,Forename,Tutor group\n");
        for n in names(7) {
            let (f, l) = n.split_once(' ').unwrap();
            csv.push_str(&format!("{l},{f},8R\n"));
        }
        assert_eq!(pupil_list(&rows(&csv), &s).map(|p| p.rows), Some(7));
    }

    #[test]
    fn too_few_rows_is_not_a_list() {
        let s = settings();
        let mut csv = String::from("Name,Form\n");
        for n in names(4) {
            csv.push_str(&format!("{n},7C\n"));
        }
        assert!(pupil_list(&rows(&csv), &s).is_none());
    }

    #[test]
    fn staff_duty_rota_is_not_a_pupil_list() {
        let s = settings();
        let csv = "Name,Monday,Tuesday,Wednesday\n\
                   Mr Barker,Canteen,Gate,-\nMrs Quinn,Field,-,Library\nDr Osei,-,Canteen,Gate\n\
                   Ms Lam,Library,Field,-\nMiss Doyle,Gate,Library,Field\nMr Reid,-,-,Canteen\n";
        assert!(pupil_list(&rows(csv), &s).is_none());
        // Even with a Form column, titled names are staff (a list of form tutors).
        let csv = "Name,Form\nMr Barker,7A\nMrs Quinn,7B\nDr Osei,7C\nMs Lam,7D\nMiss Doyle,7E\nMr Reid,7F\n";
        assert!(pupil_list(&rows(csv), &s).is_none());
    }

    #[test]
    fn stock_list_budget_and_fixtures_are_not_pupil_lists() {
        let s = settings();
        let stock = "Item,Quantity,Unit price\nA4 exercise books,2000,0.35\nGlue sticks,300,0.40\n\
                     Whiteboard pens,500,0.55\nRulers,200,0.20\nScissors,60,1.10\nStaplers,12,4.00\n";
        assert!(pupil_list(&rows(stock), &s).is_none());
        let fixtures = "Date,Opponent,Venue,Start\n20/05,Kingsway Academy,Away,3.45pm\n\
                        21/05,Hillside High,Home,3.45pm\n22/05,Brook Lane School,Away,4pm\n\
                        23/05,Oak Park School,Home,3.45pm\n24/05,Riverside College,Away,3.45pm\n";
        assert!(pupil_list(&rows(fixtures), &s).is_none());
        let budget = "Department,Budget,Spent\nScience,12000,8000\nEnglish,9000,4000\nMaths,9500,9100\n\
                      Art,3000,2500\nMusic,2500,800\nPE,4000,3900\n";
        assert!(pupil_list(&rows(budget), &s).is_none());
    }

    #[test]
    fn staff_contact_list_is_not_a_pupil_list() {
        let s = settings();
        let mut csv = String::from("Name,Role,Extension\n");
        for n in names(8) {
            csv.push_str(&format!("{n},Teaching Assistant,214\n"));
        }
        assert!(pupil_list(&rows(&csv), &s).is_none());
    }

    #[test]
    fn text_tables_from_tabs_pipes_and_spaces() {
        let mut text = String::from("Hi, here is the list:\n\nName\tForm\tDOB\n");
        for n in names(5) {
            text.push_str(&format!("{n}\t10C\t01/02/2010\n"));
        }
        text.push_str("\nThanks\n");
        let s = settings();
        let t = find_in_text(&text, &s, 5).tables;
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].len(), 6);
        assert_eq!(t[0][0], ["Name", "Form", "DOB"]);

        let mut md = String::from("| Pupil | Year |\n");
        for n in names(5) {
            md.push_str(&format!("| {n} | 9 |\n"));
        }
        assert_eq!(
            find_in_text(&md, &s, 5).tables[0][1],
            [names(1)[0].as_str(), "9"]
        );

        let mut sp = String::from("Forename   Surname    Form\n");
        for n in names(5) {
            let (f, l) = n.split_once(' ').unwrap();
            sp.push_str(&format!("{f}    {l}    11B\n"));
        }
        assert!(pupil_list(&find_in_text(&sp, &s, 5).tables[0], &s).is_some());
    }

    #[test]
    fn prose_is_not_a_table() {
        let text = "Dear parents,\nThe trip is on Friday, weather permitting.\nPlease bring a coat, a hat and lunch.\n";
        assert!(find_in_text(text, &settings(), 5).tables.is_empty());
    }
}
