//! chain_letter detector. (Stub; filled in by issue 4.)

use super::{DetectError, Detector, ScanContext};
use crate::finding::Finding;
use crate::rules::{RuleSource, RulesError};

pub struct ChainLetter {}

impl ChainLetter {
    pub fn new(_rules: &RuleSource) -> Result<ChainLetter, RulesError> {
        Ok(ChainLetter {})
    }
}

impl Detector for ChainLetter {
    fn name(&self) -> &'static str {
        "chain_letter"
    }
    fn inspect(&self, _ctx: &ScanContext<'_>, _out: &mut Vec<Finding>) -> Result<(), DetectError> {
        Ok(())
    }
}
