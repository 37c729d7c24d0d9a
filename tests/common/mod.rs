//! Shared integration-test harness: a private clamd that knows only our test
//! signatures, and helpers to run the real `hallmonitor` binary against it.
//!
//! The clamd is real (`/usr/sbin/clamd` from Debian's clamav-daemon): no mock
//! would tell us how clamd answers an encrypted zip or an oversized stream.
//! Its config and database come from `tests/clamd-test.sh conf`, the same
//! script CI and developers use to start one by hand, so the tests and the
//! scorer run against an identical clamd.
//!
//! If clamd is not installed the harness panics with the install command: a
//! virus test that silently skips would be a virus test that never runs.

#![allow(dead_code)] // each test binary uses a different subset

pub mod smtp;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
pub const HALLMONITOR: &str = env!("CARGO_BIN_EXE_hallmonitor");

/// The 68-byte EICAR anti-virus test file (in two halves, so this source file
/// is not itself detected).
pub const EICAR: &[u8] = concat!(
    r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-",
    "ANTIVIRUS-TEST-FILE!$H+H*"
)
.as_bytes();

/// The rule id our test signature produces (`.UNOFFICIAL` removed).
pub const EICAR_RULE: &str = "virus/Hallmonitor.Test.EICAR";

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("fixtures").join(rel)
}

pub fn mail(name: &str) -> PathBuf {
    fixture(&format!("mail/{name}"))
}

/// The test school's config (Oakfield Academy).
pub fn test_config() -> PathBuf {
    fixture("hallmonitor-test.toml")
}

// ---------------------------------------------------------------- clamd

/// How to start a private clamd.
#[derive(Debug, Clone)]
pub struct ClamdOptions {
    /// Also listen on a free TCP port on 127.0.0.1.
    pub tcp: bool,
    /// clamd's `StreamMaxLength` (e.g. `50M`, `1M`).
    pub stream_max: String,
    /// Lines appended to the generated clamd.conf (later lines win), to imitate a
    /// school's own clamd settings.
    pub extra_config: Vec<String>,
}

impl Default for ClamdOptions {
    fn default() -> Self {
        ClamdOptions {
            tcp: false,
            stream_max: "50M".into(),
            extra_config: Vec::new(),
        }
    }
}

/// A running private clamd. Dropping it stops clamd and removes its directory.
/// (The shared one in [`clamd`] is never dropped: it dies with the test process,
/// through `PR_SET_PDEATHSIG`, and the next run removes its directory.)
pub struct Clamd {
    dir: PathBuf,
    pid: i32,
    socket: PathBuf,
    tcp: Option<SocketAddr>,
    exited: Arc<Mutex<Option<ExitStatus>>>,
    keeper: Option<JoinHandle<()>>,
}

const DIR_PREFIX: &str = "hallmonitor-clamd-";

/// One clamd for the whole test binary (unix socket, StreamMaxLength 50M).
pub fn clamd() -> &'static Clamd {
    static SHARED: OnceLock<Clamd> = OnceLock::new();
    SHARED.get_or_init(|| Clamd::start(ClamdOptions::default()))
}

fn clamd_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HALLMONITOR_TEST_CLAMD") {
        return PathBuf::from(p);
    }
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join("clamd");
        if p.is_file() {
            return p;
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("clamd");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "clamd is not installed, and the virus tests need the real one.\n\
         Debian/Ubuntu: apt-get install --no-install-recommends clamav-daemon clamav\n\
         (or set HALLMONITOR_TEST_CLAMD=/path/to/clamd)"
    );
}

/// Remove directories of earlier test runs whose process is gone.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now and that no other
/// caller in this test process has been given.
///
/// The port comes from below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`, 32768-60999 on Debian), never from
/// `bind(0)`: a port released by a `bind(0)` probe can be handed out again at
/// once to another test's listener or outgoing connection, and a test would
/// then talk to someone else's peer (a relay that failed to bind, its client
/// answered by another test's SMTP sink). Ports below that range are only
/// ever used when named, and this function names each one once.
pub fn free_tcp_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // Different test processes (run one after another, but a previous one's
    // Postfix may still be closing) start at different places.
    let start = (std::process::id().wrapping_mul(7919)) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst) as u32;
        assert!(n < SPAN, "no free TCP port left below the ephemeral range");
        let port = (LOW + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Clamd {
    /// Write the config with `tests/clamd-test.sh conf`, start clamd in the
    /// foreground (as a child of a keeper thread), wait until it answers PING.
    pub fn start(options: ClamdOptions) -> Clamd {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let bin = clamd_binary();
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let port = options.tcp.then(free_tcp_port);
        let mut conf = Command::new("bash");
        conf.arg(Path::new(MANIFEST_DIR).join("tests/clamd-test.sh"))
            .arg("conf")
            .arg(&dir)
            .env("CLAMD_STREAM_MAX", &options.stream_max)
            .env_remove("CLAMD_TCP_PORT");
        if let Some(port) = port {
            conf.env("CLAMD_TCP_PORT", port.to_string());
        }
        let out = conf.output().expect("running tests/clamd-test.sh conf");
        assert!(
            out.status.success(),
            "tests/clamd-test.sh conf failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.join("clamd.conf");
        if !options.extra_config.is_empty() {
            let mut text = std::fs::read_to_string(&config).expect("reading clamd.conf");
            for line in &options.extra_config {
                text.push_str(line);
                text.push('\n');
            }
            std::fs::write(&config, text).expect("writing clamd.conf");
        }
        let socket = dir.join("clamd.sock");
        let exited = Arc::new(Mutex::new(None));

        // clamd is spawned by a thread that lives exactly as long as clamd:
        // PR_SET_PDEATHSIG fires when the *thread* that forked the child ends,
        // so spawning from a short-lived test thread would kill the shared clamd
        // as soon as that test finished.
        let (tx, rx) = std::sync::mpsc::channel();
        let keeper = {
            let exited = Arc::clone(&exited);
            let log = dir.join("clamd.out");
            std::thread::Builder::new()
                .name("clamd-keeper".into())
                .spawn(move || {
                    let out = std::fs::File::create(&log).expect("creating clamd.out");
                    let err = out.try_clone().expect("cloning clamd.out");
                    let mut cmd = Command::new(&bin);
                    cmd.arg(format!("--config-file={}", config.display()))
                        .stdin(Stdio::null())
                        .stdout(out)
                        .stderr(err);
                    // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
                    unsafe {
                        cmd.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let mut child = match cmd.spawn() {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = tx.send(Err(format!("spawning {}: {e}", bin.display())));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(child.id() as i32));
                    let status = child.wait().ok();
                    *exited.lock().unwrap() = status;
                })
                .expect("spawning the clamd keeper thread")
        };
        let pid = match rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("clamd keeper thread died"),
        };
        let clamd = Clamd {
            tcp: port.map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
            dir,
            pid,
            socket,
            exited,
            keeper: Some(keeper),
        };
        clamd.wait_ready(Duration::from_secs(10));
        clamd
    }

    fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let unix_ok = ping_unix(&self.socket);
            let tcp_ok = self.tcp.is_none_or(ping_tcp);
            if unix_ok && tcp_ok {
                return;
            }
            if let Some(status) = *self.exited.lock().unwrap() {
                panic!(
                    "clamd exited during start-up ({status}); config {}:\n{}",
                    self.dir.join("clamd.conf").display(),
                    self.logs()
                );
            }
            if start.elapsed() > limit {
                panic!(
                    "clamd did not answer PING within {} s; config {}:\n{}",
                    limit.as_secs(),
                    self.dir.join("clamd.conf").display(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// clamd's stdout/stderr and log file, for failure messages.
    pub fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.join(n)).unwrap_or_default();
        format!("{}{}", read("clamd.out"), read("clamd.log"))
    }

    /// The unix socket path (what `HALLMONITOR_CLAMD` takes).
    pub fn address(&self) -> String {
        self.socket.display().to_string()
    }

    /// `127.0.0.1:PORT`, if started with `tcp: true`.
    pub fn tcp_address(&self) -> String {
        self.tcp
            .expect("this clamd was started without TCP")
            .to_string()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on the pid we spawned (still our child: the keeper
        // reaps it only after it exits, so the pid cannot have been reused).
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
        }
        let start = Instant::now();
        while self.exited.lock().map(|e| e.is_none()).unwrap_or(false) {
            if start.elapsed() > Duration::from_secs(5) {
                unsafe {
                    libc::kill(self.pid, libc::SIGKILL);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(k) = self.keeper.take() {
            let _ = k.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping_unix(path: &Path) -> bool {
    UnixStream::connect(path)
        .and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"zPING\0")?;
            let mut buf = [0u8; 8];
            let n = s.read(&mut buf)?;
            Ok(buf[..n].starts_with(b"PONG"))
        })
        .unwrap_or(false)
}

fn ping_tcp(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"zPING\0")?;
            let mut buf = [0u8; 8];
            let n = s.read(&mut buf)?;
            Ok(buf[..n].starts_with(b"PONG"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------- running the binary

/// The SMTP envelope passed on the command line.
#[derive(Debug, Clone)]
pub struct Env {
    pub mail_from: String,
    pub rcpt: Vec<String>,
    pub auth_user: Option<String>,
    pub client_ip: String,
}

impl Env {
    /// From the internet (a documentation address) to a member of staff, not authenticated.
    pub fn inbound(mail_from: &str) -> Env {
        Env {
            mail_from: mail_from.into(),
            rcpt: vec!["d.price@oakfield.sch.uk".into()],
            auth_user: None,
            client_ip: "198.51.100.23".into(),
        }
    }

    /// A member of staff, logged in on the school network, to a colleague.
    pub fn internal(login: &str) -> Env {
        Env {
            mail_from: login.into(),
            rcpt: vec!["office@oakfield.sch.uk".into()],
            auth_user: Some(login.into()),
            client_ip: "10.0.2.14".into(),
        }
    }

    /// A member of staff, logged in, to someone outside the school.
    pub fn outbound(login: &str, to: &str) -> Env {
        Env {
            mail_from: login.into(),
            rcpt: vec![to.into()],
            auth_user: Some(login.into()),
            client_ip: "10.0.2.14".into(),
        }
    }

    pub fn to(mut self, rcpt: &str) -> Env {
        self.rcpt = vec![rcpt.into()];
        self
    }
}

/// What one `hallmonitor scan` run produced.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// A `scan --json` run whose stdout was checked to be exactly one JSON object.
#[derive(Debug)]
pub struct Scan {
    pub run: Run,
    pub json: serde_json::Value,
}

/// `hallmonitor scan` with `HALLMONITOR_CLAMD=clamd_address`.
pub fn run_scan(
    config: Option<&Path>,
    clamd_address: &str,
    env: &Env,
    file: &Path,
    json: bool,
) -> Run {
    let mut cmd = Command::new(HALLMONITOR);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("scan");
    if json {
        cmd.arg("--json");
    }
    cmd.arg("--mail-from").arg(&env.mail_from);
    for r in &env.rcpt {
        cmd.arg("--rcpt").arg(r);
    }
    if let Some(u) = &env.auth_user {
        cmd.arg("--auth-user").arg(u);
    }
    cmd.arg("--client-ip").arg(&env.client_ip).arg(file);
    cmd.env("HALLMONITOR_CLAMD", clamd_address)
        .env_remove("HALLMONITOR_LOG")
        .stdin(Stdio::null());
    let start = Instant::now();
    let out = cmd.output().expect("running the hallmonitor binary");
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// `scan --json` a file with the test config and the given clamd; asserts the
/// CLI contract (exit 0, exactly one JSON object on stdout, a known action,
/// findings with the four required string fields and known categories).
pub fn scan_with(config: &Path, clamd_address: &str, env: &Env, file: &Path) -> Scan {
    let run = run_scan(Some(config), clamd_address, env, file, true);
    assert_eq!(
        run.status.code(),
        Some(0),
        "scan of {} exited with {}; stderr:\n{}",
        file.display(),
        run.status,
        run.stderr
    );
    let mut values =
        serde_json::Deserializer::from_str(&run.stdout).into_iter::<serde_json::Value>();
    let json = match values.next() {
        Some(Ok(v)) => v,
        other => panic!(
            "stdout of scan {} is not JSON ({other:?}):\n{}",
            file.display(),
            run.stdout
        ),
    };
    assert!(
        values.next().is_none(),
        "stdout must hold exactly one JSON object, got:\n{}",
        run.stdout
    );
    assert!(json.is_object(), "stdout is JSON but not an object");
    let action = json["action"].as_str().unwrap_or("");
    assert!(
        ["pass", "tag", "quarantine", "reject", "tempfail"].contains(&action),
        "unknown action {action:?} in {}",
        run.stdout
    );
    let findings = json["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings list in {}", run.stdout));
    for f in findings {
        for key in ["category", "rule", "location", "evidence"] {
            assert!(f[key].is_string(), "finding without {key}: {f}");
        }
        let cat = f["category"].as_str().unwrap();
        assert!(
            [
                "profanity",
                "personal_data",
                "chain_letter",
                "anonymous_sender",
                "virus",
                "banned_attachment"
            ]
            .contains(&cat),
            "unknown category {cat}"
        );
    }
    Scan { run, json }
}

/// `scan --json` a fixture message with the test config and the shared clamd.
pub fn scan(name: &str, env: &Env) -> Scan {
    scan_with(&test_config(), &clamd().address(), env, &mail(name))
}

impl Scan {
    pub fn action(&self) -> &str {
        self.json["action"].as_str().unwrap_or("")
    }

    pub fn findings(&self) -> &[serde_json::Value] {
        self.json["findings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn categories(&self) -> BTreeSet<String> {
        self.findings()
            .iter()
            .filter_map(|f| f["category"].as_str().map(str::to_string))
            .collect()
    }

    pub fn rules(&self) -> BTreeSet<String> {
        self.findings()
            .iter()
            .filter_map(|f| f["rule"].as_str().map(str::to_string))
            .collect()
    }

    /// Findings of one category.
    pub fn in_category(&self, category: &str) -> Vec<&serde_json::Value> {
        self.findings()
            .iter()
            .filter(|f| f["category"] == category)
            .collect()
    }

    pub fn has_category(&self, category: &str) -> bool {
        self.categories().contains(category)
    }

    pub fn has_rule(&self, rule: &str) -> bool {
        self.rules().contains(rule)
    }

    /// Everything worth seeing when an assertion fails.
    pub fn explain(&self) -> String {
        format!(
            "action={} findings={}\nstderr: {}",
            self.action(),
            serde_json::to_string_pretty(&self.json["findings"]).unwrap_or_default(),
            self.run.stderr
        )
    }
}

/// Set of strings, for comparing categories.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Write a config file in `dir` that is the test school with `extra` appended
/// (e.g. `[clamd]\ntimeout_secs = 1`).
pub fn config_with(dir: &Path, name: &str, clamd_section: &str) -> PathBuf {
    let base = std::fs::read_to_string(test_config()).expect("reading the test config");
    // The test config's own [clamd] table is last; replace it.
    let cut = base.find("\n[clamd]").map(|i| i + 1).unwrap_or(base.len());
    let text = format!("{}{}\n", &base[..cut], clamd_section);
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a temp config");
    path
}

/// Base64 in 76-character lines (CRLF), for building MIME test messages.
pub fn base64_lines(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            s.push_str("\r\n");
        }
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A clamd that answers PING but returns nonsense for every scan: the one
/// failure a real clamd will not produce on demand (a message it cannot
/// handle while otherwise healthy). It speaks sessions (`zIDSESSION`) like
/// clamd, so only its replies are wrong.
#[allow(dead_code)]
pub fn confused_clamd() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    /// One NUL-terminated command, without the NUL; None at EOF.
    fn command(conn: &mut std::net::TcpStream) -> Option<Vec<u8>> {
        let mut cmd = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            conn.read_exact(&mut byte).ok()?;
            if byte[0] == 0 {
                return Some(cmd);
            }
            cmd.push(byte[0]);
            if cmd.len() > 64 {
                return None;
            }
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                while let Some(cmd) = command(&mut conn) {
                    match cmd.as_slice() {
                        b"zPING" => {
                            let _ = conn.write_all(b"PONG\0");
                            return;
                        }
                        b"zIDSESSION" => continue,
                        b"zINSTREAM" => {}
                        _ => return,
                    }
                    loop {
                        let mut len = [0u8; 4];
                        if conn.read_exact(&mut len).is_err() {
                            return;
                        }
                        let n = u32::from_be_bytes(len) as usize;
                        if n == 0 {
                            break;
                        }
                        let mut chunk = vec![0u8; n];
                        if conn.read_exact(&mut chunk).is_err() {
                            return;
                        }
                    }
                    let _ = conn.write_all(b"what is this\0");
                }
            });
        }
    });
    addr
}
