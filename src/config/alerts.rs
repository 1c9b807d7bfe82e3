//! `[alerts]`: the TOML section that says when alerts go out and through
//! which channels, checked into the alert module's own settings. Every
//! mistake names its key; secrets are read from their files here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{invalid, parse_duration, read_secret_file, ConfigError};
use crate::alerts::settings::{AlertSettings, Channel, Secret, SmtpTls, WebhookFormat};
use crate::alerts::AlertRules;

/// `[alerts]` as written.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// Send again while still firing (default `4h`; `0` never).
    pub repeat: Option<String>,
    /// Alert on Degraded too (default off).
    pub degraded: Option<bool>,
    /// Say when a router on a path changes (default off).
    pub path_change: Option<bool>,
    /// Alert when the upstream is unreachable this long (default `15m`;
    /// `0` never).
    pub upstream_after: Option<String>,
    /// Send resolved messages (default on).
    pub send_resolved: Option<bool>,
    /// Give a message up after this long undelivered (default `24h`).
    pub give_up_after: Option<String>,
    pub webhook: Vec<WebhookSection>,
    pub ntfy: Vec<NtfySection>,
    pub email: Vec<EmailSection>,
    pub alertmanager: Vec<AlertmanagerSection>,
}

/// `[[alerts.webhook]]`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    pub url: String,
    #[serde(default)]
    pub format: FormatName,
    /// A file of `Name: value` lines sent as request headers.
    pub headers_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
}

/// `format` of a webhook.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    #[default]
    Json,
    Slack,
    Discord,
}

/// `[[alerts.ntfy]]`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NtfySection {
    /// The server and the topic: `http://127.0.0.1:9001/closet`.
    pub url: String,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
}

/// `[[alerts.email]]`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// `host:port` of the SMTP server.
    pub smtp: String,
    #[serde(default)]
    pub tls: TlsName,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
    pub ca_file: Option<PathBuf>,
}

/// `tls` of an e-mail channel.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsName {
    #[default]
    None,
    Starttls,
    Tls,
}

/// `[[alerts.alertmanager]]`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSection {
    pub url: String,
    pub ca_file: Option<PathBuf>,
}

/// Whether `host:port` names this machine (a local relay).
fn is_loopback_host(host_port: &str) -> bool {
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How long a message may wait before it is given up, unless set.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Check `[alerts]` and read the secrets it names.
pub fn resolve_alerts(section: AlertsSection) -> Result<AlertSettings, ConfigError> {
    let defaults = AlertRules::default();
    let rules = AlertRules {
        degraded: section.degraded.unwrap_or(defaults.degraded),
        path_change: section.path_change.unwrap_or(defaults.path_change),
        upstream_after: match section.upstream_after {
            Some(text) => every("alerts.upstream_after", &text)?,
            None => defaults.upstream_after,
        },
        repeat: match section.repeat {
            Some(text) => every("alerts.repeat", &text)?,
            None => defaults.repeat,
        },
        send_resolved: section.send_resolved.unwrap_or(defaults.send_resolved),
    };
    let give_up_after = match section.give_up_after {
        Some(text) => {
            let d = parse_duration(&text).map_err(|m| invalid("alerts.give_up_after", m))?;
            if d < Duration::from_secs(60) {
                return Err(invalid(
                    "alerts.give_up_after",
                    "give a message at least 1m to arrive",
                ));
            }
            d
        }
        None => DEFAULT_GIVE_UP_AFTER,
    };
    let mut channels = Vec::new();
    for w in section.webhook {
        channels.push(Channel::Webhook {
            url: http_url("alerts.webhook.url", &w.url)?,
            format: match w.format {
                FormatName::Json => WebhookFormat::Json,
                FormatName::Slack => WebhookFormat::Slack,
                FormatName::Discord => WebhookFormat::Discord,
            },
            headers: match &w.headers_file {
                Some(path) => read_headers(path)?,
                None => Vec::new(),
            },
            ca_file: readable("alerts.webhook.ca_file", w.ca_file)?,
        });
    }
    for n in section.ntfy {
        let url = http_url("alerts.ntfy.url", &n.url)?;
        if url.path().trim_matches('/').is_empty() {
            return Err(invalid(
                "alerts.ntfy.url",
                format!("{} has no topic; write the server and the topic, e.g. http://127.0.0.1:9001/closet", n.url),
            ));
        }
        channels.push(Channel::Ntfy {
            url,
            token: secret("alerts.ntfy.token_file", n.token_file.as_deref())?,
            ca_file: readable("alerts.ntfy.ca_file", n.ca_file)?,
        });
    }
    for e in section.email {
        channels.push(email(e)?);
    }
    for a in section.alertmanager {
        channels.push(Channel::Alertmanager {
            url: http_url("alerts.alertmanager.url", &a.url)?,
            ca_file: readable("alerts.alertmanager.ca_file", a.ca_file)?,
        });
    }
    // The label is how the queue, the counters and the pages know a
    // channel: two with one label would take each other's messages.
    for (i, c) in channels.iter().enumerate() {
        if channels[..i].iter().any(|d| d.label() == c.label()) {
            return Err(invalid(
                "alerts",
                format!(
                    "two channels are both \"{}\" (same kind, host and port, or same first \
                     recipient); edgeprobe tells channels apart by that, so keep one of them",
                    c.label()
                ),
            ));
        }
    }
    Ok(AlertSettings {
        rules,
        give_up_after,
        channels,
    })
}

/// A duration where `0` means never.
fn every(key: &'static str, text: &str) -> Result<Option<Duration>, ConfigError> {
    if text.trim() == "0" {
        return Ok(None);
    }
    let d = parse_duration(text).map_err(|m| invalid(key, m))?;
    Ok((!d.is_zero()).then_some(d))
}

/// An `http://` or `https://` URL with a host.
fn http_url(key: &'static str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| {
        invalid(
            key,
            format!("{text:?} is not a URL ({e}); write e.g. http://127.0.0.1:9000/hook"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            key,
            format!("{text:?} is not an http:// or https:// URL with a host"),
        ));
    }
    Ok(url)
}

fn secret(key: &'static str, path: Option<&Path>) -> Result<Option<Secret>, ConfigError> {
    path.map(|p| read_secret_file(key, p).map(Secret))
        .transpose()
}

/// A CA file that exists (it is read when the channel first connects).
fn readable(key: &'static str, path: Option<PathBuf>) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = &path {
        std::fs::metadata(p)
            .map_err(|e| invalid(key, format!("cannot read {}: {e}", p.display())))?;
    }
    Ok(path)
}

/// `Name: value` lines; blank lines and `#` comments are skipped.
fn read_headers(path: &Path) -> Result<Vec<(String, Secret)>, ConfigError> {
    const KEY: &str = "alerts.webhook.headers_file";
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(KEY, format!("cannot read {}: {e}", path.display())))?;
    let mut headers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(
                KEY,
                format!("{} line {}: write `Name: value`", path.display(), n + 1),
            ));
        };
        let name = name.trim();
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(invalid(
                KEY,
                format!(
                    "{} line {}: {name:?} is not a header name",
                    path.display(),
                    n + 1
                ),
            ));
        }
        headers.push((name.to_string(), Secret(value.trim().to_string())));
    }
    Ok(headers)
}

fn email(e: EmailSection) -> Result<Channel, ConfigError> {
    let port_ok = e
        .smtp
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        return Err(invalid(
            "alerts.email.smtp",
            format!("{:?} is not host:port; write e.g. 127.0.0.1:25", e.smtp),
        ));
    }
    let address = |key: &'static str, a: &str| {
        let ok = a
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty())
            && !a.contains(char::is_whitespace);
        if ok {
            Ok(())
        } else {
            Err(invalid(key, format!("{a:?} is not an e-mail address")))
        }
    };
    address("alerts.email.from", &e.from)?;
    if e.to.is_empty() {
        return Err(invalid("alerts.email.to", "list at least one recipient"));
    }
    for to in &e.to {
        address("alerts.email.to", to)?;
    }
    let password = secret("alerts.email.password_file", e.password_file.as_deref())?;
    if e.user.is_some() != password.is_some() {
        return Err(invalid(
            "alerts.email.user",
            "user and password_file go together; set both or neither",
        ));
    }
    if password.is_some() && e.tls == TlsName::None && !is_loopback_host(&e.smtp) {
        return Err(invalid(
            "alerts.email.tls",
            "a password is never sent unencrypted across the network; set tls = \"starttls\" \
             or \"tls\" (plain SMTP with a login is allowed to a relay on this board only)",
        ));
    }
    Ok(Channel::Email {
        smtp: e.smtp,
        tls: match e.tls {
            TlsName::None => SmtpTls::None,
            TlsName::Starttls => SmtpTls::StartTls,
            TlsName::Tls => SmtpTls::Tls,
        },
        user: e.user,
        password,
        from: e.from,
        to: e.to,
        ca_file: readable("alerts.email.ca_file", e.ca_file)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    fn alerts(text: &str) -> Result<AlertSettings, ConfigError> {
        resolve_alerts(FileConfig::parse("c.toml", text)?.alerts)
    }

    /// The example config's `[alerts]` block with its settings
    /// uncommented, but the ones naming files (which do not exist here)
    /// and `user`, which needs its password file.
    fn example_alerts() -> String {
        let example = include_str!("../../board/edgeprobe.toml");
        let start = example
            .find("# [alerts]\n")
            .expect("the example has [alerts]");
        let end = start + example[start..].find("\n[leds]").expect("then [leds]");
        example[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                let key = l.split_once(" = ").map(|(k, _)| k);
                l.starts_with('[')
                    || key.is_some_and(|k| {
                        k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                            && !k.ends_with("_file")
                            && k != "user"
                    })
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn the_example_config_has_every_channel_and_each_is_valid() {
        let a = alerts(&example_alerts()).unwrap();
        let labels: Vec<String> = a.channels.iter().map(Channel::label).collect();
        assert_eq!(labels.len(), 4, "{labels:?}");
        for kind in ["webhook", "ntfy", "email", "alertmanager"] {
            assert!(
                labels.iter().any(|l| l.starts_with(kind)),
                "{kind}: {labels:?}"
            );
        }
        assert_eq!(a.rules, AlertRules::default(), "it shows the defaults");
    }

    #[test]
    fn no_section_is_no_channel_with_the_default_rules() {
        let a = alerts("").unwrap();
        assert!(a.channels.is_empty());
        assert_eq!(a.rules, AlertRules::default());
        assert_eq!(a.give_up_after, DEFAULT_GIVE_UP_AFTER);
    }

    #[test]
    fn every_channel_of_the_example_reads() {
        let dir = tempfile::tempdir().unwrap();
        let headers = dir.path().join("hook-headers");
        std::fs::write(
            &headers,
            "# for the hook\nAuthorization: Bearer s3cret\n\nX-Board: closet-3\n",
        )
        .unwrap();
        let password = dir.path().join("smtp-password");
        std::fs::write(&password, "hunter2\n").unwrap();
        let token = dir.path().join("ntfy-token");
        std::fs::write(&token, "tk_n0tshown\n").unwrap();
        let text = format!(
            "[alerts]\nrepeat = \"0\"\ndegraded = true\n\
             [[alerts.webhook]]\nurl = \"http://127.0.0.1:9000/hook\"\nformat = \"slack\"\nheaders_file = {headers:?}\n\
             [[alerts.ntfy]]\nurl = \"http://127.0.0.1:9001/closet\"\ntoken_file = {token:?}\n\
             [[alerts.email]]\nsmtp = \"127.0.0.1:2525\"\ntls = \"starttls\"\nuser = \"probe\"\npassword_file = {password:?}\n\
             from = \"edgeprobe@closet-3\"\nto = [\"noc@example.org\"]\n\
             [[alerts.alertmanager]]\nurl = \"http://127.0.0.1:9093\"\n"
        );
        let a = alerts(&text).unwrap();
        assert_eq!(a.rules.repeat, None, "0 is never");
        assert!(a.rules.degraded);
        let labels: Vec<String> = a.channels.iter().map(Channel::label).collect();
        assert_eq!(
            labels,
            [
                "webhook 127.0.0.1:9000",
                "ntfy 127.0.0.1:9001",
                "email noc@example.org",
                "alertmanager 127.0.0.1:9093"
            ]
        );
        let Channel::Webhook {
            headers, format, ..
        } = &a.channels[0]
        else {
            panic!("{:?}", a.channels[0]);
        };
        assert_eq!(*format, WebhookFormat::Slack);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].0, "Authorization");
        assert_eq!(headers[0].1 .0, "Bearer s3cret");
        let shown = format!("{:?}", a.channels);
        assert!(
            !shown.contains("s3cret")
                && !shown.contains("hunter2")
                && !shown.contains("tk_n0tshown"),
            "{shown}"
        );
    }

    #[test]
    fn mistakes_name_their_key() {
        let cases = [
            ("[alerts]\nrepeat = \"often\"\n", "alerts.repeat"),
            ("[[alerts.webhook]]\nurl = \"127.0.0.1:9000\"\n", "alerts.webhook.url"),
            ("[[alerts.webhook]]\nurl = \"ftp://127.0.0.1/\"\n", "alerts.webhook.url"),
            ("[[alerts.ntfy]]\nurl = \"http://127.0.0.1:9001/\"\n", "alerts.ntfy.url"),
            (
                "[[alerts.ntfy]]\nurl = \"http://127.0.0.1:9001/t\"\ntoken_file = \"/nonexistent/token\"\n",
                "alerts.ntfy.token_file",
            ),
            (
                "[[alerts.email]]\nsmtp = \"127.0.0.1\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
                "alerts.email.smtp",
            ),
            (
                "[[alerts.email]]\nsmtp = \"127.0.0.1:25\"\nfrom = \"a@b\"\nto = []\n",
                "alerts.email.to",
            ),
            (
                "[[alerts.email]]\nsmtp = \"127.0.0.1:25\"\nfrom = \"nobody\"\nto = [\"c@d\"]\n",
                "alerts.email.from",
            ),
            (
                "[[alerts.email]]\nsmtp = \"127.0.0.1:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\nuser = \"u\"\n",
                "alerts.email.user",
            ),
            (
                "[[alerts.alertmanager]]\nurl = \"http://127.0.0.1:9093\"\nca_file = \"/nonexistent/ca.pem\"\n",
                "alerts.alertmanager.ca_file",
            ),
            ("[alerts]\ngive_up_after = \"5s\"\n", "alerts.give_up_after"),
            (
                "[[alerts.webhook]]\nurl = \"http://127.0.0.1:9000/a\"\n\
                 [[alerts.webhook]]\nurl = \"http://127.0.0.1:9000/b\"\n",
                "alerts: two channels are both \"webhook 127.0.0.1:9000\"",
            ),
        ];
        for (text, key) in cases {
            let e = alerts(text).unwrap_err().to_string();
            assert!(e.starts_with(key), "{text}: {e}");
        }
    }

    #[test]
    fn a_password_goes_unencrypted_only_to_a_relay_on_this_board() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("smtp-password");
        std::fs::write(&password, "hunter2\n").unwrap();
        let with = |smtp: &str, tls: &str| {
            alerts(&format!(
                "[[alerts.email]]\nsmtp = \"{smtp}\"\ntls = \"{tls}\"\nuser = \"probe\"\n\
                 password_file = {password:?}\nfrom = \"a@b\"\nto = [\"c@d\"]\n"
            ))
        };
        let e = with("198.18.0.25:25", "none").unwrap_err().to_string();
        assert!(
            e.starts_with("alerts.email.tls") && e.contains("starttls"),
            "{e}"
        );
        assert!(with("198.18.0.25:587", "starttls").is_ok());
        assert!(with("127.0.0.1:25", "none").is_ok());
        assert!(with("[::1]:25", "none").is_ok());
        assert!(with("localhost:25", "none").is_ok());
    }

    #[test]
    fn unknown_keys_and_formats_are_named_by_the_parser() {
        let e = alerts("[[alerts.webhook]]\nurl = \"http://127.0.0.1:9000/\"\nformat = \"xml\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("xml") && e.contains("slack"), "{e}");
        let e = alerts("[[alerts.webhook]]\nurl = \"http://127.0.0.1:9000/\"\nurll = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("urll"), "{e}");
        // Secrets are read from files only: inline ones are refused.
        for (text, key) in [
            (
                "[[alerts.ntfy]]\nurl = \"http://127.0.0.1:9001/t\"\ntoken = \"tk_x\"\n",
                "token",
            ),
            (
                "[[alerts.email]]\nsmtp = \"127.0.0.1:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\npassword = \"x\"\n",
                "password",
            ),
        ] {
            let e = alerts(text).unwrap_err().to_string();
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
        }
    }

    #[test]
    fn a_bad_headers_file_says_which_line() {
        let dir = tempfile::tempdir().unwrap();
        let headers = dir.path().join("h");
        std::fs::write(&headers, "Authorization: Bearer x\nno colon here\n").unwrap();
        let text = format!(
            "[[alerts.webhook]]\nurl = \"http://127.0.0.1:9000/\"\nheaders_file = {headers:?}\n"
        );
        let e = alerts(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("alerts.webhook.headers_file") && e.contains("line 2"),
            "{e}"
        );
    }
}
