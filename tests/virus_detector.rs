//! The virus detector on its own, against the real test clamd, with messages
//! built part by part. This pins down its behaviour independently of how the
//! extractor splits a message: which location a finding gets, that echoes of
//! one infection in its containers are collapsed, and that misuse of the
//! runtime is an error rather than a hang or a panic.

mod common;

use common::{EICAR, clamd};
use hallmonitor::config::Config;
use hallmonitor::detect::virus::{ClamdAddress, Virus};
use hallmonitor::detect::{DetectError, Detector, ScanContext};
use hallmonitor::finding::{Category, Finding};
use hallmonitor::message::{Envelope, Part, PartFacts, ScannedMessage};
use hallmonitor::sender::{self, SchoolDomains};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn part(location: &str, data: &[u8], depth: usize) -> Part {
    Part {
        location: location.into(),
        name: location.rsplit(['/', ':']).next().map(str::to_string),
        declared_type: None,
        sniffed_type: None,
        is_attachment: true,
        archive_depth: depth,
        facts: PartFacts::default(),
        data: Arc::from(data),
    }
}

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// Run the detector over `parts` with clamd at `address`.
fn inspect_with(
    address: ClamdAddress,
    timeout: Duration,
    handle: tokio::runtime::Handle,
    parts: Vec<Part>,
) -> Result<Vec<Finding>, DetectError> {
    let config = Config::default();
    let domains = SchoolDomains::new(&config);
    let envelope = Envelope::default();
    let message = ScannedMessage {
        parts,
        ..ScannedMessage::default()
    };
    let identity = sender::identify(&config, &domains, &envelope, &message);
    let ctx = ScanContext {
        envelope: &envelope,
        message: &message,
        identity: &identity,
        domains: &domains,
        config: &config,
    };
    let detector = Virus::with_address(address, timeout, handle);
    let mut out = Vec::new();
    detector.inspect(&ctx, &mut out).map(|()| out)
}

fn inspect(parts: Vec<Part>) -> Vec<Finding> {
    let rt = runtime();
    inspect_with(
        ClamdAddress::Socket(clamd().address().into()),
        Duration::from_secs(10),
        rt.handle().clone(),
        parts,
    )
    .expect("scan against the test clamd")
}

#[test]
fn eicar_in_nested_zip_is_one_finding_at_the_innermost_file() {
    let inner = zip_of(&[("timetable.txt", EICAR)]);
    let outer = zip_of(&[("clubs/autumn.zip", &inner), ("clubs/list.txt", b"Chess\n")]);
    let found = inspect(vec![
        part("body", b"Timetables attached.\r\n", 0),
        part("attachment:clubs.zip", &outer, 0),
        part("attachment:clubs.zip/clubs/autumn.zip", &inner, 1),
        part(
            "attachment:clubs.zip/clubs/autumn.zip/timetable.txt",
            EICAR,
            2,
        ),
        part("attachment:clubs.zip/clubs/list.txt", b"Chess\n", 1),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].category, Category::Virus);
    assert_eq!(found[0].rule, "virus/Hallmonitor.Test.EICAR");
    assert_eq!(
        found[0].location,
        "attachment:clubs.zip/clubs/autumn.zip/timetable.txt"
    );
}

#[test]
fn a_zip_whose_members_were_not_listed_is_still_caught_at_the_zip() {
    // E.g. the extractor hit its archive-depth limit: clamd unpacks it anyway.
    let outer = zip_of(&[("deep/pack.txt", EICAR)]);
    let found = inspect(vec![part("attachment:pack.zip", &outer, 0)]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].location, "attachment:pack.zip");
}

#[test]
fn two_infected_attachments_are_two_findings() {
    let found = inspect(vec![
        part("attachment:a.pdf", EICAR, 0),
        part("attachment:b.txt", EICAR, 0),
    ]);
    let mut locs: Vec<&str> = found.iter().map(|f| f.location.as_str()).collect();
    locs.sort();
    assert_eq!(locs, ["attachment:a.pdf", "attachment:b.txt"]);
}

#[test]
fn many_parts_scanned_concurrently_keep_their_own_locations() {
    let mut parts: Vec<Part> = (0..24)
        .map(|i| {
            part(
                &format!("attachment:sheet-{i}.csv"),
                format!("Name,Score\r\nRow {i},{}\r\n", i * 7).as_bytes(),
                0,
            )
        })
        .collect();
    parts[13] = part("attachment:sheet-13.csv", EICAR, 0);
    let found = inspect(parts);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].location, "attachment:sheet-13.csv");
}

#[test]
fn text_that_quotes_eicar_mid_line_is_clean() {
    let mut body = b"For the record, the EICAR test file is: ".to_vec();
    body.extend_from_slice(EICAR);
    body.extend_from_slice(b"\r\nPlease do not send it to the office.\r\n");
    let found = inspect(vec![part("body", &body, 0)]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn nothing_to_scan_needs_no_clamd() {
    // Only empty parts: no connection is made, so a dead clamd does not matter.
    let rt = runtime();
    let r = inspect_with(
        ClamdAddress::Socket("/nonexistent/clamd.sock".into()),
        Duration::from_secs(1),
        rt.handle().clone(),
        vec![part("attachment:empty.txt", b"", 0)],
    );
    assert!(matches!(r, Ok(ref f) if f.is_empty()), "{r:?}");
}

#[test]
fn unreachable_clamd_is_an_error() {
    let rt = runtime();
    let r = inspect_with(
        ClamdAddress::Socket("/nonexistent/clamd.sock".into()),
        Duration::from_secs(1),
        rt.handle().clone(),
        vec![part("attachment:a.txt", b"hello", 0)],
    );
    assert!(matches!(r, Err(DetectError::Clamd(_))), "{r:?}");
}

#[test]
fn current_thread_runtime_is_refused_not_hung() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = inspect_with(
        ClamdAddress::Socket(clamd().address().into()),
        Duration::from_secs(1),
        rt.handle().clone(),
        vec![part("attachment:a.txt", b"hello", 0)],
    );
    assert!(matches!(r, Err(DetectError::Clamd(_))), "{r:?}");
}

#[test]
fn called_on_an_async_thread_is_an_error_not_a_panic() {
    // The blocking entry point cannot wait for clamd on one of the runtime's
    // own threads: an error, not a panic (async callers use Virus::start).
    let rt = runtime();
    let handle = rt.handle().clone();
    let r = rt.block_on(async move {
        inspect_with(
            ClamdAddress::Socket(clamd().address().into()),
            Duration::from_secs(1),
            handle,
            vec![part("attachment:a.txt", b"hello", 0)],
        )
    });
    assert!(matches!(r, Err(DetectError::Clamd(_))), "{r:?}");
}

/// The async scan (what the relay and the milter use for small messages),
/// from a runtime thread: one clamd session for all parts, each reply given
/// to the right part even when clamd answers out of order.
#[test]
fn async_scan_attributes_each_reply_to_its_part() {
    let rt = runtime();
    let handle = rt.handle().clone();
    let virus = Virus::with_address(
        ClamdAddress::Socket(clamd().address().into()),
        Duration::from_secs(5),
        handle,
    );
    let mut parts = vec![part("body:text", b"hello", 0)];
    for i in 0..20 {
        parts.push(part(
            &format!("attachment:clean{i}.txt"),
            b"nothing here",
            0,
        ));
    }
    // Past the first batch of a session (16 parts).
    parts.push(part("attachment:eicar.com", common::EICAR, 0));
    parts.push(part("attachment:last.txt", b"goodbye", 0));
    let message = ScannedMessage {
        parts,
        ..ScannedMessage::default()
    };
    let found = rt
        .block_on(async { virus.scan_message(&message).await })
        .expect("scanned");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].location, "attachment:eicar.com");
    assert_eq!(found[0].category, Category::Virus);
}

/// A message over the session limit gets a connection per part, several at
/// once; the verdicts are the same.
#[test]
fn large_message_parts_are_scanned_in_parallel_with_the_same_verdicts() {
    let rt = runtime();
    let virus = Virus::with_address(
        ClamdAddress::Socket(clamd().address().into()),
        Duration::from_secs(10),
        rt.handle().clone(),
    );
    let big = vec![b'a'; hallmonitor::detect::virus::SESSION_MAX_BYTES + 1];
    let message = ScannedMessage {
        parts: vec![
            part("attachment:big.txt", &big, 0),
            part("attachment:eicar.com", common::EICAR, 0),
        ],
        ..ScannedMessage::default()
    };
    let found = rt
        .block_on(async { virus.scan_message(&message).await })
        .expect("scanned");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].location, "attachment:eicar.com");
}

fn message_of(parts: Vec<Part>) -> ScannedMessage {
    ScannedMessage {
        parts,
        ..ScannedMessage::default()
    }
}

/// Consecutive messages continue one clamd session: once the first message
/// has been scanned, the second one needs no new connection. Here new
/// connections are made impossible (clamd's socket file is moved away) and
/// the second message, with EICAR in it, is still scanned and caught.
#[test]
fn consecutive_messages_continue_one_clamd_session() {
    let rt = runtime();
    let own = common::Clamd::start(common::ClamdOptions::default());
    let socket = std::path::PathBuf::from(own.address());
    let virus = Virus::with_address(
        ClamdAddress::Socket(socket.clone()),
        Duration::from_secs(10),
        rt.handle().clone(),
    );
    let first = message_of(vec![
        part("body:text", b"hello", 0),
        part("attachment:notes.txt", b"nothing here", 0),
    ]);
    let found = rt.block_on(virus.scan_message(&first)).expect("scanned");
    assert!(found.is_empty(), "{found:?}");

    let moved = socket.with_extension("moved");
    std::fs::rename(&socket, &moved).expect("moving clamd's socket away");
    let second = message_of(vec![
        part("body:text", b"second message", 0),
        part("attachment:eicar.com", EICAR, 0),
    ]);
    let found = rt.block_on(virus.scan_message(&second));
    std::fs::rename(&moved, &socket).expect("putting clamd's socket back");
    let found = found.expect("scanned over the kept session");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].location, "attachment:eicar.com");
    assert_eq!(found[0].category, Category::Virus);

    // A detector of its own has no session yet, so it must connect: with the
    // socket gone that fails, which shows the one above did not.
    std::fs::rename(&socket, &moved).expect("moving clamd's socket away");
    let fresh = Virus::with_address(
        ClamdAddress::Socket(socket.clone()),
        Duration::from_secs(10),
        rt.handle().clone(),
    );
    let err = rt.block_on(fresh.scan_message(&second));
    std::fs::rename(&moved, &socket).expect("putting clamd's socket back");
    assert!(matches!(err, Err(DetectError::Clamd(_))), "{err:?}");
}

/// A kept session can die under us: clamd restarted (a signature update
/// with a reload, a package upgrade) or ended it. The next message must not
/// fail on the dead session (that would tempfail mail for nothing): it is
/// scanned on a new connection, with the right verdicts. The detector's
/// address here is a symlink that is moved from the first clamd's socket to
/// a second clamd's while the session to the first is kept.
#[test]
fn a_session_to_a_clamd_that_has_gone_is_replaced_without_failing_the_message() {
    let rt = runtime();
    let link_dir = tempfile::tempdir().unwrap();
    let link = link_dir.path().join("clamd.sock");
    let first = common::Clamd::start(common::ClamdOptions::default());
    std::os::unix::fs::symlink(first.address(), &link).unwrap();
    let virus = Virus::with_address(
        ClamdAddress::Socket(link.clone()),
        Duration::from_secs(10),
        rt.handle().clone(),
    );
    let clean = message_of(vec![part("body:text", b"hello", 0)]);
    let found = rt.block_on(virus.scan_message(&clean)).expect("scanned");
    assert!(found.is_empty(), "{found:?}");

    drop(first);
    let second = common::Clamd::start(common::ClamdOptions::default());
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(second.address(), &link).unwrap();
    let infected = message_of(vec![
        part("body:text", b"hello again", 0),
        part("attachment:eicar.com", EICAR, 0),
    ]);
    for round in 0..2 {
        let found = rt
            .block_on(virus.scan_message(&infected))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(found.len(), 1, "round {round}: {found:?}");
        assert_eq!(found[0].location, "attachment:eicar.com");
    }
}

#[test]
fn works_inside_spawn_blocking() {
    // How an async front-end (SMTP server, milter) calls the scanner.
    let rt = runtime();
    let handle = rt.handle().clone();
    let socket = clamd().address();
    let r = rt.block_on(async move {
        tokio::task::spawn_blocking(move || {
            inspect_with(
                ClamdAddress::Socket(socket.into()),
                Duration::from_secs(5),
                handle,
                vec![part("attachment:a.pdf", EICAR, 0)],
            )
        })
        .await
        .unwrap()
    });
    let found = r.expect("scan inside spawn_blocking");
    assert_eq!(found.len(), 1, "{found:#?}");
}

/// A school's clamd with `AlertEncrypted yes` (archives *and* documents):
/// an encrypted PDF is still not a finding, an encrypted zip is still banned.
#[test]
fn clamd_alerting_encrypted_documents_does_not_ban_them() {
    let clamd = common::Clamd::start(common::ClamdOptions {
        extra_config: vec!["AlertEncrypted yes".into(), "AlertEncryptedDoc yes".into()],
        ..common::ClamdOptions::default()
    });
    let read = |name: &str| std::fs::read(common::fixture(&format!("files/{name}"))).unwrap();
    let rt = runtime();
    let found = inspect_with(
        ClamdAddress::Socket(clamd.address().into()),
        Duration::from_secs(10),
        rt.handle().clone(),
        vec![
            part("attachment:secret.pdf", &read("secret.pdf"), 0),
            part("attachment:aes.zip", &read("aes.zip"), 0),
        ],
    )
    .unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].rule, "banned_attachment/encrypted_archive");
    assert_eq!(found[0].location, "attachment:aes.zip");
    assert!(found[0].evidence.contains("Heuristics.Encrypted.Zip"));
}
