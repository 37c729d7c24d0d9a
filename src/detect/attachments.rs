//! banned_attachment: executables, scripts, macros, encrypted archives. (Stub; filled in next.)

use super::{DetectError, Detector, ScanContext};
use crate::finding::Finding;
use crate::rules::{RuleSource, RulesError};

pub struct BannedAttachments {}

impl BannedAttachments {
    pub fn new(_rules: &RuleSource) -> Result<BannedAttachments, RulesError> {
        Ok(BannedAttachments {})
    }
}

impl Detector for BannedAttachments {
    fn name(&self) -> &'static str {
        "banned_attachment"
    }
    fn inspect(&self, _ctx: &ScanContext<'_>, _out: &mut Vec<Finding>) -> Result<(), DetectError> {
        Ok(())
    }
}
