//! The one scan pipeline every front-end calls: extract → detect → policy.

use crate::config::Config;
use crate::detect::{self, DetectError, Detector, ScanContext};
use crate::finding::Finding;
use crate::message::{Envelope, Extractor, LimitHit, PdfMode, ScannedMessage};
use crate::policy::{Action, Policy, Verdict};
use crate::rules::{RuleSource, RulesError};
use crate::sender::{self, SchoolDomains};
use rayon::prelude::*;
use serde::Serialize;
use std::panic::{AssertUnwindSafe, catch_unwind};

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

pub struct Scanner {
    config: Config,
    extractor: Extractor,
    detectors: Vec<Box<dyn Detector>>,
    policy: Policy,
    domains: SchoolDomains,
    parallel: bool,
}

impl Scanner {
    pub fn new(config: Config, options: ScannerOptions) -> Result<Scanner, RulesError> {
        let rules = RuleSource::new(config.rules.dir.as_deref());
        let policy = Policy::load(&rules.load("policy.toml")?, &config)?;
        let detectors = detect::registry(&config, &rules, options.runtime)?;
        Ok(Scanner {
            extractor: Extractor::new(config.limits.clone(), options.pdf),
            domains: SchoolDomains::new(&config),
            config,
            detectors,
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
    /// Must not be called on a tokio worker thread (use `spawn_blocking`): the
    /// virus detector blocks on clamd.
    pub fn scan(&self, envelope: &Envelope, raw: &[u8]) -> ScanReport {
        let message = match catch_unwind(AssertUnwindSafe(|| self.extractor.extract(raw))) {
            Ok(m) => m,
            Err(_) => {
                tracing::error!("extraction panicked");
                // Scan what can be scanned without extraction: nothing. Tempfail.
                let msg = ScannedMessage::default();
                let identity = sender::identify(&self.config, &self.domains, envelope, &msg);
                return ScanReport {
                    verdict: self.policy.tempfail(
                        &identity,
                        "message extraction failed (internal error)".into(),
                    ),
                    message_id: None,
                    subject: None,
                    limits: Vec::new(),
                };
            }
        };
        self.scan_extracted(envelope, &message)
    }

    /// Detect and decide on an already extracted message.
    pub fn scan_extracted(&self, envelope: &Envelope, message: &ScannedMessage) -> ScanReport {
        let identity = sender::identify(&self.config, &self.domains, envelope, message);
        let ctx = ScanContext {
            envelope,
            message,
            identity: &identity,
            domains: &self.domains,
            config: &self.config,
        };
        let run = |d: &dyn Detector| -> Result<Vec<Finding>, DetectError> {
            let mut out = Vec::new();
            match catch_unwind(AssertUnwindSafe(|| d.inspect(&ctx, &mut out))) {
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
        let bytes: usize = message.parts.iter().map(|p| p.data.len()).sum();
        let results: Vec<Result<Vec<Finding>, DetectError>> =
            if self.parallel && bytes >= PARALLEL_FROM_BYTES {
                self.detectors.par_iter().map(|d| run(d.as_ref())).collect()
            } else {
                self.detectors.iter().map(|d| run(d.as_ref())).collect()
            };
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(f) => findings.extend(f),
                Err(e) => errors.push(e.to_string()),
            }
        }
        let findings = dedupe(findings);
        let verdict = if errors.is_empty() {
            self.policy.decide(findings, envelope, &identity)
        } else {
            tracing::warn!(errors = ?errors, "scan failed; tempfail");
            let mut v = self.policy.tempfail(&identity, errors.join("; "));
            // Keep what was found, so the operator can see it.
            let decided = self.policy.decide(findings, envelope, &identity);
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
