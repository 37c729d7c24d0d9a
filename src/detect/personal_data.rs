//! personal_data detector. (Stub; filled in by issue 4.)

use super::{DetectError, Detector, ScanContext};
use crate::finding::Finding;
use crate::rules::{RuleSource, RulesError};

pub struct PersonalData {}

impl PersonalData {
    pub fn new(
        _config: &crate::config::Config,
        _rules: &RuleSource,
    ) -> Result<PersonalData, RulesError> {
        Ok(PersonalData {})
    }
}

impl Detector for PersonalData {
    fn name(&self) -> &'static str {
        "personal_data"
    }
    fn inspect(&self, _ctx: &ScanContext<'_>, _out: &mut Vec<Finding>) -> Result<(), DetectError> {
        Ok(())
    }
}
