//! A private Postfix instance for the relay tests (`postfix -c DIR start-fg`,
//! no systemd, no syslog, no DNS), configured as a school's mail server with
//! hallmonitor as its after-queue `content_filter` and a re-injection smtpd
//! behind it, relaying everything to a sink on 127.0.0.1. The settings follow
//! the testbed notes (chroot off, `maillog_file_prefixes`, a `postlog`
//! service, short retry times so deferred mail is retried within a test).
//! One variant runs smtpd and cleanup chrooted, as Debian does, to check the
//! README's milter socket inside the queue directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Postfix {
    pub dir: tempfile::TempDir,
    /// The front smtpd (where "the Internet" and staff submit mail).
    pub smtp: SocketAddr,
    /// The re-injection smtpd hallmonitor relays to.
    pub reinject: SocketAddr,
    child: Child,
}

impl Postfix {
    /// Start Postfix with `content_filter = scan:[127.0.0.1]:filter`, the
    /// re-injection smtpd on `reinject` and `relayhost = [127.0.0.1]:sink`.
    pub fn start(filter: SocketAddr, reinject: SocketAddr, sink: SocketAddr) -> Postfix {
        // As the README recommends: Postfix keeps its connections to the
        // filter open between messages (RSET, next transaction).
        let filter_cf = format!(
            "content_filter = scan:[127.0.0.1]:{port}\n\
             smtp_connection_cache_destinations = [127.0.0.1]:{port}\n",
            port = filter.port()
        );
        Self::launch(&filter_cf, reinject, sink, |_| {}, false)
    }

    /// Start Postfix with hallmonitor as its milter (`smtpd_milters` and
    /// `non_smtpd_milters` = `milter` (`inet:host:port` or `unix:PATH`), protocol 6, tempfail when the
    /// milter is unreachable, the README's macro lists) and no content
    /// filter; `relayhost = [127.0.0.1]:sink`. SMTP AUTH (PLAIN, Cyrus
    /// sasldb) is offered and `users` (login, password) can log in; that
    /// needs `saslpasswd2` (Debian package sasl2-bin).
    #[allow(dead_code)]
    pub fn start_milter(milter: &str, sink: SocketAddr, users: &[(&str, &str)]) -> Postfix {
        let users: Vec<(String, String)> = users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        let milter_cf = format!(
            "{}smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = no
",
            milter_lines(milter)
        );
        Self::launch(
            &milter_cf,
            free_reinject(),
            sink,
            move |d| {
                use std::io::Write;
                let sasl = d.join("sasl");
                std::fs::create_dir_all(&sasl).unwrap();
                let db = sasl.join("sasldb2");
                // Debian's Postfix reads $config_directory/sasl/smtpd.conf (and
                // ignores cyrus_sasl_config_path); upstream uses the latter.
                let conf_dir = d.join("etc").join("sasl");
                std::fs::create_dir_all(&conf_dir).unwrap();
                let conf = format!(
                    "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {}\n",
                    db.display()
                );
                std::fs::write(sasl.join("smtpd.conf"), &conf).unwrap();
                std::fs::write(conf_dir.join("smtpd.conf"), &conf).unwrap();
                for (user, password) in &users {
                    let (login, realm) = user.split_once('@').unwrap_or((user, "oakfield.sch.uk"));
                    let mut child = Command::new("saslpasswd2")
                        .arg("-c")
                        .arg("-p")
                        .arg("-f")
                        .arg(&db)
                        .arg("-u")
                        .arg(realm)
                        .arg(login)
                        .stdin(Stdio::piped())
                        .spawn()
                        .expect("saslpasswd2 (apt-get install sasl2-bin)");
                    child
                        .stdin
                        .take()
                        .unwrap()
                        .write_all(password.as_bytes())
                        .unwrap();
                    assert!(child.wait().unwrap().success(), "saslpasswd2 failed");
                }
                // smtpd reads the sasldb as user postfix, by absolute path.
                if db.exists() {
                    let _ = Command::new("chown").arg("postfix").arg(&db).status();
                }
                use std::os::unix::fs::PermissionsExt;
                for p in [d, sasl.as_path()] {
                    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
                }
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(d.join("etc").join("main.cf"))
                    .unwrap()
                    .write_all(format!("cyrus_sasl_config_path = {}\n", sasl.display()).as_bytes())
                    .unwrap();
            },
            false,
        )
    }

    /// Start Postfix with hallmonitor as its milter as on Debian, whose
    /// master.cf runs smtpd and cleanup chrooted in the queue directory:
    /// `milter` (`unix:/PATH`) is then a path inside the queue directory.
    /// No SMTP AUTH (the SASL database would be outside the chroot).
    #[allow(dead_code)]
    pub fn start_milter_chrooted(milter: &str, sink: SocketAddr) -> Postfix {
        Self::launch(&milter_lines(milter), free_reinject(), sink, |_| {}, true)
    }

    /// The queue directory (the chroot of chrooted services).
    #[allow(dead_code)]
    pub fn queue_dir(&self) -> PathBuf {
        self.dir.path().join("queue")
    }

    /// Write the configuration (`filter_cf` decides content filter or
    /// milter; `prepare` adds files before the check), check and start.
    /// `chroot` runs the front smtpd and cleanup chrooted, as Debian's
    /// master.cf does.
    fn launch(
        filter_cf: &str,
        reinject: SocketAddr,
        sink: SocketAddr,
        prepare: impl FnOnce(&std::path::Path),
        chroot: bool,
    ) -> Postfix {
        let c = if chroot { "y" } else { "n" };
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let etc = d.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(d.join("data")).unwrap();
        std::fs::create_dir_all(d.join("queue")).unwrap();
        let _ = Command::new("chown")
            .arg("postfix")
            .arg(d.join("data"))
            .status();
        let smtp = crate::common::smtp::free_addr();
        let main_cf = format!(
            "compatibility_level = 3.6
queue_directory = {q}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.oakfield.sch.uk
mydomain = oakfield.sch.uk
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{sink_port}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
biff = no
append_dot_mydomain = no
smtputf8_enable = yes
message_size_limit = 52428800
maillog_file = /dev/stdout
maillog_file_prefixes = /var, /dev/stdout, /tmp, {dir}
{filter_cf}minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
",
            q = d.join("queue").display(),
            data = d.join("data").display(),
            dir = d.display(),
            sink_port = sink.port(),
        );
        let master_cf = format!(
            "{smtp} inet n - {c} - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - {c} - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
scan unix - - n - 4 smtp
  -o smtp_send_xforward_command=yes
  -o disable_mime_output_conversion=yes
  -o smtp_generic_maps=
{reinject} inet n - n - 10 smtpd
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_milters=
  -o smtpd_helo_restrictions=
  -o smtpd_client_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o mynetworks=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
"
        );
        std::fs::write(etc.join("main.cf"), main_cf).unwrap();
        std::fs::write(etc.join("master.cf"), master_cf).unwrap();
        prepare(d);
        let check = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&etc)
            .arg("check")
            .output()
            .expect("postfix check (apt-get install postfix)");
        assert!(
            check.status.success(),
            "postfix check failed in {}: {}",
            etc.display(),
            String::from_utf8_lossy(&check.stderr)
        );
        let log = std::fs::File::create(d.join("maillog")).unwrap();
        let child = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&etc)
            .arg("start-fg")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("postfix start-fg");
        let pf = Postfix {
            dir,
            smtp,
            reinject,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(pf.smtp).is_err()
            || std::net::TcpStream::connect(pf.reinject).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "postfix did not start: {}",
                pf.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pf
    }

    pub fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Queue ids of the messages in Postfix's queue (`postqueue -j`).
    pub fn queue(&self) -> Vec<serde_json::Value> {
        let out = Command::new("/usr/sbin/postqueue")
            .arg("-c")
            .arg(self.etc())
            .arg("-j")
            .output()
            .expect("postqueue");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Ask Postfix to retry deferred mail now.
    pub fn flush(&self) {
        let _ = Command::new("/usr/sbin/postqueue")
            .arg("-c")
            .arg(self.etc())
            .arg("-f")
            .status();
    }

    /// Wait until `cond` holds, at most `secs` seconds.
    pub fn wait_for(&self, secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n--- maillog ---\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(self.etc())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The README's main.cf lines for the milter (`smtpd_milters` and
/// `non_smtpd_milters` = `milter`).
fn milter_lines(milter: &str) -> String {
    format!(
        "smtpd_milters = {milter}
non_smtpd_milters = {milter}
milter_protocol = 6
milter_default_action = tempfail
{}",
        hallmonitor::inbound::milter::envelope::main_cf_macro_lines()
    )
}

/// A port for the unused re-injection smtpd of milter mode.
#[allow(dead_code)]
fn free_reinject() -> SocketAddr {
    crate::common::smtp::free_addr()
}
