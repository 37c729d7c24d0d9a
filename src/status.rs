//! Health of a running installation, for `hallmonitor status` and the admin
//! server's `/health`: clamd reachable and how old its signatures are,
//! messages that keep failing to scan (each is deferred in Postfix), held
//! messages, and free space where the quarantine lives.

use crate::config::Config;
use crate::incidents::Incidents;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Signatures older than this make the installation unhealthy.
pub const MAX_SIGNATURE_AGE_DAYS: f64 = 3.0;
/// State directory fuller than this (percent) is unhealthy.
pub const MAX_DISK_USED_PERCENT: f64 = 90.0;
/// More messages failing to scan than this is unhealthy.
pub const MAX_FAILING_MESSAGES: i64 = 10;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// True when nothing below needs attention.
    pub healthy: bool,
    /// What needs attention, in words.
    pub problems: Vec<String>,
    pub version: &'static str,
    pub clamd: ClamdStatus,
    /// Messages whose scan failed recently (Postfix holds and retries them).
    pub failing_messages: i64,
    pub failed_attempts: i64,
    /// Messages in quarantine awaiting review.
    pub held: i64,
    pub state_dir: String,
    pub disk: Option<Disk>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClamdStatus {
    pub address: String,
    pub disabled: bool,
    pub reachable: bool,
    pub error: Option<String>,
    /// clamd's VERSION answer, e.g. `ClamAV 1.0.7/27468/Mon Nov 24 09:33:02 2026`.
    pub version: Option<String>,
    /// Age of the signature database in days, when clamd says when it was built.
    pub signature_age_days: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Disk {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub used_percent: f64,
}

/// Gather the status. Never fails: what cannot be found out is a problem.
pub async fn gather(config: &Config, incidents: Option<&Incidents>) -> Status {
    let mut problems = Vec::new();
    let address = config.clamd_address();
    let mut clamd = ClamdStatus {
        address: address.clone(),
        disabled: config.clamd.disabled,
        reachable: false,
        error: None,
        version: None,
        signature_age_days: None,
    };
    if config.clamd.disabled {
        problems.push("virus scanning is disabled in the config".to_string());
    } else {
        let timeout = Duration::from_secs(5);
        match crate::serve::clamd_command(&address, "VERSION", timeout).await {
            Ok(v) if v.starts_with("ClamAV") => {
                clamd.reachable = true;
                clamd.signature_age_days = signature_age_days(&v, jiff::Timestamp::now());
                if let Some(age) = clamd.signature_age_days
                    && age > MAX_SIGNATURE_AGE_DAYS
                {
                    problems.push(format!(
                        "clamd's signatures are {age:.1} days old (more than {MAX_SIGNATURE_AGE_DAYS}); check freshclam"
                    ));
                }
                clamd.version = Some(v);
            }
            Ok(v) => {
                clamd.error = Some(format!("unexpected answer {v:?}"));
            }
            Err(e) => clamd.error = Some(e),
        }
        if !clamd.reachable {
            problems.push(format!(
                "clamd at {address} is not answering ({}): mail is being deferred",
                clamd.error.as_deref().unwrap_or("no answer")
            ));
        }
    }
    let (mut failing_messages, mut failed_attempts, mut held) = (0, 0, 0);
    match incidents {
        Some(db) => {
            match db.failing().await {
                Ok((m, a)) => (failing_messages, failed_attempts) = (m, a),
                Err(e) => problems.push(format!("incident log: {e}")),
            }
            match db.held_count().await {
                Ok(h) => held = h,
                Err(e) => problems.push(format!("incident log: {e}")),
            }
        }
        None => problems.push("incident log could not be opened".to_string()),
    }
    if failing_messages > MAX_FAILING_MESSAGES {
        problems.push(format!(
            "{failing_messages} messages keep failing to scan and are deferred in Postfix"
        ));
    }
    let state_dir = config.state_dir();
    let disk = disk_usage(&state_dir);
    match &disk {
        Some(d) if d.used_percent > MAX_DISK_USED_PERCENT => problems.push(format!(
            "the disk holding {} is {:.0}% full",
            state_dir.display(),
            d.used_percent
        )),
        Some(_) => {}
        None => problems.push(format!("cannot read free space of {}", state_dir.display())),
    }
    Status {
        healthy: problems.is_empty(),
        problems,
        version: crate::VERSION,
        clamd,
        failing_messages,
        failed_attempts,
        held,
        state_dir: state_dir.display().to_string(),
        disk,
    }
}

/// Days since the signature date in clamd's VERSION answer
/// (`ClamAV 1.0.7/27468/Mon Nov 24 09:33:02 2026`); None when it has none
/// (clamd running only local signatures).
pub fn signature_age_days(version: &str, now: jiff::Timestamp) -> Option<f64> {
    let date = version.split('/').nth(2)?.trim();
    let date = date.split_whitespace().collect::<Vec<_>>().join(" ");
    let built = jiff::civil::DateTime::strptime("%a %b %d %H:%M:%S %Y", &date).ok()?;
    let built = jiff::tz::TimeZone::UTC.to_timestamp(built).ok()?;
    let secs = now.as_second() - built.as_second();
    Some(secs as f64 / 86_400.0)
}

/// Size and free space of the file system holding `dir` (or its nearest
/// existing parent).
pub fn disk_usage(dir: &Path) -> Option<Disk> {
    let mut p = dir;
    while !p.exists() {
        p = p.parent()?;
    }
    let p = if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    };
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frsize;
    let free = st.f_bavail as u64 * frsize;
    let used = total.saturating_sub(st.f_bfree as u64 * frsize);
    let used_percent = if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / (used + free).max(1) as f64
    };
    Some(Disk {
        total_bytes: total,
        free_bytes: free,
        used_percent,
    })
}

/// The status as lines for a terminal.
pub fn render_text(s: &Status) -> String {
    let mut out = String::new();
    let verdict = if s.healthy { "OK" } else { "NEEDS ATTENTION" };
    out.push_str(&format!("hallmonitor {}: {verdict}\n", s.version));
    for p in &s.problems {
        out.push_str(&format!("  ! {p}\n"));
    }
    let clamd = if s.clamd.disabled {
        "disabled".to_string()
    } else if s.clamd.reachable {
        let age = s
            .clamd
            .signature_age_days
            .map(|d| format!("signatures {d:.1} days old"))
            .unwrap_or_else(|| "signature date unknown (local signatures only)".into());
        format!(
            "reachable at {} ({}; {age})",
            s.clamd.address,
            s.clamd.version.as_deref().unwrap_or("?")
        )
    } else {
        format!(
            "NOT reachable at {} ({})",
            s.clamd.address,
            s.clamd.error.as_deref().unwrap_or("no answer")
        )
    };
    out.push_str(&format!("clamd:            {clamd}\n"));
    out.push_str(&format!(
        "failing scans:    {} messages ({} attempts) deferred in Postfix\n",
        s.failing_messages, s.failed_attempts
    ));
    out.push_str(&format!("held for review:  {}\n", s.held));
    match &s.disk {
        Some(d) => out.push_str(&format!(
            "state directory:  {} ({:.0}% of disk used, {} MB free)\n",
            s.state_dir,
            d.used_percent,
            d.free_bytes / 1_000_000
        )),
        None => out.push_str(&format!(
            "state directory:  {} (free space unknown)\n",
            s.state_dir
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_age_from_clamd_version() {
        let now: jiff::Timestamp = "2026-11-25T09:33:02Z".parse().unwrap();
        let age = signature_age_days("ClamAV 1.0.7/27468/Mon Nov 23 09:33:02 2026", now).unwrap();
        assert!((age - 2.0).abs() < 0.001, "{age}");
        assert_eq!(signature_age_days("ClamAV 1.0.7", now), None);
        assert_eq!(signature_age_days("ClamAV 1.0.7/0/garbage", now), None);
    }

    #[test]
    fn disk_usage_of_an_existing_and_a_missing_directory() {
        let d = disk_usage(Path::new("/tmp")).unwrap();
        assert!(d.total_bytes > 0 && d.used_percent >= 0.0 && d.used_percent <= 100.0);
        assert!(disk_usage(Path::new("/tmp/does/not/exist/yet")).is_some());
    }
}
