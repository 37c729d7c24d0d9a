//! clamd sessions (`zIDSESSION`): every part of a message as a `zINSTREAM`
//! command, and the session kept open for the next message.
//!
//! A connection per part costs a connect, an accept in clamd, a close on both
//! sides and a thread wake-up each; for everyday mail (a text part, an HTML
//! part, an attachment) that was most of what the virus scan cost us. In a
//! session clamd numbers its replies (`1: stream: OK`), in the order of the
//! commands but sent as each scan finishes, so they may arrive out of order.
//! The numbers run on for the life of the connection, so a session that has
//! answered every command it was sent goes back to a [`SessionPool`] and the
//! next message continues it: no connect, accept or close per message.
//!
//! The exchange is split in two so the caller can do useful work while clamd
//! scans: [`Session::start`] takes a pooled session (or connects) and sends
//! the first batch of parts, [`Session::finish`] reads the replies (and sends
//! any further batches).
//!
//! A part the session leaves unanswered is scanned again on a connection of
//! its own (the caller does that): clamd ends the session after `INSTREAM size
//! limit exceeded`, possibly before it has sent the replies of parts it had
//! finished, and a peer that answers without request numbers is not a clamd we
//! can attribute replies from. A pooled session that clamd has closed in the
//! meantime (its `IdleTimeout`, a restart) answers nothing at all: that is
//! [`SessionError::Stale`], and the caller starts a new one.

use super::{ClamdAddress, MAX_REPLY, Reply, parse_reply};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// INSTREAM chunk size. clamd accepts any chunk up to its StreamMaxLength;
/// 64 KiB keeps the number of writes (syscalls) low without a large buffer.
pub(super) const CHUNK_SIZE: usize = 64 * 1024;

/// Commands sent in one go inside a session before their replies are read.
/// clamd asks session clients to read replies before sending more (its
/// replies could otherwise fill the socket while it waits for us to read);
/// a few dozen short replies always fit in the socket buffer.
const SESSION_BATCH: usize = 16;

/// Idle sessions kept at most; more are ended (`zEND`). One per message in
/// flight is enough; clamd serves each on its own file descriptor.
const POOL_MAX: usize = 64;

/// A pooled session idle for longer is not reused: clamd ends sessions idle
/// for its `IdleTimeout` (30 s by default), and one it has just closed would
/// cost a failed round trip before a new connection.
const REUSE_WITHIN: Duration = Duration::from_secs(10);

/// Open clamd sessions between messages.
#[derive(Default)]
pub(super) struct SessionPool {
    idle: Mutex<Vec<Idle>>,
}

/// A session waiting for the next message: every command sent on it has been
/// answered.
struct Idle {
    conn: Box<dyn Conn>,
    /// Commands sent on the connection so far (clamd's last request number).
    commands: usize,
    since: Instant,
}

impl SessionPool {
    /// The most recently used session that is still fresh; staler ones are
    /// dropped (clamd may have closed them).
    fn take(&self) -> Option<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        idle.retain(|i| now.duration_since(i.since) < REUSE_WITHIN);
        idle.pop()
    }

    /// Keep a session for the next message, or give it back when the pool is
    /// full (the caller ends it).
    fn put(&self, session: Idle) -> Option<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() >= POOL_MAX {
            return Some(session);
        }
        idle.push(session);
        None
    }

    /// Sessions kept now (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.idle.lock().map_or(0, |i| i.len())
    }
}

/// A connection to clamd, TCP or unix socket.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

async fn connect(address: &ClamdAddress) -> std::io::Result<Box<dyn Conn>> {
    Ok(match address {
        ClamdAddress::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a.as_str()).await?;
            // Small writes and replies: without NODELAY each waits for a delayed ACK.
            s.set_nodelay(true)?;
            Box::new(s)
        }
        ClamdAddress::Socket(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
    })
}

/// Append one `zINSTREAM` command: the data in chunks (4-byte big-endian
/// length, bytes), then a zero-length chunk.
pub(super) fn frame_instream(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(b"zINSTREAM\0");
    for chunk in data.chunks(CHUNK_SIZE) {
        // CHUNK_SIZE fits in a u32.
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
}

/// `N: reply` as clamd sends it inside a session; None for anything else.
pub(super) fn numbered_reply(raw: &[u8]) -> Option<(usize, Reply)> {
    let colon = raw.iter().position(|&b| b == b':')?;
    let id: usize = std::str::from_utf8(&raw[..colon])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let rest = raw.get(colon + 1..)?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    Some((id, parse_reply(rest).ok()?))
}

/// Why a session could not be used at all (the message is not scanned).
#[derive(Debug)]
pub(super) enum SessionError {
    /// No reply before the deadline.
    Timeout,
    /// Could not connect, or the connection failed before anything useful.
    Io(std::io::Error),
    /// A pooled session answered nothing (clamd had closed it): start anew.
    Stale,
}

/// A session in progress: the first batch is on its way to clamd.
pub(super) struct Session {
    conn: Option<Box<dyn Conn>>,
    /// Set when the connection could not be made (reported by `finish`).
    failed: Option<SessionError>,
    deadline: Instant,
    /// Commands sent on this connection before this message (reply numbers
    /// for this message start after it). Above 0 only for a session taken
    /// from the pool, whose `zIDSESSION` an earlier message sent.
    base: usize,
    /// Parts sent so far (a prefix of the caller's list).
    sent: usize,
    /// The last write failed: clamd may have answered and closed.
    write_failed: bool,
}

impl Session {
    /// Take a session from `pool` (with `pool` None, or when it has none,
    /// connect) and send the first batch of `parts`, within `timeout` (which
    /// also bounds [`Session::finish`]).
    pub(super) async fn start(
        pool: Option<&SessionPool>,
        address: &ClamdAddress,
        timeout: Duration,
        parts: &[&[u8]],
    ) -> Session {
        let deadline = Instant::now() + timeout;
        let mut session = Session {
            conn: None,
            failed: None,
            deadline,
            base: 0,
            sent: 0,
            write_failed: false,
        };
        if let Some(idle) = pool.and_then(SessionPool::take) {
            session.conn = Some(idle.conn);
            session.base = idle.commands;
            session.send_batch(parts).await;
            return session;
        }
        match tokio::time::timeout_at(deadline, connect(address)).await {
            Err(_) => session.failed = Some(SessionError::Timeout),
            Ok(Err(e)) => session.failed = Some(SessionError::Io(e)),
            Ok(Ok(conn)) => {
                session.conn = Some(conn);
                session.send_batch(parts).await;
            }
        }
        session
    }

    /// Send the next batch of parts (the first one opens the session).
    async fn send_batch(&mut self, parts: &[&[u8]]) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let batch = &parts[self.sent..(self.sent + SESSION_BATCH).min(parts.len())];
        let mut framed = Vec::with_capacity(batch.iter().map(|d| d.len() + 24).sum::<usize>() + 16);
        if self.sent == 0 && self.base == 0 {
            framed.extend_from_slice(b"zIDSESSION\0");
        }
        for data in batch {
            frame_instream(&mut framed, data);
        }
        self.sent += batch.len();
        let write = async {
            conn.write_all(&framed).await?;
            conn.flush().await
        };
        match tokio::time::timeout_at(self.deadline, write).await {
            Ok(Ok(())) => {}
            // Timed out or failed: whatever clamd answered is still to be read.
            _ => self.write_failed = true,
        }
    }

    /// Read the replies to every part (sending later batches as the earlier
    /// ones are answered). One entry per part: `None` for a part the session
    /// left unanswered, which the caller scans on its own connection. A
    /// session that answered everything goes back to `pool` (else it is
    /// ended).
    pub(super) async fn finish(
        mut self,
        pool: Option<&SessionPool>,
        parts: &[&[u8]],
    ) -> Result<Vec<Option<Reply>>, SessionError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut replies: Vec<Option<Reply>> = vec![None; parts.len()];
        let unattributable = || Ok(vec![None; parts.len()]);
        let mut answered = 0usize;
        let mut pending = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(replies);
            };
            while answered < self.sent {
                let n = match tokio::time::timeout_at(self.deadline, conn.read(&mut buf)).await {
                    Err(_) => return Err(SessionError::Timeout),
                    // Closed or reset (clamd closes after a size-limit error,
                    // with our data unread): use what arrived.
                    Ok(Ok(0)) | Ok(Err(_)) if self.base > 0 && answered == 0 => {
                        // Nothing at all from a pooled session: clamd had closed it.
                        return Err(SessionError::Stale);
                    }
                    Ok(Ok(0)) | Ok(Err(_)) => return Ok(replies),
                    Ok(Ok(n)) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.iter().position(|&b| b == 0) {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let Some((id, reply)) = numbered_reply(&line) else {
                        // Not a session reply: nothing can be attributed.
                        return unattributable();
                    };
                    let index = id.checked_sub(self.base + 1);
                    match index.and_then(|k| replies.get_mut(k)) {
                        Some(slot @ None) if id <= self.base + self.sent => {
                            *slot = Some(reply);
                            answered += 1;
                        }
                        _ => return unattributable(),
                    }
                }
                if pending.len() > MAX_REPLY {
                    return unattributable();
                }
            }
            if self.write_failed {
                return Ok(replies);
            }
            if self.sent == parts.len() {
                if !pending.is_empty() {
                    // More than we asked for: not a session to continue.
                    return Ok(replies);
                }
                let idle = Idle {
                    conn: self.conn.take().ok_or(SessionError::Stale)?,
                    commands: self.base + self.sent,
                    since: Instant::now(),
                };
                let left = match pool {
                    Some(pool) => pool.put(idle),
                    None => Some(idle),
                };
                if let Some(mut idle) = left {
                    // Polite end of session; clamd would close it after IdleTimeout anyway.
                    let end = idle.conn.write_all(b"zEND\0");
                    let _ = tokio::time::timeout_at(self.deadline, end).await;
                }
                return Ok(replies);
            }
            self.send_batch(parts).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(idle_for: Duration, commands: usize) -> Idle {
        let (ours, _theirs) = tokio::io::duplex(64);
        Idle {
            conn: Box::new(ours),
            commands,
            since: Instant::now()
                .checked_sub(idle_for)
                .unwrap_or_else(Instant::now),
        }
    }

    #[tokio::test]
    async fn pool_hands_out_the_freshest_session_and_drops_stale_ones() {
        let pool = SessionPool::default();
        assert!(pool.put(idle(REUSE_WITHIN * 2, 1)).is_none());
        assert!(pool.put(idle(Duration::ZERO, 7)).is_none());
        assert_eq!(pool.len(), 2);
        let taken = pool.take().expect("a fresh session");
        assert_eq!(taken.commands, 7);
        // The stale one is not handed out, and is gone.
        assert!(pool.take().is_none());
        assert_eq!(pool.len(), 0);
    }

    #[tokio::test]
    async fn pool_keeps_at_most_its_limit() {
        let pool = SessionPool::default();
        for i in 0..POOL_MAX {
            assert!(pool.put(idle(Duration::ZERO, i)).is_none());
        }
        let refused = pool.put(idle(Duration::ZERO, 99));
        assert_eq!(refused.map(|i| i.commands), Some(99));
        assert_eq!(pool.len(), POOL_MAX);
    }

    #[test]
    fn session_replies_carry_their_request_number() {
        assert_eq!(numbered_reply(b"1: stream: OK\0"), Some((1, Reply::Clean)));
        assert_eq!(
            numbered_reply(b"12: stream: Eicar-Test-Signature FOUND\0"),
            Some((12, Reply::Found("Eicar-Test-Signature".into())))
        );
        assert_eq!(
            numbered_reply(b"2: INSTREAM size limit exceeded. ERROR\0"),
            Some((2, Reply::SizeLimit))
        );
        // Replies outside a session have no number: not attributable.
        assert_eq!(numbered_reply(b"stream: OK\0"), None);
        assert_eq!(numbered_reply(b"PONG\0"), None);
        assert_eq!(numbered_reply(b"x: stream: OK\0"), None);
        assert_eq!(numbered_reply(b"1: what is this\0"), None);
    }

    #[test]
    fn instream_framing_is_chunked_and_terminated() {
        let mut out = Vec::new();
        frame_instream(&mut out, b"abc");
        assert_eq!(out, b"zINSTREAM\0\0\0\0\x03abc\0\0\0\0");
        let big = vec![7u8; CHUNK_SIZE + 1];
        let mut out = Vec::new();
        frame_instream(&mut out, &big);
        // Command, two chunks with their lengths, and the zero-length end.
        assert_eq!(out.len(), 10 + 4 + CHUNK_SIZE + 4 + 1 + 4);
        assert_eq!(
            &out[10..14],
            &u32::try_from(CHUNK_SIZE).unwrap().to_be_bytes()
        );
    }
}
