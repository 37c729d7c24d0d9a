//! banned_attachment: files that must not travel by school e-mail, or that cannot
//! be checked.
//!
//! Every decoded part (MIME leaves and archive members, as the extractor lists
//! them) is looked at on its own, and gives at most one finding, located at the
//! part (so an `.exe` inside a zip is reported as `game.zip/setup.exe`, not also
//! as `game.zip`). Rule ids under `banned_attachment/`:
//!
//! * `double_extension` — a harmless-looking extension followed by a banned one
//!   (`report.pdf.exe`, `photo.jpg .scr`, `invoice.pdf.exe.`);
//! * `extension` — the last extension is banned (`rules/banned_attachments.txt`,
//!   any case); only the *last* extension counts, so `config.json` is not `.js` and
//!   `Executive summary.pdf` is a PDF;
//! * `executable` — a program by its magic bytes whatever its name: a Windows PE
//!   (an `MZ` header that really leads to a `PE\0\0` header — a text file that
//!   happens to start with "MZ" is not a program), ELF or Mach-O;
//! * `macros` — an Office file carrying VBA (the extractor saw `vbaProject.bin` or
//!   VBA storages), or a macro-enabled type by extension (`.docm`, `.xlsm`…);
//! * `encrypted_archive` — a password-protected archive: nothing inside it can be
//!   scanned. One finding per archive, however many entries are encrypted.
//!   Password-protected *documents* (docx/xlsx/PDF) and S/MIME or PGP messages are
//!   how personal data is meant to travel, so they are never banned here;
//! * `unscannable` — the extractor hit a limit (archive depth, entries, expanded
//!   bytes, expansion ratio, PDF timeout) or could not open an archive, so part of
//!   an attachment went unchecked.
//!
//! Severity is `High`, except `encrypted_archive` (`Medium`), which the policy
//! tags rather than holds when identified staff send it. Evidence is the file
//! name (attachment names are not treated as personal data).

use super::{DetectError, Detector, ScanContext};
use crate::finding::{Category, Finding, Severity};
use crate::message::{Encryption, ExecutableKind, LimitHit, Part};
use crate::rules::{RuleFile, RuleSource, RulesError};
use std::collections::{BTreeMap, HashMap, HashSet};

const RULES_FILE: &str = "banned_attachments.txt";

/// Limits that leave part of an attachment (or of the message) unscanned.
const UNSCANNABLE_LIMITS: &[&str] = &[
    "message_size",
    "mime_depth",
    "mime_parts",
    "archive_depth",
    "archive_entries",
    "expanded_bytes",
    "expansion_ratio",
    "pdf_timeout",
];

/// Extensions of archive formats: an archive that could not be opened at all
/// (`extract_failed`) may hide anything, unlike a document whose text could not
/// be read.
const ARCHIVE_EXTENSIONS: &[&str] = &[
    "zip", "rar", "7z", "gz", "tgz", "bz2", "xz", "tar", "cab", "arj", "lzh", "ace", "zipx",
];

/// The banned-attachment detector.
#[derive(Debug)]
pub struct BannedAttachments {
    /// Executables and scripts.
    banned: HashSet<String>,
    /// Macro-enabled Office types.
    macro_enabled: HashSet<String>,
    /// Extensions that make a name look harmless in front of a banned one.
    document: HashSet<String>,
}

/// Which list a rule-file line goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Banned,
    Macro,
    Document,
}

impl BannedAttachments {
    /// Load `banned_attachments.txt`. A malformed line is an error naming the file,
    /// the line and the rule.
    pub fn new(rules: &RuleSource) -> Result<BannedAttachments, RulesError> {
        let file = rules.load(RULES_FILE)?;
        let this = Self::parse(&file)?;
        tracing::debug!(
            banned = this.banned.len(),
            macro_enabled = this.macro_enabled.len(),
            document = this.document.len(),
            "banned_attachment rules loaded"
        );
        Ok(this)
    }

    fn parse(file: &RuleFile) -> Result<BannedAttachments, RulesError> {
        let mut this = BannedAttachments {
            banned: HashSet::new(),
            macro_enabled: HashSet::new(),
            document: HashSet::new(),
        };
        // Lines before any section header are banned extensions (the simplest file
        // is just a list of extensions).
        let mut section = Section::Banned;
        let mut seen: HashMap<String, (Section, usize)> = HashMap::new();
        for (line, text) in file.lines() {
            if let Some(inner) = text.strip_prefix('[') {
                let Some(name) = inner.strip_suffix(']') else {
                    return Err(file.invalid(line, text, "a section header is `[name]`"));
                };
                section = match name.trim().to_ascii_lowercase().as_str() {
                    "banned" => Section::Banned,
                    "macro" => Section::Macro,
                    "document" => Section::Document,
                    _ => {
                        return Err(file.invalid(
                            line,
                            text,
                            "unknown section (known: [banned], [macro], [document])",
                        ));
                    }
                };
                continue;
            }
            let ext = text.trim_start_matches("*.").trim_start_matches('.');
            let ext = ext.to_lowercase();
            if ext.is_empty()
                || !ext
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            {
                return Err(file.invalid(
                    line,
                    text,
                    "an extension is letters, digits, `-` or `_` only, e.g. `exe` (no spaces, dots inside, or wildcards)",
                ));
            }
            if let Some(&(other, other_line)) = seen.get(&ext)
                && other != section
            {
                return Err(file.invalid(
                    line,
                    text,
                    format!(
                        "`{ext}` is already in another section (line {other_line}); an extension belongs to one list"
                    ),
                ));
            }
            seen.insert(ext.clone(), (section, line));
            match section {
                Section::Banned => this.banned.insert(ext),
                Section::Macro => this.macro_enabled.insert(ext),
                Section::Document => this.document.insert(ext),
            };
        }
        Ok(this)
    }

    /// The one finding (if any) for a single part, apart from encryption.
    fn judge_part(&self, part: &Part) -> Option<Finding> {
        let display = display_name(part);
        let name = part.name.as_deref().map(FileName::parse);

        if let Some(n) = &name
            && let Some(last) = n.last.as_deref()
        {
            if self.banned.contains(last) {
                let double = n
                    .previous
                    .as_deref()
                    .is_some_and(|p| self.document.contains(p));
                let rule = if double {
                    "double_extension"
                } else {
                    "extension"
                };
                return Some(finding(rule, part, display, Severity::High, 1.0));
            }
            if self.macro_enabled.contains(last) {
                let confidence = if part.facts.macros { 1.0 } else { 0.9 };
                return Some(finding("macros", part, display, Severity::High, confidence));
            }
        }

        if let Some(kind) = executable_kind(part) {
            let evidence = format!("{display} ({})", kind_label(kind));
            return Some(finding("executable", part, evidence, Severity::High, 0.95));
        }

        if part.facts.macros {
            let evidence = format!("{display} (VBA macros)");
            return Some(finding("macros", part, evidence, Severity::High, 1.0));
        }
        None
    }

    /// One `encrypted_archive` finding per archive with encrypted content.
    fn encrypted_archives(&self, parts: &[Part], out: &mut Vec<Finding>) {
        // container location → (container part, encrypted entries)
        let mut groups: BTreeMap<&str, (&Part, u32)> = BTreeMap::new();
        for part in parts {
            if !matches!(
                part.facts.encrypted,
                Some(Encryption::ZipEntry | Encryption::Archive)
            ) {
                continue;
            }
            let container = if part.facts.archive {
                part
            } else {
                container_of(parts, part).unwrap_or(part)
            };
            let entry = groups
                .entry(container.location.as_str())
                .or_insert((container, 0));
            if !std::ptr::eq(part, container) || part.facts.encrypted == Some(Encryption::Archive) {
                entry.1 += 1;
            }
        }
        for (_, (container, entries)) in groups {
            let display = display_name(container);
            let evidence = if entries > 1 {
                format!("{display} (password-protected, {entries} entries)")
            } else {
                format!("{display} (password-protected)")
            };
            out.push(
                finding(
                    "encrypted_archive",
                    container,
                    evidence,
                    Severity::Medium,
                    0.95,
                )
                .with_count(entries.max(1)),
            );
        }
    }

    /// Limits that left part of an attachment unchecked, one finding per location.
    fn unscannable(&self, parts: &[Part], limits: &[LimitHit], out: &mut Vec<Finding>) {
        let mut seen: HashSet<&str> = HashSet::new();
        for hit in limits {
            let counts = UNSCANNABLE_LIMITS.contains(&hit.limit)
                || (hit.limit == "extract_failed" && is_archive_location(parts, &hit.location));
            if !counts || !seen.insert(hit.location.as_str()) {
                continue;
            }
            tracing::debug!(location = %hit.location, limit = hit.limit, "attachment not fully scanned");
            let name = parts
                .iter()
                .find(|p| p.location == hit.location)
                .map(display_name)
                .unwrap_or_else(|| last_component(&hit.location).to_string());
            out.push(
                Finding::new(
                    Category::BannedAttachment,
                    "banned_attachment/unscannable",
                    hit.location.clone(),
                    format!("{name} ({} limit reached)", hit.limit.replace('_', " ")),
                    Severity::High,
                )
                .with_confidence(0.8),
            );
        }
    }
}

impl Detector for BannedAttachments {
    fn name(&self) -> &'static str {
        "banned_attachment"
    }

    fn inspect(&self, ctx: &ScanContext<'_>, out: &mut Vec<Finding>) -> Result<(), DetectError> {
        let parts = &ctx.message.parts;
        for part in parts {
            if let Some(f) = self.judge_part(part) {
                tracing::debug!(location = %f.location, rule = %f.rule, "banned attachment");
                out.push(f);
            }
        }
        self.encrypted_archives(parts, out);
        self.unscannable(parts, &ctx.message.limits_hit, out);
        Ok(())
    }
}

fn finding(
    rule: &str,
    part: &Part,
    evidence: String,
    severity: Severity,
    confidence: f32,
) -> Finding {
    Finding::new(
        Category::BannedAttachment,
        format!("banned_attachment/{rule}"),
        part.location.clone(),
        evidence,
        severity,
    )
    .with_confidence(confidence)
}

/// The extensions of a file name as Windows would read them.
#[derive(Debug, PartialEq)]
struct FileName {
    /// Last extension, lower case (`exe` in `report.pdf.exe`).
    last: Option<String>,
    /// The extension before it (`pdf`).
    previous: Option<String>,
}

impl FileName {
    /// Parse a declared or archive-entry name: directories dropped, invisible
    /// characters removed (a right-to-left override can make `invoice<U+202E>fdp.exe`
    /// display as `invoiceexe.pdf`), and trailing dots and spaces stripped the way
    /// Windows strips them (`setup.exe.` runs as `setup.exe`).
    fn parse(name: &str) -> FileName {
        let cleaned: String = name.chars().filter(|c| !is_invisible(*c)).collect();
        let base = cleaned
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&cleaned)
            .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
            .trim_start();
        let mut pieces = base.rsplit('.');
        let last_piece = pieces.next();
        let previous_piece = pieces.next();
        // No dot at all: `pieces` yielded only the whole name.
        let Some(previous_piece) = previous_piece else {
            return FileName {
                last: None,
                previous: None,
            };
        };
        let ext = |s: &str| {
            let s = s.trim().to_lowercase();
            (!s.is_empty()).then_some(s)
        };
        let last = last_piece.and_then(ext);
        // `.profile` has a last extension but nothing in front of it to disguise it.
        let previous = pieces.next().and(ext(previous_piece));
        FileName { last, previous }
    }
}

/// Characters that change how a name is displayed without being visible:
/// bidirectional controls, zero-width characters, other control characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    ) || c.is_control()
}

/// Name for evidence: the declared or entry name, else the end of the location.
fn display_name(part: &Part) -> String {
    match part
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(n) => n.chars().filter(|c| !is_invisible(*c)).collect(),
        None => last_component(&part.location).to_string(),
    }
}

fn last_component(location: &str) -> &str {
    let l = location.strip_prefix("attachment:").unwrap_or(location);
    l.rsplit('/').next().unwrap_or(l)
}

/// The nearest archive the part is a member of: the archive part whose location
/// is the longest `location/` prefix of this part's location. (Member paths can
/// contain `/` themselves, so the parent cannot be found by cutting the string.)
fn container_of<'a>(parts: &'a [Part], part: &Part) -> Option<&'a Part> {
    parts
        .iter()
        .filter(|p| p.facts.archive && !std::ptr::eq(*p, part))
        .filter(|p| {
            part.location
                .strip_prefix(p.location.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|p| p.location.len())
}

/// Is the part at `location` an archive (by listing, sniffed type, declared type or name)?
fn is_archive_location(parts: &[Part], location: &str) -> bool {
    let by_name = |name: &str| {
        FileName::parse(name)
            .last
            .is_some_and(|e| ARCHIVE_EXTENSIONS.contains(&e.as_str()))
    };
    match parts.iter().find(|p| p.location == location) {
        Some(p) => {
            let ty = |t: &str| {
                t.contains("zip")
                    || t.contains("rar")
                    || t.contains("7z")
                    || t.contains("x-tar")
                    || t.contains("gzip")
                    || t.contains("cab")
            };
            p.facts.archive
                || p.sniffed_type.is_some_and(ty)
                || p.declared_type.as_deref().is_some_and(ty)
                || p.name.as_deref().is_some_and(by_name)
        }
        None => by_name(last_component(location)),
    }
}

/// The executable format of a part: the extractor's finding, double-checked for
/// PE (a text file starting with "MZ" is not a program), or our own sniffing when
/// the extractor did not say.
fn executable_kind(part: &Part) -> Option<ExecutableKind> {
    let data: &[u8] = &part.data;
    match part.facts.executable {
        Some(ExecutableKind::Pe) if data.starts_with(b"MZ") && !is_pe(data) => {
            tracing::debug!(location = %part.location, "MZ without a PE header: not a program");
            None
        }
        Some(kind) => Some(kind),
        None => sniff_executable(data),
    }
}

fn sniff_executable(data: &[u8]) -> Option<ExecutableKind> {
    if is_pe(data) {
        Some(ExecutableKind::Pe)
    } else if data.len() >= 16
        && data.starts_with(b"\x7fELF")
        && matches!(data[4], 1 | 2)
        && matches!(data[5], 1 | 2)
    {
        Some(ExecutableKind::Elf)
    } else if [
        [0xFE, 0xED, 0xFA, 0xCE],
        [0xFE, 0xED, 0xFA, 0xCF],
        [0xCE, 0xFA, 0xED, 0xFE],
        [0xCF, 0xFA, 0xED, 0xFE],
    ]
    .iter()
    .any(|m| data.len() >= 28 && data.starts_with(m))
    {
        Some(ExecutableKind::MachO)
    } else {
        None
    }
}

/// `MZ` DOS header whose `e_lfanew` (offset 0x3C) points at a `PE\0\0` signature.
fn is_pe(data: &[u8]) -> bool {
    if data.len() < 0x40 || !data.starts_with(b"MZ") {
        return false;
    }
    let Some(raw) = data.get(0x3C..0x40) else {
        return false;
    };
    let offset = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    offset >= 4
        && offset
            .checked_add(4)
            .and_then(|end| data.get(offset..end))
            .is_some_and(|sig| sig == b"PE\0\0")
}

fn kind_label(kind: ExecutableKind) -> &'static str {
    match kind {
        ExecutableKind::Pe => "Windows program",
        ExecutableKind::Elf => "Linux program",
        ExecutableKind::MachO => "macOS program",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::message::{Envelope, PartFacts, ScannedMessage};
    use crate::sender::{self, SchoolDomains};
    use std::borrow::Cow;
    use std::sync::Arc;

    fn detector() -> BannedAttachments {
        BannedAttachments::new(&RuleSource::embedded()).unwrap()
    }

    fn part(name: &str, data: &[u8]) -> Part {
        Part {
            location: format!("attachment:{name}"),
            name: Some(name.to_string()),
            declared_type: Some("application/octet-stream".into()),
            sniffed_type: None,
            is_attachment: true,
            archive_depth: 0,
            facts: PartFacts::default(),
            data: Arc::from(data),
        }
    }

    fn member(archive: &Part, path: &str, data: &[u8]) -> Part {
        Part {
            location: format!("{}/{path}", archive.location),
            name: Some(path.to_string()),
            declared_type: None,
            archive_depth: archive.archive_depth + 1,
            ..part(path, data)
        }
    }

    fn archive(name: &str) -> Part {
        let mut p = part(name, b"PK\x03\x04");
        p.facts.archive = true;
        p
    }

    /// A minimal valid PE: MZ, e_lfanew = 0x40, PE signature there.
    fn pe_bytes() -> Vec<u8> {
        let mut d = vec![0u8; 0x80];
        d[0] = b'M';
        d[1] = b'Z';
        d[0x3C] = 0x40;
        d[0x40..0x44].copy_from_slice(b"PE\0\0");
        d
    }

    fn scan_with(d: &BannedAttachments, parts: Vec<Part>, limits: Vec<LimitHit>) -> Vec<Finding> {
        let config = Config::default();
        let domains = SchoolDomains::new(&config);
        let msg = ScannedMessage {
            parts,
            limits_hit: limits,
            ..ScannedMessage::default()
        };
        let envelope = Envelope::default();
        let identity = sender::identify(&config, &domains, &envelope, &msg);
        let ctx = ScanContext {
            envelope: &envelope,
            message: &msg,
            identity: &identity,
            domains: &domains,
            config: &config,
        };
        let mut out = Vec::new();
        d.inspect(&ctx, &mut out).unwrap();
        for f in &out {
            assert_eq!(f.category, Category::BannedAttachment);
        }
        out
    }

    fn scan(parts: Vec<Part>) -> Vec<Finding> {
        scan_with(&detector(), parts, Vec::new())
    }

    fn rules_of(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.rule.as_str()).collect()
    }

    fn rules_file(text: &str) -> RuleFile {
        RuleFile {
            origin: "rules/banned_attachments.txt".into(),
            text: Cow::Owned(text.to_string()),
        }
    }

    // --- extension

    #[test]
    fn banned_extensions_any_case() {
        for name in [
            "setup.exe",
            "screensaver.SCR",
            "map_drives.bat",
            "hello.vbs",
            "cleanup.ps1",
            "update.js",
            "tool.Jar",
            "installer.msi",
            "shortcut.lnk",
            "page.HTA",
            "job.wsf",
            "run.cmd",
            "eicar.com",
        ] {
            let f = scan(vec![part(name, b"harmless stub")]);
            assert_eq!(rules_of(&f), ["banned_attachment/extension"], "{name}");
            assert_eq!(f[0].severity, Severity::High);
            assert_eq!(f[0].evidence, name);
            assert_eq!(f[0].location, format!("attachment:{name}"));
        }
    }

    #[test]
    fn ordinary_attachments_are_fine() {
        for name in [
            "Trip letter.pdf",
            "minutes.docx",
            "budget.xlsx",
            "photo.JPG",
            "logo.png",
            "parents evening.ics",
            "config.json",
            "notes.txt",
            "Executive summary.pdf",
            "exe.pdf",
            "setup.exe.pdf",
            "README",
            "archive.jsx.zip",
            "data.xlsb",
        ] {
            let f = scan(vec![part(name, b"%PDF-1.7 or other ordinary content")]);
            assert!(f.is_empty(), "{name}: {f:?}");
        }
    }

    #[test]
    fn only_the_last_extension_counts() {
        assert!(scan(vec![part("config.json", b"{}")]).is_empty());
        assert_eq!(
            rules_of(&scan(vec![part("config.json.js", b"x")])),
            ["banned_attachment/extension"]
        );
    }

    #[test]
    fn trailing_dots_spaces_and_invisible_characters_do_not_hide_an_extension() {
        for name in [
            "setup.exe.",
            "setup.exe  ",
            "setup.exe . ",
            "invoice\u{202E}fdp.exe",
            "set\u{200B}up.e\u{200B}xe",
            "folder\\sub\\setup.exe",
        ] {
            let f = scan(vec![part(name, b"stub")]);
            assert_eq!(rules_of(&f), ["banned_attachment/extension"], "{name:?}");
        }
        // The evidence shows the name without the right-to-left override.
        let f = scan(vec![part("invoice\u{202E}fdp.exe", b"stub")]);
        assert_eq!(f[0].evidence, "invoicefdp.exe");
    }

    // --- double_extension

    #[test]
    fn document_extension_before_a_banned_one_is_a_double_extension() {
        for name in [
            "report.pdf.exe",
            "Report.PDF.EXE",
            "holiday.jpg.scr",
            "minutes.docx .js",
            "invoice.pdf.exe.",
            "notes.txt.vbs",
        ] {
            let mut p = part(name, b"stub");
            p.declared_type = Some("application/pdf".into());
            let f = scan(vec![p]);
            assert_eq!(
                rules_of(&f),
                ["banned_attachment/double_extension"],
                "{name:?}"
            );
        }
        // A version number in front is not a disguise.
        assert_eq!(
            rules_of(&scan(vec![part("setup.v2.exe", b"stub")])),
            ["banned_attachment/extension"]
        );
        // A dotfile has nothing in front of its extension.
        assert!(FileName::parse(".exe").previous.is_none());
    }

    // --- executable

    #[test]
    fn pe_under_any_name_is_an_executable() {
        for name in ["scan.pdf", "holiday.jpg", "noextension"] {
            let mut p = part(name, &pe_bytes());
            p.facts.executable = Some(ExecutableKind::Pe);
            let f = scan(vec![p]);
            assert_eq!(rules_of(&f), ["banned_attachment/executable"], "{name}");
            assert!(f[0].evidence.starts_with(name));
            assert!(f[0].evidence.contains("Windows program"));
        }
    }

    #[test]
    fn pe_is_sniffed_when_the_extractor_did_not_say() {
        let f = scan(vec![part("scan.pdf", &pe_bytes())]);
        assert_eq!(rules_of(&f), ["banned_attachment/executable"]);
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        assert_eq!(
            rules_of(&scan(vec![part("notes.txt", &elf)])),
            ["banned_attachment/executable"]
        );
    }

    #[test]
    fn text_starting_with_mz_is_not_an_executable() {
        let csv =
            b"MZ,Mozambique\nMW,Malawi\nMY,Malaysia\nMX,Mexico\nMV,Maldives\nML,Mali\nMT,Malta\n";
        assert!(scan(vec![part("country_codes.csv", csv)]).is_empty());
        // Even if an extractor were to flag it on "MZ" alone, the missing PE header wins.
        let mut p = part("country_codes.csv", csv);
        p.facts.executable = Some(ExecutableKind::Pe);
        assert!(scan(vec![p]).is_empty());
        // An e_lfanew pointing past the end is not a PE either.
        let mut d = pe_bytes();
        d[0x3C] = 0xFF;
        d[0x3D] = 0xFF;
        assert!(scan(vec![part("x.bin.txt", &d)]).is_empty());
    }

    #[test]
    fn executable_in_a_body_part_is_reported() {
        let mut p = part("body", &pe_bytes());
        p.name = None;
        p.is_attachment = false;
        p.location = "body".into();
        let f = scan(vec![p]);
        assert_eq!(rules_of(&f), ["banned_attachment/executable"]);
        assert_eq!(f[0].location, "body");
    }

    // --- archives

    #[test]
    fn executable_inside_a_zip_reports_the_member_only() {
        let zip = archive("game.zip");
        let exe = member(&zip, "bin/setup.exe", &pe_bytes());
        let readme = member(&zip, "readme.txt", b"have fun");
        let f = scan(vec![zip, exe, readme]);
        assert_eq!(rules_of(&f), ["banned_attachment/extension"]);
        assert_eq!(f[0].location, "attachment:game.zip/bin/setup.exe");
    }

    #[test]
    fn executable_in_a_nested_zip_is_found() {
        let outer = archive("outer.zip");
        let mut inner = member(&outer, "inner.zip", b"PK\x03\x04");
        inner.facts.archive = true;
        let mut exe = member(&inner, "photo.jpg", &pe_bytes());
        exe.facts.executable = Some(ExecutableKind::Pe);
        let f = scan(vec![outer, inner, exe]);
        assert_eq!(rules_of(&f), ["banned_attachment/executable"]);
        assert_eq!(f[0].location, "attachment:outer.zip/inner.zip/photo.jpg");
    }

    #[test]
    fn zip_of_pdfs_is_fine() {
        let zip = archive("reports.zip");
        let a = member(&zip, "Term 1.pdf", b"%PDF-1.7");
        let b = member(&zip, "Term 2.pdf", b"%PDF-1.7");
        assert!(scan(vec![zip, a, b]).is_empty());
    }

    // --- macros

    #[test]
    fn office_files_with_macros_are_reported() {
        let mut docx = part("Report.docx", b"PK\x03\x04");
        docx.facts.macros = true;
        let f = scan(vec![docx]);
        assert_eq!(rules_of(&f), ["banned_attachment/macros"]);
        assert!(f[0].evidence.contains("Report.docx"));
        for name in [
            "Letter template.docm",
            "Budget tracker.XLSM",
            "deck.pptm",
            "addin.xlam",
        ] {
            let f = scan(vec![part(name, b"PK\x03\x04")]);
            assert_eq!(rules_of(&f), ["banned_attachment/macros"], "{name}");
        }
        let mut xls = part("old.xls", b"\xD0\xCF\x11\xE0");
        xls.facts.macros = true;
        assert_eq!(rules_of(&scan(vec![xls])), ["banned_attachment/macros"]);
    }

    #[test]
    fn office_files_without_macros_are_fine() {
        assert!(
            scan(vec![
                part("minutes.docx", b"PK\x03\x04"),
                part("fixtures.xlsx", b"PK\x03\x04")
            ])
            .is_empty()
        );
    }

    // --- encrypted

    #[test]
    fn password_protected_zip_is_one_encrypted_archive_finding() {
        let zip = archive("Medical_list.zip");
        let mut a = member(&zip, "list.xlsx", b"");
        a.facts.encrypted = Some(Encryption::ZipEntry);
        let mut b = member(&zip, "notes.docx", b"");
        b.facts.encrypted = Some(Encryption::ZipEntry);
        let f = scan(vec![zip, a, b]);
        assert_eq!(rules_of(&f), ["banned_attachment/encrypted_archive"]);
        assert_eq!(f[0].location, "attachment:Medical_list.zip");
        assert_eq!(f[0].severity, Severity::Medium);
        assert_eq!(f[0].count, 2);
        assert!(f[0].evidence.starts_with("Medical_list.zip"));
    }

    #[test]
    fn encrypted_archive_flagged_on_the_container_itself() {
        let mut rar = part("secure.rar", b"Rar!");
        rar.facts.encrypted = Some(Encryption::Archive);
        let f = scan(vec![rar]);
        assert_eq!(rules_of(&f), ["banned_attachment/encrypted_archive"]);
        let mut zip = archive("secure.zip");
        zip.facts.encrypted = Some(Encryption::ZipEntry);
        assert_eq!(
            rules_of(&scan(vec![zip])),
            ["banned_attachment/encrypted_archive"]
        );
    }

    #[test]
    fn banned_name_inside_an_encrypted_zip_is_still_reported() {
        let zip = archive("secure.zip");
        let mut exe = member(&zip, "eicar.com", b"");
        exe.facts.encrypted = Some(Encryption::ZipEntry);
        let mut rules = rules_of(&scan(vec![zip, exe]))
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        rules.sort();
        assert_eq!(
            rules,
            [
                "banned_attachment/encrypted_archive",
                "banned_attachment/extension"
            ]
        );
    }

    #[test]
    fn encrypted_documents_and_messages_are_not_banned() {
        let mut docx = part("pupils.docx", b"\xD0\xCF\x11\xE0");
        docx.facts.encrypted = Some(Encryption::Office);
        let mut xlsx = part("pupils.xlsx", b"\xD0\xCF\x11\xE0");
        xlsx.facts.encrypted = Some(Encryption::Office);
        let mut pdf = part("pupils.pdf", b"%PDF-1.7");
        pdf.facts.encrypted = Some(Encryption::Pdf);
        let mut smime = part("smime.p7m", b"0\x82");
        smime.facts.encrypted = Some(Encryption::Smime);
        let mut pgp = part("encrypted.asc", b"-----BEGIN PGP MESSAGE-----");
        pgp.facts.encrypted = Some(Encryption::Pgp);
        assert!(scan(vec![docx, xlsx, pdf, smime, pgp]).is_empty());
        // An encrypted docx inside a plain zip is fine too.
        let zip = archive("reports.zip");
        let mut inner = member(&zip, "pupils.docx", b"");
        inner.facts.encrypted = Some(Encryption::Office);
        assert!(scan(vec![zip, inner]).is_empty());
    }

    // --- unscannable

    #[test]
    fn limits_on_attachments_are_unscannable() {
        let zip = archive("bomb.zip");
        let hit = |limit: &'static str| LimitHit {
            location: "attachment:bomb.zip".into(),
            limit,
            detail: "limit".into(),
        };
        for limit in UNSCANNABLE_LIMITS {
            let f = scan_with(&detector(), vec![zip.clone()], vec![hit(limit)]);
            assert_eq!(rules_of(&f), ["banned_attachment/unscannable"], "{limit}");
            assert_eq!(f[0].location, "attachment:bomb.zip");
            assert!(f[0].evidence.starts_with("bomb.zip"));
        }
        // Several limits at one place: one finding.
        let f = scan_with(
            &detector(),
            vec![zip.clone()],
            vec![hit("expansion_ratio"), hit("expanded_bytes")],
        );
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn failed_archive_is_unscannable_but_failed_document_is_not() {
        let failed = |location: &str| LimitHit {
            location: location.into(),
            limit: "extract_failed",
            detail: "corrupt".into(),
        };
        let zip = part("photos.zip", b"PK\x03\x04broken");
        let f = scan_with(
            &detector(),
            vec![zip],
            vec![failed("attachment:photos.zip")],
        );
        assert_eq!(rules_of(&f), ["banned_attachment/unscannable"]);
        let pdf = part("menu.pdf", b"%PDF-broken");
        assert!(scan_with(&detector(), vec![pdf], vec![failed("attachment:menu.pdf")]).is_empty());
        // Text limits are not about attachments being unchecked for programs.
        let hit = LimitHit {
            location: "body".into(),
            limit: "text_per_part",
            detail: "x".into(),
        };
        assert!(scan_with(&detector(), vec![], vec![hit]).is_empty());
    }

    // --- one finding per part

    #[test]
    fn one_finding_per_part() {
        let mut p = part("report.pdf.exe", &pe_bytes());
        p.facts.executable = Some(ExecutableKind::Pe);
        let f = scan(vec![p]);
        assert_eq!(rules_of(&f), ["banned_attachment/double_extension"]);
    }

    // --- rule file

    #[test]
    fn shipped_rules_cover_the_policy_list() {
        let d = detector();
        for ext in [
            "exe", "scr", "com", "bat", "cmd", "js", "vbs", "ps1", "jar", "msi", "lnk", "hta",
            "wsf",
        ] {
            assert!(d.banned.contains(ext), "{ext}");
        }
        for ext in ["docm", "xlsm", "pptm", "dotm", "xltm", "potm", "ppsm"] {
            assert!(d.macro_enabled.contains(ext), "{ext}");
        }
        for ext in ["pdf", "doc", "docx", "jpg", "txt"] {
            assert!(d.document.contains(ext), "{ext}");
        }
        for ext in ["json", "pdf", "xlsb", "zip", "ics", "bin"] {
            assert!(!d.banned.contains(ext), "{ext}");
        }
    }

    #[test]
    fn plain_list_without_sections_is_banned_extensions() {
        let d = BannedAttachments::parse(&rules_file("# mine\n.EXE\n*.scr\nmsi\n")).unwrap();
        assert_eq!(d.banned.len(), 3);
        assert!(d.banned.contains("exe") && d.banned.contains("scr"));
    }

    #[test]
    fn bad_rule_lines_name_file_line_and_rule() {
        for (text, line, rule) in [
            ("exe\npdf exe\n", 2, "pdf exe"),
            ("[banned]\nexe\n[scripts]\n", 3, "[scripts]"),
            ("[banned\n", 1, "[banned"),
            ("exe\n*\n", 2, "*"),
            ("exe\n[document]\nexe\n", 3, "exe"),
            ("tar.gz\n", 1, "tar.gz"),
        ] {
            let err = BannedAttachments::parse(&rules_file(text))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!(
                    "rules/banned_attachments.txt:{line}: rule `{rule}`"
                )),
                "{text:?}: {err}"
            );
        }
    }
}
