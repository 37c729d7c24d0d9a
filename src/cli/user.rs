//! `hallmonitor user add NAME --role ROLE [--password-stdin]`, `user list`,
//! `user disable NAME`. Users log in to the web UI; `user add` also creates
//! the first admin. Passwords are stored as argon2id hashes.
//! `--config FILE` is the global flag: it works before or after the subcommand.

use super::quarantine::{cli_origin, load_config, operator_name, runtime};
use anyhow::{Context, Result, bail};
use hallmonitor::access::Role;
use hallmonitor::incidents::{AuditEntry, Incidents, valid_user_name};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Operator recorded in the audit log (default: your login name).
    #[arg(long = "as", global = true, value_name = "NAME")]
    as_user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Add a user, or set a new role and password for an existing one.
    Add {
        /// Login name: 1-64 of a-z 0-9 . _ @ -
        name: String,
        /// admin (ICT), head, dsl, chair (Chair of Governors) or governor.
        #[arg(long)]
        role: String,
        /// Read the password from the first line of standard input instead
        /// of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and their roles.
    List,
    /// Disable a user and end their sessions.
    Disable { name: String },
}

pub fn run(config: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let config = load_config(config)?;
    let operator = operator_name(args.as_user.as_deref());
    match args.command {
        Command::Add {
            name,
            role,
            password_stdin,
        } => {
            let Some(role) = Role::parse(&role) else {
                bail!("unknown role `{role}`: admin, head, dsl, chair or governor");
            };
            if !valid_user_name(&name) {
                bail!("user name `{name}` is not valid: use 1-64 of a-z 0-9 . _ @ -");
            }
            let password = if password_stdin {
                read_stdin_password()?
            } else {
                prompt_password()?
            };
            if password.is_empty() {
                bail!("the password is empty");
            }
            runtime()?.block_on(async {
                let db = Incidents::open(&config.state_dir()).await?;
                db.add_user(&name, role, &password).await?;
                db.audit(&AuditEntry {
                    actor: &operator,
                    action: "user_add",
                    target: Some(&name),
                    remote: Some(&cli_origin()),
                    detail: Some(&format!("role {role}")),
                    ..AuditEntry::default()
                })
                .await?;
                anyhow::Ok(())
            })?;
            println!("user {name} ({role}) saved");
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            let users = runtime()?.block_on(async {
                let db = Incidents::open(&config.state_dir()).await?;
                anyhow::Ok(db.list_users().await?)
            })?;
            for u in users {
                println!("{:<32} {}", u.name, u.role);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Disable { name } => {
            let found = runtime()?.block_on(async {
                let db = Incidents::open(&config.state_dir()).await?;
                let found = db.disable_user(&name).await?;
                if found {
                    db.audit(&AuditEntry {
                        actor: &operator,
                        action: "user_disable",
                        target: Some(&name),
                        remote: Some(&cli_origin()),
                        ..AuditEntry::default()
                    })
                    .await?;
                }
                anyhow::Ok(found)
            })?;
            if !found {
                bail!("no such user {name}");
            }
            println!("user {name} disabled");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_stdin_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Ask twice on the terminal with echo off.
fn prompt_password() -> Result<String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("no terminal to ask for the password; use --password-stdin")?;
    let first = ask(&tty, "Password: ")?;
    let second = ask(&tty, "Again: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

fn ask(tty: &std::fs::File, prompt: &str) -> Result<String> {
    use std::os::fd::AsRawFd;
    let fd = tty.as_raw_fd();
    let mut w = tty;
    w.write_all(prompt.as_bytes())?;
    w.flush()?;
    // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    let have_term = unsafe { libc::tcgetattr(fd, &mut term) } == 0;
    let saved = term;
    if have_term {
        term.c_lflag &= !libc::ECHO;
        term.c_lflag |= libc::ECHONL;
        // SAFETY: valid fd and termios.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    }
    let mut line = String::new();
    let read = std::io::BufReader::new(tty).read_line(&mut line);
    if have_term {
        // SAFETY: restores what tcgetattr returned.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
