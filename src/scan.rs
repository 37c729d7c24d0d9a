//! The one scan pipeline every front-end calls: extract → detect → policy.

use crate::config::Config;
use crate::detect::virus::Virus;
use crate::detect::{self, DetectError, Detector, ScanContext};
use crate::finding::Finding;
use crate::message::{Envelope, Extractor, LimitHit, PdfMode, ScannedMessage};
use crate::policy::{Action, Policy, Verdict};
use crate::rules::{RuleSource, RulesError};
use crate::sender::{self, SchoolDomains};
use futures_util::FutureExt;
use rayon::prelude::*;
use serde::Serialize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Two detectors may report the same thing (the banned-attachment detector and
/// clamd's `Heuristics.Encrypted.*` both flag an encrypted zip): keep one finding
/// per (rule, location), with the larger count and confidence.
fn dedupe(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        match out
            .iter_mut()
            .find(|o| o.rule == f.rule && o.location == f.location)
        {
            Some(o) => {
                o.count = o.count.max(f.count);
                o.confidence = o.confidence.max(f.confidence);
                o.severity = o.severity.max(f.severity);
            }
            None => out.push(f),
        }
    }
    out
}

/// Messages with at least this many bytes of parts run their detectors in
/// parallel (when [`ScannerOptions::parallel`] is on).
pub const PARALLEL_FROM_BYTES: usize = 256 * 1024;

/// Options for building a [`Scanner`].
#[derive(Debug, Clone)]
pub struct ScannerOptions {
    /// Runtime used to talk to clamd; None disables virus scanning.
    pub runtime: Option<tokio::runtime::Handle>,
    pub pdf: PdfMode,
    /// Run detectors in parallel (rayon). Off for single-threaded benchmarks.
    pub parallel: bool,
}

/// The result of scanning one message.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    #[serde(flatten)]
    pub verdict: Verdict,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// Limits reached while extracting (each is also a finding where it matters).
    pub limits: Vec<LimitReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LimitReport {
    pub location: String,
    pub limit: &'static str,
    pub detail: String,
}

impl From<&LimitHit> for LimitReport {
    fn from(l: &LimitHit) -> Self {
        LimitReport {
            location: l.location.clone(),
            limit: l.limit,
            detail: l.detail.clone(),
        }
    }
}

/// Messages up to this many bytes are scanned on the async task that
/// received them ([`Scanner::scan_async`]): extracting and checking one takes
/// tens of microseconds, less than handing it to another thread and back.
pub const INLINE_MAX_BYTES: usize = 64 * 1024;

pub struct Scanner {
    config: Config,
    extractor: Extractor,
    /// The content detectors; the virus scan is kept apart because it waits
    /// for clamd, which the async path does without blocking a thread.
    detectors: Vec<Box<dyn Detector>>,
    virus: Option<Virus>,
    policy: Policy,
    domains: SchoolDomains,
    parallel: bool,
}

impl Scanner {
    pub fn new(config: Config, options: ScannerOptions) -> Result<Scanner, RulesError> {
        let rules = RuleSource::new(config.rules.dir.as_deref());
        let policy = Policy::load(&rules.load("policy.toml")?, &config)?;
        let detectors = detect::registry(&config, &rules)?;
        let virus = detect::virus_detector(&config, options.runtime);
        Ok(Scanner {
            extractor: Extractor::new(config.limits.clone(), options.pdf),
            domains: SchoolDomains::new(&config),
            config,
            detectors,
            virus,
            policy,
            parallel: options.parallel,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Scan one message. Never panics; any internal failure is a `tempfail` verdict.
    /// Must not be called on a tokio worker thread (use [`Scanner::scan_async`]):
    /// the virus detector blocks on clamd.
    pub fn scan(&self, envelope: &Envelope, raw: &[u8]) -> ScanReport {
        let message = match catch_unwind(AssertUnwindSafe(|| self.extractor.extract(raw))) {
            Ok(m) => m,
            Err(_) => return self.extraction_panicked(envelope),
        };
        self.scan_extracted(envelope, &message)
    }

    /// Scan from async code. A small message (at most [`INLINE_MAX_BYTES`],
    /// no PDF, little to unpack) is scanned on the calling task, with clamd
    /// answering over a socket the runtime polls: no thread hand-off at all.
    /// Anything else goes to the blocking pool. Never panics.
    pub async fn scan_async(
        self: &Arc<Self>,
        envelope: &Envelope,
        raw: &Arc<Vec<u8>>,
    ) -> Result<ScanReport, tokio::task::JoinError> {
        if raw.len() <= INLINE_MAX_BYTES {
            let inline = AssertUnwindSafe(self.scan_inline(envelope, raw)).catch_unwind();
            match inline.await {
                Ok(Some(report)) => return Ok(report),
                Ok(None) => {}
                Err(_) => {
                    tracing::error!("inline scan panicked");
                    return Ok(self.extraction_panicked(envelope));
                }
            }
        }
        let (scanner, envelope, raw) = (Arc::clone(self), envelope.clone(), Arc::clone(raw));
        tokio::task::spawn_blocking(move || scanner.scan(&envelope, &raw)).await
    }

    /// The inline scan, or None when the message needs the blocking pool.
    async fn scan_inline(&self, envelope: &Envelope, raw: &[u8]) -> Option<ScanReport> {
        let message = self.extractor.extract_inline(raw)?;
        // clamd scans while the content detectors run.
        let pending = match &self.virus {
            Some(virus) => Some(virus.start(&message).await),
            None => None,
        };
        let identity = sender::identify(&self.config, &self.domains, envelope, &message);
        let (mut findings, mut errors) = {
            let ctx = self.context(envelope, &message, &identity);
            self.run(&ctx, self.detectors.iter().map(|d| d.as_ref()).collect())
        };
        if let (Some(virus), Some(pending)) = (&self.virus, pending) {
            match pending.finish(virus).await {
                Ok(found) => findings.extend(found),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Some(self.decide(envelope, &message, &identity, findings, errors))
    }

    /// Extraction failed inside: nothing could be scanned, so tempfail.
    fn extraction_panicked(&self, envelope: &Envelope) -> ScanReport {
        tracing::error!("extraction panicked");
        let msg = ScannedMessage::default();
        let identity = sender::identify(&self.config, &self.domains, envelope, &msg);
        ScanReport {
            verdict: self.policy.tempfail(
                &identity,
                "message extraction failed (internal error)".into(),
            ),
            message_id: None,
            subject: None,
            limits: Vec::new(),
        }
    }

    /// Detect and decide on an already extracted message.
    pub fn scan_extracted(&self, envelope: &Envelope, message: &ScannedMessage) -> ScanReport {
        let identity = sender::identify(&self.config, &self.domains, envelope, message);
        let ctx = self.context(envelope, message, &identity);
        let mut all: Vec<&dyn Detector> = self.detectors.iter().map(|d| d.as_ref()).collect();
        if let Some(virus) = &self.virus {
            all.push(virus);
        }
        let (findings, errors) = self.run(&ctx, all);
        self.decide(envelope, message, &identity, findings, errors)
    }

    fn context<'a>(
        &'a self,
        envelope: &'a Envelope,
        message: &'a ScannedMessage,
        identity: &'a sender::Identity,
    ) -> ScanContext<'a> {
        ScanContext {
            envelope,
            message,
            identity,
            domains: &self.domains,
            config: &self.config,
        }
    }

    /// Run `detectors` over the message: their findings, and the errors of
    /// those that failed (a panic is an error too).
    fn run(
        &self,
        ctx: &ScanContext<'_>,
        detectors: Vec<&dyn Detector>,
    ) -> (Vec<Finding>, Vec<String>) {
        let run = |d: &dyn Detector| -> Result<Vec<Finding>, DetectError> {
            let mut out = Vec::new();
            match catch_unwind(AssertUnwindSafe(|| d.inspect(ctx, &mut out))) {
                Ok(Ok(())) => Ok(out),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(DetectError::Internal {
                    detector: d.name(),
                    message: "detector panicked".into(),
                }),
            }
        };
        // Fanning out to rayon costs thread wake-ups; it only pays for itself
        // on large messages.
        let bytes: usize = ctx.message.parts.iter().map(|p| p.data.len()).sum();
        let results: Vec<Result<Vec<Finding>, DetectError>> =
            if self.parallel && bytes >= PARALLEL_FROM_BYTES {
                detectors.par_iter().map(|d| run(*d)).collect()
            } else {
                detectors.iter().map(|d| run(*d)).collect()
            };
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(f) => findings.extend(f),
                Err(e) => errors.push(e.to_string()),
            }
        }
        (findings, errors)
    }

    /// The verdict on what the detectors found; any error makes it tempfail.
    fn decide(
        &self,
        envelope: &Envelope,
        message: &ScannedMessage,
        identity: &sender::Identity,
        findings: Vec<Finding>,
        errors: Vec<String>,
    ) -> ScanReport {
        let findings = dedupe(findings);
        let verdict = if errors.is_empty() {
            self.policy.decide(findings, envelope, identity)
        } else {
            tracing::warn!(errors = ?errors, "scan failed; tempfail");
            let mut v = self.policy.tempfail(identity, errors.join("; "));
            // Keep what was found, so the operator can see it.
            let decided = self.policy.decide(findings, envelope, identity);
            v.findings = decided.findings;
            v
        };
        debug_assert!(verdict.error.is_none() || verdict.action == Action::Tempfail);
        ScanReport {
            verdict,
            message_id: message.headers.message_id.clone(),
            subject: message.headers.subject.clone(),
            limits: message.limits_hit.iter().map(LimitReport::from).collect(),
        }
    }
}
