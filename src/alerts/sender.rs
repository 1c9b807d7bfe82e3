//! Sending what the store queued: one courier a channel, and what to do
//! with a notification after an attempt.
//!
//! [`after_attempt`] is the pure rule: delivered or refused is done (a
//! refusal is counted and shown, never retried), a failure waits with
//! exponential backoff, and a notification older than `give_up_after` is
//! given up. [`send_due`] is one pass over the queue: each channel's
//! notifications go through that channel alone, so a channel that does
//! not answer delays only its own. [`AlertSender`] holds the couriers,
//! runs the passes and test messages, and counts what they did.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;

use super::board::test_notification;
use super::deliver::{Delivery, HttpTarget};
use super::email::{SmtpSettings, SmtpTarget};
use super::settings::{AlertSettings, Channel};
use crate::clock::Timestamp;
use crate::lock::lock;
use crate::store::{
    blocking, AttemptRecord, Outcome, PendingNotification, QueuedNotification, Store, StoreError,
};
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

impl Next {
    /// The `result` label of `edgeprobe_notifications_total`.
    pub fn result(&self) -> &'static str {
        match self {
            Next::Delivered => Outcome::Delivered.as_str(),
            Next::Refused(_) => Outcome::Refused.as_str(),
            Next::GivenUp(_) => Outcome::GivenUp.as_str(),
            Next::RetryAt(..) => "failed",
        }
    }
}

/// Every `result` label, so each channel's counters exist from the start.
pub const RESULTS: [&str; 4] = ["delivered", "failed", "refused", "given_up"];

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

/// What the sender did since the board started, for `/metrics` and the
/// dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// Attempts by channel and result ([`RESULTS`]).
    pub attempts: BTreeMap<(String, &'static str), u64>,
    /// Notifications waiting after the last pass (`None` before the
    /// first), and when the oldest was made.
    pub queued: Option<u64>,
    pub oldest_queued: Option<Timestamp>,
}

impl Activity {
    /// Attempts at `channel` that came to `result` ([`RESULTS`]).
    pub fn count(&self, channel: &str, result: &'static str) -> u64 {
        self.attempts
            .get(&(channel.to_string(), result))
            .copied()
            .unwrap_or(0)
    }
}

/// What a test message through one channel came to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChannelTest {
    pub channel: String,
    pub delivered: bool,
    /// Why not, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The most messages held in memory for rounds the store could not keep.
const UNSTORED_MAX: usize = 256;

/// Messages of rounds the store could not keep (a full or failing disk),
/// handed by the monitor to the sender, which sends them from memory with
/// the same backoff. They do not survive a restart: nothing can be kept
/// while the store fails, but the people told should still hear of it.
#[derive(Clone, Default)]
pub struct Unstored(Arc<Mutex<Vec<QueuedNotification>>>);

impl Unstored {
    /// Hand over a round's messages.
    pub fn hold(&self, messages: impl IntoIterator<Item = QueuedNotification>) {
        lock(&self.0).extend(messages);
    }

    /// Take what was handed over.
    pub(crate) fn take(&self) -> Vec<QueuedNotification> {
        std::mem::take(&mut *lock(&self.0))
    }
}

/// A board's alert sending: a courier per configured channel, the passes
/// over the store's queue (and over what the store could not keep), test
/// messages, and the counts of what happened.
pub struct AlertSender {
    /// In the config's order, for test messages.
    channels: Vec<Channel>,
    couriers: HashMap<String, Courier>,
    give_up_after: Duration,
    activity: Mutex<Activity>,
    unstored: Unstored,
    /// Unstored messages waiting to be tried again, and when.
    retrying: tokio::sync::Mutex<Vec<(PendingNotification, Timestamp)>>,
}

impl AlertSender {
    /// Couriers for every channel of `settings`; a channel that cannot be
    /// set up (an unreadable CA file) is an error naming it. `unstored` is
    /// where the monitor hands what it could not store.
    pub fn new(settings: &AlertSettings, unstored: Unstored) -> Result<AlertSender, String> {
        let mut couriers = HashMap::new();
        let mut activity = Activity::default();
        for c in &settings.channels {
            let courier =
                Courier::for_channel(c).map_err(|e| format!("alert channel {}: {e}", c.label()))?;
            for result in RESULTS {
                activity.attempts.insert((c.label(), result), 0);
            }
            couriers.insert(c.label(), courier);
        }
        Ok(AlertSender {
            channels: settings.channels.clone(),
            couriers,
            give_up_after: settings.give_up_after,
            activity: Mutex::new(activity),
            unstored,
            retrying: tokio::sync::Mutex::new(Vec::new()),
        })
    }

    /// Whether any channel is configured.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// One pass at `now`: what the store could not keep, then the store's
    /// queue (see [`send_due`]), counted. A store that cannot be read
    /// does not keep the unstored messages back.
    pub async fn pass(
        &self,
        store: &Arc<Mutex<Store>>,
        now: Timestamp,
    ) -> Result<PassReport, StoreError> {
        let unstored = self.send_unstored(now).await;
        self.count(&unstored);
        let report = send_due(store, &self.couriers, now, self.give_up_after).await?;
        self.count(&report.attempts);
        let mut activity = lock(&self.activity);
        activity.queued = Some(report.queued);
        activity.oldest_queued = report.oldest_queued;
        let mut report = report;
        report.attempts.extend(unstored);
        Ok(report)
    }

    fn count(&self, attempts: &[(String, Next)]) {
        let mut activity = lock(&self.activity);
        for (channel, next) in attempts {
            *activity
                .attempts
                .entry((channel.clone(), next.result()))
                .or_default() += 1;
        }
    }

    /// Try the messages the store could not keep that are due at `now`,
    /// in the order they came, with the queue's rule after each attempt.
    async fn send_unstored(&self, now: Timestamp) -> Vec<(String, Next)> {
        let mut retrying = self.retrying.lock().await;
        retrying.extend(self.unstored.take().into_iter().map(|n| {
            (
                PendingNotification {
                    id: 0,
                    attempts: 0,
                    notification: n,
                },
                now,
            )
        }));
        let mut attempts = Vec::new();
        if retrying.len() > UNSTORED_MAX {
            let over = retrying.len() - UNSTORED_MAX;
            for (n, _) in retrying.drain(..over) {
                let why = "too many messages waiting while the store fails".to_string();
                attempts.push((n.notification.channel, Next::GivenUp(why)));
            }
        }
        let mut failed: std::collections::HashSet<String> = Default::default();
        let mut kept = Vec::new();
        for (mut n, due) in retrying.drain(..) {
            let channel = n.notification.channel.clone();
            // In order: behind an earlier one of its channel that waits.
            if due > now || failed.contains(&channel) {
                failed.insert(channel);
                kept.push((n, due));
                continue;
            }
            let next = match self.couriers.get(&channel) {
                None => Next::GivenUp(format!("{channel} is no longer configured")),
                Some(c) => after_attempt(
                    c.deliver(&n.notification).await,
                    &n,
                    now,
                    self.give_up_after,
                ),
            };
            if let Next::RetryAt(at, _) = &next {
                failed.insert(channel.clone());
                n.attempts += 1;
                kept.push((n, *at));
            }
            attempts.push((channel, next));
        }
        *retrying = kept;
        attempts
    }

    /// A test message from `board` through every channel at once, side by
    /// side; not queued, not counted.
    pub async fn test_all(&self, board: &str, now: Timestamp) -> Vec<ChannelTest> {
        let tests = self.channels.iter().map(|channel| async move {
            let label = channel.label();
            let n = test_notification(board, channel, now);
            let delivery = match self.couriers.get(&label) {
                Some(c) => c.deliver(&n).await,
                None => Delivery::Failed(format!("{label} could not be set up at start")),
            };
            let error = match delivery {
                Delivery::Delivered => None,
                Delivery::Refused { status, answer } => {
                    Some(format!("refused ({status}): {answer}"))
                }
                Delivery::Failed(why) => Some(why),
            };
            ChannelTest {
                channel: label,
                delivered: error.is_none(),
                error,
            }
        });
        join_all(tests).await
    }

    /// What was done so far.
    pub fn activity(&self) -> Activity {
        lock(&self.activity).clone()
    }
}

/// What one pass did: what settled and failed, and the queue after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Each attempt's channel and result (`Delivered`, `Refused`, ...).
    pub attempts: Vec<(String, Next)>,
    /// Notifications still waiting after the pass, and when the oldest
    /// was made.
    pub queued: u64,
    pub oldest_queued: Option<Timestamp>,
}

impl PassReport {
    /// How many attempts came to `result` ([`RESULTS`]).
    pub fn count(&self, result: &str) -> usize {
        self.attempts
            .iter()
            .filter(|(_, next)| next.result() == result)
            .count()
    }
}

/// Send what is due at `now`: each channel's notifications in order, the
/// channels side by side; a notification whose channel is no longer
/// configured is given up. The store's calls run on the blocking pool.
pub async fn send_due(
    store: &Arc<Mutex<Store>>,
    couriers: &HashMap<String, Courier>,
    now: Timestamp,
    give_up_after: Duration,
) -> Result<PassReport, StoreError> {
    let due = blocking(store, move |s| s.due_notifications(now, PASS_SIZE)).await?;
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
            outcomes.push((n.id, channel.to_string(), next));
            if failed {
                break;
            }
        }
        outcomes
    });
    let outcomes: Vec<_> = join_all(passes).await.into_iter().flatten().collect();
    blocking(store, move |s| settle(s, outcomes, now)).await
}

/// Write what each attempt came to, in one transaction, and read the
/// queue's length after.
fn settle(
    store: &mut Store,
    outcomes: Vec<(i64, String, Next)>,
    now: Timestamp,
) -> Result<PassReport, StoreError> {
    let records: Vec<AttemptRecord> = outcomes
        .iter()
        .map(|(id, channel, next)| {
            let settled = |outcome, error: Option<&String>| AttemptRecord::Settled {
                id: *id,
                outcome,
                error: error.cloned(),
            };
            match next {
                Next::Delivered => settled(Outcome::Delivered, None),
                Next::Refused(why) => settled(Outcome::Refused, Some(why)),
                Next::GivenUp(why) => settled(Outcome::GivenUp, Some(why)),
                Next::RetryAt(at, why) => AttemptRecord::Retry {
                    id: *id,
                    channel: channel.clone(),
                    next_at: *at,
                    error: why.clone(),
                },
            }
        })
        .collect();
    store.record_attempts(&records, now)?;
    let mut report = PassReport {
        attempts: outcomes.into_iter().map(|(_, c, n)| (c, n)).collect(),
        ..PassReport::default()
    };
    (report.queued, report.oldest_queued) = store.notification_backlog()?;
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
