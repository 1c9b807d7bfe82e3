//! The alert queue: notifications written in their round's transaction,
//! read back when due, and settled once delivered, refused or given up
//! (the newest [`SETTLED_KEPT`] settled ones stay, for the page of recent
//! notifications); the alerts firing, which each round that changes them
//! replaces; and the silences. Only moves rows: when to try again and
//! when to give up is decided by the sender.

use rusqlite::{params, Connection};

use crate::clock::Timestamp;

use super::records::{
    AlertRow, NotificationRecord, Outcome, PendingNotification, QueuedNotification, SilenceRow,
};
use super::sql::{all_rows, sql, sql_limit};
use super::StoreError;

/// How many settled notifications are kept for the page of recent ones.
pub const SETTLED_KEPT: i64 = 200;

/// Queue `n`, due at once, or when the channel's waiting notifications are:
/// a later message never overtakes an earlier one that waits to be retried.
pub(super) fn queue_notification(
    conn: &Connection,
    n: &QueuedNotification,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO notifications (channel, made_at, subject, content_type, body, next_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, \
                 max(?2, coalesce((SELECT max(next_at) FROM notifications \
                                   WHERE channel = ?1 AND outcome IS NULL), ?2)))",
    )?
    .execute(params![
        n.channel,
        n.made_at.millis(),
        n.subject,
        n.content_type,
        n.body
    ])?;
    Ok(())
}

/// Queue `n` as its channel's refresh, in place of the refresh that still
/// waits, if any: only the newest says what fires now.
pub(super) fn queue_refresh(conn: &Connection, n: &QueuedNotification) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "DELETE FROM notifications WHERE channel = ?1 AND refresh = 1 AND outcome IS NULL",
    )?
    .execute([&n.channel])?;
    queue_notification(conn, n)?;
    conn.execute(
        "UPDATE notifications SET refresh = 1 WHERE id = last_insert_rowid()",
        [],
    )?;
    Ok(())
}

/// Make `alerts` the firing set.
pub(super) fn replace_alerts(conn: &Connection, alerts: &[AlertRow]) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM alerts_active", [])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO alerts_active (key, since, last_sent, detail, name, grp) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for a in alerts {
        insert.execute(params![
            a.key,
            a.since.millis(),
            a.last_sent.map(Timestamp::millis),
            a.detail,
            a.name,
            a.group
        ])?;
    }
    Ok(())
}

/// Up to `max` notifications due at `now`, oldest first.
pub(super) fn due(
    conn: &Connection,
    now: Timestamp,
    max: usize,
) -> Result<Vec<PendingNotification>, StoreError> {
    all_rows(
        conn,
        "reading the alert queue",
        "SELECT id, attempts, channel, made_at, subject, content_type, body \
         FROM notifications WHERE outcome IS NULL AND next_at <= ?1 ORDER BY id LIMIT ?2",
        params![now.millis(), sql_limit(max)],
        |row| {
            Ok(PendingNotification {
                id: row.get(0)?,
                attempts: row.get(1)?,
                notification: QueuedNotification {
                    channel: row.get(2)?,
                    made_at: Timestamp(row.get(3)?),
                    subject: row.get(4)?,
                    content_type: row.get(5)?,
                    body: row.get(6)?,
                },
            })
        },
    )
}

/// Settle notification `id` at `at`: its body is no longer needed, its
/// subject and `error` stay for the page; the oldest settled rows past
/// [`SETTLED_KEPT`] go.
pub(super) fn settle(
    conn: &Connection,
    id: i64,
    outcome: Outcome,
    at: Timestamp,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let op = "settling a sent notification";
    // A delivered refresh said nothing the page needs.
    conn.prepare_cached(
        "DELETE FROM notifications WHERE id = ?1 AND refresh = 1 AND ?2 = 'delivered'",
    )
    .and_then(|mut s| s.execute(params![id, outcome.as_str()]))
    .map_err(sql(op))?;
    conn.prepare_cached(
        "UPDATE notifications SET outcome = ?2, settled_at = ?3, body = x'', \
         last_error = coalesce(?4, last_error), attempts = attempts + 1 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, outcome.as_str(), at.millis(), error]))
    .map_err(sql(op))?;
    conn.prepare_cached(
        "DELETE FROM notifications WHERE outcome IS NOT NULL AND id <= \
         (SELECT id FROM notifications WHERE outcome IS NOT NULL \
          ORDER BY id DESC LIMIT 1 OFFSET ?1)",
    )
    .and_then(|mut s| s.execute([SETTLED_KEPT]))
    .map_err(sql(op))?;
    Ok(())
}

/// The newest `limit` notifications, waiting or settled, newest first.
pub(super) fn recent(
    conn: &Connection,
    limit: usize,
) -> Result<Vec<NotificationRecord>, StoreError> {
    all_rows(
        conn,
        "reading the recent notifications",
        "SELECT id, channel, made_at, subject, attempts, last_error, outcome, \
         coalesce(settled_at, next_at) FROM notifications ORDER BY id DESC LIMIT ?1",
        [sql_limit(limit)],
        |row| {
            Ok(NotificationRecord {
                id: row.get(0)?,
                channel: row.get(1)?,
                made_at: Timestamp(row.get(2)?),
                subject: row.get(3)?,
                attempts: row.get(4)?,
                last_error: row.get(5)?,
                outcome: NotificationRecord::outcome_from(row.get(6)?),
                at: Timestamp(row.get(7)?),
            })
        },
    )
}

/// Make `silences` the ones in force.
pub(super) fn replace_silences(
    conn: &Connection,
    silences: &[SilenceRow],
) -> Result<(), StoreError> {
    let op = "saving the silences";
    let tx = conn.unchecked_transaction().map_err(sql(op))?;
    tx.execute("DELETE FROM silences", []).map_err(sql(op))?;
    for s in silences {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO silences (scope, until, made_at, reason) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut st| {
            st.execute(params![
                s.scope,
                s.until.millis(),
                s.made_at.millis(),
                s.reason
            ])
        })
        .map_err(sql(op))?;
    }
    tx.commit().map_err(sql(op))
}

/// The silences saved last, soonest ending first.
pub(super) fn silences(conn: &Connection) -> Result<Vec<SilenceRow>, StoreError> {
    all_rows(
        conn,
        "reading the silences",
        "SELECT scope, until, made_at, reason FROM silences ORDER BY until, scope",
        [],
        |row| {
            Ok(SilenceRow {
                scope: row.get(0)?,
                until: Timestamp(row.get(1)?),
                made_at: Timestamp(row.get(2)?),
                reason: row.get(3)?,
            })
        },
    )
}

/// Try notification `id` again at `next_at`; `error` says why it failed.
pub(super) fn retry(
    conn: &Connection,
    id: i64,
    next_at: Timestamp,
    error: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE notifications SET attempts = attempts + 1, next_at = ?2, last_error = ?3 \
         WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, next_at.millis(), error]))
    .map_err(sql("rescheduling a notification"))?;
    Ok(())
}

/// Hold every notification of `channel` until at least `until`: a channel
/// that failed is not asked again before its wait ends, and keeps its
/// messages in order.
pub(super) fn postpone_channel(
    conn: &Connection,
    channel: &str,
    until: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE notifications SET next_at = max(next_at, ?2) \
         WHERE channel = ?1 AND outcome IS NULL",
    )
    .and_then(|mut s| s.execute(params![channel, until.millis()]))
    .map_err(sql("postponing a channel's notifications"))?;
    Ok(())
}

/// How many notifications wait (not settled), and when the oldest was made.
pub(super) fn backlog(conn: &Connection) -> Result<(u64, Option<Timestamp>), StoreError> {
    let op = "counting the alert queue";
    let (n, oldest): (i64, Option<i64>) = conn
        .query_row(
            "SELECT count(*), min(made_at) FROM notifications WHERE outcome IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql(op))?;
    Ok((u64::try_from(n).unwrap_or(0), oldest.map(Timestamp)))
}

/// The alerts firing when the last round that changed them was written.
pub(super) fn alerts(conn: &Connection) -> Result<Vec<AlertRow>, StoreError> {
    all_rows(
        conn,
        "reading the firing alerts",
        "SELECT key, since, last_sent, detail, name, grp FROM alerts_active ORDER BY key",
        [],
        |row| {
            Ok(AlertRow {
                key: row.get(0)?,
                since: Timestamp(row.get(1)?),
                last_sent: row.get::<_, Option<i64>>(2)?.map(Timestamp),
                detail: row.get(3)?,
                name: row.get(4)?,
                group: row.get(5)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, fresh, open};
    use super::*;
    use crate::probe::Status;
    use crate::store::{AttemptRecord, RoundRecord, Store};

    fn settle(store: &mut Store, id: i64, outcome: Outcome, at: i64, error: Option<&str>) {
        let a = AttemptRecord::Settled {
            id,
            outcome,
            error: error.map(str::to_string),
        };
        store.record_attempts(&[a], Timestamp(at)).unwrap();
    }

    fn retry(store: &mut Store, id: i64, channel: &str, next_at: i64, error: &str) {
        let a = AttemptRecord::Retry {
            id,
            channel: channel.into(),
            next_at: Timestamp(next_at),
            error: error.into(),
        };
        store.record_attempts(&[a], Timestamp(0)).unwrap();
    }

    fn note(channel: &str, made_at: i64) -> QueuedNotification {
        QueuedNotification {
            channel: channel.into(),
            made_at: Timestamp(made_at),
            subject: "closet-3: 1 firing".into(),
            content_type: "application/json".into(),
            body: br#"{"board":"closet-3"}"#.to_vec(),
        }
    }

    fn alert(key: &str) -> AlertRow {
        AlertRow {
            key: key.into(),
            since: Timestamp(1000),
            last_sent: Some(Timestamp(1000)),
            detail: "198.19.3.10: no reply".into(),
            name: Some("files".into()),
            group: None,
        }
    }

    fn round_with(
        n: u64,
        ts: i64,
        notes: Vec<QueuedNotification>,
        alerts: Option<Vec<AlertRow>>,
    ) -> RoundRecord {
        RoundRecord {
            notifications: notes,
            alerts,
            ..fixtures::round(n, ts, &fixtures::targets(2), Status::NotWorking)
        }
    }

    #[test]
    fn notifications_and_alerts_are_written_with_their_round_and_survive_a_reopen() {
        let (dir, mut store) = fresh();
        let r = round_with(
            1,
            1000,
            vec![
                note("webhook 127.0.0.1:9000", 1000),
                note("email noc@example.org", 1000),
            ],
            Some(vec![alert("down/198.19.3.10")]),
        );
        store.write_round(&r).unwrap();
        drop(store);
        let store = open(dir.path());
        let due = store.due_notifications(Timestamp(1000), 10).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].notification, note("webhook 127.0.0.1:9000", 1000));
        assert_eq!(due[0].attempts, 0);
        assert!(due[0].id < due[1].id);
        assert_eq!(
            store.notification_backlog().unwrap(),
            (2, Some(Timestamp(1000)))
        );
        assert_eq!(store.firing_alerts().unwrap(), [alert("down/198.19.3.10")]);
    }

    #[test]
    fn a_round_that_does_not_change_the_alerts_leaves_them() {
        let (_dir, mut store) = fresh();
        store
            .write_round(&round_with(
                1,
                1000,
                vec![],
                Some(vec![alert("down/a"), alert("upstream")]),
            ))
            .unwrap();
        store
            .write_round(&round_with(2, 2000, vec![], None))
            .unwrap();
        assert_eq!(store.firing_alerts().unwrap().len(), 2);
        store
            .write_round(&round_with(3, 3000, vec![], Some(vec![])))
            .unwrap();
        assert!(store.firing_alerts().unwrap().is_empty());
    }

    #[test]
    fn a_retried_notification_waits_and_a_settled_one_is_not_sent_again() {
        let (_dir, mut store) = fresh();
        store
            .write_round(&round_with(
                1,
                1000,
                vec![note("a", 1000), note("b", 1000)],
                None,
            ))
            .unwrap();
        let due = store.due_notifications(Timestamp(1000), 10).unwrap();
        retry(
            &mut store,
            due[0].id,
            "a",
            5000,
            "127.0.0.1:9000: connection refused",
        );
        settle(&mut store, due[1].id, Outcome::Delivered, 1500, None);
        assert!(store
            .due_notifications(Timestamp(4999), 10)
            .unwrap()
            .is_empty());
        let later = store.due_notifications(Timestamp(5000), 10).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].attempts, 1);
        // Ids never come back, even when the queue empties.
        settle(
            &mut store,
            later[0].id,
            Outcome::Refused,
            5000,
            Some("refused (400): bad payload"),
        );
        store
            .write_round(&round_with(2, 6000, vec![note("c", 6000)], None))
            .unwrap();
        let next = store.due_notifications(Timestamp(6000), 10).unwrap();
        assert!(next[0].id > due[1].id, "{} after {}", next[0].id, due[1].id);
        assert_eq!(store.notification_backlog().unwrap().0, 1);
    }

    #[test]
    fn a_refresh_replaces_the_waiting_one_and_is_not_kept_once_delivered() {
        let (_dir, mut store) = fresh();
        let refresh = |ts: i64| RoundRecord {
            refreshes: vec![note("am", ts)],
            ..round_with(1, ts, vec![], None)
        };
        let mut first = refresh(1000);
        first.notifications = vec![note("am", 1000)];
        store.write_round(&first).unwrap();
        for (n, ts) in [(2, 2000), (3, 3000)] {
            let mut r = refresh(ts);
            r.round = crate::store::RoundId(n);
            store.write_round(&r).unwrap();
        }
        let due = store.due_notifications(Timestamp(9000), 10).unwrap();
        let made: Vec<i64> = due.iter().map(|n| n.notification.made_at.0).collect();
        assert_eq!(
            made,
            [1000, 3000],
            "the change, and only the newest refresh"
        );
        for n in &due {
            settle(&mut store, n.id, Outcome::Delivered, 9000, None);
        }
        let reader = store.reader().unwrap();
        let kept = crate::store::History::notifications(&reader, 10).unwrap();
        assert_eq!(kept.len(), 1, "the delivered refresh is gone: {kept:?}");
        assert_eq!(kept[0].made_at, Timestamp(1000));
    }

    #[test]
    fn a_postponed_channel_waits_and_the_others_do_not() {
        let (_dir, mut store) = fresh();
        let notes = vec![note("a", 1000), note("b", 1000), note("a", 1000)];
        store
            .write_round(&round_with(1, 1000, notes, None))
            .unwrap();
        let first = store.due_notifications(Timestamp(1000), 1).unwrap();
        retry(&mut store, first[0].id, "a", 9000, "connection refused");
        let due = store.due_notifications(Timestamp(1000), 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].notification.channel, "b");
        let later = store.due_notifications(Timestamp(9000), 10).unwrap();
        let channels: Vec<&str> = later
            .iter()
            .map(|n| n.notification.channel.as_str())
            .collect();
        assert_eq!(channels, ["a", "b", "a"], "in the order they were queued");
    }

    #[test]
    fn settled_notifications_are_listed_with_their_outcome_and_only_the_newest_are_kept() {
        let (dir, mut store) = fresh();
        let notes: Vec<_> = (0..SETTLED_KEPT + 5).map(|i| note("a", 1000 + i)).collect();
        store
            .write_round(&round_with(1, 1000, notes, None))
            .unwrap();
        let due = store.due_notifications(Timestamp(1_000_000), 1000).unwrap();
        for n in &due[..due.len() - 1] {
            settle(&mut store, n.id, Outcome::Delivered, 2000, None);
        }
        let last = due.last().unwrap();
        retry(&mut store, last.id, "a", 9000, "connection refused");
        let reader = store.reader().unwrap();
        let recent = crate::store::History::notifications(&reader, 3).unwrap();
        assert_eq!(recent[0].id, last.id);
        assert_eq!(recent[0].outcome, None, "still waiting");
        assert_eq!(recent[0].at, Timestamp(9000), "when it is tried next");
        assert_eq!(recent[0].last_error.as_deref(), Some("connection refused"));
        assert_eq!(recent[1].outcome, Some(Outcome::Delivered));
        assert_eq!(recent[1].at, Timestamp(2000));
        let all = crate::store::History::notifications(&reader, 1000).unwrap();
        assert_eq!(
            all.len(),
            SETTLED_KEPT as usize + 1,
            "kept settled, plus the waiting one"
        );
        assert_eq!(store.notification_backlog().unwrap().0, 1);
        drop(dir);
    }

    #[test]
    fn silences_are_replaced_whole_and_survive_a_reopen() {
        let (dir, mut store) = fresh();
        let silence = |scope: &str, until| SilenceRow {
            scope: scope.into(),
            until: Timestamp(until),
            made_at: Timestamp(1000),
            reason: Some("router swap".into()),
        };
        store
            .save_silences(&[silence("group/lan", 9000), silence("board", 5000)])
            .unwrap();
        drop(store);
        let mut store = open(dir.path());
        assert_eq!(
            store.silences().unwrap(),
            [silence("board", 5000), silence("group/lan", 9000)]
        );
        store.save_silences(&[]).unwrap();
        assert!(store.silences().unwrap().is_empty());
    }

    #[test]
    fn a_version_1_file_gains_the_alert_tables() {
        let (dir, store) = fresh();
        fixtures::results_as_version_4(&store);
        store
            .conn()
            .execute_batch(
                "DROP TABLE notifications; DROP TABLE alerts_active; DROP TABLE silences; \
                 DROP INDEX rollups_unsynced; ALTER TABLE rollups DROP COLUMN rtt_sum_us; \
                 ALTER TABLE rollups DROP COLUMN rtt_rounds; \
                 ALTER TABLE rollups DROP COLUMN unsynced; \
                 DROP TABLE outbox; CREATE TABLE outbox (id INTEGER PRIMARY KEY, \
                   kind INTEGER NOT NULL, row_id INTEGER NOT NULL, ts INTEGER NOT NULL); \
                 CREATE UNIQUE INDEX outbox_row ON outbox (kind, row_id); \
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        drop(store);
        let mut store = open(dir.path());
        store
            .write_round(&round_with(
                1,
                1000,
                vec![note("a", 1000)],
                Some(vec![alert("store")]),
            ))
            .unwrap();
        assert_eq!(store.notification_backlog().unwrap().0, 1);
        let version: i64 = store
            .conn()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 5);
    }
}
