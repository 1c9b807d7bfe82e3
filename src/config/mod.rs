//! Settings of `edgeprobe run`: built-in defaults, then a TOML file, then
//! `EDGEPROBE_*` environment variables and flags over it.
//!
//! The file is read into [`FileConfig`], which rejects unknown keys by
//! name; [`Overrides`] carries what flags and the environment set (clap
//! reads both); [`Config::resolve`] merges the layers and checks every
//! value, so the monitor only ever sees a valid [`Config`].
//!
//! The `[leds]` section is checked in `leds` into the LED
//! module's own settings type (so `leds/` never reads the config), and
//! `duration` reads and prints durations such as `1m30s`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::alerts::settings::AlertSettings;
use crate::fleet::MongoSettings;
use crate::http::secret::Secret;
use crate::leds::LedSettings;
use crate::targets::SheetLimits;

mod alerts;
mod duration;
mod leds;

pub use alerts::{resolve_alerts, AlertsSection, DEFAULT_GIVE_UP_AFTER};
pub use duration::{format_duration, parse_duration};
pub use leds::{resolve_leds, LedBackendName, LedSection, LedsSection, DEFAULT_GPIO_CHIP};

/// A setting that cannot be used, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// toml's message names the key and the line, e.g. "unknown field
    /// `intervall`, expected one of ...".
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("cannot read the admin token file {path}: {source}")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// The TOML file as written. Every key is optional; unknown keys are an
/// error naming the key.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub board_id: Option<String>,
    pub targets: Option<PathBuf>,
    pub sheet: Option<String>,
    pub listen: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub admin_token: Option<Secret>,
    pub admin_token_file: Option<PathBuf>,
    pub probe: ProbeSection,
    pub store: StoreSection,
    pub limits: LimitsSection,
    pub mongo: MongoSection,
    pub leds: LedsSection,
    pub alerts: AlertsSection,
    pub web: WebSection,
}

/// `[web]`: the dashboard.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebSection {
    /// Names the dashboard answers to besides the board's addresses,
    /// `localhost` and the host name.
    pub allowed_hosts: Option<Vec<String>>,
    /// HTTPS: the certificate chain, PEM (the server's first).
    pub tls_certificate_file: Option<PathBuf>,
    /// HTTPS: the certificate's private key, PEM.
    pub tls_key_file: Option<PathBuf>,
}

/// `[probe]`: how and how often targets are probed.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSection {
    pub interval: Option<String>,
    pub count: Option<u32>,
    pub timeout: Option<String>,
    pub rate: Option<u32>,
    pub degraded_loss: Option<f64>,
    pub down_after: Option<u32>,
    pub up_after: Option<u32>,
    pub trace_every: Option<String>,
    pub max_hops: Option<u8>,
}

/// `[store]`: the history kept on the board.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    pub retention: Option<String>,
    pub max_size_mb: Option<u64>,
}

/// `[limits]`: how big a targets sheet (or upload) may be.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub sheet_max_mb: Option<u64>,
    pub sheet_max_rows: Option<u32>,
    pub sheet_max_unzipped_mb: Option<u64>,
}

/// `[mongo]`: the optional upstream.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MongoSection {
    /// `mongodb://...` or `mongodb+srv://...`; credentials better in
    /// `uri_file`.
    pub uri: Option<Secret>,
    /// A file holding the URI, so credentials stay out of the config.
    pub uri_file: Option<PathBuf>,
    /// Database name (default `edgeprobe`).
    pub database: Option<String>,
    /// CA bundle to verify the server with (turns TLS on).
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate and key in one PEM file (turns TLS on).
    pub tls_certificate_key_file: Option<PathBuf>,
    /// Outbox rows sent per insert (default 500).
    pub batch: Option<usize>,
}

impl FileConfig {
    /// Parse the text of a config file; `path` names it in messages.
    pub fn parse(path: &str, text: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    /// Read and parse a config file.
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        FileConfig::parse(&path.display().to_string(), &text)
    }
}

/// What flags and `EDGEPROBE_*` variables set; they win over the file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Overrides {
    pub board_id: Option<String>,
    pub targets: Option<PathBuf>,
    pub sheet: Option<String>,
    pub listen: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub admin_token_file: Option<PathBuf>,
    /// The `[probe]` keys, each with a flag of the same name.
    pub probe: ProbeSection,
    /// The `[store]` keys, each with a flag of the same name.
    pub store: StoreSection,
    pub mongo_uri: Option<String>,
    pub mongo_uri_file: Option<PathBuf>,
}

/// What the environment provides for defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The machine's host name: the default board id.
    pub hostname: Option<String>,
    /// `$STATE_DIRECTORY`, which systemd sets for `StateDirectory=`.
    pub systemd_state_dir: Option<PathBuf>,
    pub is_root: bool,
}

impl Environment {
    /// Read the real environment.
    pub fn current() -> Environment {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        // systemd may list several directories separated by colons.
        let systemd_state_dir = std::env::var_os("STATE_DIRECTORY")
            .and_then(|v| {
                v.to_str()
                    .map(|s| s.split(':').next().unwrap_or("").to_string())
            })
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        // The owner of /proc/self is the process's effective user.
        let is_root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        Environment {
            hostname,
            systemd_state_dir,
            is_root,
        }
    }

    /// Where the history goes when nothing says: the system's place for
    /// root, a folder in the working directory for anyone else.
    fn default_state_dir(&self) -> PathBuf {
        if self.is_root {
            PathBuf::from("/var/lib/edgeprobe")
        } else {
            PathBuf::from("edgeprobe-state")
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub board_id: String,
    /// `None`: no sheet configured; an uploaded one in the state directory
    /// is used if there is one.
    pub targets: Option<PathBuf>,
    pub sheet: Option<String>,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    /// `None` turns the admin endpoints off.
    pub admin_token: Option<Secret>,
    pub probe: ProbeSettings,
    pub store: StoreSettings,
    /// Caps on the targets sheet and on uploads.
    pub sheet_limits: SheetLimits,
    /// `None`: no upstream, the history stays on the board.
    pub mongo: Option<MongoSettings>,
    pub leds: LedSettings,
    /// Where and when alerts go; no channel: none are sent.
    pub alerts: AlertSettings,
    /// Names the dashboard answers to besides its addresses and
    /// `localhost`: `[web] allowed_hosts` and the machine's host name.
    pub allowed_hosts: Vec<String>,
    /// HTTPS for the dashboard: the certificate and key files; `None`:
    /// plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// The PEM files of the dashboard's certificate and its key.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// How much history the board keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoreSettings {
    /// Results, traces and events older than this are dropped.
    pub retention: Duration,
    /// The database may not grow past this; the oldest rows go first.
    pub max_bytes: u64,
}

impl Default for StoreSettings {
    /// The store's own defaults.
    fn default() -> StoreSettings {
        let policy = crate::store::RetentionPolicy::default();
        StoreSettings {
            retention: policy.max_age,
            max_bytes: policy.max_bytes,
        }
    }
}

/// How targets are probed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeSettings {
    pub interval: Duration,
    pub count: u32,
    pub timeout: Duration,
    /// Packets per second for everything sent; 0 = unpaced.
    pub rate: u32,
    pub degraded_loss: f64,
    pub down_after: u32,
    pub up_after: u32,
    pub trace_every: Duration,
    pub max_hops: u8,
}

impl Default for ProbeSettings {
    fn default() -> ProbeSettings {
        ProbeSettings {
            interval: Duration::from_secs(60),
            count: 3,
            timeout: Duration::from_secs(1),
            rate: 100,
            degraded_loss: crate::probe::stats::DEFAULT_DEGRADED_LOSS,
            down_after: 2,
            up_after: 1,
            trace_every: Duration::from_secs(600),
            max_hops: 30,
        }
    }
}

/// The dashboard's default address: every interface, port 8080.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

impl Config {
    /// Merge defaults, the file and the overrides, and check every value.
    pub fn resolve(
        file: FileConfig,
        over: Overrides,
        env: &Environment,
    ) -> Result<Config, ConfigError> {
        let probe = resolve_probe(over.probe, file.probe)?;

        let named_board = over.board_id.or(file.board_id);
        let board_named = named_board.is_some();
        let board_id = named_board
            .or_else(|| env.hostname.clone())
            .unwrap_or_else(|| "edgeprobe".to_string());
        check_board_id(&board_id)?;

        let listen = resolve_listen(over.listen.or(file.listen))?;
        let state_dir = over
            .state_dir
            .or(file.state_dir)
            .or_else(|| env.systemd_state_dir.clone())
            .unwrap_or_else(|| env.default_state_dir());

        // A token file given on the command line wins over a token written
        // in the config file; a file keeps it out of `ps` and the config.
        let admin_token = match over.admin_token_file.or(file.admin_token_file) {
            Some(path) => Some(Secret(read_token_file(&path)?)),
            None => file.admin_token,
        };
        if let Some(t) = &admin_token {
            check_token(&t.0)?;
        }

        let store = resolve_store(
            over.store.retention.or(file.store.retention),
            over.store.max_size_mb.or(file.store.max_size_mb),
        )?;

        let mongo = resolve_mongo(file.mongo, over.mongo_uri, over.mongo_uri_file)?;
        if mongo.is_some() && !board_named {
            // Every stock Raspberry Pi is called `raspberrypi`: boards that
            // share a name would mix their data upstream.
            return Err(invalid(
                "board_id",
                format!(
                    "set it explicitly (e.g. --board-id closet-3) when syncing to MongoDB; \
                     the host name {board_id:?} may be shared by other boards"
                ),
            ));
        }

        let leds = resolve_leds(file.leds)?;
        let alerts = resolve_alerts(file.alerts)?;
        let sheet_limits = resolve_limits(&file.limits)?;
        let allowed_hosts = resolve_allowed_hosts(file.web.allowed_hosts, env.hostname.as_deref())?;
        let tls =
            match (file.web.tls_certificate_file, file.web.tls_key_file) {
                (Some(certificate), Some(key)) => Some(TlsFiles { certificate, key }),
                (None, None) => None,
                (Some(_), None) => return Err(invalid(
                    "web.tls_key_file",
                    "tls_certificate_file is set but not its key; set both for HTTPS, or neither",
                )),
                (None, Some(_)) => return Err(invalid(
                    "web.tls_certificate_file",
                    "tls_key_file is set but not the certificate; set both for HTTPS, or neither",
                )),
            };

        Ok(Config {
            board_id,
            targets: over.targets.or(file.targets),
            sheet: over.sheet.or(file.sheet),
            listen,
            state_dir,
            admin_token,
            probe,
            store,
            sheet_limits,
            mongo,
            leds,
            alerts,
            allowed_hosts,
            tls,
        })
    }
}

/// `[probe]` under the flags, over the defaults, every value checked.
fn resolve_probe(over: ProbeSection, p: ProbeSection) -> Result<ProbeSettings, ConfigError> {
    let defaults = ProbeSettings::default();
    let duration = |key: &'static str, flag: Option<String>, file: Option<String>, default| {
        match flag.or(file) {
            Some(text) => parse_duration(&text).map_err(|m| invalid(key, m)),
            None => Ok(default),
        }
    };
    let probe = ProbeSettings {
        interval: duration("interval", over.interval, p.interval, defaults.interval)?,
        count: over.count.or(p.count).unwrap_or(defaults.count),
        timeout: duration("timeout", over.timeout, p.timeout, defaults.timeout)?,
        rate: over.rate.or(p.rate).unwrap_or(defaults.rate),
        degraded_loss: over
            .degraded_loss
            .or(p.degraded_loss)
            .unwrap_or(defaults.degraded_loss),
        down_after: over
            .down_after
            .or(p.down_after)
            .unwrap_or(defaults.down_after),
        up_after: over.up_after.or(p.up_after).unwrap_or(defaults.up_after),
        trace_every: duration(
            "trace_every",
            over.trace_every,
            p.trace_every,
            defaults.trace_every,
        )?,
        max_hops: over.max_hops.or(p.max_hops).unwrap_or(defaults.max_hops),
    };
    check_probe(&probe)?;
    Ok(probe)
}

/// The dashboard's address, [`DEFAULT_LISTEN`] unless set.
fn resolve_listen(text: Option<String>) -> Result<SocketAddr, ConfigError> {
    let text = text.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    text.parse().map_err(|_| {
        invalid(
            "listen",
            format!(
                "{text:?} is not an address and port; write e.g. 0.0.0.0:8080, 127.0.0.1:8080 or [::]:8080"
            ),
        )
    })
}

/// `[store]`: how long and how much history the board keeps.
fn resolve_store(
    retention: Option<String>,
    max_size_mb: Option<u64>,
) -> Result<StoreSettings, ConfigError> {
    let mut store = StoreSettings::default();
    if let Some(text) = retention {
        store.retention = parse_duration(&text).map_err(|m| invalid("retention", m))?;
        if store.retention < Duration::from_secs(3600) {
            return Err(invalid("retention", "keep at least 1h of history"));
        }
    }
    if let Some(mb) = max_size_mb {
        if mb < 1 {
            return Err(invalid("max_size_mb", "the store needs at least 1 MB"));
        }
        store.max_bytes = mb.saturating_mul(1024 * 1024);
    }
    Ok(store)
}

/// Check `[limits]`; unset keys keep [`SheetLimits::default`].
fn resolve_limits(section: &LimitsSection) -> Result<SheetLimits, ConfigError> {
    const MB: u64 = 1024 * 1024;
    let mut limits = SheetLimits::default();
    if let Some(mb) = section.sheet_max_mb {
        // The workbook reader works within 384 MiB; a sheet near that is
        // not a target list.
        if !(1..=64).contains(&mb) {
            return Err(invalid("sheet_max_mb", "allowed: 1 to 64 (MB)"));
        }
        limits.max_file_bytes = mb * MB;
    }
    if let Some(rows) = section.sheet_max_rows {
        if !(1..=1_000_000).contains(&rows) {
            return Err(invalid("sheet_max_rows", "allowed: 1 to 1000000"));
        }
        limits.max_rows = rows;
    }
    if let Some(mb) = section.sheet_max_unzipped_mb {
        if !(1..=256).contains(&mb) {
            return Err(invalid("sheet_max_unzipped_mb", "allowed: 1 to 256 (MB)"));
        }
        limits.max_unzipped_bytes = mb * MB;
    }
    Ok(limits)
}

/// The upstream from the flags and the `[mongo]` section; a URI from a
/// flag or its file wins over the config file's.
fn resolve_mongo(
    section: MongoSection,
    flag_uri: Option<String>,
    flag_uri_file: Option<PathBuf>,
) -> Result<Option<MongoSettings>, ConfigError> {
    let uri = match (flag_uri, flag_uri_file) {
        (Some(u), _) => Some(u),
        (None, Some(path)) => Some(read_secret_file("mongo.uri_file", &path)?),
        (None, None) => match (section.uri, section.uri_file) {
            (Some(u), _) => Some(u.0),
            (None, Some(path)) => Some(read_secret_file("mongo.uri_file", &path)?),
            (None, None) => None,
        },
    };
    let Some(uri) = uri.map(|u| u.trim().to_string()) else {
        if section.tls_ca_file.is_some() || section.tls_certificate_key_file.is_some() {
            return Err(invalid(
                "mongo",
                "TLS files are set but no uri; set [mongo] uri (or uri_file, or --mongo-uri)",
            ));
        }
        return Ok(None);
    };
    if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
        return Err(invalid(
            "mongo.uri",
            "must start with mongodb:// or mongodb+srv://, e.g. mongodb://db.example.net:27017",
        ));
    }
    let mut options = Vec::new();
    for (key, file) in [
        ("tlsCAFile", &section.tls_ca_file),
        ("tlsCertificateKeyFile", &section.tls_certificate_key_file),
    ] {
        if let Some(path) = file {
            if !path.is_file() {
                return Err(invalid(
                    "mongo",
                    format!("{key} {} is not a readable file", path.display()),
                ));
            }
            options.push(format!("{key}={}", uri_escape(&path.display().to_string())));
        }
    }
    let uri = if options.is_empty() {
        uri
    } else {
        options.insert(0, "tls=true".into());
        with_query(&uri, &options.join("&"))
    };
    let database = section
        .database
        .unwrap_or_else(|| crate::fleet::DEFAULT_DATABASE.to_string());
    if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$']) {
        return Err(invalid(
            "mongo.database",
            format!("{database:?} is not a MongoDB database name"),
        ));
    }
    let batch = section.batch.unwrap_or(crate::fleet::DEFAULT_BATCH);
    if !(1..=10_000).contains(&batch) {
        return Err(invalid("mongo.batch", "must be between 1 and 10000"));
    }
    Ok(Some(MongoSettings {
        uri,
        database,
        batch,
    }))
}

/// Percent-encode what would end or split a URI query value.
fn uri_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `uri` with `extra` options appended to its query string.
fn with_query(uri: &str, extra: &str) -> String {
    let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
    // A URI without a path needs the `/` before the `?`.
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    let base = if after_scheme.contains('/') {
        base.to_string()
    } else {
        format!("{base}/")
    };
    if query.is_empty() {
        format!("{base}?{extra}")
    } else {
        format!("{base}?{query}&{extra}")
    }
}

fn check_probe(p: &ProbeSettings) -> Result<(), ConfigError> {
    if p.interval < Duration::from_secs(1) {
        return Err(invalid("interval", "must be at least 1s"));
    }
    if !(1..=100).contains(&p.count) {
        return Err(invalid("count", "must be between 1 and 100 echo requests"));
    }
    if p.timeout.is_zero() || p.timeout > Duration::from_secs(60) {
        return Err(invalid("timeout", "must be between 1ms and 60s"));
    }
    if p.timeout >= p.interval {
        return Err(invalid(
            "timeout",
            format!(
                "{} is not shorter than the interval ({}); a round must be able to finish before the next one",
                format_duration(p.timeout),
                format_duration(p.interval)
            ),
        ));
    }
    if !(0.0..=1.0).contains(&p.degraded_loss) || p.degraded_loss.is_nan() {
        return Err(invalid(
            "degraded_loss",
            "is a fraction between 0 and 1, e.g. 0.2 for 20% loss",
        ));
    }
    if p.down_after == 0 || p.down_after > 1000 {
        return Err(invalid("down_after", "must be between 1 and 1000 rounds"));
    }
    if p.up_after == 0 || p.up_after > 1000 {
        return Err(invalid("up_after", "must be between 1 and 1000 rounds"));
    }
    if p.max_hops == 0 {
        return Err(invalid("max_hops", "must be between 1 and 255"));
    }
    Ok(())
}

/// `[web] allowed_hosts`, each a plain host name, then the machine's
/// host name.
fn resolve_allowed_hosts(
    names: Option<Vec<String>>,
    hostname: Option<&str>,
) -> Result<Vec<String>, ConfigError> {
    let mut names = names.unwrap_or_default();
    for name in &names {
        let plain = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
        if !plain {
            return Err(invalid(
                "web.allowed_hosts",
                format!(
                    "{name:?} is not a host name: write names only (e.g. \"closet-3.example.net\"), \
                     without a port or scheme; the board's addresses are always allowed"
                ),
            ));
        }
    }
    names.extend(hostname.map(str::to_string));
    Ok(names)
}

fn check_board_id(id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "board_id",
            format!("{id:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
        ))
    }
}

fn check_token(token: &str) -> Result<(), ConfigError> {
    if token.len() < 16 {
        return Err(invalid(
            "admin_token",
            "is shorter than 16 characters; use a long random one, e.g. from `head -c 24 /dev/urandom | base64`",
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "admin_token",
            "contains spaces or control characters; it travels in an HTTP header",
        ));
    }
    Ok(())
}

/// A secret kept in a file of its own, trimmed; empty is an error.
fn read_secret_file(key: &'static str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(invalid(key, format!("{} is empty", path.display())));
    }
    Ok(secret)
}

fn read_token_file(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::TokenFile {
        path: path.display().to_string(),
        source,
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(invalid(
            "admin_token_file",
            format!("{} is empty", path.display()),
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The machine the tests pretend to run on.
    pub(super) fn env() -> Environment {
        Environment {
            hostname: Some("closet-3".into()),
            systemd_state_dir: None,
            is_root: false,
        }
    }

    #[test]
    fn runs_with_no_config_at_all() {
        let c = Config::resolve(FileConfig::default(), Overrides::default(), &env()).unwrap();
        assert_eq!(c.board_id, "closet-3");
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.probe, ProbeSettings::default());
        assert_eq!(c.state_dir, PathBuf::from("edgeprobe-state"));
        assert_eq!(c.admin_token, None);
        assert_eq!(c.targets, None);
    }

    #[test]
    fn root_and_systemd_pick_their_state_directories() {
        let mut e = env();
        e.is_root = true;
        let c = Config::resolve(FileConfig::default(), Overrides::default(), &e).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/edgeprobe"));
        e.systemd_state_dir = Some("/var/lib/edgeprobe-sd".into());
        let c = Config::resolve(FileConfig::default(), Overrides::default(), &e).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/edgeprobe-sd"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = FileConfig::parse(
            "edgeprobe.toml",
            "board_id = \"from-file\"\nlisten = \"127.0.0.1:9000\"\n[probe]\ninterval = \"30s\"\ncount = 5\n",
        )
        .unwrap();
        let over = Overrides {
            probe: ProbeSection {
                interval: Some("5s".into()),
                ..ProbeSection::default()
            },
            board_id: Some("from-flag".into()),
            ..Overrides::default()
        };
        let c = Config::resolve(file, over, &env()).unwrap();
        assert_eq!(c.board_id, "from-flag");
        assert_eq!(c.probe.interval, Duration::from_secs(5));
        assert_eq!(c.probe.count, 5);
        assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
    }

    #[test]
    fn sheet_limits_come_from_the_limits_section() {
        let c = Config::resolve(FileConfig::default(), Overrides::default(), &env()).unwrap();
        assert_eq!(c.sheet_limits, SheetLimits::default());
        let file = FileConfig::parse(
            "edgeprobe.toml",
            "[limits]\nsheet_max_mb = 2\nsheet_max_rows = 500\nsheet_max_unzipped_mb = 10\n",
        )
        .unwrap();
        let c = Config::resolve(file, Overrides::default(), &env()).unwrap();
        assert_eq!(
            c.sheet_limits,
            SheetLimits {
                max_file_bytes: 2 << 20,
                max_rows: 500,
                max_unzipped_bytes: 10 << 20,
            }
        );
        for (text, key) in [
            ("sheet_max_mb = 0", "sheet_max_mb"),
            ("sheet_max_rows = 0", "sheet_max_rows"),
            ("sheet_max_unzipped_mb = 300", "sheet_max_unzipped_mb"),
        ] {
            let file = FileConfig::parse("edgeprobe.toml", &format!("[limits]\n{text}\n")).unwrap();
            let e = Config::resolve(file, Overrides::default(), &env()).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
        // The example config documents the section, and parses.
        let example = include_str!("../../board/edgeprobe.toml");
        assert!(example.contains("[limits]") && example.contains("# sheet_max_rows = 100000"));
        FileConfig::parse("edgeprobe.toml", example).unwrap();
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = FileConfig::parse("edgeprobe.toml", "[probe]\nintervall = \"5s\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("edgeprobe.toml"), "{msg}");
        assert!(msg.contains("intervall"), "{msg}");
        let e = FileConfig::parse("edgeprobe.toml", "colour = \"red\"\n").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn wrong_types_are_explained() {
        let e = FileConfig::parse("c.toml", "[probe]\ncount = \"three\"\n").unwrap_err();
        assert!(e.to_string().contains("count"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        // Each case sets one flag to a bad value.
        let with = |set: fn(&mut Overrides)| {
            let mut over = Overrides::default();
            set(&mut over);
            over
        };
        let cases: Vec<(Overrides, &str)> = vec![
            (
                with(|o| o.probe.interval = Some("5 parsecs".into())),
                "interval",
            ),
            (
                with(|o| o.probe.interval = Some("500ms".into())),
                "interval",
            ),
            (with(|o| o.probe.timeout = Some("2m".into())), "timeout"),
            (with(|o| o.probe.count = Some(0)), "count"),
            (with(|o| o.probe.degraded_loss = Some(1.5)), "degraded_loss"),
            (with(|o| o.probe.down_after = Some(0)), "down_after"),
            (with(|o| o.listen = Some("8080".into())), "listen"),
            (with(|o| o.board_id = Some("a b".into())), "board_id"),
            (with(|o| o.store.max_size_mb = Some(0)), "max_size_mb"),
        ];
        for (over, key) in cases {
            let e = Config::resolve(FileConfig::default(), over, &env()).unwrap_err();
            assert!(e.to_string().starts_with(key), "{key}: {e}");
        }
    }

    #[test]
    fn debug_output_hides_the_admin_token_and_the_mongo_uri() {
        let text = r#"
            board_id = "closet-3"
            admin_token = "inline-token-0123456789"
            [mongo]
            uri = "mongodb://probe:pa55word@127.0.0.1:27017/"
        "#;
        let file = FileConfig::parse("edgeprobe.toml", text).unwrap();
        let printed = format!("{file:?}");
        let config = Config::resolve(file, Overrides::default(), &env()).unwrap();
        let printed = format!("{printed} {config:?}");
        assert!(!printed.contains("inline-token"), "{printed}");
        assert!(!printed.contains("pa55word"), "{printed}");
        assert!(printed.contains("(hidden)"), "{printed}");
    }

    #[test]
    fn the_admin_token_comes_from_a_file_and_must_be_long() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  0123456789abcdef0123\n").unwrap();
        let over = Overrides {
            admin_token_file: Some(path.clone()),
            ..Default::default()
        };
        let c = Config::resolve(FileConfig::default(), over.clone(), &env()).unwrap();
        assert_eq!(c.admin_token, Some(Secret("0123456789abcdef0123".into())));

        std::fs::write(&path, "short").unwrap();
        let e = Config::resolve(FileConfig::default(), over, &env()).unwrap_err();
        assert!(e.to_string().contains("16 characters"), "{e}");

        let missing = Overrides {
            admin_token_file: Some(dir.path().join("nope")),
            ..Default::default()
        };
        let e = Config::resolve(FileConfig::default(), missing, &env()).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn mongo_comes_from_a_flag_a_file_or_the_config() {
        let c = Config::resolve(FileConfig::default(), Overrides::default(), &env()).unwrap();
        assert_eq!(c.mongo, None);

        let text = "board_id = \"closet-3\"\n[mongo]\nuri = \"mongodb://db.example.net:27017\"\ndatabase = \"fleet\"\n";
        let c = Config::resolve(
            FileConfig::parse("c.toml", text).unwrap(),
            Overrides::default(),
            &env(),
        )
        .unwrap();
        let m = c.mongo.unwrap();
        assert_eq!(m.uri, "mongodb://db.example.net:27017");
        assert_eq!(m.database, "fleet");
        assert_eq!(m.batch, 500);
        assert!(!format!("{m:?}").contains("example"), "Debug hides the URI");

        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("uri");
        std::fs::write(&secret, "mongodb://u:p@db.example.net/\n").unwrap();
        let over = Overrides {
            mongo_uri_file: Some(secret),
            board_id: Some("closet-3".into()),
            ..Overrides::default()
        };
        let c = Config::resolve(FileConfig::default(), over.clone(), &env()).unwrap();
        assert_eq!(c.mongo.unwrap().uri, "mongodb://u:p@db.example.net/");

        // The host name is not enough of a name upstream.
        let unnamed = Overrides {
            board_id: None,
            ..over
        };
        let e = Config::resolve(FileConfig::default(), unnamed, &env()).unwrap_err();
        assert!(e.to_string().starts_with("board_id"), "{e}");
    }

    #[test]
    fn tls_files_are_passed_to_the_driver_in_the_uri() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let text = format!(
            "board_id = \"b\"\n[mongo]\nuri = \"mongodb://db.example.net:27017/?replicaSet=rs0\"\ntls_ca_file = {:?}\n",
            ca.display().to_string()
        );
        let file = FileConfig::parse("c.toml", &text).unwrap();
        let uri = Config::resolve(file, Overrides::default(), &env())
            .unwrap()
            .mongo
            .unwrap()
            .uri;
        assert_eq!(
            uri,
            format!(
                "mongodb://db.example.net:27017/?replicaSet=rs0&tls=true&tlsCAFile={}",
                ca.display()
            )
        );
        assert_eq!(
            with_query("mongodb://h:1", "tls=true"),
            "mongodb://h:1/?tls=true"
        );
        assert_eq!(uri_escape("/etc/my ca&x.pem"), "/etc/my%20ca%26x.pem");
    }

    #[test]
    fn a_bad_mongo_setting_says_which() {
        let over = Overrides {
            mongo_uri: Some("http://db.example.net".into()),
            ..Overrides::default()
        };
        let e = Config::resolve(FileConfig::default(), over, &env()).unwrap_err();
        assert!(e.to_string().starts_with("mongo.uri"), "{e}");
        let file =
            FileConfig::parse("c.toml", "[mongo]\ntls_ca_file = \"/nonexistent\"\n").unwrap();
        let e = Config::resolve(file, Overrides::default(), &env()).unwrap_err();
        assert!(e.to_string().contains("no uri"), "{e}");
        let e = FileConfig::parse("c.toml", "[mongo]\nurl = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("url"), "{e}");
    }

    #[test]
    fn allowed_hosts_are_plain_names_and_the_host_name_is_added() {
        let names =
            resolve_allowed_hosts(Some(vec!["closet-3.example.net".into()]), Some("closet-3"))
                .expect("valid");
        assert_eq!(names, ["closet-3.example.net", "closet-3"]);
        for bad in ["closet:8080", "http://closet", "", "a b"] {
            let e = resolve_allowed_hosts(Some(vec![bad.into()]), None).expect_err(bad);
            let text = e.to_string();
            assert!(
                text.contains("web.allowed_hosts") && text.contains("without a port"),
                "{text}"
            );
        }
    }
}
