//! `edgeprobe central`: the fleet dashboard. Reads its settings (flags or
//! `EDGEPROBE_*` variables; the MongoDB flags are the shared
//! [`MongoArgs`], resolved into a [`MongoSettings`]), opens the listener,
//! serves until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::exit;
use super::mongo_args::MongoArgs;
use crate::alerts::settings::AlertSettings;
use crate::central::alerter::{self, Alerter};
use crate::central::claims::MongoClaims;
use crate::central::indexes::{self, Retention};
use crate::central::public_url::BasePath;
use crate::central::summary::DEFAULT_SLOTS;
use crate::central::{self, CentralState, MongoFleet};
use crate::fleet::MongoSettings;

/// Options of `edgeprobe central`.
#[derive(Debug, Args)]
pub struct CentralArgs {
    #[command(flatten)]
    mongo: MongoArgs,
    /// Database the boards sync to.
    #[arg(
        long,
        env = "EDGEPROBE_MONGO_DATABASE",
        value_name = "NAME",
        default_value = "edgeprobe"
    )]
    database: String,
    /// Dashboard address.
    #[arg(
        long,
        env = "EDGEPROBE_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:8090"
    )]
    listen: SocketAddr,
    /// A TOML file whose `[alerts]` table (the board's syntax) says where
    /// board-offline and back-online alerts go. Without it central raises
    /// no alerts.
    #[arg(long, env = "EDGEPROBE_ALERTS_CONFIG", value_name = "FILE")]
    alerts_config: Option<PathBuf>,
    /// How often central looks for boards that went offline or came back
    /// (at least 1s).
    #[arg(
        long,
        env = "EDGEPROBE_ALERTS_EVERY",
        value_name = "DURATION",
        default_value = "15s",
        value_parser = alerts_every
    )]
    alerts_every: Duration,
    /// The path prefix central is published under behind a reverse proxy
    /// that passes it on (e.g. /edgeprobe); links and redirects use it.
    #[arg(long, env = "EDGEPROBE_BASE_PATH", value_name = "PATH", default_value = "", value_parser = base_path)]
    base_path: BasePath,
    /// How long raw results and traces are kept centrally (a TTL index on
    /// `ts`, created at start).
    #[arg(long, env = "EDGEPROBE_KEEP_RESULTS", value_name = "DURATION", default_value = "14d", value_parser = keep)]
    keep_results: Duration,
    /// How long hourly rollups are kept centrally (a TTL index on `hour`);
    /// availability over 30 d needs at least 30d.
    #[arg(long, env = "EDGEPROBE_KEEP_ROLLUPS", value_name = "DURATION", default_value = "400d", value_parser = keep_rollups)]
    keep_rollups: Duration,
    /// Requests that may read MongoDB at once; more wait up to 2 s, then
    /// get 429.
    #[arg(long, env = "EDGEPROBE_MAX_QUERIES", value_name = "N", default_value_t = DEFAULT_SLOTS,
          value_parser = max_queries)]
    max_queries: usize,
}

/// `--max-queries`: 1 to 1024.
fn max_queries(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a number from 1 to 1024")),
    }
}

/// `--base-path`: a path prefix.
fn base_path(text: &str) -> Result<BasePath, String> {
    BasePath::parse(text)
}

/// `--keep-results`: at least a day.
fn keep(text: &str) -> Result<Duration, String> {
    let d = crate::config::parse_duration(text)?;
    if d < Duration::from_secs(86_400) {
        return Err(format!("{text:?} is shorter than a day; write at least 1d"));
    }
    Ok(d)
}

/// `--keep-rollups`: at least the 30 days the longest window reads.
fn keep_rollups(text: &str) -> Result<Duration, String> {
    let d = crate::config::parse_duration(text)?;
    if d < Duration::from_secs(30 * 86_400) {
        return Err(format!(
            "{text:?} is shorter than the 30 days availability is shown for; write at least 30d"
        ));
    }
    Ok(d)
}

/// `--alerts-every`: a duration of at least a second.
fn alerts_every(text: &str) -> Result<Duration, String> {
    let d = crate::config::parse_duration(text)?;
    if d < Duration::from_secs(1) {
        return Err(format!("{text:?} is too often; write at least 1s"));
    }
    Ok(d)
}

impl CentralArgs {
    /// The connection string from exactly one of the two places.
    fn uri(&self) -> Result<String, String> {
        match (&self.mongo.mongo_uri, &self.mongo.mongo_uri_file) {
            (Some(_), Some(_)) => Err(
                "both --mongo-uri (EDGEPROBE_MONGO_URI) and --mongo-uri-file \
                 (EDGEPROBE_MONGO_URI_FILE) are set; keep one"
                    .into(),
            ),
            (None, None) => Err("say where MongoDB is: --mongo-uri mongodb://HOST:27017 or \
                 --mongo-uri-file FILE (or EDGEPROBE_MONGO_URI / EDGEPROBE_MONGO_URI_FILE)"
                .into()),
            (Some(uri), None) => Ok(uri.trim().to_string()),
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Ok(_) => Err(format!(
                    "{} is empty; write the connection string into it",
                    path.display()
                )),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            },
        }
    }
}

/// What `--alerts-config` names: its settings, or `None` without the
/// flag or without a channel in it (said once on stderr either way).
fn alert_settings(args: &CentralArgs) -> Result<Option<AlertSettings>, String> {
    let Some(path) = &args.alerts_config else {
        eprintln!(
            "edgeprobe: central: no --alerts-config (EDGEPROBE_ALERTS_CONFIG): \
             raising no board-offline alerts"
        );
        return Ok(None);
    };
    let (settings, warnings) = alerter::read_settings(path)?;
    for w in warnings {
        eprintln!("edgeprobe: central: {w}");
    }
    if settings.channels.is_empty() {
        eprintln!(
            "edgeprobe: central: {} lists no channel under [alerts]: raising no board-offline alerts",
            path.display()
        );
        return Ok(None);
    }
    Ok(Some(settings))
}

/// Serve the fleet dashboard until SIGTERM or Ctrl-C.
pub fn run(args: &CentralArgs) -> u8 {
    let setup = args.uri().and_then(|uri| {
        let settings = MongoSettings {
            database: args.database.clone(),
            ..MongoSettings::new(uri)
        };
        let fleet = Arc::new(MongoFleet::new(&settings).map_err(|e| e.to_string())?);
        let alerts = match alert_settings(args)? {
            None => None,
            Some(alerts) => {
                let claims = MongoClaims::new(&settings).map_err(|e| e.to_string())?;
                let source: Arc<dyn central::FleetSource> = fleet.clone();
                Some(Alerter::new(
                    source,
                    claims,
                    &alerts,
                    alerter::replica_name(),
                )?)
            }
        };
        Ok((fleet, alerts))
    });
    match setup {
        Ok((fleet, alerts)) => super::serve_until_done("central: ", serve(fleet, alerts, args)),
        Err(e) => {
            eprintln!("edgeprobe: central: {e}");
            exit::UNUSABLE
        }
    }
}

async fn serve(
    fleet: Arc<MongoFleet>,
    alerts: Option<Alerter>,
    args: &CentralArgs,
) -> Result<(), String> {
    // Plain bind: central runs on an ordinary host or container, without
    // the board's socket-activation trick for network namespaces.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}; choose another address with --listen (e.g. 127.0.0.1:8091)",
                args.listen
            )
        })?;
    let local = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    let server = central::FleetSource::server(fleet.as_ref()).to_string();
    // The indexes (TTL ones included) in the background: a server that is
    // down at start must not keep the dashboard from saying so.
    let retention = Retention {
        raw: args.keep_results,
        rollups: args.keep_rollups,
    };
    let index_task = {
        let fleet = Arc::clone(&fleet);
        tokio::spawn(async move {
            match fleet.database().await {
                Ok(db) => {
                    for problem in indexes::ensure(&db, retention).await {
                        eprintln!("edgeprobe: central: {problem}");
                    }
                }
                Err(e) => eprintln!("edgeprobe: central: indexes not checked: {e}"),
            }
        })
    };
    let state = Arc::new(CentralState::new(
        fleet,
        args.database.clone(),
        args.base_path.clone(),
        args.max_queries,
    ));
    // Same words as `edgeprobe run`, so scripts find the address alike.
    eprintln!(
        "edgeprobe: central: dashboard on http://{local}{}/ ; MongoDB {server}, database {}",
        args.base_path.as_str(),
        args.database
    );
    // The alert loop runs beside the dashboard and stops with it; a pass
    // cut short leaves a claim whose lease another replica takes over.
    let alert_loop = alerts.map(|a| {
        eprintln!(
            "edgeprobe: central: alerts: board offline / back online to {} every {}",
            a.channel_labels().join(", "),
            crate::config::format_duration(args.alerts_every)
        );
        tokio::spawn(a.run(args.alerts_every))
    });
    let served = central::serve(listener, state, stop_signal()).await;
    index_task.abort();
    if let Some(task) = alert_loop {
        task.abort();
    }
    served.map_err(|e| format!("dashboard: {e}"))?;
    eprintln!("edgeprobe: central: stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; never when the handlers cannot be
/// installed (then the default action stops the process, which is as
/// good for a stateless server).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            eprintln!("edgeprobe: central: stopping; letting requests in flight finish");
        }
        _ => std::future::pending().await,
    }
}
