//! `hallmonitor scan --json` on the fixture messages (fixtures/mail/, made by
//! fixtures/make_mail.py), through the real binary and a real clamd that knows
//! only our test signatures. Each test is what a head teacher or the ICT
//! technician would notice: a virus held, a clean message passed untouched,
//! a password-protected zip held as unscannable and not called a virus.

mod common;

use common::{EICAR_RULE, Env, scan, set};

const PARENT: &str = "helen.okafor@example.com";
const TEACHER: &str = "d.price@oakfield.sch.uk";

// ---------------------------------------------------------------- clean mail

#[test]
fn clean_text_passes_with_no_findings() {
    let s = scan("clean-text.eml", &Env::internal(TEACHER));
    assert!(s.findings().is_empty(), "{}", s.explain());
    assert_eq!(s.action(), "pass", "{}", s.explain());
}

#[test]
fn clean_html_newsletter_passes() {
    let s = scan(
        "clean-html.eml",
        &Env::internal("newsletter@oakfield.sch.uk").to("parents@oakfield.sch.uk"),
    );
    assert!(s.findings().is_empty(), "{}", s.explain());
    assert_eq!(s.action(), "pass");
}

#[test]
fn pupil_to_pupil_homework_question_passes() {
    let s = scan(
        "pupil-clean.eml",
        &Env::internal("ava.brown@pupils.oakfield.sch.uk").to("leo.patel@pupils.oakfield.sch.uk"),
    );
    assert!(s.findings().is_empty(), "{}", s.explain());
    assert_eq!(s.action(), "pass");
}

#[test]
fn pta_friends_of_sender_is_not_anonymous() {
    let s = scan(
        "pta-friends.eml",
        &Env::inbound("friendsofoakfield@example.com").to("parents@oakfield.sch.uk"),
    );
    assert!(s.findings().is_empty(), "{}", s.explain());
    assert_eq!(s.action(), "pass");
}

// ---------------------------------------------------------------- viruses

/// Assert the message is a virus (our EICAR signature) and nothing else, held.
fn assert_eicar_only(name: &str) -> common::Scan {
    let s = scan(name, &Env::inbound(PARENT));
    assert_eq!(s.categories(), set(&["virus"]), "{name}: {}", s.explain());
    assert!(s.has_rule(EICAR_RULE), "{name}: {}", s.explain());
    assert_eq!(s.action(), "quarantine", "{name}: {}", s.explain());
    for f in s.in_category("virus") {
        assert_eq!(f["evidence"], "Hallmonitor.Test.EICAR", "{f}");
        assert_eq!(f["severity"], "critical", "{f}");
    }
    s
}

#[test]
fn eicar_attached_as_pdf_is_a_virus_at_that_attachment() {
    let s = assert_eicar_only("eicar-pdf-base64.eml");
    let v = s.in_category("virus");
    assert_eq!(v.len(), 1, "{}", s.explain());
    assert!(
        v[0]["location"]
            .as_str()
            .unwrap()
            .contains("PTA minutes March.pdf"),
        "{}",
        s.explain()
    );
}

#[test]
fn eicar_as_7bit_text_attachment_is_a_virus() {
    assert_eicar_only("eicar-7bit-text.eml");
}

#[test]
fn eicar_quoted_printable_with_soft_breaks_is_a_virus() {
    assert_eicar_only("eicar-qp.eml");
}

#[test]
fn eicar_inside_a_zip_is_one_virus() {
    let s = assert_eicar_only("eicar-zip.eml");
    assert_eq!(s.in_category("virus").len(), 1, "{}", s.explain());
    let loc = s.in_category("virus")[0]["location"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(loc.contains("sports-day.zip"), "{loc}");
}

#[test]
fn eicar_in_a_zip_in_a_zip_is_reported_once() {
    let s = assert_eicar_only("eicar-zip-in-zip.eml");
    let v = s.in_category("virus");
    assert_eq!(
        v.len(),
        1,
        "the outer zip, inner zip and member are one infection: {}",
        s.explain()
    );
    assert!(
        v[0]["location"].as_str().unwrap().contains("clubs.zip"),
        "{}",
        s.explain()
    );
}

/// Needs extraction to list the members of archives (deepest location).
#[test]
fn eicar_in_nested_zip_is_located_at_the_member() {
    let s = assert_eicar_only("eicar-zip-in-zip.eml");
    let loc = s.in_category("virus")[0]["location"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        loc.contains("autumn.zip") && loc.contains("timetable.txt"),
        "expected the innermost file, got {loc}"
    );
}

#[test]
fn eicar_in_a_zip_in_a_forwarded_message_is_a_virus() {
    assert_eicar_only("eicar-forwarded-zip.eml");
}

#[test]
fn a_message_that_quotes_part_of_eicar_is_not_a_virus() {
    let s = scan(
        "eicar-mention.eml",
        &Env::internal("s.lin@oakfield.sch.uk").to("ict@oakfield.sch.uk"),
    );
    assert!(!s.has_category("virus"), "{}", s.explain());
    assert!(s.findings().is_empty(), "{}", s.explain());
    assert_eq!(s.action(), "pass");
}

#[test]
fn eicar_named_com_is_a_virus_and_a_banned_attachment() {
    let s = scan("eicar-com.eml", &Env::inbound("jsmith1984@example.net"));
    assert_eq!(
        s.categories(),
        set(&["virus", "banned_attachment"]),
        "{}",
        s.explain()
    );
    assert_eq!(s.action(), "quarantine");
}

// ---------------------------------------------------------------- encrypted archives

#[test]
fn zipcrypto_zip_hiding_eicar_is_banned_never_a_virus() {
    let s = scan(
        "zipcrypto-eicar.eml",
        &Env::inbound("tracking@parcels.example.net"),
    );
    assert!(!s.has_category("virus"), "{}", s.explain());
    assert!(
        s.has_rule("banned_attachment/encrypted_archive"),
        "{}",
        s.explain()
    );
    assert_eq!(
        s.categories(),
        set(&["banned_attachment"]),
        "{}",
        s.explain()
    );
    assert_eq!(s.action(), "quarantine", "{}", s.explain());
}

#[test]
fn staff_sending_an_encrypted_zip_out_is_tagged_not_held() {
    let s = scan(
        "zipcrypto-staff.eml",
        &Env::outbound(TEACHER, "admissions@college.example.ac.uk"),
    );
    assert!(
        s.has_rule("banned_attachment/encrypted_archive"),
        "{}",
        s.explain()
    );
    // Encrypted is how pupil data should travel: not a personal-data breach.
    assert_eq!(
        s.categories(),
        set(&["banned_attachment"]),
        "{}",
        s.explain()
    );
    assert_eq!(s.action(), "tag", "{}", s.explain());
}

#[test]
fn aes_zip_is_tagged_from_staff_and_held_from_outside() {
    let out = scan(
        "aes-zip.eml",
        &Env::outbound(TEACHER, "admissions@college.example.ac.uk"),
    );
    assert_eq!(
        out.categories(),
        set(&["banned_attachment"]),
        "{}",
        out.explain()
    );
    assert!(
        out.has_rule("banned_attachment/encrypted_archive"),
        "{}",
        out.explain()
    );
    assert_eq!(out.action(), "tag", "{}", out.explain());

    // The same zip arriving from the internet (with a school From, so it is also
    // an impersonation) is held.
    let inbound = scan("aes-zip.eml", &Env::inbound("someone@example.net"));
    assert!(
        inbound.has_rule("banned_attachment/encrypted_archive"),
        "{}",
        inbound.explain()
    );
    assert!(
        !inbound.has_category("personal_data"),
        "{}",
        inbound.explain()
    );
    assert!(!inbound.has_category("virus"), "{}", inbound.explain());
    assert_eq!(inbound.action(), "quarantine", "{}", inbound.explain());
}

#[test]
fn encrypted_pdf_and_xlsx_sent_out_are_compliant() {
    let s = scan(
        "encrypted-documents.eml",
        &Env::outbound(TEACHER, "admissions@college.example.ac.uk"),
    );
    assert!(s.findings().is_empty(), "{}", s.explain());
    assert_eq!(s.action(), "pass");
}

// ---------------------------------------------------------------- banned attachments

fn assert_banned_only(name: &str, from: &str) {
    let s = scan(name, &Env::inbound(from));
    assert_eq!(
        s.categories(),
        set(&["banned_attachment"]),
        "{name}: {}",
        s.explain()
    );
    assert_eq!(s.action(), "quarantine", "{name}: {}", s.explain());
}

#[test]
fn exe_attachment_is_banned() {
    assert_banned_only("exe-attachment.eml", "support@printers.example.co.uk");
}

#[test]
fn scr_attachment_is_banned() {
    assert_banned_only("scr-attachment.eml", PARENT);
}

#[test]
fn js_attachment_is_banned() {
    assert_banned_only("js-attachment.eml", "accounts@supplies.example.com");
}

#[test]
fn windows_program_renamed_jpg_is_banned() {
    assert_banned_only("pe-as-jpg.eml", PARENT);
}

#[test]
fn double_extension_pdf_exe_is_banned() {
    assert_banned_only("double-extension.eml", "notices@inspections.example.org");
}

/// Needs extraction to list archive members.
#[test]
fn exe_inside_a_zip_is_banned() {
    assert_banned_only("exe-in-zip.eml", "sam.okafor.07@example.com");
}

/// Needs extraction to list members of nested archives.
#[test]
fn exe_inside_a_nested_zip_is_banned() {
    assert_banned_only("exe-in-nested-zip.eml", "sam.okafor.07@example.com");
}

#[test]
fn macro_enabled_docm_is_banned() {
    let s = scan("docm-macro.eml", &Env::internal(TEACHER));
    assert_eq!(
        s.categories(),
        set(&["banned_attachment"]),
        "{}",
        s.explain()
    );
}

#[test]
fn docx_carrying_vba_project_is_banned() {
    let s = scan("docx-with-vba.eml", &Env::internal(TEACHER));
    assert_eq!(
        s.categories(),
        set(&["banned_attachment"]),
        "{}",
        s.explain()
    );
}

fn assert_clean(name: &str, env: &Env) {
    let s = scan(name, env);
    assert!(s.findings().is_empty(), "{name}: {}", s.explain());
    assert_eq!(s.action(), "pass", "{name}");
}

#[test]
fn executive_summary_pdf_is_not_an_executable() {
    assert_clean(
        "executive-summary.eml",
        &Env::internal("a.haddad@oakfield.sch.uk").to("governors@oakfield.sch.uk"),
    );
}

#[test]
fn json_attachment_is_allowed() {
    assert_clean(
        "config-json.eml",
        &Env::internal("a.haddad@oakfield.sch.uk").to("ict@oakfield.sch.uk"),
    );
}

#[test]
fn text_file_starting_with_mz_is_allowed() {
    assert_clean("mz-text.eml", &Env::internal("a.haddad@oakfield.sch.uk"));
}

#[test]
fn zip_of_pdfs_is_allowed() {
    assert_clean(
        "zip-of-pdfs.eml",
        &Env::internal("a.haddad@oakfield.sch.uk").to("governors@oakfield.sch.uk"),
    );
}

#[test]
fn docx_without_macros_is_allowed() {
    assert_clean("docx-clean.eml", &Env::internal(TEACHER));
}

// ---------------------------------------------------------------- senders

fn assert_anonymous_only(name: &str, env: &Env) -> common::Scan {
    let s = scan(name, env);
    assert_eq!(
        s.categories(),
        set(&["anonymous_sender"]),
        "{name}: {}",
        s.explain()
    );
    assert_ne!(s.action(), "pass", "{name}: {}", s.explain());
    s
}

#[test]
fn disposable_mail_domain_is_anonymous() {
    assert_anonymous_only(
        "disposable-sender.eml",
        &Env::inbound("mark.t@mailinator.com"),
    );
}

#[test]
fn anonymous_display_name_is_anonymous() {
    assert_anonymous_only(
        "anonymous-name.eml",
        &Env::inbound("concerned.parent.2026@example.net").to("head@oakfield.sch.uk"),
    );
}

#[test]
fn message_without_from_is_anonymous() {
    assert_anonymous_only(
        "no-from.eml",
        &Env::inbound("bounce-8812@example.net").to("head@oakfield.sch.uk"),
    );
}

#[test]
fn school_address_from_the_internet_without_login_is_held() {
    let env = Env {
        mail_from: "head@oakfield.sch.uk".into(),
        rcpt: vec!["finance@oakfield.sch.uk".into()],
        auth_user: None,
        client_ip: "203.0.113.9".into(),
    };
    let s = assert_anonymous_only("spoofed-school-from.eml", &env);
    assert_eq!(s.action(), "quarantine", "{}", s.explain());
}

#[test]
fn null_sender_on_an_ordinary_message_is_anonymous() {
    assert_anonymous_only("null-sender-normal.eml", &Env::inbound(""));
}

#[test]
fn a_real_bounce_with_null_sender_passes() {
    let s = scan("dsn-bounce.eml", &Env::inbound(""));
    assert!(s.findings().is_empty(), "{}", s.explain());
    assert_eq!(s.action(), "pass");
}

// ---------------------------------------------------------------- personal data

#[test]
fn nhs_number_sent_outside_is_held_with_masked_evidence() {
    let s = scan(
        "nhs-number-outbound.eml",
        &Env::outbound(TEACHER, "nurse@health-visitors.example.org"),
    );
    assert!(s.has_category("personal_data"), "{}", s.explain());
    assert_eq!(s.action(), "quarantine", "{}", s.explain());
    assert!(
        !s.run.stdout.contains("703 219 8643") && !s.run.stdout.contains("7032198643"),
        "the NHS number must not appear in clear: {}",
        s.run.stdout
    );
}
