//! PDF → text, safely.
//!
//! pdf-extract panics on malformed input by design and can run away on crafted
//! files, so in production ([`PdfMode::Worker`]) the PDF never touches the
//! server process: `EXE extract-pdf` is spawned with the PDF on stdin, under
//! rlimits set between fork and exec (address space `pdf_memory_mib`, CPU
//! seconds ≈ `pdf_timeout_secs`, no core files), and killed when
//! `pdf_timeout_secs` of wall-clock time have passed. All PDFs of one message
//! share three timeouts' worth of worker time, so a zip of a thousand PDFs
//! cannot hold a message for hours.
//!
//! Worker protocol: exit 0 = text on stdout; exit 3 = the PDF needs a user
//! password (`Encryption::Pdf`, no text); any other exit = failure (reason on
//! stderr) → `pdf_failed`. A PDF with only an owner password opens with the
//! empty user password (lopdf decrypts it on load) and is scanned normally.
//!
//! [`PdfMode::InProcess`] (tests, benchmarks) runs the same code behind
//! `catch_unwind`: panics are caught, runaways are not.

use super::ctx::Ctx;
use super::extract::PdfMode;
use super::file::{Blob, set_facts};
use super::{Encryption, TextSource};
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit status of the worker for "needs a password".
const EXIT_NEEDS_PASSWORD: u8 = 3;
const EXIT_FAILED: u8 = 4;
const EXIT_PANICKED: u8 = 5;

/// Why a PDF yielded no text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PdfError {
    #[error("the PDF needs a password to open")]
    NeedsPassword,
    #[error("{0}")]
    Failed(String),
}

/// What extraction produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Text (possibly longer than the limit; `Ctx::text` cuts it).
    Text(String),
    NeedsPassword,
    Failed(String),
    Timeout(String),
}

pub(crate) fn scan_pdf(ctx: &mut Ctx<'_>, idx: usize, blob: &Blob) {
    let outcome = match ctx.pdf {
        PdfMode::Defer => {
            ctx.pdf_deferred = true;
            return;
        }
        PdfMode::InProcess => in_process(&blob.data),
        PdfMode::Worker(exe) => {
            let exe = exe.clone();
            let started = Instant::now();
            let o = run_worker(&exe, &blob.data, ctx);
            ctx.pdf_time_left = ctx.pdf_time_left.saturating_sub(started.elapsed());
            o
        }
    };
    match outcome {
        // Text beyond max_text_per_part is cut (and recorded) by `ctx.text`.
        Outcome::Text(text) => {
            ctx.text(blob.location.clone(), TextSource::Attachment, text, None);
        }
        Outcome::NeedsPassword => set_facts(ctx, idx, |f| f.encrypted = Some(Encryption::Pdf)),
        Outcome::Failed(e) => ctx.hit(&blob.location, "pdf_failed", e),
        Outcome::Timeout(e) => ctx.hit(&blob.location, "pdf_timeout", e),
    }
}

/// Text of all pages. A document that stays encrypted after lopdf tried the
/// empty password needs a user password.
pub(crate) fn extract(data: &[u8]) -> Result<String, PdfError> {
    let doc = lopdf::Document::load_mem(data).map_err(|e| match e {
        lopdf::Error::Decryption(_)
        | lopdf::Error::InvalidPassword
        | lopdf::Error::UnsupportedSecurityHandler(_) => PdfError::NeedsPassword,
        e => PdfError::Failed(format!("PDF: {e}")),
    })?;
    if doc.is_encrypted() {
        return Err(PdfError::NeedsPassword);
    }
    // Page by page, so the last word of a page and the first of the next stay apart.
    let mut text = String::new();
    for page in doc.get_pages().into_keys() {
        if !text.is_empty() {
            text.push_str("\n\x0c");
        }
        let mut out = pdf_extract::PlainTextOutput::new(&mut text);
        pdf_extract::output_doc_page(&doc, &mut out, page).map_err(|e| match e {
            pdf_extract::OutputError::PdfError(lopdf::Error::Decryption(_)) => {
                PdfError::NeedsPassword
            }
            e => PdfError::Failed(format!("PDF text: {e}")),
        })?;
    }
    Ok(text)
}

fn in_process(data: &[u8]) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| extract(data))) {
        Ok(Ok(text)) => Outcome::Text(text),
        Ok(Err(PdfError::NeedsPassword)) => Outcome::NeedsPassword,
        Ok(Err(PdfError::Failed(e))) => Outcome::Failed(e),
        Err(_) => Outcome::Failed("the PDF extractor crashed on this file".into()),
    }
}

fn run_worker(exe: &Path, data: &Arc<[u8]>, ctx: &Ctx<'_>) -> Outcome {
    let limits = ctx.limits;
    if ctx.pdf_time_left.is_zero() {
        return Outcome::Timeout("PDF time allowed for this message used up".into());
    }
    let timeout = Duration::from_secs(limits.pdf_timeout_secs.max(1)).min(ctx.pdf_time_left);
    let max_text = limits.max_text_per_part;
    let memory = limits.pdf_memory_mib.max(16).saturating_mul(1024 * 1024);
    let cpu = limits.pdf_timeout_secs.max(1).saturating_add(1);
    let mut cmd = Command::new(exe);
    cmd.arg("extract-pdf")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("HALLMONITOR_LOG", "error");
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setrlimit, which is async-signal-safe; it allocates nothing.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            set_rlimit(libc::RLIMIT_AS, memory)?;
            set_rlimit(libc::RLIMIT_CPU, cpu)?;
            set_rlimit(libc::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot start the PDF worker: {e}")),
    };
    let stdin = child.stdin.take();
    let input = data.clone();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // The worker may exit early (bad PDF): a broken pipe is expected.
            let _ = stdin.write_all(&input);
        }
    });
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(out) = stdout {
            let _ = out.take(max_text as u64 + 1).read_to_end(&mut buf);
        }
        buf
    });
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut err) = stderr {
            let _ = (&mut err).take(4096).read_to_end(&mut buf);
            let _ = std::io::copy(&mut err, &mut std::io::sink());
        }
        buf
    });
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "waiting for the PDF worker");
                break None;
            }
        }
        if started.elapsed() >= timeout {
            break None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        let _ = writer.join();
        let _ = reader.join();
        let _ = err_reader.join();
        return Outcome::Timeout(format!(
            "PDF text extraction stopped after {} s",
            timeout.as_secs_f32()
        ));
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let truncated = out.len() > max_text;
    if status.success() || truncated {
        let text = String::from_utf8_lossy(&out).into_owned();
        return Outcome::Text(text);
    }
    if status.code() == Some(i32::from(EXIT_NEEDS_PASSWORD)) {
        return Outcome::NeedsPassword;
    }
    let reason = String::from_utf8_lossy(&err);
    let reason = reason.trim();
    let reason = reason.lines().last().unwrap_or("").trim();
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            // SIGXCPU or SIGKILL: the CPU limit; SIGSEGV/SIGABRT: out of memory or a crash.
            if sig == libc::SIGXCPU {
                return Outcome::Timeout("PDF worker used up its CPU time".into());
            }
            return Outcome::Failed(format!("PDF worker killed by signal {sig}"));
        }
    }
    Outcome::Failed(if reason.is_empty() {
        format!("PDF worker failed ({status})")
    } else {
        reason.to_string()
    })
}

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

fn set_rlimit(resource: Resource, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: plain syscall with a valid pointer to a local struct.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The `extract-pdf` worker: PDF on stdin, text on stdout (see the module docs).
pub fn worker_main() -> anyhow::Result<ExitCode> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf)?;
    match catch_unwind(AssertUnwindSafe(|| extract(&buf))) {
        Ok(Ok(text)) => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(Err(PdfError::NeedsPassword)) => Ok(ExitCode::from(EXIT_NEEDS_PASSWORD)),
        Ok(Err(PdfError::Failed(e))) => {
            eprintln!("{e}");
            Ok(ExitCode::from(EXIT_FAILED))
        }
        Err(_) => {
            eprintln!("the PDF extractor crashed on this file");
            Ok(ExitCode::from(EXIT_PANICKED))
        }
    }
}
