//! `hallmonitor quarantine list|show|release|delete|purge`.
//! `--config FILE` is the global flag: it works before or after the subcommand.
//!
//! The CLI acts with admin rights (access to the state directory is the
//! credential) and records the operator: `--as NAME`, else the login name.
//! When `--as` names an existing user, that user's role applies instead.
//! What no role may do (releasing a virus) is still refused.

use anyhow::{Context, Result, bail};
use hallmonitor::access::{self, Role};
use hallmonitor::config::Config;
use hallmonitor::incidents::{FindingRow, HeldFilter, HeldItem, Incidents};
use hallmonitor::quarantine::Store;
use hallmonitor::release::{self, Actor, ReleaseError, ReleaseOutcome, ViewedMessage};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Act as this user: their role applies if they exist (see `hallmonitor
    /// user add`); otherwise the name is recorded and admin rights apply.
    #[arg(long = "as", global = true, value_name = "NAME")]
    as_user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List quarantined messages, newest first.
    List(ListArgs),
    /// Show one message: envelope, findings (evidence masked), AUP clauses
    /// and a safe plain-text view of the body.
    Show {
        /// Quarantine id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Deliver a held message to the next hop the relay would have used.
    Release {
        /// Quarantine id.
        id: String,
        /// Why it is released (recorded and added to the message).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Deliver here instead of the stored next hop.
        #[arg(long, value_name = "ADDR")]
        next_hop: Option<SocketAddr>,
    },
    /// Delete a held message (its files go; the record stays).
    Delete {
        /// Quarantine id.
        id: String,
        /// Why it is deleted (recorded).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Retention: remove messages held longer than this, with their index rows.
    Purge {
        /// Age such as `30d`, `12w`, `48h`.
        #[arg(long, value_name = "AGE")]
        older_than: String,
    },
}

#[derive(clap::Args)]
struct ListArgs {
    /// Category id: profanity, personal_data, chain_letter, anonymous_sender,
    /// virus, banned_attachment.
    #[arg(long)]
    category: Option<String>,
    /// inbound, outbound or internal.
    #[arg(long)]
    direction: Option<String>,
    /// Part of the sender's address or login.
    #[arg(long)]
    sender: Option<String>,
    /// Held on or after: a date (2026-11-01), a time (RFC 3339) or an age (7d).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Held before: a date (the whole day is included), a time or an age.
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// held (default), released, deleted, purged or all.
    #[arg(long, default_value = "held")]
    status: String,
    /// At most this many.
    #[arg(long, default_value_t = 500)]
    limit: i64,
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
}

/// The name the operator is recorded as: `--as`, else `USER`/`LOGNAME`, else
/// the name of the uid.
pub(crate) fn operator_name(as_user: Option<&str>) -> String {
    if let Some(n) = as_user.filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    uid_name().unwrap_or_else(|| format!("uid:{}", unsafe { libc::getuid() }))
}

fn uid_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: buffers are valid for the sizes given; on success `result`
    // points at `pwd`, whose strings live in `buf`.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// How CLI actions are marked in the audit log's "from where" column.
pub(crate) fn cli_origin() -> String {
    // SAFETY: getuid cannot fail.
    format!("cli uid={}", unsafe { libc::getuid() })
}

pub(crate) fn load_config(path: Option<PathBuf>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(&p)?,
        None => Config::default(),
    })
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(config: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let config = load_config(config)?;
    runtime()?.block_on(run_async(config, args))
}

async fn run_async(config: Config, args: Args) -> Result<ExitCode> {
    let state = config.state_dir();
    let db = Incidents::open(&state).await?;
    let store = Store::new(&state);
    // Held files the relay could not index yet (it logs "not indexed yet")
    // are indexed now, so the operator sees every held message.
    if let Err(e) = db.reindex_quarantine(&store).await {
        tracing::warn!(error = %e, "quarantine files not re-indexed");
    }
    let name = operator_name(args.as_user.as_deref());
    let role = match &args.as_user {
        Some(n) => db.user(n).await?.map_or(Role::Admin, |u| u.role),
        None => Role::Admin,
    };
    // "From where" in the audit log: the CLI on this host, and as which uid.
    let remote = cli_origin();
    let actor = Actor {
        name: &name,
        role,
        remote: Some(&remote),
    };
    match args.command {
        Command::List(a) => list(&db, &actor, a).await,
        Command::Show { id, json } => show(&db, &store, &actor, &id, json).await,
        Command::Release {
            id,
            reason,
            next_hop,
        } => {
            let outcome = release::release(
                &db,
                &store,
                &id,
                &actor,
                &reason,
                next_hop,
                &config.relay.hostname,
            )
            .await
            .map_err(refusal)?;
            match outcome {
                ReleaseOutcome::Delivered => println!("released {id}"),
                ReleaseOutcome::AlreadyReleased => {
                    println!("{id} was already released; nothing sent again")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete { id, reason } => {
            release::delete(&db, &store, &id, &actor, &reason)
                .await
                .map_err(refusal)?;
            println!("deleted {id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Purge { older_than } => {
            let secs = parse_age(&older_than)?;
            let n = release::purge(&db, &store, secs, &actor)
                .await
                .map_err(refusal)?;
            println!("purged {n} message(s) held more than {older_than} ago");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn refusal(e: ReleaseError) -> anyhow::Error {
    anyhow::Error::new(e)
}

/// `30d`, `4w`, `12h`, `90m`, `45s` → seconds.
fn parse_age(s: &str) -> Result<i64> {
    let s = s.trim();
    let unit = s.chars().last().unwrap_or(' ');
    let n: i64 = s[..s.len() - unit.len_utf8().min(s.len())]
        .parse()
        .ok()
        .filter(|n| *n >= 0)
        .with_context(|| format!("`{s}` is not an age such as 30d, 4w or 12h"))?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => bail!("`{s}` is not an age such as 30d, 4w or 12h"),
    };
    n.checked_mul(mult).context("age too large")
}

fn london() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Europe/London").unwrap_or(jiff::tz::TimeZone::UTC)
}

/// A point in time for --since/--until: an age, a date (start of the day, or
/// of the next day when `end_of_day`), or an RFC 3339 time.
fn parse_when(s: &str, end_of_day: bool) -> Result<i64> {
    if let Ok(age) = parse_age(s) {
        return Ok(hallmonitor::incidents::now() - age);
    }
    if let Ok(date) = s.parse::<jiff::civil::Date>() {
        let day = if end_of_day {
            date.tomorrow().context("date out of range")?
        } else {
            date
        };
        return Ok(day.to_zoned_datetime(london())?.timestamp().as_second());
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    bail!("`{s}` is not a date (2026-11-01), a time (2026-11-01T09:00:00Z) or an age (7d)")
}

fn local_time(at: i64) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| {
            t.to_zoned_datetime(london())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string())
}

async fn list(db: &Incidents, actor: &Actor<'_>, a: ListArgs) -> Result<ExitCode> {
    if let Some(c) = &a.category
        && hallmonitor::Category::parse(c).is_none()
    {
        bail!("unknown category `{c}`");
    }
    let status = match a.status.as_str() {
        "all" => None,
        "held" | "released" | "deleted" | "purged" => Some(a.status.clone()),
        other => bail!("unknown status `{other}`: held, released, deleted, purged or all"),
    };
    let filter = HeldFilter {
        category: a.category,
        direction: a.direction,
        sender: a.sender,
        since: a
            .since
            .as_deref()
            .map(|s| parse_when(s, false))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| parse_when(s, true))
            .transpose()?,
        status,
        limit: a.limit,
    };
    let items: Vec<HeldItem> = db
        .list_held(&filter)
        .await?
        .into_iter()
        .filter(|i| access::can_list(actor.role, i))
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if items.is_empty() {
        println!("no messages");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:<16} {:<8} {:<8} {:<30} {:<28} SUBJECT",
        "ID", "HELD", "STATUS", "DIR", "FROM", "CATEGORIES"
    );
    for i in &items {
        println!(
            "{:<28} {:<16} {:<8} {:<8} {:<30} {:<28} {}",
            i.id,
            local_time(i.held_at),
            i.status,
            i.direction,
            cut(&i.mail_from, 30),
            cut(&i.categories.join(","), 28),
            cut(i.subject.as_deref().unwrap_or(""), 50)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cut(s: &str, n: usize) -> String {
    let s = release::clean_text(s, n);
    if s.chars().count() >= n {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        s
    }
}

#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    item: &'a HeldItem,
    findings: &'a [FindingRow],
    /// None when the role may not read the body.
    message: Option<&'a ViewedMessage>,
    can_release: bool,
    release_refusal: Option<&'static str>,
}

async fn show(
    db: &Incidents,
    store: &Store,
    actor: &Actor<'_>,
    id: &str,
    json: bool,
) -> Result<ExitCode> {
    if !release::valid_id(id) {
        return Err(ReleaseError::BadId(release::clean_text(id, 80)).into());
    }
    let Some(item) = db.held_item(id).await? else {
        bail!("no held message {id}");
    };
    if !access::can_list(actor.role, &item) {
        bail!(
            "refused: message {id} is not visible to role {}",
            actor.role
        );
    }
    let findings = db.findings_of(item.incident_id).await?;
    let message = if access::can_view_body(actor.role, &item) && item.status == "held"
        || access::can_view_body(actor.role, &item) && item.status == "released"
    {
        match release::view_body(db, store, id, actor).await {
            Ok(m) => Some(m),
            Err(ReleaseError::Files { .. }) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let refusal = access::can_release(actor.role, &item).err();
    if json {
        let shown = Shown {
            item: &item,
            findings: &findings,
            message: message.as_ref(),
            can_release: refusal.is_none() && item.status == "held",
            release_refusal: refusal,
        };
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: &str| {
        out.push_str(&format!("{k:<14}{}\n", release::clean_text(v, 2000)));
    };
    line(&mut out, "ID:", &item.id);
    line(&mut out, "Status:", &item.status);
    line(&mut out, "Held at:", &local_time(item.held_at));
    line(
        &mut out,
        "Direction:",
        &format!("{} (sender: {})", item.direction, item.sender_group),
    );
    line(&mut out, "From:", &item.mail_from);
    if let Some(s) = &item.identified_sender {
        line(
            &mut out,
            "Sender:",
            &format!(
                "{s}{}",
                if item.sender_is_head {
                    " (head teacher)"
                } else {
                    ""
                }
            ),
        );
    }
    line(&mut out, "To:", &item.rcpts.join(", "));
    line(&mut out, "Subject:", item.subject.as_deref().unwrap_or(""));
    line(
        &mut out,
        "Message-ID:",
        item.message_id.as_deref().unwrap_or(""),
    );
    line(
        &mut out,
        "Queue id:",
        item.queue_id.as_deref().unwrap_or(""),
    );
    line(&mut out, "Size:", &format!("{} bytes", item.size));
    line(&mut out, "Next hop:", &item.next_hop);
    line(&mut out, "Categories:", &item.categories.join(", "));
    if let (Some(at), Some(by)) = (item.reviewed_at, &item.reviewed_by) {
        line(
            &mut out,
            "Reviewed:",
            &format!(
                "{} by {by}: {}",
                local_time(at),
                item.review_reason.as_deref().unwrap_or("")
            ),
        );
    }
    if let Some(e) = &item.last_error {
        line(&mut out, "Last error:", e);
    }
    line(
        &mut out,
        "Release:",
        match refusal {
            None => "allowed for your role",
            Some(r) => r,
        },
    );
    out.push_str("\nFindings (evidence masked):\n");
    for f in &findings {
        out.push_str(&format!(
            "  - {} [{}] at {}: {} (x{}, {}, confidence {:.2})\n",
            f.rule,
            f.category,
            release::clean_text(&f.location, 200),
            release::clean_text(&f.evidence, 200),
            f.count,
            f.severity,
            f.confidence
        ));
    }
    if !item.clauses.is_empty() {
        out.push_str("\nAcceptable use policy:\n");
        for c in &item.clauses {
            out.push_str(&format!("  - {}\n", release::clean_text(c, 1000)));
        }
    }
    match &message {
        Some(m) => {
            out.push_str("\nHeaders:\n");
            for (k, v) in &m.headers {
                out.push_str(&format!("  {}: {}\n", release::clean_text(k, 100), v));
            }
            if !m.attachments.is_empty() {
                out.push_str("\nAttachments (not opened):\n");
                for a in &m.attachments {
                    out.push_str(&format!(
                        "  - {} ({}, {} bytes)\n",
                        a.name, a.content_type, a.size
                    ));
                }
            }
            out.push_str("\nText (plain-text view):\n");
            out.push_str(&m.text);
            if !m.text.ends_with('\n') {
                out.push('\n');
            }
        }
        None if !access::can_view_body(actor.role, &item) => {
            out.push_str(&format!("\nBody: not visible to role {}\n", actor.role));
        }
        None => out.push_str("\nBody: no longer stored\n"),
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_age("2w").unwrap(), 14 * 86_400);
        assert_eq!(parse_age("12h").unwrap(), 43_200);
        assert!(parse_age("30").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("-3d").is_err());
        assert!(parse_age("").is_err());
    }
}
