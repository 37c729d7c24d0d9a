//! Acting on held messages: release (re-inject to the next hop), delete,
//! purge (retention) and viewing a body safely. Every action checks
//! [`crate::access`] and writes an audit row; the CLI and the web UI both
//! call these.
//!
//! # Release
//!
//! The original bytes go, with the original envelope (sender, recipients,
//! MAIL parameters), to the next hop the holding relay used (or one given by
//! the operator). Incoming `X-Hallmonitor-*` headers are removed and two are
//! added on top:
//!
//! * `X-Hallmonitor-Released: by=NAME; at=RFC3339; reason=TEXT` (reason
//!   stripped of control characters, RFC 2047-encoded when not ASCII, folded);
//! * `X-Hallmonitor-Release-Token: v1; id=ID; at=UNIX; mac=HEX`, an
//!   HMAC-SHA256 with the server secret `release_hmac` over the quarantine id,
//!   the time and a SHA-256 of the body. The relay passes a message with a
//!   valid token (at most [`TOKEN_MAX_AGE_SECS`] old) without scanning it
//!   again; anything else is scanned as usual.
//!
//! A release is idempotent: the row is claimed with a lease before delivery
//! and marked `released` after the next hop's 250, so a second release (even
//! a concurrent one) answers [`ReleaseOutcome::AlreadyReleased`] and delivers
//! nothing. A failed delivery leaves the item held with `last_error` set.

use crate::access::{self, Role};
use crate::incidents::{AuditEntry, HeldItem, Incidents, IncidentsError, now};
use crate::outbound::headers::{self, Edits, base64, header_and_body, header_values};
use crate::outbound::relay::NextHop;
use crate::quarantine::Store;
use hmac::{KeyInit, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Name of the server secret the release token is made with.
pub const RELEASE_SECRET: &str = "release_hmac";
/// Header carrying the release token.
pub const TOKEN_HEADER: &str = "X-Hallmonitor-Release-Token";
/// Header recording who released the message, when and why.
pub const RELEASED_HEADER: &str = "X-Hallmonitor-Released";
/// A token older than this is not honoured (Postfix's default maximal queue
/// lifetime is five days).
pub const TOKEN_MAX_AGE_SECS: i64 = 7 * 24 * 3600;
/// A release lease older than this belongs to a crashed release.
const LEASE_SECS: i64 = 600;
/// Time allowed for each step of the delivery.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest reason kept (characters).
const MAX_REASON: usize = 500;

/// Who is acting.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub role: Role,
    /// Client address for web actions; None for the CLI.
    pub remote: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseOutcome {
    Delivered,
    AlreadyReleased,
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("`{0}` is not a quarantine id")]
    BadId(String),
    #[error("no held message {0}")]
    NotFound(String),
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error("a reason is required")]
    NoReason,
    #[error("message {id} is {status}, not held")]
    NotHeld { id: String, status: String },
    #[error("message {0} is being released by someone else right now")]
    InProgress(String),
    #[error("message {id}: no usable next hop (`{hop}`); give one with --next-hop")]
    NoNextHop { id: String, hop: String },
    #[error("message {id}: stored files: {source}")]
    Files {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("message {0}: stored metadata is unreadable")]
    Metadata(String),
    #[error("delivery to {hop} failed, message stays held: {error}")]
    Delivery { hop: SocketAddr, error: String },
    #[error(transparent)]
    Incidents(#[from] IncidentsError),
}

/// A quarantine id as [`Store`] makes them: digits and `-` only, so it can
/// never name a path outside the quarantine directory.
pub fn valid_id(id: &str) -> bool {
    (1..=80).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && id.as_bytes()[0].is_ascii_digit()
}

fn check_id(id: &str) -> Result<(), ReleaseError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ReleaseError::BadId(clean_text(id, 80)))
    }
}

async fn load(db: &Incidents, id: &str) -> Result<HeldItem, ReleaseError> {
    check_id(id)?;
    db.held_item(id)
        .await?
        .ok_or_else(|| ReleaseError::NotFound(id.to_string()))
}

/// Control characters become spaces, runs of white space one space; at most
/// `max` characters.
pub fn clean_text(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut space = false;
    for c in s.chars() {
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if out.chars().count() >= max {
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

/// The reason as it is stored and shown: cleaned, non-empty.
fn reason_of(reason: &str) -> Result<String, ReleaseError> {
    let r = clean_text(reason, MAX_REASON);
    if r.is_empty() {
        Err(ReleaseError::NoReason)
    } else {
        Ok(r)
    }
}

/// `name: value` as header lines (CRLF-terminated), the value's words folded
/// so no line exceeds 78 characters where a word allows it. Non-ASCII words
/// must already be encoded.
fn fold(name: &str, words: &[String]) -> String {
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for w in words {
        if line_len + 1 + w.len() > 78 && line_len > name.len() + 1 {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(w);
        line_len += 1 + w.len();
    }
    out.push_str("\r\n");
    out
}

/// RFC 2047 `=?UTF-8?B?…?=` words of at most 75 characters, split on
/// character boundaries.
fn encoded_words(text: &str) -> Vec<String> {
    const MAX_BYTES: usize = 45; // 60 base64 characters + 12 = 72
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
    }
    words
}

fn rfc3339(at: i64) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| at.to_string())
}

/// The `X-Hallmonitor-Released` header lines.
pub fn released_header(by: &str, at: i64, reason: &str) -> String {
    let by: String = clean_text(by, 64)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != ';' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut words = vec![format!("by={by};"), format!("at={};", rfc3339(at))];
    let reason = clean_text(reason, MAX_REASON);
    if reason.is_ascii() && !reason.contains("=?") {
        let mut first = true;
        for w in reason.split(' ') {
            if first {
                words.push(format!("reason={w}"));
                first = false;
            } else {
                words.push(w.to_string());
            }
        }
    } else {
        words.push("reason=".to_string());
        words.extend(encoded_words(&reason));
    }
    // "reason=" and its first encoded word must be one word on the wire only
    // when ASCII; an encoded word must stand alone, so it follows a space.
    fold(RELEASED_HEADER, &words)
}

fn token_mac(secret: &[u8], id: &str, at: i64, body: &[u8]) -> Option<hmac::Hmac<Sha256>> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(b"hallmonitor-release-v1\n");
    mac.update(id.as_bytes());
    mac.update(format!("\n{at}\n").as_bytes());
    mac.update(&Sha256::digest(body));
    Some(mac)
}

/// The `X-Hallmonitor-Release-Token` header line for a message whose body
/// (after the blank line) is `body`.
pub fn release_token_header(secret: &[u8], id: &str, at: i64, body: &[u8]) -> String {
    let mac = token_mac(secret, id, at, body)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{TOKEN_HEADER}: v1; id={id}; at={at}; mac={mac}\r\n")
}

/// Whether the message's header section names a release token at all.
pub fn has_release_token(raw: &[u8]) -> bool {
    let (header, _) = header_and_body(raw);
    !header_values(header, TOKEN_HEADER).is_empty()
}

/// True when `raw` carries exactly one release token that is valid for its
/// body under `secret` and not older than [`TOKEN_MAX_AGE_SECS`].
pub fn verify_release_token(raw: &[u8], secret: &[u8]) -> bool {
    let (header, body) = header_and_body(raw);
    let values: Vec<String> = header_values(header, TOKEN_HEADER);
    let [value] = values.as_slice() else {
        return false;
    };
    let mut parts = value.split(';').map(str::trim);
    if parts.next() != Some("v1") {
        return false;
    }
    let (mut id, mut at, mut mac) = (None, None, None);
    for p in parts {
        match p.split_once('=') {
            Some(("id", v)) => id = Some(v),
            Some(("at", v)) => at = v.parse::<i64>().ok(),
            Some(("mac", v)) => mac = hex::decode(v).ok(),
            _ => return false,
        }
    }
    let (Some(id), Some(at), Some(mac)) = (id, at, mac) else {
        return false;
    };
    let age = now() - at;
    if !valid_id(id) || !(-300..=TOKEN_MAX_AGE_SECS).contains(&age) {
        return false;
    }
    token_mac(secret, id, at, body).is_some_and(|m| m.verify_slice(&mac).is_ok())
}

/// For the relay: does this incoming message carry a valid release token?
/// (Database trouble counts as "no": the message is then scanned.)
pub async fn released_by_us(db: &Incidents, raw: &[u8]) -> bool {
    if !has_release_token(raw) {
        return false;
    }
    match db.secret(RELEASE_SECRET).await {
        Ok(secret) => verify_release_token(raw, &secret),
        Err(e) => {
            tracing::warn!(error = %e, "release secret unavailable; scanning the message");
            false
        }
    }
}

/// The parts of the stored metadata a release needs.
#[derive(Debug)]
struct StoredEnvelope {
    mail_from: String,
    rcpt_to: Vec<String>,
    mail_params: Vec<String>,
}

fn json_path(store: &Store, id: &str) -> PathBuf {
    store.dir().join(format!("{id}.json"))
}

async fn read_message(store: &Store, id: &str) -> Result<Vec<u8>, ReleaseError> {
    tokio::fs::read(store.message_path(id))
        .await
        .map_err(|source| ReleaseError::Files {
            id: id.to_string(),
            source,
        })
}

async fn read_envelope(store: &Store, id: &str) -> Result<StoredEnvelope, ReleaseError> {
    let bytes = tokio::fs::read(json_path(store, id))
        .await
        .map_err(|source| ReleaseError::Files {
            id: id.to_string(),
            source,
        })?;
    let meta: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| ReleaseError::Metadata(id.to_string()))?;
    let strings = |v: Option<&serde_json::Value>| -> Vec<String> {
        v.and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let env = meta
        .get("envelope")
        .ok_or_else(|| ReleaseError::Metadata(id.to_string()))?;
    let mail_from = env
        .get("mail_from")
        .and_then(|v| v.as_str())
        .ok_or_else(|| ReleaseError::Metadata(id.to_string()))?
        .to_string();
    let rcpt_to = strings(env.get("rcpt_to"));
    if rcpt_to.is_empty() {
        return Err(ReleaseError::Metadata(id.to_string()));
    }
    Ok(StoredEnvelope {
        mail_from,
        rcpt_to,
        mail_params: strings(meta.get("mail_params")),
    })
}

/// Send one message; Ok carries how many recipients the next hop accepted
/// and a note on the ones it refused.
async fn deliver(
    hop: SocketAddr,
    hostname: &str,
    env: &StoredEnvelope,
    parts: &[&[u8]],
) -> Result<(usize, Vec<String>), String> {
    let mut next = NextHop::connect(hop, DELIVERY_TIMEOUT, hostname, |_| Vec::new())
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        let r = next
            .mail_from(&env.mail_from, &env.mail_params)
            .await
            .map_err(|e| e.to_string())?;
        if !r.is_positive() {
            return Err(format!("MAIL FROM refused: {}", r.to_smtp().trim_end()));
        }
        let mut accepted = 0;
        let mut refused = Vec::new();
        for rcpt in &env.rcpt_to {
            let r = next.rcpt_to(rcpt, &[]).await.map_err(|e| e.to_string())?;
            if r.is_positive() {
                accepted += 1;
            } else {
                refused.push(format!("{rcpt}: {}", r.to_smtp().trim_end()));
            }
        }
        if accepted == 0 {
            return Err(format!("every recipient refused: {}", refused.join("; ")));
        }
        let r = next.data(parts).await.map_err(|e| e.to_string())?;
        if !r.is_positive() {
            return Err(format!("DATA refused: {}", r.to_smtp().trim_end()));
        }
        Ok((accepted, refused))
    }
    .await;
    next.quit().await;
    result
}

/// Release a held message (see the module docs).
pub async fn release(
    db: &Incidents,
    store: &Store,
    id: &str,
    actor: &Actor<'_>,
    reason: &str,
    next_hop_override: Option<SocketAddr>,
    hostname: &str,
) -> Result<ReleaseOutcome, ReleaseError> {
    let reason = reason_of(reason)?;
    let item = load(db, id).await?;
    access::can_release(actor.role, &item).map_err(ReleaseError::Refused)?;
    match item.status.as_str() {
        "held" => {}
        "released" => return Ok(ReleaseOutcome::AlreadyReleased),
        other => {
            return Err(ReleaseError::NotHeld {
                id: id.to_string(),
                status: other.to_string(),
            });
        }
    }
    let hop = match next_hop_override {
        Some(h) => h,
        None => item
            .next_hop
            .parse::<SocketAddr>()
            .map_err(|_| ReleaseError::NoNextHop {
                id: id.to_string(),
                hop: item.next_hop.clone(),
            })?,
    };
    let raw = read_message(store, id).await?;
    let env = read_envelope(store, id).await?;

    // Claim the item: only one release delivers.
    let started = now();
    let claimed = sqlx::query(
        "UPDATE quarantine SET release_started = ? WHERE id = ? AND status = 'held' \
         AND (release_started IS NULL OR release_started < ?)",
    )
    .bind(started)
    .bind(id)
    .bind(started - LEASE_SECS)
    .execute(db.pool())
    .await
    .map_err(IncidentsError::from)?
    .rows_affected();
    if claimed == 0 {
        let again = load(db, id).await?;
        return match again.status.as_str() {
            "released" => Ok(ReleaseOutcome::AlreadyReleased),
            "held" => Err(ReleaseError::InProgress(id.to_string())),
            other => Err(ReleaseError::NotHeld {
                id: id.to_string(),
                status: other.to_string(),
            }),
        };
    }

    let secret = db.secret(RELEASE_SECRET).await?;
    let (original_header, body_start) = headers::rewrite_header(&raw, &Edits::default());
    let (_, body) = header_and_body(&raw);
    let mut header = released_header(actor.name, started, &reason);
    header.push_str(&release_token_header(&secret, id, started, body));
    let parts: [&[u8]; 3] = [header.as_bytes(), &original_header, &raw[body_start..]];

    match deliver(hop, hostname, &env, &parts).await {
        Ok((accepted, refused)) => {
            sqlx::query(
                "UPDATE quarantine SET status = 'released', reviewed_at = ?, reviewed_by = ?, \
                 review_reason = ?, last_error = ?, release_started = NULL WHERE id = ?",
            )
            .bind(now())
            .bind(actor.name)
            .bind(&reason)
            .bind((!refused.is_empty()).then(|| refused.join("; ")))
            .bind(id)
            .execute(db.pool())
            .await
            .map_err(IncidentsError::from)?;
            let mut detail = format!("delivered to {hop} for {accepted} recipient(s)");
            if !refused.is_empty() {
                detail.push_str(&format!("; refused: {}", refused.join("; ")));
            }
            db.audit(&AuditEntry {
                actor: actor.name,
                action: "release",
                target: Some(id),
                reason: Some(&reason),
                remote: actor.remote,
                detail: Some(&detail),
            })
            .await?;
            tracing::info!(quarantine_id = %id, %hop, by = actor.name, "released");
            Ok(ReleaseOutcome::Delivered)
        }
        Err(error) => {
            let error = clean_text(&error, 1000);
            sqlx::query(
                "UPDATE quarantine SET last_error = ?, release_started = NULL WHERE id = ?",
            )
            .bind(&error)
            .bind(id)
            .execute(db.pool())
            .await
            .map_err(IncidentsError::from)?;
            db.audit(&AuditEntry {
                actor: actor.name,
                action: "release_failed",
                target: Some(id),
                reason: Some(&reason),
                remote: actor.remote,
                detail: Some(&format!("to {hop}: {error}")),
            })
            .await?;
            tracing::warn!(quarantine_id = %id, %hop, %error, "release failed");
            Err(ReleaseError::Delivery { hop, error })
        }
    }
}

async fn remove_files(store: &Store, id: &str) -> Result<(), ReleaseError> {
    for path in [store.message_path(id), json_path(store, id)] {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ReleaseError::Files {
                    id: id.to_string(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Delete a held message: its files go, the index row stays as `deleted`.
pub async fn delete(
    db: &Incidents,
    store: &Store,
    id: &str,
    actor: &Actor<'_>,
    reason: &str,
) -> Result<(), ReleaseError> {
    let reason = reason_of(reason)?;
    let item = load(db, id).await?;
    access::can_delete(actor.role, &item).map_err(ReleaseError::Refused)?;
    if item.status != "held" {
        return Err(ReleaseError::NotHeld {
            id: id.to_string(),
            status: item.status,
        });
    }
    // Mark first: a crash after this leaves files that purge removes, never
    // an index row pointing at a message that may still be released.
    let n = sqlx::query(
        "UPDATE quarantine SET status = 'deleted', reviewed_at = ?, reviewed_by = ?, \
         review_reason = ? WHERE id = ? AND status = 'held' \
         AND (release_started IS NULL OR release_started < ?)",
    )
    .bind(now())
    .bind(actor.name)
    .bind(&reason)
    .bind(id)
    .bind(now() - LEASE_SECS)
    .execute(db.pool())
    .await
    .map_err(IncidentsError::from)?
    .rows_affected();
    if n == 0 {
        return Err(ReleaseError::InProgress(id.to_string()));
    }
    remove_files(store, id).await?;
    db.audit(&AuditEntry {
        actor: actor.name,
        action: "delete",
        target: Some(id),
        reason: Some(&reason),
        remote: actor.remote,
        detail: None,
    })
    .await?;
    Ok(())
}

/// The unix second a quarantine id was made at (ids start with seconds and
/// nine digits of nanoseconds).
fn id_time(id: &str) -> Option<i64> {
    let head = id.split('-').next()?;
    if head.len() <= 9 {
        return None;
    }
    head[..head.len() - 9].parse().ok()
}

/// Retention: remove the files and index rows of every quarantined message
/// (held, released or deleted) held more than `older_than_secs` ago, and any
/// stray files that old. The incident rows stay for the summaries. Returns how
/// many messages were purged.
pub async fn purge(
    db: &Incidents,
    store: &Store,
    older_than_secs: i64,
    actor: &Actor<'_>,
) -> Result<usize, ReleaseError> {
    if !access::can_purge(actor.role) {
        return Err(ReleaseError::Refused("only admin may purge the quarantine"));
    }
    let cutoff = now() - older_than_secs.max(0);
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM quarantine WHERE held_at < ? \
         AND (release_started IS NULL OR release_started < ?)",
    )
    .bind(cutoff)
    .bind(now() - LEASE_SECS)
    .fetch_all(db.pool())
    .await
    .map_err(IncidentsError::from)?;
    let mut purged = 0;
    for id in &ids {
        // Files first: `serve` re-indexes files that have no row.
        if valid_id(id) {
            remove_files(store, id).await?;
        }
        sqlx::query("DELETE FROM quarantine WHERE id = ?")
            .bind(id)
            .execute(db.pool())
            .await
            .map_err(IncidentsError::from)?;
        purged += 1;
    }
    // Files with no row (a crash between writing and indexing, or a delete
    // interrupted after marking) that are past the cut-off.
    let mut stray = 0;
    for (id, _) in store.metadata_files() {
        if valid_id(&id) && id_time(&id).is_some_and(|t| t < cutoff) {
            let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM quarantine WHERE id = ?")
                .bind(&id)
                .fetch_optional(db.pool())
                .await
                .map_err(IncidentsError::from)?;
            if known.is_none() {
                remove_files(store, &id).await?;
                stray += 1;
            }
        }
    }
    let detail = format!(
        "{purged} message(s) held more than {older_than_secs} s ago; {stray} stray file set(s)"
    );
    db.audit(&AuditEntry {
        actor: actor.name,
        action: "purge",
        target: None,
        reason: Some("retention"),
        remote: actor.remote,
        detail: Some(&detail),
    })
    .await?;
    Ok(purged + stray)
}

/// An attachment as listed in the safe view.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentInfo {
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

/// A held message prepared for reading: decoded headers and plain text only.
#[derive(Debug, Clone, Serialize)]
pub struct ViewedMessage {
    pub id: String,
    pub headers: Vec<(String, String)>,
    /// The text/plain body, or the HTML body converted to text; control
    /// characters other than line breaks and tabs removed.
    pub text: String,
    pub attachments: Vec<AttachmentInfo>,
}

/// Longest text shown (bytes).
const MAX_VIEW_TEXT: usize = 1024 * 1024;

fn safe_text(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    if out.len() > MAX_VIEW_TEXT {
        let mut cut = MAX_VIEW_TEXT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n[… cut]");
    }
    out
}

/// Parse `raw` into the safe view (no access check; see [`view_body`]).
pub fn safe_view(id: &str, raw: &[u8]) -> ViewedMessage {
    use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
    let Some(msg) = MessageParser::default().parse(raw) else {
        return ViewedMessage {
            id: id.to_string(),
            headers: Vec::new(),
            text: safe_text(&String::from_utf8_lossy(raw)),
            attachments: Vec::new(),
        };
    };
    let headers = msg
        .headers()
        .iter()
        .map(|h| {
            let value = match &h.value {
                HeaderValue::Text(t) => t.to_string(),
                HeaderValue::TextList(l) => l.join(", "),
                _ => {
                    let (s, e) = (h.offset_start as usize, h.offset_end as usize);
                    String::from_utf8_lossy(raw.get(s..e).unwrap_or_default()).into_owned()
                }
            };
            (h.name.as_str().to_string(), clean_text(&value, 2000))
        })
        .collect();
    let text = msg.body_text(0).map(|t| safe_text(&t)).unwrap_or_default();
    let attachments = msg
        .attachments()
        .map(|p| AttachmentInfo {
            name: clean_text(p.attachment_name().unwrap_or("(no name)"), 200),
            content_type: p
                .content_type()
                .map(|c| match c.subtype() {
                    Some(s) => format!("{}/{}", c.ctype(), s),
                    None => c.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: p.contents().len(),
        })
        .collect();
    ViewedMessage {
        id: id.to_string(),
        headers,
        text,
        attachments,
    }
}

/// Read a held message's body (access-checked, audited as `view`).
pub async fn view_body(
    db: &Incidents,
    store: &Store,
    id: &str,
    actor: &Actor<'_>,
) -> Result<ViewedMessage, ReleaseError> {
    let item = load(db, id).await?;
    if !access::can_view_body(actor.role, &item) {
        return Err(ReleaseError::Refused(
            "your role may not read this message's body",
        ));
    }
    let raw = read_message(store, id).await?;
    db.audit(&AuditEntry {
        actor: actor.name,
        action: "view",
        target: Some(id),
        reason: None,
        remote: actor.remote,
        detail: None,
    })
    .await?;
    let id = id.to_string();
    Ok(tokio::task::spawn_blocking(move || safe_view(&id, &raw))
        .await
        .unwrap_or_else(|_| ViewedMessage {
            id: String::new(),
            headers: Vec::new(),
            text: String::new(),
            attachments: Vec::new(),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_quarantine_directory() {
        assert!(valid_id("1764000000123456789-4242-0"));
        for bad in [
            "",
            "../x",
            "..",
            "1/2",
            "1.eml",
            "-1",
            "1\0",
            "a1",
            &"1".repeat(81),
        ] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        assert_eq!(id_time("1764000000123456789-4242-0"), Some(1_764_000_000));
    }

    #[test]
    fn reasons_are_cleaned_and_required() {
        assert!(matches!(reason_of(" \t\r\n"), Err(ReleaseError::NoReason)));
        assert_eq!(reason_of("ok\r\nBcc: x\u{7}").unwrap(), "ok Bcc: x");
    }

    fn unfold(h: &str) -> String {
        h.replace("\r\n ", " ")
    }

    #[test]
    fn released_header_ascii_is_folded_and_has_no_injected_lines() {
        let reason = "Parent's letter about the trip, checked with the class teacher\r\nBcc: evil@example.org and a long tail of words to force folding";
        let h = released_header("ict.admin", 1_764_000_000, reason);
        assert!(
            h.starts_with(
                "X-Hallmonitor-Released: by=ict.admin; at=2025-11-24T16:00:00Z; reason=Parent's"
            ),
            "{h}"
        );
        assert!(h.ends_with("\r\n"));
        for line in h.trim_end_matches("\r\n").split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
        assert!(
            h.trim_end_matches("\r\n")
                .split("\r\n")
                .skip(1)
                .all(|l| l.starts_with(' ')),
            "{h}"
        );
        assert!(!h.contains("\r\nBcc:"), "{h}");
        assert!(unfold(&h).contains("teacher Bcc: evil@example.org and"));
    }

    #[test]
    fn released_header_non_ascii_is_rfc2047_encoded() {
        let reason = "Zoë’s résumé — approved by the head after a phone call with the parent";
        let h = released_header("ict.admin", 1_764_000_000, reason);
        assert!(h.is_ascii(), "{h}");
        for line in h.trim_end_matches("\r\n").split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
        // Decoding the words (as a mail reader decodes an unstructured
        // header such as Subject) gives the reason back.
        let value = h
            .trim_start_matches(RELEASED_HEADER)
            .trim_start_matches(':');
        let msg = format!("Subject:{value}\r\nbody\r\n");
        let parsed = mail_parser::MessageParser::default()
            .parse(msg.as_bytes())
            .unwrap();
        let value = parsed.subject().unwrap().to_string();
        assert!(value.contains(reason), "{value}");
    }

    #[test]
    fn tokens_verify_only_for_the_same_body_and_secret() {
        let secret = [7u8; 32];
        let body = b"Hello\r\n";
        let at = now();
        let id = "1764000000123456789-1-0";
        let msg = format!(
            "{}Subject: x\r\n\r\nHello\r\n",
            release_token_header(&secret, id, at, body)
        );
        assert!(has_release_token(msg.as_bytes()));
        assert!(verify_release_token(msg.as_bytes(), &secret));
        assert!(!verify_release_token(msg.as_bytes(), &[8u8; 32]));
        let changed = msg.replace("Hello\r\n", "Hellp\r\n");
        assert!(!verify_release_token(changed.as_bytes(), &secret));
        let forged = msg.replace("mac=", "mac=00");
        assert!(!verify_release_token(forged.as_bytes(), &secret));
        let old_at = at - TOKEN_MAX_AGE_SECS - 10;
        let old = format!(
            "{}Subject: x\r\n\r\nHello\r\n",
            release_token_header(&secret, id, old_at, body)
        );
        assert!(!verify_release_token(old.as_bytes(), &secret));
        let twice = format!("{}{msg}", release_token_header(&secret, id, at, body));
        assert!(!verify_release_token(twice.as_bytes(), &secret));
        assert!(!has_release_token(
            b"Subject: x\r\n\r\nX-Hallmonitor-Release-Token: v1\r\n"
        ));
    }

    #[test]
    fn safe_view_converts_html_and_lists_attachments() {
        let raw = b"From: a@example.org\r\nSubject: =?UTF-8?Q?Caf=C3=A9?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Hello <script>alert(1)</script><b>there</b></p>\r\n--b\r\nContent-Type: application/zip; name=x.zip\r\nContent-Disposition: attachment; filename=x.zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\r\n--b--\r\n";
        let v = safe_view("1-1-1", raw);
        assert!(
            v.headers.contains(&("Subject".into(), "Café".into())),
            "{:?}",
            v.headers
        );
        assert!(
            v.text.contains("Hello") && v.text.contains("there"),
            "{}",
            v.text
        );
        assert!(!v.text.contains('<'), "{}", v.text);
        assert_eq!(v.attachments.len(), 1);
        assert_eq!(v.attachments[0].name, "x.zip");
        assert_eq!(v.attachments[0].content_type, "application/zip");
        assert_eq!(v.attachments[0].size, 22);
    }
}
