//! The `hallmonitor` command: argument parsing and wiring only.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hallmonitor::config::Config;
use hallmonitor::message::{Envelope, PdfMode};
use hallmonitor::scan::{ScanReport, Scanner, ScannerOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hallmonitor",
    version,
    about = "Mail content-scanning relay for schools"
)]
struct Cli {
    /// Configuration file (default: embedded defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan one message file (or `-` for standard input) and print the verdict.
    Scan(ScanArgs),
    /// Internal: extract text from a PDF on stdin (the sandboxed worker).
    #[command(hide = true, name = "extract-pdf")]
    ExtractPdf,
}

#[derive(clap::Args)]
struct ScanArgs {
    /// Print one JSON object instead of a readable report.
    #[arg(long)]
    json: bool,
    /// Envelope sender (`""` for the null sender).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "",
        allow_hyphen_values = true
    )]
    mail_from: String,
    /// Envelope recipient (repeat for several).
    #[arg(long, value_name = "ADDR")]
    rcpt: Vec<String>,
    /// SMTP AUTH login of the sender.
    #[arg(long, value_name = "USER")]
    auth_user: Option<String>,
    /// Address of the client that submitted the message.
    #[arg(long, value_name = "IP")]
    client_ip: Option<std::net::IpAddr>,
    /// HELO name the client gave.
    #[arg(long)]
    helo: Option<String>,
    /// Treat the message as submitted locally (sendmail/pickup).
    #[arg(long)]
    local: bool,
    /// Message file, or `-` for standard input.
    file: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HALLMONITOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Scan(args) => scan(cli.config, args),
        Command::ExtractPdf => hallmonitor::message::extract::pdf_worker_main(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hallmonitor: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(path: Option<PathBuf>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(&p)?),
        None => Ok(Config::default()),
    }
}

fn scan(config: Option<PathBuf>, args: ScanArgs) -> Result<ExitCode> {
    let config = load_config(config)?;
    let raw = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        buf
    } else {
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let exe = std::env::current_exe().context("finding the hallmonitor executable")?;
    let scanner = Scanner::new(
        config,
        ScannerOptions {
            runtime: Some(runtime.handle().clone()),
            pdf: PdfMode::Worker(exe),
            parallel: true,
        },
    )?;
    let envelope = Envelope {
        mail_from: args.mail_from,
        rcpt_to: args.rcpt,
        client_ip: args.client_ip,
        helo: args.helo,
        auth_user: args.auth_user.filter(|u| !u.is_empty()),
        local_submission: args.local,
        ..Envelope::default()
    };
    let report = scanner.scan(&envelope, &raw);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_report(&mut out, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_report(out: &mut impl Write, r: &ScanReport) -> std::io::Result<()> {
    let v = &r.verdict;
    writeln!(out, "Verdict:   {}", v.action.as_str().to_uppercase())?;
    writeln!(
        out,
        "Direction: {} (sender: {})",
        v.direction.as_str(),
        v.sender_group.as_str()
    )?;
    if let Some(s) = &r.subject {
        writeln!(out, "Subject:   {s}")?;
    }
    if let Some(e) = &v.error {
        writeln!(out, "Error:     {e}")?;
    }
    if v.findings.is_empty() {
        writeln!(out, "\nNo findings.")?;
    } else {
        writeln!(out, "\nFindings:")?;
        for f in &v.findings {
            writeln!(
                out,
                "  - {} [{}] at {}: {}{}",
                f.rule,
                f.severity,
                f.location,
                f.evidence,
                if f.count > 1 {
                    format!(" (×{})", f.count)
                } else {
                    String::new()
                }
            )?;
            writeln!(out, "    Policy: {}", f.clause)?;
        }
    }
    for a in &v.allowed {
        writeln!(
            out,
            "  allowed: {} at {} — {} (until {})",
            a.rule, a.location, a.reason, a.expires
        )?;
    }
    if !v.notify.is_empty() {
        let who: Vec<&str> = v
            .notify
            .iter()
            .map(|n| match n {
                hallmonitor::policy::Notify::HeadTeacher => "head teacher",
                hallmonitor::policy::Notify::ChairOfGovernors => "Chair of Governors",
                hallmonitor::policy::Notify::Dsl => "Designated Safeguarding Lead",
            })
            .collect();
        writeln!(out, "\nTell: {}", who.join(", "))?;
    }
    for l in &r.limits {
        writeln!(
            out,
            "Limit reached: {} at {} ({})",
            l.limit, l.location, l.detail
        )?;
    }
    Ok(())
}
