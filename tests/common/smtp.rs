//! SMTP peers for the relay tests: a recording next-hop sink, the real
//! `hallmonitor serve` process, and a plain-socket SMTP client.
//!
//! The sink is a few dozen lines of std networking rather than Postfix's
//! `smtp-sink`, because the tests must compare the delivered bytes exactly
//! (smtp-sink's dump rewrites line endings and adds its own headers) and see
//! the XFORWARD and DSN parameters the relay passed on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message as the next hop received it.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    pub xforward: Vec<String>,
    pub mail: String,
    pub rcpts: Vec<String>,
    /// The DATA content, dot-unstuffed, without the final `.` line.
    pub data: Vec<u8>,
}

impl Delivered {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A next hop that records every accepted message. Recipients whose address
/// starts with `refuse` get `550 5.1.1`.
pub struct Sink {
    pub addr: SocketAddr,
    delivered: Arc<Mutex<Vec<Delivered>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Sink {
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let d = delivered.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = connections.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let d = d.clone();
                std::thread::spawn(move || {
                    let _ = sink_session(conn, &d);
                });
            }
        });
        Sink {
            addr,
            delivered,
            connections,
        }
    }

    /// Connections accepted so far.
    #[allow(dead_code)]
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<Delivered> {
        self.delivered.lock().unwrap().clone()
    }
}

fn sink_session(conn: TcpStream, delivered: &Mutex<Vec<Delivered>>) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    w.write_all(b"220 sink ESMTP\r\n")?;
    let mut cur = Delivered::default();
    let mut xforward = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 XFORWARD NAME ADDR PROTO HELO IDENT SOURCE\r\n"
        } else if upper.starts_with("XFORWARD") {
            xforward.push(line.trim_end().to_string());
            b"250 2.0.0 Ok\r\n"
        } else if upper.starts_with("MAIL") {
            cur = Delivered {
                xforward: xforward.clone(),
                mail: line.trim_end().to_string(),
                ..Delivered::default()
            };
            b"250 2.1.0 Ok\r\n"
        } else if upper.starts_with("RCPT") {
            if upper.starts_with("RCPT TO:<REFUSE") {
                b"550 5.1.1 No such user here\r\n"
            } else {
                cur.rcpts.push(line.trim_end().to_string());
                b"250 2.1.5 Ok\r\n"
            }
        } else if upper.starts_with("DATA") {
            w.write_all(b"354 go\r\n")?;
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                if r.read_until(b'\n', &mut l)? == 0 {
                    return Ok(());
                }
                if l == b".\r\n" {
                    break;
                }
                let l = if l.first() == Some(&b'.') {
                    &l[1..]
                } else {
                    &l[..]
                };
                data.extend_from_slice(l);
            }
            cur.data = data;
            delivered.lock().unwrap().push(std::mem::take(&mut cur));
            b"250 2.0.0 Ok: queued\r\n"
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 2.0.0 Bye\r\n")?;
            return Ok(());
        } else {
            b"250 2.0.0 Ok\r\n"
        };
        w.write_all(reply)?;
    }
}

/// A free port on 127.0.0.1 for a listener a test starts later: see
/// [`super::free_tcp_port`] for why it is never a `bind(0)` port.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], super::free_tcp_port()))
}

/// A running `hallmonitor serve`; killed (SIGTERM) on drop.
pub struct Relay {
    pub addr: SocketAddr,
    /// The admin server (health endpoint).
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Child,
    pub banner: String,
}

/// How to start the relay.
pub struct RelayOptions {
    /// Listen here (default: a free port).
    pub listen: Option<SocketAddr>,
    pub next_hop: SocketAddr,
    /// Value of `HALLMONITOR_CLAMD`.
    pub clamd: String,
    /// Extra `[relay]` lines (e.g. `idle_timeout_secs = 1`).
    pub relay: Vec<String>,
    /// Extra `[limits]` lines.
    pub limits: Vec<String>,
}

impl Relay {
    pub fn start(opts: RelayOptions) -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = std::fs::read_to_string(super::test_config()).expect("test config");
        let admin = free_addr();
        let config = format!(
            "[state]\ndir = \"state\"\n\n[admin]\nlisten = \"{admin}\"\n\n[relay]\n{}\n\n[limits]\n{}\n\n{base}",
            opts.relay.join("\n"),
            opts.limits.join("\n")
        );
        let config_path = dir.path().join("hallmonitor.toml");
        std::fs::write(&config_path, config).expect("write config");
        let addr = opts.listen.unwrap_or_else(free_addr);
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log");
        let mut child = Command::new(super::HALLMONITOR)
            .arg("--config")
            .arg(&config_path)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--next-hop")
            .arg(opts.next_hop.to_string())
            .env("HALLMONITOR_CLAMD", &opts.clamd)
            .env("HALLMONITOR_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start hallmonitor serve");
        let mut banner = String::new();
        if let Some(out) = child.stdout.take() {
            let mut r = BufReader::new(out);
            let _ = r.read_line(&mut banner);
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = r.read_to_end(&mut sink);
            });
        }
        // The banner is printed once every listener is bound. Without it the
        // relay has exited (its log says why), and whatever answers on `addr`
        // is not this relay.
        assert!(
            banner.contains(&format!("listening on {addr},")),
            "relay did not start on {addr}: {banner}\n{}",
            std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "relay did not start: {banner}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Relay {
            addr,
            admin,
            dir,
            child,
            banner,
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("hallmonitor.toml")
    }

    /// What the relay wrote to stderr so far (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Send a signal to the relay process.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Quarantined message ids (the `.eml` files).
    pub fn quarantined(&self) -> Vec<String> {
        let dir = self.state_dir().join("messages");
        let mut ids: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .strip_suffix(".eml")
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM and wait for exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// A plain SMTP client on a socket.
pub struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let w = s.try_clone().unwrap();
        Client {
            r: BufReader::new(s),
            w,
        }
    }

    /// Read one (possibly multi-line) reply; "" when the server closed.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write");
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Send a message after a 354, dot-stuffed, and return the final reply.
    pub fn data(&mut self, raw: &[u8]) -> String {
        let mut out = Vec::new();
        let mut start = true;
        for &b in raw {
            if start && b == b'.' {
                out.push(b'.');
            }
            out.push(b);
            start = b == b'\n';
        }
        if !start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.send(&out);
        self.reply()
    }
}

/// A whole transaction: greeting, EHLO, XFORWARD (IDENT=`queue_id`), MAIL,
/// RCPTs, DATA. Returns the reply to the end of data (or the first failure).
pub fn send_mail(
    addr: SocketAddr,
    from: &str,
    rcpts: &[&str],
    queue_id: &str,
    raw: &[u8],
) -> String {
    let mut c = Client::connect(addr);
    let greet = c.reply();
    assert!(greet.starts_with("220"), "{greet}");
    let ehlo = c.cmd("EHLO postfix.test");
    assert!(ehlo.starts_with("250"), "{ehlo}");
    let xf = c.cmd(&format!(
        "XFORWARD NAME=client.example ADDR=192.0.2.10 PROTO=ESMTP HELO=client.example IDENT={queue_id} SOURCE=REMOTE"
    ));
    assert!(xf.starts_with("250"), "{xf}");
    let mail = c.cmd(&format!("MAIL FROM:<{from}>"));
    if !mail.starts_with("250") {
        return mail;
    }
    for r in rcpts {
        let reply = c.cmd(&format!("RCPT TO:<{r}>"));
        assert!(reply.starts_with("250"), "{reply}");
    }
    let data = c.cmd("DATA");
    assert!(data.starts_with("354"), "{data}");
    let reply = c.data(raw);
    let _ = c.cmd("QUIT");
    reply
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
