//! Sending what the store queued: one courier a channel, and what to do
//! with a notification after an attempt.
//!
//! [`after_attempt`] is the pure rule: delivered or refused is done (a
//! refusal is counted and shown, never retried), a failure waits with
//! exponential backoff, and a notification older than `give_up_after` is
//! given up. [`send_due`] is one pass over the queue: each channel's
//! notifications go through that channel alone, so a channel that does
//! not answer delays only its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;

use super::deliver::{Delivery, HttpTarget};
use super::email::{SmtpSettings, SmtpTarget};
use super::settings::Channel;
use crate::clock::Timestamp;
use crate::lock::lock;
use crate::store::{PendingNotification, QueuedNotification, Store, StoreError};
use crate::upstream::backoff::Backoff;

/// The first wait after a failed attempt; it doubles up to [`RETRY_CAP`].
pub const RETRY_START: Duration = Duration::from_secs(15);
/// The longest wait between two attempts.
pub const RETRY_CAP: Duration = Duration::from_secs(10 * 60);
/// Notifications read from the queue per pass.
const PASS_SIZE: usize = 64;

/// What becomes of a notification after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Refused by the channel: done, counted and shown with the answer.
    Refused(String),
    /// Older than `give_up_after`: done, counted and shown.
    GivenUp(String),
    /// Tried again at this time.
    RetryAt(Timestamp, String),
}

/// The rule after one attempt at `n`, made at `n.made_at`, at `now`.
pub fn after_attempt(
    delivery: Delivery,
    n: &PendingNotification,
    now: Timestamp,
    give_up_after: Duration,
) -> Next {
    match delivery {
        Delivery::Delivered => Next::Delivered,
        Delivery::Refused { status, answer } => {
            Next::Refused(format!("refused ({status}): {answer}"))
        }
        Delivery::Failed(why) => {
            if now.since(n.notification.made_at) >= give_up_after {
                return Next::GivenUp(why);
            }
            let wait = Backoff::new(RETRY_START, 2, RETRY_CAP).exact(n.attempts + 1);
            Next::RetryAt(now.add(wait), why)
        }
    }
}

/// How one channel is reached.
pub enum Courier {
    Http {
        target: HttpTarget,
        /// Under the channel's URL (Alertmanager's `/api/v2/alerts`).
        path: Option<&'static str>,
    },
    Smtp(SmtpTarget),
}

impl Courier {
    /// The courier of a configured channel.
    pub fn for_channel(channel: &Channel) -> Result<Courier, String> {
        Ok(match channel {
            Channel::Webhook {
                url,
                headers,
                ca_file,
                ..
            } => Courier::Http {
                target: HttpTarget::new(url.clone(), headers, ca_file.as_deref())?,
                path: None,
            },
            Channel::Ntfy {
                url,
                token,
                ca_file,
            } => {
                // ntfy takes JSON at the server's root, the topic inside.
                let mut root = url.clone();
                root.set_path("/");
                let auth: Vec<_> = token
                    .iter()
                    .map(|t| {
                        (
                            "Authorization".to_string(),
                            super::settings::Secret(format!("Bearer {}", t.0)),
                        )
                    })
                    .collect();
                Courier::Http {
                    target: HttpTarget::new(root, &auth, ca_file.as_deref())?,
                    path: None,
                }
            }
            Channel::Alertmanager { url, ca_file } => Courier::Http {
                target: HttpTarget::new(url.clone(), &[], ca_file.as_deref())?,
                path: Some("/api/v2/alerts"),
            },
            Channel::Email {
                smtp,
                tls,
                user,
                password,
                from,
                to,
                ca_file,
            } => Courier::Smtp(SmtpTarget::new(&SmtpSettings {
                smtp,
                tls: *tls,
                login: user.as_deref().zip(password.as_ref()),
                from,
                to,
                ca_file: ca_file.as_deref(),
            })?),
        })
    }

    /// One attempt at `n` (central sends through this too).
    pub async fn deliver(&self, n: &QueuedNotification) -> Delivery {
        match self {
            Courier::Http { target, path } => {
                target.post(*path, &n.content_type, n.body.clone()).await
            }
            Courier::Smtp(target) => {
                target
                    .send(&n.subject, &String::from_utf8_lossy(&n.body))
                    .await
            }
        }
    }
}

/// What one pass did, for the counters and the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub delivered: u64,
    pub refused: Vec<(String, String)>,
    pub given_up: Vec<(String, String)>,
    pub retried: u64,
}

/// Send what is due at `now`: each channel's notifications in order, the
/// channels side by side; a notification whose channel is no longer
/// configured is given up.
pub async fn send_due(
    store: &Arc<Mutex<Store>>,
    couriers: &HashMap<String, Courier>,
    now: Timestamp,
    give_up_after: Duration,
) -> Result<PassReport, StoreError> {
    let due = lock(store).due_notifications(now, PASS_SIZE)?;
    let mut by_channel: HashMap<&str, Vec<&PendingNotification>> = HashMap::new();
    for n in &due {
        by_channel
            .entry(n.notification.channel.as_str())
            .or_default()
            .push(n);
    }
    let passes = by_channel.into_iter().map(|(channel, queue)| async move {
        let mut outcomes = Vec::new();
        for n in queue {
            let next = match couriers.get(channel) {
                None => Next::GivenUp(format!("{channel} is no longer configured")),
                Some(c) => after_attempt(c.deliver(&n.notification).await, n, now, give_up_after),
            };
            // In order: a channel that fails now is not asked again for its
            // later notifications in this pass.
            let failed = matches!(next, Next::RetryAt(..));
            outcomes.push((n, next));
            if failed {
                break;
            }
        }
        outcomes
    });
    let outcomes: Vec<_> = join_all(passes).await.into_iter().flatten().collect();
    let mut report = PassReport::default();
    let mut store = lock(store);
    for (n, next) in outcomes {
        let channel = n.notification.channel.clone();
        match next {
            Next::Delivered => {
                store.forget_notification(n.id)?;
                report.delivered += 1;
            }
            Next::Refused(why) => {
                store.forget_notification(n.id)?;
                report.refused.push((channel, why));
            }
            Next::GivenUp(why) => {
                store.forget_notification(n.id)?;
                report.given_up.push((channel, why));
            }
            Next::RetryAt(at, why) => {
                store.retry_notification(n.id, at, &why)?;
                // The channel's later messages wait with it, in order.
                store.postpone_channel(&channel, at)?;
                report.retried += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(attempts: u32, made_at: i64) -> PendingNotification {
        PendingNotification {
            id: 1,
            attempts,
            notification: QueuedNotification {
                channel: "webhook 127.0.0.1:9000".into(),
                made_at: Timestamp(made_at),
                subject: "s".into(),
                content_type: "application/json".into(),
                body: b"{}".to_vec(),
            },
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn failures_back_off_and_old_ones_are_given_up() {
        let now = Timestamp(10_000_000);
        let fail = || Delivery::Failed("127.0.0.1:9000: connection refused".into());
        assert_eq!(
            after_attempt(fail(), &pending(0, now.0), now, DAY),
            Next::RetryAt(
                now.add(RETRY_START),
                "127.0.0.1:9000: connection refused".into()
            )
        );
        assert_eq!(
            after_attempt(fail(), &pending(1, now.0), now, DAY),
            Next::RetryAt(
                now.add(RETRY_START * 2),
                "127.0.0.1:9000: connection refused".into()
            )
        );
        assert!(matches!(
            after_attempt(fail(), &pending(30, now.0), now, DAY),
            Next::RetryAt(at, _) if at == now.add(RETRY_CAP)
        ));
        let old = pending(3, now.sub(DAY).0);
        assert!(matches!(
            after_attempt(fail(), &old, now, DAY),
            Next::GivenUp(_)
        ));
    }

    #[test]
    fn delivered_and_refused_are_done_whatever_their_age() {
        let now = Timestamp(10_000_000);
        let old = pending(3, 0);
        assert_eq!(
            after_attempt(Delivery::Delivered, &old, now, DAY),
            Next::Delivered
        );
        let refused = Delivery::Refused {
            status: 400,
            answer: "invalid_payload".into(),
        };
        assert_eq!(
            after_attempt(refused, &old, now, DAY),
            Next::Refused("refused (400): invalid_payload".into())
        );
    }
}
