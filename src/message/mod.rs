//! The parsed message as detectors see it: header facts, text with locations, and
//! every decoded part (MIME leaves and archive members) with its facts.

mod archive;
mod ctx;
pub mod envelope;
pub mod extract;
mod file;
mod html;
mod mime;
mod office;
mod pdf;
pub mod received;
mod sheets;
mod smime;
mod sniff;
mod xls;

pub use envelope::Envelope;
pub use extract::{Extractor, PdfMode};

use std::sync::Arc;

/// Where a piece of text or a part came from, e.g. `subject`, `body`,
/// `attachment:pupils.zip/list.xlsx#Sheet2`, `message:fwd.eml/body`.
pub type Location = String;

/// A mailbox from a header: display name and address (either may be empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: Option<String>,
}

/// Header facts of the top-level message.
#[derive(Debug, Clone, Default)]
pub struct HeaderFacts {
    /// `From:` mailboxes; `None` when the header is absent.
    pub from: Option<Vec<Mailbox>>,
    pub sender: Option<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// Top-level content type, lower case `type/subtype`.
    pub content_type: Option<String>,
    /// `report-type` parameter of a top-level multipart/report.
    pub report_type: Option<String>,
    /// Raw `Received:` header values, topmost first.
    pub received: Vec<String>,
    /// `Auto-Submitted:` value, if any.
    pub auto_submitted: Option<String>,
    /// All header names and raw values, in order (for rules that need other headers).
    pub all: Vec<(String, String)>,
}

impl HeaderFacts {
    /// Is this a delivery status notification or a disposition (read receipt) notification?
    pub fn is_dsn_or_mdn(&self) -> bool {
        let rt = self
            .report_type
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        self.content_type.as_deref() == Some("multipart/report")
            && (rt.is_empty() || rt == "delivery-status" || rt == "disposition-notification")
    }
}

/// What kind of text a segment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSource {
    Subject,
    /// text/plain body (or the visible text of an HTML body).
    Body,
    /// Visible text of an HTML body part.
    Html,
    /// Text extracted from an attachment (document, sheet, pdf, archive member).
    Attachment,
    /// A header other than Subject (e.g. display names) when worth scanning.
    Header,
}

/// A piece of extracted text with its location.
#[derive(Debug, Clone)]
pub struct TextSegment {
    pub location: Location,
    pub source: TextSource,
    pub text: String,
    /// For spreadsheets and CSV: the cells by row, so detectors can use column headers.
    pub table: Option<Table>,
}

/// Rows of cells (first row is usually the header row).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub rows: Vec<Vec<String>>,
}

/// How a part is encrypted, when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// Zip entry with the encryption flag (ZipCrypto) or AES extra field.
    ZipEntry,
    /// PDF that needs a user password to open.
    Pdf,
    /// Password-protected OOXML (CFB container with EncryptionInfo/EncryptedPackage),
    /// or an ODF/XLS file that needs a password.
    Office,
    /// S/MIME enveloped-data / authEnveloped-data.
    Smime,
    /// PGP/MIME multipart/encrypted or inline `BEGIN PGP MESSAGE`.
    Pgp,
    /// RAR/7z or another archive whose members are encrypted.
    Archive,
}

/// Executable formats recognised by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutableKind {
    /// Windows PE (MZ header with a valid PE header).
    Pe,
    Elf,
    MachO,
}

/// Facts about one decoded part or archive member.
#[derive(Debug, Clone, Default)]
pub struct PartFacts {
    pub encrypted: Option<Encryption>,
    /// VBA macros (vbaProject.bin in OOXML, VBA storages in OLE files).
    pub macros: bool,
    pub executable: Option<ExecutableKind>,
    /// A container whose members were listed as parts of their own (zip, OOXML is not listed).
    pub archive: bool,
}

/// One decoded leaf MIME part, or one file inside an archive.
#[derive(Debug, Clone)]
pub struct Part {
    pub location: Location,
    /// File name: declared (Content-Disposition/Content-Type name) or the archive entry name.
    pub name: Option<String>,
    /// Declared MIME type, lower case `type/subtype` (None for archive members).
    pub declared_type: Option<String>,
    /// MIME type sniffed from the content's magic bytes.
    pub sniffed_type: Option<&'static str>,
    /// True for attachments and archive members; false for the message's own body text parts.
    pub is_attachment: bool,
    /// Nesting: 0 for MIME parts, 1 for a member of an attached archive, 2 inside a nested one…
    pub archive_depth: usize,
    pub facts: PartFacts,
    /// The decoded content.
    pub data: Arc<[u8]>,
}

/// A limit that was reached while extracting; the scan goes on with what it has.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitHit {
    pub location: Location,
    /// Short machine name: `message_size`, `mime_depth`, `archive_depth`, `archive_entries`,
    /// `expanded_bytes`, `expansion_ratio`, `text_per_part`, `extract_failed`, `pdf_timeout`,
    /// `pdf_failed`, `mime_parts` (more than 10,000 parts in one message).
    pub limit: &'static str,
    pub detail: String,
}

/// Everything the detectors see of one message.
#[derive(Debug, Clone, Default)]
pub struct ScannedMessage {
    pub headers: HeaderFacts,
    pub texts: Vec<TextSegment>,
    pub parts: Vec<Part>,
    pub limits_hit: Vec<LimitHit>,
    /// Whole-message encryption (S/MIME enveloped, PGP/MIME) was found.
    pub encrypted: Option<Encryption>,
    /// Size of the raw message in bytes.
    pub raw_size: usize,
    /// Depth of message/rfc822 forwarding seen (0 = none).
    pub forwarded_depth: usize,
}
