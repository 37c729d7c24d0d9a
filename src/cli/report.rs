//! `hallmonitor report …` (skeleton; filled in by its issue).
//! `--config FILE` is the global flag: it works before or after the subcommand.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(config: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let _ = (config, args);
    anyhow::bail!("`hallmonitor report` is not built yet")
}
