//! Delivering one message by e-mail: the SMTP edge, through lettre on
//! rustls. One transport a channel, made once: plain, STARTTLS or TLS from
//! the first byte, the system's roots plus the channel's `ca_file`, and an
//! optional login; every send under [`DELIVERY_TIMEOUT`].
//!
//! A permanent SMTP answer (5xx: a recipient refused, a login rejected)
//! is [`Delivery::Refused`]; a transient one or no connection is
//! [`Delivery::Failed`], tried again later.

use std::path::Path;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::deliver::{Delivery, DELIVERY_TIMEOUT};
use super::settings::{Secret, SmtpTls};

/// An SMTP server and the envelope of every message sent through it.
pub struct SmtpTarget {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
}

/// The settings of one `[[alerts.email]]`.
pub struct SmtpSettings<'a> {
    /// `host:port`.
    pub smtp: &'a str,
    pub tls: SmtpTls,
    pub login: Option<(&'a str, &'a Secret)>,
    pub from: &'a str,
    pub to: &'a [String],
    pub ca_file: Option<&'a Path>,
}

impl SmtpTarget {
    pub fn new(s: &SmtpSettings<'_>) -> Result<SmtpTarget, String> {
        let (host, port) = s
            .smtp
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("{:?} is not host:port", s.smtp))?;
        let mailbox = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("{a:?} is not an e-mail address: {e}"))
        };
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters(host, s.ca_file)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(host, s.ca_file)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(DELIVERY_TIMEOUT));
        if let Some((user, password)) = s.login {
            builder = builder.credentials(Credentials::new(user.to_string(), password.0.clone()));
        }
        Ok(SmtpTarget {
            transport: builder.build(),
            server: s.smtp.to_string(),
            from: mailbox(s.from)?,
            to: s.to.iter().map(|a| mailbox(a)).collect::<Result<_, _>>()?,
        })
    }

    /// Send one message as plain text.
    pub async fn send(&self, subject: &str, text: &str) -> Delivery {
        let mut message = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = match message.body(text.to_string()) {
            Ok(m) => m,
            Err(e) => {
                return Delivery::Failed(format!(
                    "{}: the mail could not be written ({e}); check from and to",
                    self.server
                ))
            }
        };
        match tokio::time::timeout(DELIVERY_TIMEOUT, self.transport.send(message)).await {
            Err(_) => Delivery::Failed(format!(
                "{}: no answer within {}s",
                self.server,
                DELIVERY_TIMEOUT.as_secs()
            )),
            Ok(Ok(_)) => Delivery::Delivered,
            Ok(Err(e)) if e.is_permanent() => Delivery::Refused {
                status: e.status().map_or(0, u16::from),
                answer: format!("{}: {e}", self.server),
            },
            Ok(Err(e)) => Delivery::Failed(format!("{}: {e}", self.server)),
        }
    }
}

fn tls_parameters(host: &str, ca_file: Option<&Path>) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|e| e.to_string())
}
