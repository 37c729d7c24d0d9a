//! The `hallmonitor` command: argument parsing and wiring only.

mod cli;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hallmonitor::config::Config;
use hallmonitor::incidents::Incidents;
use hallmonitor::message::{Envelope, PdfMode};
use hallmonitor::scan::{ScanReport, Scanner, ScannerOptions};
use hallmonitor::serve;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

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
    /// Run the Postfix content filter: scan every message and relay, tag,
    /// quarantine or reject it.
    Serve(ServeArgs),
    /// Check the installation: clamd and its signature age, messages failing
    /// to scan, held messages, free disk space. Exits 1 when something needs
    /// attention.
    Status(StatusArgs),
    /// Review held messages: list, show, release, delete, purge.
    Quarantine(cli::quarantine::Args),
    /// Manage web UI users and their roles.
    User(cli::user::Args),
    /// Reports: the weekly breach summary.
    Report(cli::report::Args),
    /// Internal: extract text from a PDF on stdin (the sandboxed worker).
    #[command(hide = true, name = "extract-pdf")]
    ExtractPdf,
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Address to listen on (overrides `relay.listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Where to re-inject scanned mail (overrides `relay.next_hop`).
    #[arg(long, value_name = "ADDR")]
    next_hop: Option<std::net::SocketAddr>,
    /// Also serve the milter protocol here: `host:port`, `inet:host:port`
    /// or `unix:PATH` (overrides `milter.listen`).
    #[arg(long, value_name = "ADDR")]
    milter: Option<String>,
    /// Admin web server (health endpoint) address; `""` disables it
    /// (overrides `admin.listen`).
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
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
        Command::Serve(args) => serve(cli.config, args),
        Command::Status(args) => status(cli.config, args),
        Command::Quarantine(args) => cli::quarantine::run(cli.config, args),
        Command::User(args) => cli::user::run(cli.config, args),
        Command::Report(args) => cli::report::run(cli.config, args),
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

/// Load the config and apply the command-line overrides (also on SIGHUP).
fn serve_config(path: Option<&PathBuf>, args: &ServeArgs) -> Result<Config> {
    let mut config = load_config(path.cloned())?;
    if let Some(l) = args.listen {
        config.relay.listen = l.to_string();
    }
    if let Some(n) = args.next_hop {
        config.relay.next_hop = n.to_string();
    }
    if let Some(m) = &args.milter {
        if !m.is_empty() && hallmonitor::config::MilterAddress::parse(m).is_none() {
            anyhow::bail!("--milter `{m}` is not host:port, inet:host:port or unix:PATH");
        }
        config.milter.listen = m.clone();
    }
    if let Some(a) = &args.admin {
        if !a.is_empty() && a.parse::<std::net::SocketAddr>().is_err() {
            anyhow::bail!("--admin `{a}` is not an IP address and port");
        }
        config.admin.listen = a.clone();
    }
    Ok(config)
}

fn build_settings(
    config: &Config,
    handle: &tokio::runtime::Handle,
    incidents: Incidents,
) -> Result<serve::Settings> {
    let exe = std::env::current_exe().context("finding the hallmonitor executable")?;
    let scanner = Scanner::new(
        config.clone(),
        ScannerOptions {
            runtime: Some(handle.clone()),
            pdf: PdfMode::Worker(exe),
            parallel: true,
        },
    )?;
    let settings = serve::Settings::new(config, scanner, incidents)?;
    settings
        .store
        .ensure_dir()
        .context("creating the quarantine directory")?;
    Ok(settings)
}

fn serve(config_path: Option<PathBuf>, args: ServeArgs) -> Result<ExitCode> {
    let config = serve_config(config_path.as_ref(), &args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.relay.session_threads())
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let handle = runtime.handle().clone();
    runtime.block_on(async move {
        let incidents = Incidents::open(&config.state_dir()).await?;
        let settings = {
            let (c, h, i) = (config.clone(), handle.clone(), incidents.clone());
            tokio::task::spawn_blocking(move || build_settings(&c, &h, i)).await??
        };
        match incidents.reindex_quarantine(&settings.store).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(count = n, "indexed held messages missing from the incident log"),
            Err(e) => tracing::warn!(error = %e, "could not re-index the quarantine"),
        }
        // Signal handlers first: once the port answers, SIGTERM must already
        // mean "finish and exit", never the default "die mid-message".
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let listener = tokio::net::TcpListener::bind(&config.relay.listen)
            .await
            .with_context(|| format!("listening on {}", config.relay.listen))?;
        let local = listener.local_addr()?;
        let milter = match config.milter.listen.as_str() {
            "" => None,
            m => {
                let addr = hallmonitor::config::MilterAddress::parse(m)
                    .with_context(|| format!("milter address `{m}`"))?;
                Some(
                    hallmonitor::inbound::milter::Listener::bind(
                        &addr,
                        config.milter.socket_mode_bits().unwrap_or(0o660),
                    )
                    .await
                        .with_context(|| format!("listening for milter connections on {m}"))?,
                )
            }
        };
        let admin = match config.admin.listen.as_str() {
            "" => None,
            a => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("admin server on {a} (set admin.listen = \"\" or --admin \"\" to disable)"))?,
            ),
        };
        let clamd = config.clamd_address();
        let clamd_state = if config.clamd.disabled {
            "disabled in the config (no virus scanning!)".to_string()
        } else {
            match serve::ping_clamd(&clamd, std::time::Duration::from_secs(5)).await {
                Ok(()) => format!("clamd at {clamd} answered PING"),
                Err(e) => format!(
                    "clamd at {clamd} did NOT answer ({e}); mail will be deferred (451) until it does"
                ),
            }
        };
        let milter_state = milter
            .as_ref()
            .map(|m| format!(", milter on {}", m.describe()))
            .unwrap_or_default();
        let admin_state = match &admin {
            Some(a) => {
                let a = a.local_addr()?;
                format!(", admin UI at http://{a}/ (health at http://{a}/health)")
            }
            None => String::new(),
        };
        println!(
            "hallmonitor {} serving: listening on {local}, relaying to {}{milter_state}{admin_state}, quarantine in {}; {clamd_state}",
            hallmonitor::VERSION,
            config.relay.next_hop,
            settings.store.dir().display(),
        );
        let _ = std::io::stdout().flush();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let shared = serve::Shared::new(settings, stop_rx);
        let server = tokio::spawn(serve::serve(listener, shared.clone()));
        let milter_server = milter
            .map(|m| tokio::spawn(hallmonitor::inbound::milter::serve(m, shared.clone())));
        let admin_server =
            admin.map(|a| tokio::spawn(hallmonitor::admin::serve(a, shared.clone())));
        let notifier = tokio::spawn(hallmonitor::notify::run(shared.clone()));
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    let path = config_path.clone();
                    let (h, a) = (handle.clone(), args.clone());
                    let reloaded = async {
                        let c = serve_config(path.as_ref(), &a)?;
                        let i = Incidents::open(&c.state_dir()).await?;
                        tokio::task::spawn_blocking(move || build_settings(&c, &h, i))
                            .await
                            .map_err(anyhow::Error::from)
                    }
                    .await;
                    match reloaded {
                        Ok(Ok(s)) => {
                            shared.replace(s);
                            tracing::warn!("configuration and rules reloaded");
                            eprintln!("hallmonitor: configuration and rules reloaded");
                        }
                        Ok(Err(e)) | Err(e) => eprintln!("hallmonitor: reload refused, keeping the running configuration: {e:#}"),
                    }
                }
            }
        }
        eprintln!("hallmonitor: stopping: no new connections, finishing messages in flight");
        let _ = stop_tx.send(true);
        let _ = server.await;
        if let Some(m) = milter_server {
            let _ = m.await;
        }
        if let Some(a) = admin_server {
            let _ = a.await;
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), notifier).await;
        Ok::<_, anyhow::Error>(())
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

fn status(config_path: Option<PathBuf>, args: StatusArgs) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let status = runtime.block_on(async {
        let db = Incidents::open(&config.state_dir()).await;
        if let Err(e) = &db {
            eprintln!("hallmonitor: {e}");
        }
        hallmonitor::status::gather(&config, db.as_ref().ok()).await
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", hallmonitor::status::render_text(&status));
    }
    Ok(if status.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
