//! virus: every decoded part through clamd (INSTREAM). (Stub; filled in next.)

use super::{DetectError, Detector, ScanContext};
use crate::config::Config;
use crate::finding::Finding;

pub struct Virus {
    _handle: tokio::runtime::Handle,
}

impl Virus {
    pub fn new(_config: &Config, handle: tokio::runtime::Handle) -> Virus {
        Virus { _handle: handle }
    }
}

impl Detector for Virus {
    fn name(&self) -> &'static str {
        "virus"
    }
    fn inspect(&self, _ctx: &ScanContext<'_>, _out: &mut Vec<Finding>) -> Result<(), DetectError> {
        Ok(())
    }
}
