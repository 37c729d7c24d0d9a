//! The command line around the scan: bad configuration is refused with a
//! message that says where, and the readable report (without `--json`) shows
//! the verdict and only masked evidence.

mod common;

use common::{EICAR_RULE, Env, HALLMONITOR, clamd, mail, run_scan, test_config};
use std::process::Command;

fn bad_config(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Run `scan` with a config and return (exit code, stdout, stderr).
fn scan_with_config(config: &std::path::Path) -> (Option<i32>, String, String) {
    let run = run_scan(
        Some(config),
        &clamd().address(),
        &Env::inbound("helen.okafor@example.com"),
        &mail("clean-text.eml"),
        true,
    );
    (run.status.code(), run.stdout, run.stderr)
}

#[test]
fn wrong_type_in_config_exits_2_naming_file_line_and_key() {
    let (_d, path) = bad_config(
        "[school]\nname = \"Oakfield Academy\"\nstaff_domains = [\"oakfield.sch.uk\"]\n\n\
         [clamd]\naddress = \"/run/clamav/clamd.ctl\"\ntimeout_secs = \"soon\"\n",
    );
    let (code, stdout, stderr) = scan_with_config(&path);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(
        stdout.is_empty(),
        "nothing on stdout when the config is bad: {stdout}"
    );
    assert!(
        stderr.contains(&path.display().to_string()),
        "stderr should name the file: {stderr}"
    );
    assert!(stderr.contains(":7"), "stderr should name line 7: {stderr}");
    assert!(
        stderr.contains("timeout_secs"),
        "stderr should name the key: {stderr}"
    );
}

#[test]
fn misspelt_key_in_config_exits_2_naming_it() {
    let (_d, path) = bad_config("[clamd]\nadress = \"127.0.0.1:3310\"\n");
    let (code, _stdout, stderr) = scan_with_config(&path);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains(":2"), "stderr should name line 2: {stderr}");
    assert!(
        stderr.contains("adress"),
        "stderr should name the key: {stderr}"
    );
}

#[test]
fn invalid_domain_in_config_exits_2_naming_it() {
    let (_d, path) = bad_config(
        "[school]\nname = \"Oakfield\"\n\nstaff_domains = [\"staff@oakfield.sch.uk\"]\n",
    );
    let (code, _stdout, stderr) = scan_with_config(&path);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains(":4"), "stderr should name line 4: {stderr}");
    assert!(stderr.contains("staff_domains"), "{stderr}");
}

#[test]
fn missing_config_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let (code, _stdout, stderr) = scan_with_config(&path);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("nope.toml"), "{stderr}");
}

#[test]
fn missing_message_file_exits_2() {
    let out = Command::new(HALLMONITOR)
        .args(["--config"])
        .arg(test_config())
        .args(["scan", "--json", "--client-ip", "10.0.2.14"])
        .arg("/nonexistent/message.eml")
        .env("HALLMONITOR_CLAMD", clamd().address())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/message.eml"));
}

#[test]
fn readable_report_shows_verdict_rule_and_location() {
    let run = run_scan(
        Some(&test_config()),
        &clamd().address(),
        &Env::inbound("helen.okafor@example.com"),
        &mail("eicar-pdf-base64.eml"),
        false,
    );
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("QUARANTINE"), "{}", run.stdout);
    assert!(run.stdout.contains(EICAR_RULE), "{}", run.stdout);
    assert!(
        run.stdout.contains("PTA minutes March.pdf"),
        "{}",
        run.stdout
    );
    assert!(
        serde_json::from_str::<serde_json::Value>(&run.stdout).is_err(),
        "the readable report is not JSON"
    );
}

#[test]
fn readable_report_of_clean_mail_says_pass() {
    let run = run_scan(
        Some(&test_config()),
        &clamd().address(),
        &Env::internal("d.price@oakfield.sch.uk"),
        &mail("clean-text.eml"),
        false,
    );
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("PASS"), "{}", run.stdout);
    assert!(run.stdout.contains("No findings"), "{}", run.stdout);
}

#[test]
fn readable_report_masks_personal_data() {
    let run = run_scan(
        Some(&test_config()),
        &clamd().address(),
        &Env::outbound(
            "d.price@oakfield.sch.uk",
            "nurse@health-visitors.example.org",
        ),
        &mail("nhs-number-outbound.eml"),
        false,
    );
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("QUARANTINE"), "{}", run.stdout);
    assert!(run.stdout.contains("personal_data"), "{}", run.stdout);
    for clear in ["703 219 8643", "7032198643", "14/02/2014"] {
        assert!(
            !run.stdout.contains(clear),
            "{clear} must be masked in the report:\n{}",
            run.stdout
        );
    }
}

#[test]
fn readable_report_when_clamd_is_down_says_tempfail_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_scan(
        Some(&test_config()),
        &dir.path().join("absent.sock").display().to_string(),
        &Env::inbound("helen.okafor@example.com"),
        &mail("eicar-pdf-base64.eml"),
        false,
    );
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("TEMPFAIL"), "{}", run.stdout);
    assert!(run.stdout.contains("clamd"), "{}", run.stdout);
}
