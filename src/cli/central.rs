//! `edgeprobe central`: the fleet dashboard. Reads its settings (flags or
//! `EDGEPROBE_*` variables; the MongoDB flags are the shared
//! [`MongoArgs`], resolved into a [`MongoSettings`]; who may sign in from
//! `--config`), decides where it may listen ([`plan_listen`]: loopback
//! only while nobody must sign in, unless `--no-auth`), opens the
//! listener, serves until SIGTERM or Ctrl-C.
//!
//! `edgeprobe central hash-password` and `new-token` make what `[auth]`
//! holds: an argon2id hash of a password read from stdin, and an API
//! token with the SHA-256 line to configure.

use std::io::{BufRead, IsTerminal};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::exit;
use super::mongo_args::MongoArgs;
use crate::alerts::settings::AlertSettings;
use crate::central::alerter::{self, Alerter};
use crate::central::auth::{self, password, token, AuthSettings};
use crate::central::claims::MongoClaims;
use crate::central::indexes::{self, Retention};
use crate::central::public_url::BasePath;
use crate::central::summary::DEFAULT_SLOTS;
use crate::central::{self, CentralState, MongoFleet};
use crate::fleet::MongoSettings;
use crate::http::{AllowedHosts, Limits};

/// Options of `edgeprobe central`.
#[derive(Debug, Args)]
pub struct CentralArgs {
    #[command(subcommand)]
    action: Option<CentralAction>,
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
    /// Dashboard address. While nobody must sign in (no --config users,
    /// tokens or proxy header) only its port is used, on 127.0.0.1 (::1
    /// for an IPv6 address), unless --no-auth.
    #[arg(
        long,
        env = "EDGEPROBE_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:8090"
    )]
    listen: SocketAddr,
    /// A name the dashboard answers to (the `Host` its users or proxy
    /// send); repeat for more. Besides these only `localhost` and IP
    /// literals of its own or loopback addresses are answered; other
    /// names get 421 (against DNS rebinding).
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
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
    /// A TOML file whose `[auth]` table says who may sign in: users with
    /// password hashes, API token hashes, the cookie key file, trusted
    /// proxies. Without users, tokens or a proxy user header central
    /// listens on 127.0.0.1 only.
    #[arg(long, env = "EDGEPROBE_CENTRAL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve on --listen without any sign-in, even on a public address:
    /// anyone who reaches it sees the whole fleet. Refused when --config
    /// configures sign-in.
    #[arg(long)]
    no_auth: bool,
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

/// What `edgeprobe central` does besides serving.
#[derive(Debug, Subcommand)]
enum CentralAction {
    /// Read a password from standard input (one line, at least 12
    /// characters) and print its argon2id hash for `password_hash` under
    /// `[[auth.users]]`.
    HashPassword,
    /// Print a new random API token (give it to the client) and the
    /// `[[auth.tokens]]` entry with its SHA-256 (put that in --config).
    NewToken {
        /// The token's name in the entry (it shows in the logs).
        #[arg(long, default_value = "api-client")]
        name: String,
    },
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

/// How exposed central is, given what `--config` and `--no-auth` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exposure {
    /// Sign-in is configured: listen as asked.
    SignIn,
    /// Nothing configured: loopback only; `asked` when that was moved.
    LoopbackOnly { asked: Option<SocketAddr> },
    /// `--no-auth`: as asked, without sign-in.
    NoAuth,
}

/// Where to listen, and how exposed that is: as asked with sign-in or
/// `--no-auth`; without either, on the loopback address of the asked
/// family (127.0.0.1 or ::1) and the asked port. `--no-auth` with
/// sign-in configured is an error.
fn plan_listen(
    asked: SocketAddr,
    signs_in: bool,
    no_auth: bool,
) -> Result<(SocketAddr, Exposure), String> {
    match (signs_in, no_auth) {
        (true, true) => Err(
            "--no-auth turns sign-in off, but --config configures it ([auth] users, tokens or              proxy_user_header); drop --no-auth, or the [auth] entries"
                .into(),
        ),
        (true, false) => Ok((asked, Exposure::SignIn)),
        (false, true) => Ok((asked, Exposure::NoAuth)),
        (false, false) if asked.ip().is_loopback() => {
            Ok((asked, Exposure::LoopbackOnly { asked: None }))
        }
        (false, false) => {
            let loopback = match asked.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            let addr = SocketAddr::new(loopback, asked.port());
            Ok((addr, Exposure::LoopbackOnly { asked: Some(asked) }))
        }
    }
}

/// The line that says how exposed the dashboard on `local` is, if any.
fn exposure_line(exposure: Exposure, local: &str) -> Option<String> {
    match exposure {
        Exposure::SignIn => None,
        Exposure::NoAuth => Some(format!(
            "--no-auth: anyone who can reach {local} sees the whole fleet"
        )),
        Exposure::LoopbackOnly { asked } => {
            let instead = asked.map_or_else(String::new, |a| format!(" instead of {a}"));
            Some(format!(
                "no sign-in is configured, so listening on {local} only{instead}; to serve                  other hosts give --config FILE with [auth] users or tokens, or --no-auth"
            ))
        }
    }
}

/// The `[auth]` of `--config`, or sign-in off without the flag.
fn auth_settings(args: &CentralArgs) -> Result<AuthSettings, String> {
    match &args.config {
        None => Ok(AuthSettings::default()),
        Some(path) => auth::settings::read_file(path),
    }
}

/// `edgeprobe central hash-password`: the password from stdin's first
/// line, its hash on stdout.
fn hash_password() -> u8 {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "Password (at least {} characters; it shows as you type), then Enter:",
            password::MIN_PASSWORD_CHARS
        );
    }
    let mut line = String::new();
    if let Err(e) = stdin.lock().read_line(&mut line) {
        eprintln!("edgeprobe: central hash-password: cannot read standard input: {e}");
        return exit::UNUSABLE;
    }
    let typed = line.strip_suffix('\n').unwrap_or(&line);
    let typed = typed.strip_suffix('\r').unwrap_or(typed);
    let hashed = password::check_new_password(typed).and_then(|()| password::hash_password(typed));
    match hashed {
        Ok(phc) => {
            println!("{phc}");
            eprintln!(
                "edgeprobe: central hash-password: put it under [[auth.users]] as \
                 password_hash = \"...\" beside the user's name"
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("edgeprobe: central hash-password: {e}");
            exit::UNUSABLE
        }
    }
}

/// `edgeprobe central new-token`: the token, then its config entry.
fn new_token(name: &str) -> u8 {
    match token::new_token() {
        Ok(t) => {
            println!("{t}");
            println!();
            println!("[[auth.tokens]]");
            println!("name = {name:?}");
            println!(
                "sha256 = \"{}\"",
                token::to_hex(&token::sha256(t.as_bytes()))
            );
            eprintln!(
                "edgeprobe: central new-token: the first line is the token: give it to the \
                 client (Authorization: Bearer <token>); it is not kept anywhere. Put the \
                 [[auth.tokens]] entry in central's --config."
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("edgeprobe: central new-token: {e}");
            exit::UNUSABLE
        }
    }
}

/// Serve the fleet dashboard until SIGTERM or Ctrl-C, or run one of its
/// helpers.
pub fn run(args: &CentralArgs) -> u8 {
    match &args.action {
        Some(CentralAction::HashPassword) => return hash_password(),
        Some(CentralAction::NewToken { name }) => return new_token(name),
        None => {}
    }
    let setup = auth_settings(args).and_then(|auth| {
        let (listen, exposure) = plan_listen(args.listen, auth.signs_in(), args.no_auth)?;
        let uri = args.uri()?;
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
        Ok((
            fleet,
            alerts,
            Listen {
                auth,
                addr: listen,
                exposure,
            },
        ))
    });
    match setup {
        Ok((fleet, alerts, listen)) => {
            super::serve_until_done("central: ", serve(fleet, alerts, listen, args))
        }
        Err(e) => {
            eprintln!("edgeprobe: central: {e}");
            exit::UNUSABLE
        }
    }
}

/// Where and how the dashboard listens.
struct Listen {
    auth: AuthSettings,
    addr: SocketAddr,
    exposure: Exposure,
}

async fn serve(
    fleet: Arc<MongoFleet>,
    alerts: Option<Alerter>,
    listen: Listen,
    args: &CentralArgs,
) -> Result<(), String> {
    // Plain bind: central runs on an ordinary host or container, without
    // the board's socket-activation trick for network namespaces.
    let listener = tokio::net::TcpListener::bind(listen.addr)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}; choose another address with --listen (e.g. 127.0.0.1:8091)",
                listen.addr
            )
        })?;
    let local = listener
        .local_addr()
        .map_or_else(|_| listen.addr.to_string(), |a| a.to_string());
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
    if let Some(line) = exposure_line(listen.exposure, &local) {
        eprintln!("edgeprobe: central: {line}");
    }
    let mut state = CentralState::new(
        fleet,
        args.database.clone(),
        Limits::default(),
        listen.auth,
        args.base_path.clone(),
        args.max_queries,
    );
    state.allowed_hosts = Arc::new(AllowedHosts::new(
        &args.allowed_hosts,
        "--allowed-host NAME",
    ));
    let state = Arc::new(state);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn without_sign_in_central_listens_on_loopback_only() {
        let asked = addr("0.0.0.0:8090");
        assert_eq!(
            plan_listen(asked, false, false),
            Ok((
                addr("127.0.0.1:8090"),
                Exposure::LoopbackOnly { asked: Some(asked) }
            ))
        );
        let v6 = addr("[::]:8090");
        assert_eq!(
            plan_listen(v6, false, false),
            Ok((
                addr("[::1]:8090"),
                Exposure::LoopbackOnly { asked: Some(v6) }
            ))
        );
        let local = addr("127.0.0.1:0");
        assert_eq!(
            plan_listen(local, false, false),
            Ok((local, Exposure::LoopbackOnly { asked: None }))
        );
    }

    #[test]
    fn sign_in_or_no_auth_listen_as_asked_but_not_both() {
        let asked = addr("0.0.0.0:8090");
        assert_eq!(
            plan_listen(asked, true, false),
            Ok((asked, Exposure::SignIn))
        );
        assert_eq!(
            plan_listen(asked, false, true),
            Ok((asked, Exposure::NoAuth))
        );
        let both = plan_listen(asked, true, true).unwrap_err();
        assert!(
            both.contains("--no-auth") && both.contains("[auth]"),
            "{both}"
        );
    }

    #[test]
    fn the_exposure_is_said_at_start() {
        assert_eq!(exposure_line(Exposure::SignIn, "0.0.0.0:8090"), None);
        assert_eq!(
            exposure_line(Exposure::NoAuth, "0.0.0.0:8090").as_deref(),
            Some("--no-auth: anyone who can reach 0.0.0.0:8090 sees the whole fleet")
        );
        let moved = exposure_line(
            Exposure::LoopbackOnly {
                asked: Some(addr("0.0.0.0:8090")),
            },
            "127.0.0.1:8090",
        )
        .expect("a line");
        assert!(
            moved.contains("127.0.0.1:8090 only instead of 0.0.0.0:8090")
                && moved.contains("--config")
                && moved.contains("--no-auth"),
            "{moved}"
        );
    }
}
