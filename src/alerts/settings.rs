//! Where alerts go and when: the checked settings the rest of edgeprobe
//! uses. The `[alerts]` TOML section that produces them is read in
//! `config::alerts`; secrets (header values, tokens, passwords) have been
//! read from their files by then, and are never printed.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::rules::AlertRules;

/// Every alert setting of a board (or of central).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertSettings {
    pub rules: AlertRules,
    /// A message not delivered after this long is given up, counted and
    /// shown.
    pub give_up_after: Duration,
    /// In the order the config lists them.
    pub channels: Vec<Channel>,
}

/// How a webhook's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// edgeprobe's own JSON document (see the README).
    Json,
    /// A Slack incoming webhook's `{"text": ...}`.
    Slack,
    /// A Discord webhook's `{"content": ...}`.
    Discord,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a relay on the board or on loopback).
    None,
    /// Plain, then STARTTLS before anything is sent.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

pub use crate::http::secret::Secret;

/// One place alerts are sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    Webhook {
        url: Url,
        format: WebhookFormat,
        /// Extra request headers, e.g. an `Authorization`.
        headers: Vec<(String, Secret)>,
        ca_file: Option<PathBuf>,
    },
    Ntfy {
        /// The server and topic.
        url: Url,
        token: Option<Secret>,
        ca_file: Option<PathBuf>,
    },
    Email {
        /// `host:port`.
        smtp: String,
        tls: SmtpTls,
        user: Option<String>,
        password: Option<Secret>,
        from: String,
        to: Vec<String>,
        ca_file: Option<PathBuf>,
    },
    Alertmanager {
        /// The server; alerts go to `/api/v2/alerts` under it.
        url: Url,
        ca_file: Option<PathBuf>,
    },
}

impl Channel {
    /// How the dashboard and the metrics name it: `webhook 127.0.0.1:9000`,
    /// `email noc@example.org`. Never a secret, never a URL's path or query
    /// (a webhook's path is often its secret).
    pub fn label(&self) -> String {
        let host = |url: &Url| match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        match self {
            Channel::Webhook { url, .. } => format!("webhook {}", host(url)),
            Channel::Ntfy { url, .. } => format!("ntfy {}", host(url)),
            Channel::Email { to, .. } => format!("email {}", to.join(", ")),
            Channel::Alertmanager { url, .. } => format!("alertmanager {}", host(url)),
        }
    }
}
