//! anonymous_sender: the sender cannot be identified. (Stub; filled in next.)

use super::{DetectError, Detector, ScanContext};
use crate::config::Config;
use crate::finding::Finding;
use crate::rules::{RuleSource, RulesError};

pub struct AnonymousSender {}

impl AnonymousSender {
    pub fn new(_config: &Config, _rules: &RuleSource) -> Result<AnonymousSender, RulesError> {
        Ok(AnonymousSender {})
    }
}

impl Detector for AnonymousSender {
    fn name(&self) -> &'static str {
        "anonymous_sender"
    }
    fn inspect(&self, _ctx: &ScanContext<'_>, _out: &mut Vec<Finding>) -> Result<(), DetectError> {
        Ok(())
    }
}
