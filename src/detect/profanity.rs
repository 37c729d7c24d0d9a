//! profanity detector. (Stub; filled in by issue 4.)

use super::{DetectError, Detector, ScanContext};
use crate::finding::Finding;
use crate::rules::{RuleSource, RulesError};

pub struct Profanity {}

impl Profanity {
    pub fn new(_rules: &RuleSource) -> Result<Profanity, RulesError> {
        Ok(Profanity {})
    }
}

impl Detector for Profanity {
    fn name(&self) -> &'static str {
        "profanity"
    }
    fn inspect(&self, _ctx: &ScanContext<'_>, _out: &mut Vec<Finding>) -> Result<(), DetectError> {
        Ok(())
    }
}
