//! State shared by one extraction: the output being built, the limits, and the
//! per-message budgets (bytes expanded from archives and documents, archive
//! entries, PDF worker time) that every branch draws from.

use super::extract::PdfMode;
use super::{LimitHit, Location, Part, ScannedMessage, Table, TextSegment, TextSource};
use crate::config::Limits;
use std::time::Duration;

pub(crate) struct Ctx<'a> {
    pub limits: &'a Limits,
    pub pdf: &'a PdfMode,
    pub out: ScannedMessage,
    /// Bytes decompressed from archives and documents so far.
    pub expanded: u64,
    /// Archive members listed so far (whole message).
    pub archive_entries: usize,
    /// Set once `max_expanded_bytes` or `max_archive_entries` is reached: no more expansion.
    pub expansion_stopped: bool,
    /// PDF worker time still available for this message.
    pub pdf_time_left: Duration,
    /// The `mime_parts` limit was reached (recorded once).
    pub parts_capped: bool,
    /// A PDF was met under [`PdfMode::Defer`]: the extraction is incomplete.
    pub pdf_deferred: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(limits: &'a Limits, pdf: &'a PdfMode, raw_size: usize) -> Ctx<'a> {
        Ctx {
            limits,
            pdf,
            out: ScannedMessage {
                raw_size,
                ..ScannedMessage::default()
            },
            expanded: 0,
            archive_entries: 0,
            expansion_stopped: false,
            pdf_time_left: Duration::from_secs(limits.pdf_timeout_secs.max(1).saturating_mul(3)),
            parts_capped: false,
            pdf_deferred: false,
        }
    }

    /// Record a limit that was reached (or an extraction failure).
    pub fn hit(&mut self, location: &str, limit: &'static str, detail: impl Into<String>) {
        let detail = detail.into();
        tracing::debug!(
            location,
            limit,
            detail = detail.as_str(),
            "extraction limit"
        );
        self.out.limits_hit.push(LimitHit {
            location: location.to_string(),
            limit,
            detail,
        });
    }

    /// Add a text segment, cut to `max_text_per_part` (on a character boundary).
    pub fn text(
        &mut self,
        location: Location,
        source: TextSource,
        mut text: String,
        table: Option<Table>,
    ) {
        let max = self.limits.max_text_per_part;
        if text.len() > max {
            let mut cut = max;
            while cut > 0 && !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.hit(
                &location,
                "text_per_part",
                format!("{} bytes of text, kept the first {cut}", text.len()),
            );
            text.truncate(cut);
        }
        if text.trim().is_empty() && table.is_none() {
            return;
        }
        self.out.texts.push(TextSegment {
            location,
            source,
            text,
            table,
        });
    }

    pub fn part(&mut self, part: Part) -> usize {
        self.out.parts.push(part);
        self.out.parts.len() - 1
    }

    /// Bytes that may still be expanded in this message.
    pub fn expand_budget(&self) -> u64 {
        if self.expansion_stopped {
            0
        } else {
            self.limits.max_expanded_bytes.saturating_sub(self.expanded)
        }
    }
}
