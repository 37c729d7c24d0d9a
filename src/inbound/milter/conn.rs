//! The milter connection loop: frames in, callbacks on the session, replies
//! out. It replaces `miltr_server::Server::handle_connection` for two
//! reasons that matter under load:
//!
//! - it honours the "no reply" (`SMFIP_NR_*`) protocol flags negotiated
//!   with Postfix, so Postfix does not wait for an answer to every header
//!   and body chunk (miltr-server answers every event regardless, which
//!   would break the protocol once those flags are on);
//! - replies are collected and written once no complete command is left in
//!   the input, instead of one write (and one wake-up of Postfix) per reply.
//!
//! Framing follows miltr-server's codec (MIT): a 4-byte big-endian length,
//! a command byte and its data; parsing and encoding are miltr-common's.

use bytes::{BufMut, BytesMut};
use miltr_common::ProtocolError;
use miltr_common::actions::Action;
use miltr_common::decoding::ClientCommand;
use miltr_common::encoding::{ServerMessage, Writable};
use miltr_common::optneg::{Capability, Protocol};
use miltr_server::Milter;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted or sent (Postfix sends body chunks of at most 64 KiB).
pub const MAX_FRAME: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("milter protocol: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("milter frame of {0} bytes is larger than {MAX_FRAME}")]
    TooLarge(usize),
    #[error("{0}")]
    Session(String),
}

/// The "no reply" flags hallmonitor asks for: every event before the end of
/// the message only collects data, so nothing needs an answer until then.
pub fn no_reply_flags() -> Protocol {
    Protocol::NR_CONNECT
        | Protocol::NR_HELO
        | Protocol::NR_MAIL
        | Protocol::NR_RECIPIENT
        | Protocol::NR_DATA
        | Protocol::NR_UNKNOWN
        | Protocol::NR_END_OF_HEADER
        | Protocol::NR_HEADER
        | Protocol::NR_BODY
}

/// Serve one milter connection until Postfix quits or closes it.
pub async fn run<S, M>(stream: &mut S, milter: &mut M) -> Result<(), ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    M: Milter,
    M::Error: std::fmt::Display,
{
    let mut input = BytesMut::with_capacity(8 * 1024);
    let mut output = BytesMut::with_capacity(1024);
    let mut protocol = Protocol::empty();
    let mut capabilities = Capability::all();
    loop {
        while let Some(command) = next_frame(&mut input)? {
            let app = |e: M::Error| ConnError::Session(e.to_string());
            // (reply, suppressed by this no-reply flag)
            let event: Option<(Action, Protocol)> = match command {
                ClientCommand::Connect(c) => {
                    Some((milter.connect(c).await.map_err(app)?, Protocol::NR_CONNECT))
                }
                ClientCommand::Helo(h) => {
                    Some((milter.helo(h).await.map_err(app)?, Protocol::NR_HELO))
                }
                ClientCommand::Mail(m) => {
                    Some((milter.mail(m).await.map_err(app)?, Protocol::NR_MAIL))
                }
                ClientCommand::Recipient(r) => {
                    Some((milter.rcpt(r).await.map_err(app)?, Protocol::NR_RECIPIENT))
                }
                ClientCommand::Data(_) => {
                    Some((milter.data().await.map_err(app)?, Protocol::NR_DATA))
                }
                ClientCommand::Header(h) => {
                    Some((milter.header(h).await.map_err(app)?, Protocol::NR_HEADER))
                }
                ClientCommand::EndOfHeader(_) => Some((
                    milter.end_of_header().await.map_err(app)?,
                    Protocol::NR_END_OF_HEADER,
                )),
                ClientCommand::Body(b) => {
                    Some((milter.body(b).await.map_err(app)?, Protocol::NR_BODY))
                }
                ClientCommand::Unknown(u) => {
                    Some((milter.unknown(u).await.map_err(app)?, Protocol::NR_UNKNOWN))
                }
                ClientCommand::EndOfBody(_) => {
                    let mut responses = milter.end_of_body().await.map_err(app)?;
                    responses.filter_mods_by_caps(capabilities);
                    let responses: Vec<ServerMessage> = responses.into();
                    for r in &responses {
                        encode(r, &mut output)?;
                    }
                    None
                }
                ClientCommand::Macro(m) => {
                    milter.macro_(m).await.map_err(app)?;
                    None
                }
                ClientCommand::OptNeg(theirs) => {
                    let ours = milter
                        .option_negotiation(theirs)
                        .await
                        .map_err(|e| ConnError::Session(e.to_string()))?;
                    protocol = ours.protocol;
                    capabilities = ours.capabilities;
                    encode(&ServerMessage::from(ours), &mut output)?;
                    None
                }
                ClientCommand::Abort(_) => {
                    milter.abort().await.map_err(app)?;
                    None
                }
                ClientCommand::Quit(_) => {
                    milter.quit().await.map_err(app)?;
                    flush(stream, &mut output).await?;
                    return Ok(());
                }
                ClientCommand::QuitNc(_) => {
                    milter.quit_nc().await.map_err(app)?;
                    None
                }
            };
            if let Some((action, no_reply)) = event {
                if protocol.contains(no_reply) {
                    if !matches!(action, Action::Continue(_)) {
                        // Every event callback only collects data; a decision
                        // is made at the end of the message.
                        tracing::warn!(
                            ?action,
                            "milter reply dropped: Postfix expects none for this event"
                        );
                    }
                } else {
                    encode(&ServerMessage::from(action), &mut output)?;
                }
            }
        }
        flush(stream, &mut output).await?;
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}

/// Take one complete frame off the front of `input`.
fn next_frame(input: &mut BytesMut) -> Result<Option<ClientCommand>, ConnError> {
    if input.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([input[0], input[1], input[2], input[3]]) as usize;
    if len > MAX_FRAME {
        return Err(ConnError::TooLarge(len));
    }
    if input.len() < 4 + len {
        input.reserve(4 + len - input.len());
        return Ok(None);
    }
    let mut frame = input.split_to(4 + len);
    let _ = frame.split_to(4);
    Ok(Some(ClientCommand::parse(frame)?))
}

fn encode(message: &ServerMessage, out: &mut BytesMut) -> Result<(), ConnError> {
    let len = 1 + message.len();
    if len > MAX_FRAME {
        return Err(ConnError::TooLarge(len));
    }
    out.reserve(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.put_u8(message.code());
    message.write(out);
    Ok(())
}

async fn flush<S: AsyncWrite + Unpin>(stream: &mut S, out: &mut BytesMut) -> std::io::Result<()> {
    if !out.is_empty() {
        stream.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_and_oversized_ones_refused() {
        // SMFIC_QUIT ('Q') with no data.
        let mut input = BytesMut::from(&[0u8, 0, 0, 1, b'Q', 0, 0][..]);
        assert!(matches!(
            next_frame(&mut input),
            Ok(Some(ClientCommand::Quit(_)))
        ));
        assert!(
            matches!(next_frame(&mut input), Ok(None)),
            "half a length stays buffered"
        );
        assert_eq!(input.len(), 2);
        let mut big = BytesMut::from(&(MAX_FRAME as u32 + 1).to_be_bytes()[..]);
        assert!(matches!(next_frame(&mut big), Err(ConnError::TooLarge(_))));
    }
}
