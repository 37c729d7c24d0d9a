//! Zip containers: plain archives (members become parts of their own, scanned
//! recursively), and the zip layer of OOXML/ODF documents.
//!
//! Zip bombs: nothing is decompressed without a cap. Each member may expand to
//! at most `compressed × max_expansion_ratio` (but always at least 1 MiB, so
//! small highly compressible text files are fine), and all expansion in one
//! message shares `max_expanded_bytes`. Declared sizes are checked before
//! reading, and the actual output is read through `take()` so a lying header
//! cannot push past the cap. Encrypted members are never decrypted: the member
//! is listed (name only, no data) with `Encryption::ZipEntry`, and so is the zip.

use super::ctx::Ctx;
use super::file::{self, Blob};
use super::{Encryption, Part, PartFacts};
use std::io::{Cursor, Read};
use std::sync::Arc;
use zip::{CompressionMethod, ZipArchive};

/// Members smaller than this never count as over the expansion ratio.
const RATIO_FLOOR: u64 = 1024 * 1024;

pub(crate) type Zip<'d> = ZipArchive<Cursor<&'d [u8]>>;

pub(crate) fn open(data: &[u8]) -> Result<Zip<'_>, String> {
    ZipArchive::new(Cursor::new(data)).map_err(|e| format!("zip: {e}"))
}

/// Names of all members, in central-directory order (index = position).
pub(crate) fn names(zip: &Zip<'_>) -> Vec<String> {
    (0..zip.len())
        .map(|i| {
            zip.by_index_data(i)
                .ok()
                .and_then(|e| e.name().ok().map(|n| n.into_owned()))
                .unwrap_or_default()
        })
        .collect()
}

/// Is member `i` encrypted (ZipCrypto flag or WinZip AES)?
pub(crate) fn is_encrypted(zip: &Zip<'_>, i: usize) -> bool {
    zip.by_index_data(i)
        .map(|e| e.encrypted() || e.compression() == CompressionMethod::AES)
        .unwrap_or(false)
}

/// Why a member's content is not available (already recorded as a [`super::LimitHit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoContent {
    /// A size limit was reached: the container must not be expanded further.
    Limit,
    /// The member could not be read.
    Failed,
}

/// Decompress member `i` within the ratio and the message budget.
pub(crate) fn read_member(
    ctx: &mut Ctx<'_>,
    zip: &mut Zip<'_>,
    i: usize,
    location: &str,
) -> Result<Vec<u8>, NoContent> {
    let (size, csize) = match zip.by_index_data(i) {
        Ok(e) => (e.size(), e.compressed_size()),
        Err(e) => {
            ctx.hit(location, "extract_failed", format!("zip entry: {e}"));
            return Err(NoContent::Failed);
        }
    };
    let ratio = ctx.limits.max_expansion_ratio.max(1);
    let allowed = csize.saturating_mul(ratio).max(RATIO_FLOOR);
    let budget = ctx.expand_budget();
    if size > allowed {
        ctx.hit(
            location,
            "expansion_ratio",
            format!("declares {size} bytes from {csize} compressed (more than {ratio}:1)"),
        );
        return Err(NoContent::Limit);
    }
    if size > budget {
        ctx.hit(
            location,
            "expanded_bytes",
            format!(
                "{size} more bytes would exceed {} expanded bytes for the message",
                ctx.limits.max_expanded_bytes
            ),
        );
        ctx.expansion_stopped = true;
        return Err(NoContent::Limit);
    }
    let cap = allowed.min(budget);
    let file = match zip.by_index(i) {
        Ok(f) => f,
        Err(e) => {
            ctx.hit(location, "extract_failed", format!("zip entry: {e}"));
            return Err(NoContent::Failed);
        }
    };
    let mut buf = Vec::with_capacity(size.min(cap).min(16 << 20) as usize);
    let result = file.take(cap.saturating_add(1)).read_to_end(&mut buf);
    ctx.expanded = ctx.expanded.saturating_add(buf.len() as u64);
    if buf.len() as u64 > cap {
        if cap == allowed {
            ctx.hit(
                location,
                "expansion_ratio",
                format!(
                    "expands past {cap} bytes from {csize} compressed (declared {size}; more than {ratio}:1)"
                ),
            );
        } else {
            ctx.hit(
                location,
                "expanded_bytes",
                format!(
                    "expansion stopped at {} bytes for the message",
                    ctx.limits.max_expanded_bytes
                ),
            );
            ctx.expansion_stopped = true;
        }
        return Err(NoContent::Limit);
    }
    if let Err(e) = result {
        ctx.hit(location, "extract_failed", format!("zip entry: {e}"));
        if buf.is_empty() {
            return Err(NoContent::Failed);
        }
    } else if buf.len() as u64 != size {
        ctx.hit(
            location,
            "extract_failed",
            format!("zip entry declares {size} bytes but holds {}", buf.len()),
        );
    }
    Ok(buf)
}

/// Decompress every member once to prove the whole container stays within the
/// limits before a third-party reader (calamine) decompresses it without limits
/// of its own. `inspect` sees each member and may veto the container (the
/// reason is recorded as `extract_failed`). Returns false when it must not be read.
pub(crate) fn check_expansion(
    ctx: &mut Ctx<'_>,
    zip: &mut Zip<'_>,
    location: &str,
    mut inspect: impl FnMut(&str, &[u8]) -> Option<String>,
) -> bool {
    let names = names(zip);
    for (i, name) in names.iter().enumerate() {
        if is_encrypted(zip, i) {
            continue;
        }
        match read_member(ctx, zip, i, location) {
            Err(NoContent::Limit) => return false,
            Err(NoContent::Failed) => {}
            Ok(bytes) => {
                if let Some(problem) = inspect(name, &bytes) {
                    ctx.hit(location, "extract_failed", problem);
                    return false;
                }
            }
        }
    }
    true
}

/// A plain zip archive: list and scan every member.
pub(crate) fn scan_archive(ctx: &mut Ctx<'_>, idx: usize, blob: &Blob, mut zip: Zip<'_>) {
    if let Some(p) = ctx.out.parts.get_mut(idx) {
        p.facts.archive = true;
    }
    let depth = blob.archive_depth + 1;
    if depth > ctx.limits.max_archive_depth {
        ctx.hit(
            &blob.location,
            "archive_depth",
            format!(
                "archive nested deeper than {} levels",
                ctx.limits.max_archive_depth
            ),
        );
        return;
    }
    let names = names(&zip);
    for (i, name) in names.iter().enumerate() {
        if name.ends_with('/') || zip.by_index_data(i).map(|e| e.is_dir()).unwrap_or(false) {
            continue;
        }
        if ctx.expansion_stopped {
            ctx.hit(
                &blob.location,
                "expanded_bytes",
                "members not scanned: expansion budget for the message used up",
            );
            return;
        }
        if ctx.archive_entries >= ctx.limits.max_archive_entries {
            ctx.hit(
                &blob.location,
                "archive_entries",
                format!(
                    "more than {} archive members in the message; the rest were not scanned",
                    ctx.limits.max_archive_entries
                ),
            );
            return;
        }
        ctx.archive_entries += 1;
        let location = format!("{}/{}", blob.location, name);
        if is_encrypted(&zip, i) {
            if let Some(p) = ctx.out.parts.get_mut(idx) {
                p.facts.encrypted = Some(Encryption::ZipEntry);
            }
            ctx.part(Part {
                location,
                name: Some(name.clone()),
                declared_type: None,
                sniffed_type: None,
                is_attachment: true,
                archive_depth: depth,
                facts: PartFacts {
                    encrypted: Some(Encryption::ZipEntry),
                    ..PartFacts::default()
                },
                data: Arc::from(&[][..]),
            });
            continue;
        }
        match read_member(ctx, &mut zip, i, &location) {
            Ok(bytes) => file::scan_file(
                ctx,
                Blob {
                    location,
                    name: Some(name.clone()),
                    declared: None,
                    data: Arc::from(bytes),
                    archive_depth: depth,
                    is_attachment: true,
                    encrypted: None,
                },
            ),
            Err(_) => {
                // Keep the name visible (banned types), without content.
                ctx.part(Part {
                    location,
                    name: Some(name.clone()),
                    declared_type: None,
                    sniffed_type: None,
                    is_attachment: true,
                    archive_depth: depth,
                    facts: PartFacts::default(),
                    data: Arc::from(&[][..]),
                });
            }
        }
    }
}
