//! Central's board-offline alerts end to end: nx-27017 on 127.0.0.1, board
//! documents in the upstream contract's shape, two (or one) real
//! `edgeprobe central` processes sharing the database and one alerts file,
//! and `scripts/lib/webhook-receiver.py` on loopback as the channel.
//!
//! What it proves: two replicas send one "offline" message and one "back
//! online" message; a claim whose sender died is sent by another replica
//! after its lease, to the channels it had not reached yet; a wrong
//! alerts file stops central with the file and the key.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::mongo::TestMongo;
use common::monitor::{free_port, RunningMonitor};
use common::webhook::WebhookReceiver;
use common::{edgeprobe, eventually};
use edgeprobe::clock::Timestamp;
use mongodb::bson::{doc, Bson, DateTime, Document};
use serde_json::Value;

fn at(ts: Timestamp) -> DateTime {
    DateTime::from_millis(ts.millis())
}

/// A `boards` document in the contract's shape, with a 60 s interval
/// (offline after 180 s without a sync).
fn board(id: &str, last_seen: Timestamp) -> Document {
    doc! {
        "_id": id, "name": id, "site": Bson::Null, "version": "0.1.0",
        "started_at": at(last_seen), "last_seen": at(last_seen),
        "first_seen": at(last_seen), "interval_s": 60.0,
        "counts": {"working": 1_i64, "degraded": 0_i64, "not_working": 0_i64, "pending": 0_i64},
        "backlog": 0_i64, "oldest_unsynced": Bson::Null, "upstream_state": "synced",
        "targets": [],
    }
}

/// Run `f` against the test database.
fn with_db<T>(uri: &str, f: impl AsyncFnOnce(mongodb::Database) -> T) -> T {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.expect("client");
        f(client.database("edgeprobe")).await
    })
}

/// The board's heartbeat as its sync writes it: `$set` of `last_seen`.
fn heartbeat(uri: &str, id: &str, last_seen: Timestamp) {
    with_db(uri, async |db| {
        let r = db
            .collection::<Document>("boards")
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "last_seen": at(last_seen) } },
            )
            .await
            .expect("update the board");
        assert_eq!(r.matched_count, 1);
    });
}

fn claims(uri: &str) -> Vec<Document> {
    with_db(uri, async |db| {
        use futures::TryStreamExt;
        db.collection::<Document>("alert_claims")
            .find(doc! {})
            .await
            .expect("find claims")
            .try_collect()
            .await
            .expect("read claims")
    })
}

fn alerts_file(dir: &Path, receivers: &[&WebhookReceiver]) -> PathBuf {
    let mut text = String::from("[alerts]\ngive_up_after = \"1h\"\n");
    for r in receivers {
        text.push_str(&format!(
            "[[alerts.webhook]]\nurl = \"http://127.0.0.1:{}/hook\"\n",
            r.port
        ));
    }
    let path = dir.join("central-alerts.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn central(nx: &TestMongo, config: &Path) -> RunningMonitor {
    let uri = nx.uri();
    RunningMonitor::start_central(&[
        "--mongo-uri",
        &uri,
        "--alerts-config",
        config.to_str().unwrap(),
        "--alerts-every",
        "1s",
    ])
}

/// Two replicas of central on `config`, each waited for until it says
/// its alerts are on.
fn two_centrals(nx: &TestMongo, config: &Path) -> (RunningMonitor, RunningMonitor) {
    let a = central(nx, config);
    let b = central(nx, config);
    for c in [&a, &b] {
        let on = eventually(Duration::from_secs(30), Duration::from_millis(100), || {
            c.log()
                .contains("alerts: board offline / back online to webhook 127.0.0.1:")
                .then_some(())
        });
        assert!(
            on.is_some(),
            "central a:\n{}\ncentral b:\n{}",
            a.log(),
            b.log()
        );
    }
    (a, b)
}

/// Wait until `r` has received `n` messages, then a few passes more to
/// be sure it gets no other.
fn exactly(r: &WebhookReceiver, n: usize, logs: &dyn Fn() -> String) -> Vec<Value> {
    let got = eventually(Duration::from_secs(60), Duration::from_millis(200), || {
        let m = r.messages();
        (m.len() >= n).then_some(m)
    });
    assert!(
        got.is_some(),
        "waited for {n} messages, got {:?}\n{}",
        r.messages(),
        logs()
    );
    // Five passes of each replica: a second message would be here by now.
    std::thread::sleep(Duration::from_secs(5));
    let m = r.messages();
    assert_eq!(m.len(), n, "{m:#?}\n{}", logs());
    m
}

fn notice(m: &Value) -> &Value {
    let notices = m["notices"].as_array().expect("notices");
    assert_eq!(notices.len(), 1, "{m:#}");
    &notices[0]
}

#[test]
fn two_replicas_send_one_offline_and_one_back_online_message() {
    let nx = TestMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let now = Timestamp::now();
    with_db(&nx.uri(), async |db| {
        db.collection::<Document>("boards")
            .insert_one(board("closet-7", now))
            .await
            .expect("insert the board");
    });
    let config = alerts_file(dir.path(), &[&hook]);
    let (a, b) = two_centrals(&nx, &config);
    let logs = || format!("central a:\n{}\ncentral b:\n{}", a.log(), b.log());

    // Online: a few passes of both, and nothing is sent.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook.messages(), Vec::<Value>::new(), "{}", logs());

    // Its last sync is now 200 s ago: three 60 s intervals missed.
    let last_seen = now.sub(Duration::from_secs(200));
    heartbeat(&nx.uri(), "closet-7", last_seen);
    let m = exactly(&hook, 1, &logs);
    assert_eq!(m[0]["board"], "closet-7");
    let n = notice(&m[0]);
    assert_eq!(n["kind"], "firing", "{m:#?}");
    assert_eq!(n["what"], "board offline");
    assert_eq!(
        n["at"],
        last_seen.add(Duration::from_secs(180)).rfc3339(),
        "offline from last_seen + 3 intervals"
    );
    assert!(
        n["detail"].as_str().unwrap().contains(&last_seen.rfc3339()),
        "{n:#}"
    );
    let sent = |what: &str| {
        [&a, &b]
            .iter()
            .map(|c| {
                c.log()
                    .matches(&format!("closet-7 {what}: sent to"))
                    .count()
            })
            .sum::<usize>()
    };
    assert_eq!(sent("offline"), 1, "one replica sent it\n{}", logs());

    // It syncs again.
    let back = Timestamp::now();
    heartbeat(&nx.uri(), "closet-7", back);
    let m = exactly(&hook, 2, &logs);
    let n = notice(&m[1]);
    assert_eq!(n["kind"], "resolved", "{m:#?}");
    assert_eq!(n["what"], "board offline");
    assert_eq!(n["at"], back.rfc3339());
    assert!(
        n["detail"].as_str().unwrap().contains("is back online"),
        "{n:#}"
    );
    assert_eq!(sent("back online"), 1, "{}", logs());
    // A lost race (a duplicate key, an update that matched nothing) is
    // not an error either replica reports.
    assert!(!logs().contains("did not answer"), "{}", logs());

    // The claim says so, under the outage's deterministic id.
    let c = claims(&nx.uri());
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(
        c[0].get_str("_id"),
        Ok(format!("board-offline/closet-7/{}", last_seen.millis()).as_str())
    );
    assert_eq!(c[0].get_str("state"), Ok("resolved"), "{c:#?}");
}

#[test]
fn a_claim_whose_sender_died_is_sent_after_its_lease_to_the_channels_it_missed() {
    let nx = TestMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let reached = WebhookReceiver::start();
    let missed = WebhookReceiver::start();
    let now = Timestamp::now();
    let last_seen = now.sub(Duration::from_secs(600));
    let id = format!("board-offline/closet-9/{}", last_seen.millis());
    // A replica claimed the outage, reached the first channel and died:
    // its lease ended a minute ago.
    let reached_label = format!("webhook 127.0.0.1:{}", reached.port);
    with_db(&nx.uri(), async |db| {
        db.collection::<Document>("boards")
            .insert_one(board("closet-9", last_seen))
            .await
            .expect("insert the board");
        let lease_over = now.sub(Duration::from_secs(60)).millis();
        db.collection::<Document>("alert_claims")
            .insert_one(doc! {
                "_id": &id, "board": "closet-9", "last_seen_ms": last_seen.millis(),
                "offline_at_ms": last_seen.add(Duration::from_secs(180)).millis(),
                "state": "firing", "by": "dead-replica/1/1", "lease_until_ms": lease_over,
                "attempts": 0_i64, "made_at_ms": now.sub(Duration::from_secs(120)).millis(),
                "done": [&reached_label], "last_error": Bson::Null,
                "back_at_ms": Bson::Null, "am_next_ms": Bson::Null,
            })
            .await
            .expect("insert the claim");
    });
    let config = alerts_file(dir.path(), &[&reached, &missed]);
    let c = central(&nx, &config);
    let logs = || c.log();
    let m = exactly(&missed, 1, &logs);
    assert_eq!(notice(&m[0])["kind"], "firing");
    assert_eq!(m[0]["board"], "closet-9");
    assert_eq!(
        reached.messages(),
        Vec::<Value>::new(),
        "the channel that had it gets it not again\n{}",
        logs()
    );
    let docs = claims(&nx.uri());
    assert_eq!(
        docs.len(),
        1,
        "no second claim for the same outage: {docs:#?}"
    );
    assert_eq!(docs[0].get_str("state"), Ok("fired"), "{docs:#?}");
    let fired_by = docs[0].get_str("fired_by").unwrap_or("");
    assert!(
        !fired_by.is_empty() && fired_by != "dead-replica/1/1",
        "{docs:#?}"
    );
}

#[test]
fn a_wrong_alerts_file_stops_central_with_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let uri = format!("mongodb://127.0.0.1:{port}");
    let cases = [
        (
            "[[alerts.webhook]]\nurl = \"127.0.0.1:9000/hook\"\n",
            "alerts.webhook.url",
        ),
        ("[alerts]\nrepeats = \"1h\"\n", "repeats"),
        ("board_id = \"closet-3\"\n", "board_id"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("alerts-{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = edgeprobe()
            .args(["central", "--mongo-uri", &uri, "--listen", "127.0.0.1:0"])
            .arg("--alerts-config")
            .arg(&path)
            .output()
            .expect("run edgeprobe central");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: {err}");
        assert!(
            err.contains(&path.display().to_string()) && err.contains(key),
            "{text}: {err}"
        );
    }
    let out = edgeprobe()
        .args(["central", "--mongo-uri", &uri, "--alerts-every", "100ms"])
        .output()
        .expect("run edgeprobe central");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--alerts-every") && err.contains("at least 1s"),
        "{err}"
    );
}

/// Two replicas' claims (two connections to one test database) and the
/// outage of board `id`, whose last sync was 600 s before `now` at a 60 s
/// interval; claims are held for `lease`.
struct Replicas {
    _nx: TestMongo,
    a: edgeprobe::central::claims::MongoClaims,
    b: edgeprobe::central::claims::MongoClaims,
    now: Timestamp,
    lease: Duration,
    outage: edgeprobe::central::alerting::Outage,
}

impl Replicas {
    fn on_one_outage(id: &str) -> Replicas {
        use edgeprobe::central::alerting::outages;
        use edgeprobe::central::claims::MongoClaims;
        use edgeprobe::central::model::Board;
        use edgeprobe::fleet::MongoSettings;

        let nx = TestMongo::start();
        let settings = MongoSettings::new(nx.uri());
        let a = MongoClaims::new(&settings).unwrap();
        let b = MongoClaims::new(&settings).unwrap();
        let now = Timestamp::now();
        let boards = [Board {
            id: id.into(),
            last_seen: Some(now.sub(Duration::from_secs(600))),
            interval_s: Some(60.0),
            ..Board::default()
        }];
        let outage = outages(&boards, now).remove(0);
        Replicas {
            _nx: nx,
            a,
            b,
            now,
            lease: Duration::from_secs(60),
            outage,
        }
    }
}

/// The claims themselves, raced by two connections (as two replicas
/// would) against the server: every step has exactly one winner, and a
/// duplicate key is a lost race, not an error.
#[test]
fn every_claim_step_has_exactly_one_winner() {
    use edgeprobe::central::alerting::ClaimState;
    use edgeprobe::central::claims::Progress;

    let Replicas {
        _nx,
        a,
        b,
        now,
        lease,
        outage,
    } = Replicas::on_one_outage("closet-5");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let winners = |results: Vec<Result<Option<_>, _>>| {
            results
                .into_iter()
                .filter_map(|r| r.expect("no error, only lost races"))
                .collect::<Vec<edgeprobe::central::alerting::Claim>>()
        };
        // Open: ten tries from each replica at once.
        let tries = (0..20).map(|i| {
            let (c, me) = if i % 2 == 0 { (&a, "a") } else { (&b, "b") };
            c.open_outage(&outage, me, now, lease)
        });
        let won = winners(futures::future::join_all(tries).await);
        assert_eq!(won.len(), 1, "{won:?}");
        let held = &won[0];
        let open = a.open().await.unwrap();
        assert_eq!(open, vec![held.clone()], "read back as written");

        // Take over after the lease: one winner.
        let later = now.add(lease);
        let tries = (0..20).map(|i| {
            let (c, me) = if i % 2 == 0 { (&a, "a2") } else { (&b, "b2") };
            c.take_over(held, me, later, lease)
        });
        let won = winners(futures::future::join_all(tries).await);
        assert_eq!(won.len(), 1, "{won:?}");
        let holder = won[0].clone();
        // The one that lost its lease cannot record over the new holder.
        let stale = a
            .record(held, Progress::Finished { am_next: None }, later)
            .await
            .unwrap();
        assert!(!stale, "the old lease is not a token any more");
        assert!(b
            .record(
                &holder,
                Progress::Finished {
                    am_next: Some(later)
                },
                later
            )
            .await
            .unwrap());
        let fired = a.open().await.unwrap().remove(0);
        assert_eq!(fired.state, ClaimState::Fired);
        assert_eq!(fired.am_next, Some(later));

        // Back online: one replica claims the message.
        let tries = (0..20).map(|i| {
            let c = if i % 2 == 0 { &a } else { &b };
            c.resolve(&fired, later, "r", later, lease, true)
        });
        let won = winners(futures::future::join_all(tries).await);
        assert_eq!(won.len(), 1, "{won:?}");
        assert!(a
            .record(&won[0], Progress::Finished { am_next: None }, later)
            .await
            .unwrap());
        assert_eq!(a.open().await.unwrap(), vec![], "resolved is not open");
    });
}

/// Set `last_seen` of every board in one write, as a site's boards that
/// all stop (or start) syncing together look to central.
fn all_heartbeats(uri: &str, last_seen: Timestamp) {
    with_db(uri, async |db| {
        db.collection::<Document>("boards")
            .update_many(doc! {}, doc! { "$set": { "last_seen": at(last_seen) } })
            .await
            .expect("update the boards");
    });
}

/// Wait until `r`'s messages hold `n` notices of `kind`, then a few
/// passes more to be sure no other comes; the messages.
fn notices_of(r: &WebhookReceiver, kind: &str, n: usize, logs: &dyn Fn() -> String) -> Vec<Value> {
    let count = |m: &[Value]| {
        m.iter()
            .flat_map(|m| m["notices"].as_array().cloned().unwrap_or_default())
            .filter(|x| x["kind"] == kind)
            .count()
    };
    let got = eventually(Duration::from_secs(60), Duration::from_millis(200), || {
        (count(&r.messages()) >= n).then_some(())
    });
    assert!(
        got.is_some(),
        "waited for {n} {kind} notices, got {:#?}\n{}",
        r.messages(),
        logs()
    );
    std::thread::sleep(Duration::from_secs(5));
    let m = r.messages();
    assert_eq!(count(&m), n, "{m:#?}\n{}", logs());
    m
}

#[test]
fn boards_gone_quiet_in_one_pass_are_one_message_sent_once() {
    let nx = TestMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let now = Timestamp::now();
    let ids = ["site-a-1", "site-a-2", "site-a-3"];
    with_db(&nx.uri(), async |db| {
        for id in ids {
            db.collection::<Document>("boards")
                .insert_one(board(id, now))
                .await
                .expect("insert a board");
        }
    });
    let config = alerts_file(dir.path(), &[&hook]);
    let (a, b) = two_centrals(&nx, &config);
    let logs = || format!("central a:\n{}\ncentral b:\n{}", a.log(), b.log());
    std::thread::sleep(Duration::from_secs(2));

    // The site's link goes down: every board's last sync 200 s ago.
    all_heartbeats(&nx.uri(), now.sub(Duration::from_secs(200)));
    let m = notices_of(&hook, "firing", 3, &logs);
    assert_eq!(m.len(), 1, "one message for the three: {m:#?}\n{}", logs());
    assert_eq!(m[0]["board"], "central", "{m:#?}");
    let details: Vec<&str> = m[0]["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["detail"].as_str().unwrap())
        .collect();
    for (id, detail) in ids.iter().zip(&details) {
        assert!(
            detail.starts_with(&format!("{id} has not synced")),
            "{details:?}"
        );
    }
    let c = claims(&nx.uri());
    assert_eq!(c.len(), 3, "one claim per outage: {c:#?}");

    // It is back: one "back online" message listing them.
    all_heartbeats(&nx.uri(), Timestamp::now());
    let m = notices_of(&hook, "resolved", 3, &logs);
    assert_eq!(m.len(), 2, "{m:#?}\n{}", logs());
    assert_eq!(m[1]["notices"].as_array().unwrap().len(), 3, "{m:#?}");
    let c = claims(&nx.uri());
    assert!(
        c.iter().all(|d| d.get_str("state") == Ok("resolved")),
        "{c:#?}"
    );
}

#[test]
fn resolved_claims_older_than_a_week_are_deleted_and_state_is_indexed() {
    let nx = TestMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let hook = WebhookReceiver::start();
    let now = Timestamp::now();
    let day = Duration::from_secs(24 * 3600);
    let resolved = |board: &str, ago: Duration| {
        let last_seen = now.sub(ago).sub(Duration::from_secs(600));
        doc! {
            "_id": format!("board-offline/{board}/{}", last_seen.millis()),
            "board": board, "last_seen_ms": last_seen.millis(),
            "offline_at_ms": last_seen.add(Duration::from_secs(180)).millis(),
            "state": "resolved", "by": "old/1/1", "lease_until_ms": last_seen.millis(),
            "attempts": 0_i64, "made_at_ms": last_seen.millis(), "done": [],
            "last_error": Bson::Null, "back_at_ms": now.sub(ago).millis(), "am_next_ms": Bson::Null,
            "resolved_by": "old/1/1", "resolved_at_ms": now.sub(ago).millis(),
        }
    };
    with_db(&nx.uri(), async |db| {
        db.collection::<Document>("alert_claims")
            .insert_many([resolved("gone-1", day * 8), resolved("recent-1", day)])
            .await
            .expect("insert the claims");
    });
    let config = alerts_file(dir.path(), &[&hook]);
    let c = central(&nx, &config);
    let swept = eventually(Duration::from_secs(60), Duration::from_millis(200), || {
        let left = claims(&nx.uri());
        (left.len() == 1).then_some(left)
    });
    let left = swept.unwrap_or_else(|| panic!("{:#?}\n{}", claims(&nx.uri()), c.log()));
    assert_eq!(left[0].get_str("board"), Ok("recent-1"), "{left:#?}");
    let indexes = with_db(&nx.uri(), async |db| {
        db.collection::<Document>("alert_claims")
            .list_index_names()
            .await
            .expect("list the indexes")
    });
    // MongoDB names it `state_1`, nx-27017 `idx_alert_claims_state`.
    assert!(
        indexes.iter().any(|i| i.contains("state")),
        "{indexes:?}\n{}",
        c.log()
    );
    assert_eq!(hook.messages(), Vec::<Value>::new());
}

/// An "offline" that Alertmanager took while a webhook is retried keeps
/// telling Alertmanager: the retry records when it is next due, a
/// refresh is claimed by exactly one replica, and it leaves the holder's
/// lease (its token) alone.
#[test]
fn a_firing_claim_that_alertmanager_has_is_refreshed_without_taking_its_lease() {
    use edgeprobe::central::alerting::ClaimState;
    use edgeprobe::central::claims::Progress;

    let Replicas {
        _nx,
        a,
        b,
        now,
        lease,
        outage,
    } = Replicas::on_one_outage("closet-6");
    let am = "alertmanager 127.0.0.1:9093".to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let held = a
            .open_outage(&outage, "a", now, lease)
            .await
            .unwrap()
            .unwrap();
        let due = now.add(Duration::from_secs(60));
        let retry_at = now.add(Duration::from_secs(300));
        assert!(a
            .record(
                &held,
                Progress::Retry {
                    done: vec![am.clone()],
                    retry_at,
                    error: "webhook: no answer".into(),
                    am_next: Some(due),
                },
                now,
            )
            .await
            .unwrap());
        let firing = a.open().await.unwrap().remove(0);
        assert_eq!(firing.state, ClaimState::Firing);
        assert_eq!(firing.am_next, Some(due));
        assert_eq!(firing.done, vec![am.clone()]);
        assert_eq!(firing.lease_until, retry_at);

        let next = due.add(Duration::from_secs(60));
        let tries = (0..20).map(|i| {
            let c = if i % 2 == 0 { &a } else { &b };
            c.refresh(&firing, next)
        });
        let won = futures::future::join_all(tries)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().expect("no error, only lost races"))
            .count();
        assert_eq!(won, 1);
        let refreshed = a.open().await.unwrap().remove(0);
        assert_eq!(refreshed.am_next, Some(next));
        // The holder (whoever takes the retry) still holds it.
        assert!(a
            .record(
                &firing,
                Progress::Finished {
                    am_next: Some(next)
                },
                now
            )
            .await
            .unwrap());
        assert_eq!(a.open().await.unwrap().remove(0).state, ClaimState::Fired);
    });
}
