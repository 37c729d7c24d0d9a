//! `hallmonitor.toml` → typed [`Config`].
//!
//! Every error names the file, the line and the key. Relative paths resolve
//! against the directory of the config file. Unset state paths default to
//! `./quarantine/` under the working directory.

use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: key `{key}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub school: School,
    pub people: People,
    pub senders: Senders,
    pub rules: RulesConfig,
    pub clamd: Clamd,
    pub limits: Limits,
    pub state: State,
    pub relay: Relay,
    pub milter: Milter,
    pub admin: Admin,
    pub notify: Notify,
    /// Where the config was loaded from (None: embedded defaults).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// Who the school is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct School {
    pub name: String,
    /// Staff mail domains, e.g. `["school.example.sch.uk"]`.
    pub staff_domains: Vec<String>,
    /// Pupil mail domains, e.g. `["pupils.school.example.sch.uk"]`.
    pub pupil_domains: Vec<String>,
    /// The school's own postal address lines (not personal data).
    pub addresses: Vec<String>,
    /// The school's own postcodes (not personal data).
    pub postcodes: Vec<String>,
    /// The school's own phone numbers: switchboard, office (not personal data).
    pub phones: Vec<String>,
}

/// The people hallmonitor tells.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct People {
    pub head_teacher: Vec<String>,
    pub chair_of_governors: Vec<String>,
    pub governors: Vec<String>,
    pub dsl: Vec<String>,
    pub ict_admin: Vec<String>,
}

/// How senders are identified.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Senders {
    /// Hosts or networks (CIDR) whose mail counts as identified without a login:
    /// the MIS server, copiers, the school's own mail server.
    pub identified_networks: Vec<String>,
    /// Login → addresses it may send as. A login without `@` matches its local
    /// part at any school domain; an address without `@` likewise.
    pub aliases: std::collections::BTreeMap<String, Vec<String>>,
    /// Treat mail submitted locally (sendmail, pickup) as identified.
    #[serde(default = "yes")]
    pub trust_local_submission: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Directory with the rule files; unset: the rules embedded in the binary.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Clamd {
    /// `host:port` or a unix socket path. `HALLMONITOR_CLAMD` overrides it.
    pub address: String,
    /// Seconds before a clamd scan counts as failed.
    pub timeout_secs: u64,
    /// Do not scan with clamd at all (for scoring without clamd; never in production).
    pub disabled: bool,
}

impl Default for Clamd {
    fn default() -> Self {
        Clamd {
            address: "/var/run/clamav/clamd.ctl".into(),
            timeout_secs: 30,
            disabled: false,
        }
    }
}

impl Clamd {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }
}

/// Limits on what one message may make the scanner do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_mime_depth: usize,
    pub max_archive_depth: usize,
    pub max_archive_entries: usize,
    /// Total bytes expanded from archives and documents in one message.
    pub max_expanded_bytes: u64,
    /// Largest allowed ratio of expanded to compressed size for one archive member.
    pub max_expansion_ratio: u64,
    /// Most text kept per part (bytes); the rest is not scanned and recorded.
    pub max_text_per_part: usize,
    /// Seconds allowed for the PDF text extractor per document.
    pub pdf_timeout_secs: u64,
    /// Memory cap (MiB) for the PDF extraction worker process.
    pub pdf_memory_mib: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 50 * 1024 * 1024,
            max_mime_depth: 20,
            max_archive_depth: 5,
            max_archive_entries: 1000,
            max_expanded_bytes: 200 * 1024 * 1024,
            max_expansion_ratio: 200,
            max_text_per_part: 4 * 1024 * 1024,
            pdf_timeout_secs: 10,
            pdf_memory_mib: 512,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct State {
    /// State directory: quarantine store, incident database. Default `./quarantine/`.
    pub dir: Option<PathBuf>,
}

/// The Postfix content-filter relay (`hallmonitor serve`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Relay {
    /// Address the content filter listens on (Postfix's `content_filter` target).
    pub listen: String,
    /// Where scanned mail is re-injected: Postfix's second smtpd, which must not
    /// have a content filter of its own.
    pub next_hop: String,
    /// Name in our greeting and in EHLO to the next hop.
    pub hostname: String,
    /// Sessions served at once; more are refused with `421 4.3.2` so Postfix
    /// retries later (keep it at or above the `scan` transport's maxproc).
    pub max_connections: usize,
    /// Seconds a client may stay silent before `421 4.4.2`.
    pub idle_timeout_secs: u64,
    /// Seconds one session may last in total before `421 4.4.2`.
    pub total_timeout_secs: u64,
    /// Seconds to wait for each reply from the next hop.
    pub next_hop_timeout_secs: u64,
    /// Seconds SIGTERM waits for messages in flight before exiting (they are
    /// never answered 250, so Postfix retries them).
    pub shutdown_grace_secs: u64,
    /// Prefix for the Subject of tagged mail; `{categories}` is replaced.
    pub tag_subject_prefix: String,
    /// Remove `(Authenticated sender: …)` from the topmost Received header of
    /// outbound mail, so staff logins are not shown outside the school.
    pub strip_auth_header_outbound: bool,
    /// Threads that serve the mail sessions (content filter and milter);
    /// 0 means half the CPUs, at least one. Postfix does at least as much work
    /// per message as we do, so it keeps the other half; messages over 64 KiB
    /// and PDFs are scanned on a separate pool whatever this is. Read at
    /// start-up only (a SIGHUP does not change it).
    pub threads: usize,
}

impl Relay {
    /// The number of session threads to start: `threads`, or half the CPUs.
    pub fn session_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cpus / 2).max(1)
    }
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            listen: "127.0.0.1:10025".into(),
            next_hop: "127.0.0.1:10026".into(),
            hostname: "hallmonitor.localdomain".into(),
            max_connections: 50,
            idle_timeout_secs: 300,
            total_timeout_secs: 3600,
            next_hop_timeout_secs: 120,
            shutdown_grace_secs: 30,
            tag_subject_prefix: "[Flagged: {categories}]".into(),
            strip_auth_header_outbound: true,
            threads: 0,
        }
    }
}

/// The milter front-end (`smtpd_milters`), off unless `listen` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Milter {
    /// `host:port`, `inet:host:port` or `unix:/path`; empty: no milter.
    pub listen: String,
    /// What Postfix is told for a quarantined message: `discard` (accept and
    /// drop, the sender sees success) or `reject` (550; the sender is told).
    pub quarantine_reply: QuarantineReply,
    /// Seconds allowed for scanning one message before answering tempfail.
    pub message_timeout_secs: u64,
    /// Permissions of a `unix:` socket, in octal. Postfix's smtpd runs as
    /// `postfix` and needs to write to it: with the default `0660`, add
    /// `postfix` to hallmonitor's group.
    pub socket_mode: String,
}

impl Milter {
    /// `socket_mode` as permission bits (validated when the config is read).
    pub fn socket_mode_bits(&self) -> Option<u32> {
        let digits = self.socket_mode.trim();
        if digits.is_empty() || digits.len() > 4 {
            return None;
        }
        u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o777)
    }
}

/// How the milter answers for a message it quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineReply {
    Discard,
    Reject,
}

impl Default for Milter {
    fn default() -> Self {
        Milter {
            listen: String::new(),
            quarantine_reply: QuarantineReply::Discard,
            message_timeout_secs: 120,
            socket_mode: "0660".into(),
        }
    }
}

/// The admin web server: health endpoint now, the quarantine UI later.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Address of the admin HTTP server; empty disables it.
    pub listen: String,
    /// Public URL of the admin UI, used in links in alerts.
    pub base_url: String,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: "127.0.0.1:8025".into(),
            base_url: "http://127.0.0.1:8025".into(),
        }
    }
}

/// Alerts to the head teacher / Chair / DSL, notices to senders and
/// operational alerts to the ICT admin, sent by `hallmonitor serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// Send alerts, notices and operational alerts at all.
    pub enabled: bool,
    /// SMTP server (`host:port`) for alerts; empty: `relay.next_hop`, the
    /// re-injection smtpd, which does not scan them again.
    pub smtp: String,
    /// From address; empty: `hallmonitor@` the first staff domain.
    pub from: String,
    /// Categories whose held messages raise an alert.
    pub alert_categories: Vec<String>,
    /// Also alert for tagged (delivered with a warning) messages.
    pub tagged_alerts: bool,
    /// Categories for which an identified school sender is told that their
    /// message was held.
    pub notice_categories: Vec<String>,
    /// More alerts than this to one person within `batch_window` become one digest.
    pub batch_threshold: u32,
    /// The batching window, e.g. `"15m"`.
    pub batch_window: String,
    /// Waits between attempts of a failed send, e.g. `["1m", "5m", "30m"]`;
    /// after the last the alert is marked failed.
    pub retry: Vec<String>,
    /// The same operational problem is mailed to the ICT admin at most this often.
    pub ops_interval: String,
    /// How often the operational checks run.
    pub ops_check_every: String,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            enabled: true,
            smtp: String::new(),
            from: String::new(),
            alert_categories: crate::finding::Category::ALL
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            tagged_alerts: false,
            notice_categories: vec!["personal_data".into(), "chain_letter".into()],
            batch_threshold: 5,
            batch_window: "15m".into(),
            retry: ["1m", "5m", "15m", "1h", "4h", "12h"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ops_interval: "6h".into(),
            ops_check_every: "5m".into(),
        }
    }
}

impl Notify {
    pub fn batch_window(&self) -> Duration {
        parse_duration(&self.batch_window).unwrap_or(Duration::from_secs(900))
    }
    pub fn retry_delays(&self) -> Vec<Duration> {
        self.retry
            .iter()
            .filter_map(|r| parse_duration(r))
            .collect()
    }
    pub fn ops_interval(&self) -> Duration {
        parse_duration(&self.ops_interval).unwrap_or(Duration::from_secs(6 * 3600))
    }
    pub fn ops_check_every(&self) -> Duration {
        parse_duration(&self.ops_check_every)
            .unwrap_or(Duration::from_secs(300))
            .max(Duration::from_secs(1))
    }
}

/// `30s`, `15m`, `6h`, `3d` (or plain seconds) → a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult).map(Duration::from_secs)
}

/// A plausible single mailbox: `local@domain`, no spaces or brackets.
pub fn is_address(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !s.contains(|c: char| c.is_whitespace() || "<>,;\"()[]".contains(c))
        }
        None => false,
    }
}

impl Relay {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
    pub fn total_timeout(&self) -> Duration {
        Duration::from_secs(self.total_timeout_secs.max(1))
    }
    pub fn next_hop_timeout(&self) -> Duration {
        Duration::from_secs(self.next_hop_timeout_secs.max(1))
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

impl Config {
    /// Load and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let mut config = Config::parse(&text, &file)?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        if let Some(dir) = &config.rules.dir {
            config.rules.dir = Some(base.join(dir));
        }
        if let Some(dir) = &config.state.dir {
            config.state.dir = Some(base.join(dir));
        }
        if !config.clamd.address.starts_with('/') && !config.clamd.address.contains(':') {
            config.clamd.address = base.join(&config.clamd.address).display().to_string();
        }
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parse config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                key: key_at(text, e.span().map(|s| s.start)),
                message: e.message().to_string(),
            }
        })?;
        config.validate(text, file)?;
        Ok(config)
    }

    fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: file.to_string(),
            line: find_key_line(text, key),
            key: key.to_string(),
            message,
        };
        for net in &self.senders.identified_networks {
            if parse_network(net).is_none() {
                return Err(invalid(
                    "senders.identified_networks",
                    format!("`{net}` is not an IP address or CIDR network"),
                ));
            }
        }
        for (key, value) in [
            ("relay.listen", &self.relay.listen),
            ("relay.next_hop", &self.relay.next_hop),
        ] {
            if value.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    key,
                    format!("`{value}` is not an IP address and port such as 127.0.0.1:10025"),
                ));
            }
        }
        if !self.admin.listen.is_empty()
            && self.admin.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                "admin.listen",
                format!(
                    "`{}` is not an IP address and port such as 127.0.0.1:8025 (or \"\" to disable)",
                    self.admin.listen
                ),
            ));
        }
        if !self.milter.listen.is_empty()
            && crate::config::MilterAddress::parse(&self.milter.listen).is_none()
        {
            return Err(invalid(
                "milter.listen",
                format!(
                    "`{}` is not host:port, inet:host:port or unix:/path",
                    self.milter.listen
                ),
            ));
        }
        if self.milter.socket_mode_bits().is_none() {
            return Err(invalid(
                "milter.socket_mode",
                format!(
                    "`{}` is not octal permissions such as \"0660\"",
                    self.milter.socket_mode
                ),
            ));
        }
        if self.relay.max_connections == 0 {
            return Err(invalid(
                "relay.max_connections",
                "must be at least 1".to_string(),
            ));
        }
        if self.relay.hostname.is_empty()
            || !self
                .relay
                .hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(invalid(
                "relay.hostname",
                format!("`{}` is not a host name", self.relay.hostname),
            ));
        }
        if self.relay.tag_subject_prefix.contains(['\r', '\n']) {
            return Err(invalid(
                "relay.tag_subject_prefix",
                "must be one line".to_string(),
            ));
        }
        for (name, list) in [
            ("school.staff_domains", &self.school.staff_domains),
            ("school.pupil_domains", &self.school.pupil_domains),
        ] {
            for d in list {
                if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
                    return Err(invalid(name, format!("`{d}` is not a domain name")));
                }
            }
        }
        for (key, list) in [
            ("people.head_teacher", &self.people.head_teacher),
            ("people.chair_of_governors", &self.people.chair_of_governors),
            ("people.governors", &self.people.governors),
            ("people.dsl", &self.people.dsl),
            ("people.ict_admin", &self.people.ict_admin),
        ] {
            for a in list {
                if !is_address(a) {
                    return Err(invalid(key, format!("`{a}` is not an e-mail address")));
                }
            }
        }
        if !self.notify.smtp.is_empty() && self.notify.smtp.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                "notify.smtp",
                format!(
                    "`{}` is not an IP address and port such as 127.0.0.1:10026 (or \"\" for relay.next_hop)",
                    self.notify.smtp
                ),
            ));
        }
        if !self.notify.from.is_empty() && !is_address(&self.notify.from) {
            return Err(invalid(
                "notify.from",
                format!("`{}` is not an e-mail address", self.notify.from),
            ));
        }
        for (key, list) in [
            ("notify.alert_categories", &self.notify.alert_categories),
            ("notify.notice_categories", &self.notify.notice_categories),
        ] {
            for c in list {
                if crate::finding::Category::parse(c).is_none() {
                    return Err(invalid(
                        key,
                        format!(
                            "`{c}` is not a category (profanity, personal_data, chain_letter, anonymous_sender, virus, banned_attachment)"
                        ),
                    ));
                }
            }
        }
        for (key, value) in [
            ("notify.batch_window", &self.notify.batch_window),
            ("notify.ops_interval", &self.notify.ops_interval),
            ("notify.ops_check_every", &self.notify.ops_check_every),
        ]
        .into_iter()
        .chain(self.notify.retry.iter().map(|r| ("notify.retry", r)))
        {
            if parse_duration(value).is_none() {
                return Err(invalid(
                    key,
                    format!("`{value}` is not a duration such as 30s, 15m, 6h or 3d"),
                ));
            }
        }
        if self.notify.batch_threshold == 0 {
            return Err(invalid(
                "notify.batch_threshold",
                "must be at least 1".to_string(),
            ));
        }
        Ok(())
    }

    /// Where alerts are sent: `notify.smtp`, else `relay.next_hop`.
    pub fn notify_smtp(&self) -> String {
        if self.notify.smtp.is_empty() {
            self.relay.next_hop.clone()
        } else {
            self.notify.smtp.clone()
        }
    }

    /// From address of alerts and summaries.
    pub fn notify_from(&self) -> String {
        if !self.notify.from.is_empty() {
            return self.notify.from.clone();
        }
        match self.school.staff_domains.first() {
            Some(d) => format!("hallmonitor@{}", d.trim().to_ascii_lowercase()),
            None => format!("hallmonitor@{}", self.relay.hostname),
        }
    }

    /// The clamd address after the `HALLMONITOR_CLAMD` override.
    pub fn clamd_address(&self) -> String {
        match std::env::var("HALLMONITOR_CLAMD") {
            Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => self.clamd.address.clone(),
        }
    }

    /// The state directory (default `./quarantine/` under the working directory).
    pub fn state_dir(&self) -> PathBuf {
        self.state
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("quarantine"))
    }

    /// All school domains, staff first, lower case.
    pub fn school_domains(&self) -> impl Iterator<Item = String> + '_ {
        self.school
            .staff_domains
            .iter()
            .chain(self.school.pupil_domains.iter())
            .map(|d| d.trim().to_ascii_lowercase())
    }
}

/// Parse `10.0.0.5` or `10.10.0.0/16` into (network, prefix length).
pub fn parse_network(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().ok()?),
        None => (s, if s.contains(':') { 128 } else { 32 }),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

/// Does `ip` fall in `net/len`?
pub fn network_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Best-effort dotted key name at a byte offset: the `[table]` in force plus the key on that line.
fn key_at(text: &str, offset: Option<usize>) -> String {
    let Some(offset) = offset else {
        return String::from("?");
    };
    let offset = offset.min(text.len());
    let mut table = String::new();
    let mut key = String::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            table = trimmed
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
        }
        if pos + line.len() > offset || pos + line.len() == text.len() {
            if let Some((k, _)) = trimmed.split_once('=') {
                key = k.trim().trim_matches('"').to_string();
            }
            break;
        }
        pos += line.len();
    }
    match (table.is_empty(), key.is_empty()) {
        (true, true) => String::from("?"),
        (true, false) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// Line where a dotted key (`table.key`) is set, or 0 if not found.
fn find_key_line(text: &str, dotted: &str) -> usize {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if current == table && t.split_once('=').map(|(k, _)| k.trim()) == Some(key) {
            return i + 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_defaults_go_to_the_next_hop_from_the_staff_domain() {
        let c = Config::parse(
            "[school]\nstaff_domains = [\"oakfield.sch.uk\"]\n[relay]\nnext_hop = \"127.0.0.1:2526\"\n",
            "h.toml",
        )
        .unwrap();
        assert!(c.notify.enabled);
        assert_eq!(c.notify_smtp(), "127.0.0.1:2526");
        assert_eq!(c.notify_from(), "hallmonitor@oakfield.sch.uk");
        assert_eq!(c.notify.batch_threshold, 5);
        assert_eq!(c.notify.batch_window(), Duration::from_secs(900));
        assert!(!c.notify.tagged_alerts);
        assert_eq!(
            c.notify.notice_categories,
            ["personal_data", "chain_letter"]
        );
        assert_eq!(c.notify.alert_categories.len(), 6);
        assert_eq!(parse_duration("3d"), Some(Duration::from_secs(259_200)));
        assert_eq!(parse_duration("15 m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn bad_notify_settings_name_file_line_and_key() {
        for (text, key) in [
            (
                "[notify]\nbatch_window = \"fortnight\"\n",
                "notify.batch_window",
            ),
            ("[notify]\nretry = [\"1m\", \"x\"]\n", "notify.retry"),
            ("[notify]\nsmtp = \"mail.example\"\n", "notify.smtp"),
            (
                "[notify]\nalert_categories = [\"swearing\"]\n",
                "notify.alert_categories",
            ),
            ("[notify]\nfrom = \"not an address\"\n", "notify.from"),
            (
                "[people]\nhead_teacher = [\"head\"]\n",
                "people.head_teacher",
            ),
        ] {
            let err = Config::parse(text, "h.toml").unwrap_err().to_string();
            assert!(err.starts_with(&format!("h.toml:2: key `{key}`")), "{err}");
        }
    }

    #[test]
    fn relay_defaults_match_postfix_content_filter_ports() {
        let c = Config::parse("", "h.toml").unwrap();
        assert_eq!(c.relay.listen, "127.0.0.1:10025");
        assert_eq!(c.relay.next_hop, "127.0.0.1:10026");
        assert_eq!(c.relay.tag_subject_prefix, "[Flagged: {categories}]");
        assert!(c.relay.strip_auth_header_outbound);
    }

    #[test]
    fn bad_relay_address_names_file_line_and_key() {
        let text = "[relay]\nlisten = \"127.0.0.1:10025\"\nnext_hop = \"localhost\"\n";
        let err = Config::parse(text, "h.toml").unwrap_err().to_string();
        assert!(err.starts_with("h.toml:3: key `relay.next_hop`"), "{err}");
    }

    #[test]
    fn milter_socket_mode_is_octal_permissions() {
        assert_eq!(Config::default().milter.socket_mode_bits(), Some(0o660));
        let c = Config::parse("[milter]\nsocket_mode = \"666\"\n", "h.toml").unwrap();
        assert_eq!(c.milter.socket_mode_bits(), Some(0o666));
        for bad in ["0668", "rw-rw----", "", "17777"] {
            let text =
                format!("[milter]\nlisten = \"unix:/run/m.sock\"\nsocket_mode = \"{bad}\"\n");
            let err = Config::parse(&text, "h.toml").unwrap_err().to_string();
            assert!(
                err.starts_with("h.toml:3: key `milter.socket_mode`"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn unknown_relay_key_is_refused() {
        let text = "[relay]\nlisten_on = \"127.0.0.1:1\"\n";
        let err = Config::parse(text, "h.toml").unwrap_err().to_string();
        assert!(err.contains("h.toml:2:"), "{err}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "[school]\nname = \"X\"\nstaf_domains = [\"a.sch.uk\"]\n";
        let err = Config::parse(text, "h.toml").unwrap_err().to_string();
        assert!(err.starts_with("h.toml:3:"), "{err}");
        assert!(err.contains("staf_domains"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = "[clamd]\naddress = \"/tmp/s\"\ntimeout_secs = \"soon\"\n";
        let err = Config::parse(text, "h.toml").unwrap_err().to_string();
        assert!(err.contains("h.toml:3"), "{err}");
        assert!(err.contains("clamd.timeout_secs"), "{err}");
    }

    #[test]
    fn bad_network_is_reported_with_line() {
        let text = "[senders]\nidentified_networks = [\"10.0.0.0/99\"]\n";
        let err = Config::parse(text, "h.toml").unwrap_err().to_string();
        assert!(err.contains("h.toml:2"), "{err}");
        assert!(err.contains("senders.identified_networks"), "{err}");
    }

    #[test]
    fn networks_match() {
        let (n, l) = parse_network("10.10.0.0/16").unwrap();
        assert!(network_contains(n, l, "10.10.23.44".parse().unwrap()));
        assert!(!network_contains(n, l, "10.11.0.1".parse().unwrap()));
        let (n, l) = parse_network("192.0.2.7").unwrap();
        assert!(network_contains(n, l, "192.0.2.7".parse().unwrap()));
        assert!(!network_contains(n, l, "192.0.2.8".parse().unwrap()));
    }

    #[test]
    fn relative_paths_resolve_against_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.toml");
        std::fs::write(&path, "[rules]\ndir = \"myrules\"\n").unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.rules.dir.clone().unwrap(), dir.path().join("myrules"));
        assert_eq!(c.state_dir(), PathBuf::from("quarantine"));
    }
}

#[cfg(test)]
mod shipped_examples {
    use super::*;

    /// The example config in the repository must always load.
    #[test]
    fn example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hallmonitor.example.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.school.staff_domains, vec!["oakfield.sch.uk"]);
        assert_eq!(c.senders.aliases.len(), 2);
    }

    #[test]
    fn corpus_school_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ashcombe-vale.toml");
        let c = Config::load(&path).unwrap();
        assert!(
            c.state.dir.is_none(),
            "the corpus config sets no state paths"
        );
    }
}

/// Where the milter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MilterAddress {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

impl MilterAddress {
    /// `host:port`, `inet:host:port`, `inet:port@host` (Sendmail style) or `unix:/path`.
    pub fn parse(s: &str) -> Option<MilterAddress> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:")) {
            return (!p.is_empty()).then(|| MilterAddress::Unix(PathBuf::from(p)));
        }
        let rest = s.strip_prefix("inet:").unwrap_or(s);
        let rest = match rest.split_once('@') {
            Some((port, host)) => format!("{host}:{port}"),
            None => rest.to_string(),
        };
        rest.parse().ok().map(MilterAddress::Tcp)
    }
}

#[cfg(test)]
mod milter_address_tests {
    use super::MilterAddress;

    #[test]
    fn parses_the_forms_postfix_documents() {
        let tcp = MilterAddress::Tcp("127.0.0.1:8891".parse().unwrap());
        assert_eq!(MilterAddress::parse("127.0.0.1:8891"), Some(tcp.clone()));
        assert_eq!(
            MilterAddress::parse("inet:127.0.0.1:8891"),
            Some(tcp.clone())
        );
        assert_eq!(MilterAddress::parse("inet:8891@127.0.0.1"), Some(tcp));
        assert_eq!(
            MilterAddress::parse("unix:/run/hm.sock"),
            Some(MilterAddress::Unix("/run/hm.sock".into()))
        );
        assert_eq!(MilterAddress::parse("unix:"), None);
        assert_eq!(MilterAddress::parse("localhost"), None);
    }
}
