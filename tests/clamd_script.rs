//! `tests/clamd-test.sh start|status|stop`, the script the README and CI use to
//! run a private clamd by hand (e.g. for the corpus scorer), must give a clamd
//! the binary can use, and must really stop it.

mod common;

use common::{EICAR_RULE, Env, MANIFEST_DIR, mail, scan_with, test_config};
use std::path::{Path, PathBuf};
use std::process::Command;

fn script(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("bash")
        .arg(Path::new(MANIFEST_DIR).join("tests/clamd-test.sh"))
        .args(args)
        .arg(dir)
        .env_remove("CLAMD_TCP_PORT")
        .output()
        .expect("running tests/clamd-test.sh")
}

/// Stops the script's clamd even if an assertion fails.
struct Stop(PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = script(&["stop"], &self.0);
    }
}

#[test]
fn script_starts_a_usable_clamd_and_stops_it() {
    let dir = std::env::temp_dir().join(format!("hallmonitor-script-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = script(&["start"], &dir);
    let _stop = Stop(dir.clone());
    assert!(
        out.status.success(),
        "start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let address = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(address, dir.join("clamd.sock").display().to_string());
    assert!(script(&["status"], &dir).status.success());

    // Starting again reuses the running clamd.
    let again = script(&["start"], &dir);
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), address);

    let s = scan_with(
        &test_config(),
        &address,
        &Env::inbound("helen.okafor@example.com"),
        &mail("eicar-zip.eml"),
    );
    assert!(s.has_rule(EICAR_RULE), "{}", s.explain());

    let pid: i32 = std::fs::read_to_string(dir.join("clamd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(script(&["stop"], &dir).status.success());
    assert!(!dir.exists(), "stop removes the directory");
    // The pid is gone, or a zombie waiting for a parent that is not us.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("gone")
        .to_string();
    assert!(
        state == "gone" || state == "Z" || state == "X",
        "clamd {pid} still running (state {state})"
    );
    assert!(!script(&["status"], &dir).status.success());
}
