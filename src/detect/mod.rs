//! Detectors: one file each, one trait. The registry builds them from the config
//! and the rule files; the scan pipeline runs them (in parallel) over a message.

pub mod anonymous_sender;
pub mod attachments;
pub mod chain_letter;
pub mod personal_data;
pub mod profanity;
pub mod virus;

use crate::config::Config;
use crate::finding::Finding;
use crate::message::{Envelope, ScannedMessage};
use crate::rules::{RuleSource, RulesError};
use crate::sender::{Identity, SchoolDomains};

/// What a detector sees of one message.
pub struct ScanContext<'a> {
    pub envelope: &'a Envelope,
    pub message: &'a ScannedMessage,
    pub identity: &'a Identity,
    pub domains: &'a SchoolDomains,
    pub config: &'a Config,
}

/// A detector failed in a way that means the message was not fully scanned.
/// The policy turns this into `tempfail`: mail is never passed unscanned.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("clamd: {0}")]
    Clamd(String),
    #[error("{detector}: {message}")]
    Internal {
        detector: &'static str,
        message: String,
    },
}

pub trait Detector: Send + Sync {
    /// Short name for logs (`virus`, `banned_attachment`, …).
    fn name(&self) -> &'static str;
    /// Look at the message and push findings.
    fn inspect(&self, ctx: &ScanContext<'_>, out: &mut Vec<Finding>) -> Result<(), DetectError>;
}

/// Build the content detectors (everything but the virus scan, which talks
/// to clamd and is built by [`virus_detector`]).
pub fn registry(config: &Config, rules: &RuleSource) -> Result<Vec<Box<dyn Detector>>, RulesError> {
    Ok(vec![
        Box::new(anonymous_sender::AnonymousSender::new(config, rules)?),
        Box::new(attachments::BannedAttachments::new(rules)?),
        Box::new(profanity::Profanity::new(rules)?),
        Box::new(personal_data::PersonalData::new(config, rules)?),
        Box::new(chain_letter::ChainLetter::new(rules)?),
    ])
}

/// The virus detector. `runtime` is the tokio runtime it uses for clamd
/// (None, or `clamd.disabled` set: no clamd scanning).
pub fn virus_detector(
    config: &Config,
    runtime: Option<tokio::runtime::Handle>,
) -> Option<virus::Virus> {
    match (config.clamd.disabled, runtime) {
        (false, Some(handle)) => Some(virus::Virus::new(config, handle)),
        _ => None,
    }
}
