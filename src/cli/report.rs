//! `hallmonitor report weekly [--week 2026-W47 | --week last] [--send | --html FILE | --text]`.
//! `--config FILE` is the global flag: it works before or after the subcommand.

use anyhow::{Context, Result};
use hallmonitor::config::Config;
use hallmonitor::incidents::{Incidents, now};
use hallmonitor::report::{self, Audience, Week};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// The weekly breach summary: totals by category, action and direction,
    /// trend against the previous four weeks, top senders, held messages,
    /// releases and review times.
    Weekly(WeeklyArgs),
}

#[derive(clap::Args)]
struct WeeklyArgs {
    /// ISO week such as 2026-W47, or `last`; default: this week so far
    /// (Europe/London).
    #[arg(long, value_name = "WEEK")]
    week: Option<String>,
    /// Send it: the full version to the head teacher, the anonymised one to
    /// the governors (and the Chair), and keep both for the admin UI.
    #[arg(long, conflicts_with_all = ["html", "text"])]
    send: bool,
    /// Write the HTML version (chart embedded) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print the plain-text version (the default).
    #[arg(long)]
    text: bool,
    /// Show the governors' anonymised version instead of the head teacher's.
    #[arg(long)]
    governors: bool,
}

pub fn run(config: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let config = match config {
        Some(p) => Config::load(&p)?,
        None => Config::default(),
    };
    let Command::Weekly(args) = args.command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(weekly(config, args))
}

async fn weekly(config: Config, args: WeeklyArgs) -> Result<ExitCode> {
    let week = Week::parse(args.week.as_deref(), &jiff::ZonedDateTime::now())?;
    let db = Incidents::open(&config.state_dir()).await?;
    let school = if config.school.name.is_empty() {
        "The school".to_string()
    } else {
        config.school.name.clone()
    };
    let summary = report::gather(&db, &school, week, now()).await?;
    let audience = if args.governors {
        Audience::Governors
    } else {
        Audience::Head
    };
    if args.send {
        return send(&config, &db, &summary).await;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report::standalone_html(&summary, audience))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("hallmonitor: wrote {} ({})", path.display(), week.label());
    }
    if args.text || args.html.is_none() {
        print!("{}", report::render(&summary, audience).text);
    }
    Ok(ExitCode::SUCCESS)
}

async fn send(config: &Config, db: &Incidents, summary: &report::Summary) -> Result<ExitCode> {
    let week = summary.week.label();
    let mut governors: Vec<String> = Vec::new();
    for a in config
        .people
        .governors
        .iter()
        .chain(config.people.chair_of_governors.iter())
    {
        let a = a.trim().to_ascii_lowercase();
        if !governors.contains(&a) {
            governors.push(a);
        }
    }
    let plan = [
        (Audience::Head, config.people.head_teacher.clone()),
        (Audience::Governors, governors),
    ];
    let mut failed = false;
    for (audience, to) in plan {
        if to.is_empty() {
            eprintln!(
                "hallmonitor: no {} in [people]; {} version not sent",
                if audience == Audience::Head {
                    "head_teacher"
                } else {
                    "governors"
                },
                audience.as_str()
            );
            continue;
        }
        let r = report::render(summary, audience);
        let out = hallmonitor::notify::send::Outgoing {
            to: to.clone(),
            subject: &r.subject,
            text: &r.text,
            html: Some(&r.html),
            png: r.png.as_deref(),
            headers: vec![
                ("X-Hallmonitor-Kind", "summary".to_string()),
                (
                    "X-Hallmonitor-Summary",
                    format!("{week}; {}", audience.as_str()),
                ),
            ],
        };
        match hallmonitor::notify::send::send(config, &out).await {
            Ok(()) => {
                report::archive(db, &week, &r, Some(now())).await?;
                println!(
                    "sent the {} summary for {week} to {}",
                    audience.as_str(),
                    to.join(", ")
                );
            }
            Err(e) => {
                report::archive(db, &week, &r, None).await?;
                eprintln!(
                    "hallmonitor: {} summary for {week} not sent: {e}",
                    audience.as_str()
                );
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
