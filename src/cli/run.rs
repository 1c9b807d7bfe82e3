//! `edgeprobe run`: the monitor with its dashboard. Reads the settings,
//! opens the store and the sockets, then runs the probe loop, the web
//! server and the signal handler as tasks until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::{mpsc, watch};

use super::exit;
use super::mongo_args::MongoArgs;
use crate::alerts::sender::{AlertSender, Next, Unstored};
use crate::alerts::BoardAlerts;
use crate::clock::{Mono, Timestamp};
use crate::config::{Config, Environment, Overrides, ProbeSection, StoreSection};
use crate::http::{AllowedHosts, Limits};
use crate::leds::{self, LedPanel, LedSettings};
use crate::monitor::{
    BoardInfo, Command, Monitor, MonitorParts, SheetSource, Snapshot, UpstreamView,
};
use crate::probe::{LiveProbe, PingOptions, Prober, Resolver, RouteTable, TraceOptions};
use crate::store::{RetentionPolicy, Store};
use crate::systemd;
use crate::targets::Loader;
use crate::upstream::{Syncer, DEFAULT_BACKOFF_MAX};
use crate::web::{self, WebState};

/// Options of `edgeprobe run`. Each flag can also be set by the
/// `EDGEPROBE_*` variable named in its help, and both win over the file.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML config file; unknown keys are an error.
    #[arg(long, env = "EDGEPROBE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Targets sheet (.xlsx, .xls, .ods, .csv); reloaded when it changes.
    #[arg(long, env = "EDGEPROBE_TARGETS", value_name = "FILE")]
    targets: Option<PathBuf>,
    /// Sheet of the workbook to read (default: the first visible one).
    #[arg(long, env = "EDGEPROBE_SHEET", value_name = "NAME")]
    sheet: Option<String>,
    /// Dashboard address [default: 0.0.0.0:8080].
    #[arg(long, env = "EDGEPROBE_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Where the history database lives [default: $STATE_DIRECTORY,
    /// /var/lib/edgeprobe as root, else ./edgeprobe-state].
    #[arg(long, env = "EDGEPROBE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Time between rounds, e.g. 60s, 5m [default: 60s].
    #[arg(long, env = "EDGEPROBE_INTERVAL", value_name = "DURATION")]
    interval: Option<String>,
    /// This board's name in the dashboard and upstream [default: host name].
    #[arg(long, env = "EDGEPROBE_BOARD_ID", value_name = "ID")]
    board_id: Option<String>,
    /// File holding the admin token; without one the admin endpoints are off.
    #[arg(long, env = "EDGEPROBE_ADMIN_TOKEN_FILE", value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Echo requests per target per round [default: 3].
    #[arg(long, env = "EDGEPROBE_COUNT", value_name = "N")]
    count: Option<u32>,
    /// Wait for each reply, e.g. 1s, 500ms [default: 1s].
    #[arg(long, env = "EDGEPROBE_TIMEOUT", value_name = "DURATION")]
    timeout: Option<String>,
    /// Packets per second for everything sent; 0 = unpaced [default: 100].
    #[arg(long, env = "EDGEPROBE_RATE", value_name = "PPS")]
    rate: Option<u32>,
    /// Loss at or over which an answering target is Degraded [default: 0.2].
    #[arg(long, env = "EDGEPROBE_DEGRADED_LOSS", value_name = "FRACTION")]
    degraded_loss: Option<f64>,
    /// Bad rounds before a target is reported worse [default: 2].
    #[arg(long, env = "EDGEPROBE_DOWN_AFTER", value_name = "ROUNDS")]
    down_after: Option<u32>,
    /// Good rounds before a target is reported better [default: 1].
    #[arg(long, env = "EDGEPROBE_UP_AFTER", value_name = "ROUNDS")]
    up_after: Option<u32>,
    /// Time between traceroutes of a target [default: 10m].
    #[arg(long, env = "EDGEPROBE_TRACE_EVERY", value_name = "DURATION")]
    trace_every: Option<String>,
    /// Highest TTL traceroute probes [default: 30].
    #[arg(long, env = "EDGEPROBE_MAX_HOPS", value_name = "N")]
    max_hops: Option<u8>,
    /// How long results, traces and events are kept [default: 30d].
    #[arg(long, env = "EDGEPROBE_RETENTION", value_name = "DURATION")]
    retention: Option<String>,
    /// Size cap of the history database in MB [default: 256].
    #[arg(long, env = "EDGEPROBE_MAX_SIZE_MB", value_name = "MB")]
    max_size_mb: Option<u64>,
    #[command(flatten)]
    mongo: MongoArgs,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            board_id: self.board_id.clone(),
            targets: self.targets.clone(),
            sheet: self.sheet.clone(),
            listen: self.listen.clone(),
            state_dir: self.state_dir.clone(),
            admin_token_file: self.admin_token_file.clone(),
            probe: ProbeSection {
                interval: self.interval.clone(),
                count: self.count,
                timeout: self.timeout.clone(),
                rate: self.rate,
                degraded_loss: self.degraded_loss,
                down_after: self.down_after,
                up_after: self.up_after,
                trace_every: self.trace_every.clone(),
                max_hops: self.max_hops,
            },
            store: StoreSection {
                retention: self.retention.clone(),
                max_size_mb: self.max_size_mb,
            },
            mongo_uri: self.mongo.mongo_uri.clone(),
            mongo_uri_file: self.mongo.mongo_uri_file.clone(),
        }
    }
}

/// Run the monitor until SIGTERM or Ctrl-C.
pub fn run(args: &RunArgs) -> u8 {
    let file = match super::read_config(args.config.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let config = match Config::resolve(file, args.overrides(), &Environment::current()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgeprobe: {e}");
            return exit::UNUSABLE;
        }
    };
    super::serve_until_done("", monitor(config))
}

async fn monitor(config: Config) -> Result<(), String> {
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
    // The LEDs first: they chase from now until the first round ends.
    let (leds, led_task, led_stop) = start_leds(&config.leds, snapshot_rx.clone());

    let store = open_store(&config).await?;
    let reader = store.reader().map_err(|e| e.to_string())?;
    let (probe, warnings) = live_probe(&config)?;
    let firing = store.firing_alerts().map_err(|e| e.to_string())?;
    let silences = store.silences().map_err(|e| e.to_string())?;
    let alerts = BoardAlerts::new(&config.board_id, config.alerts.clone(), &firing, &silences);
    let unstored = Unstored::default();
    let alert_sender = Arc::new(AlertSender::new(&config.alerts, unstored.clone())?);

    let tls = match &config.tls {
        Some(files) => Some(
            crate::http::tls::acceptor(&files.certificate, &files.key)
                .map_err(|e| format!("[web] HTTPS: {e}"))?,
        ),
        None => None,
    };
    let listener = listen(config.listen)?;
    let local = listener
        .local_addr()
        .map_or_else(|_| config.listen.to_string(), |a| a.to_string());

    let (commands_tx, commands_rx) = mpsc::channel(16);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Before the (possibly slow) start: a SIGHUP or SIGTERM from now on is
    // handled, never the default action that kills the process.
    tokio::spawn(signals(commands_tx.clone(), shutdown_tx));

    let board = BoardInfo {
        id: config.board_id.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: Timestamp::now(),
        started_mono: Some(Mono::now()),
        interval: config.probe.interval,
    };
    let store = Arc::new(std::sync::Mutex::new(store));
    let upstream = syncer(&config, &store)?;
    let (upstream_tx, upstream_rx) = watch::channel(match &upstream {
        None => UpstreamView::Off,
        Some(s) => UpstreamView::Connecting {
            server: s.server().to_string(),
        },
    });

    let monitor = Monitor::start(MonitorParts {
        probe,
        settings: config.probe,
        sheet: SheetSource::new(
            config.targets.clone(),
            config.sheet.clone(),
            config.state_dir.clone(),
        )
        .with_loader(Loader::isolated(config.sheet_limits)),
        store: Arc::clone(&store),
        routes: Box::new(RouteTable::read_kernel),
        upstream: upstream_rx.clone(),
        board,
        warnings,
        snapshot: snapshot_tx,
        commands: commands_rx,
        alerts,
        unstored,
    })
    .await
    .map_err(|e| e.to_string())?;

    // Also without channels: what an earlier config queued is given up
    // (and counted) rather than left waiting for ever.
    let sender = tokio::spawn(send_alerts(
        Arc::clone(&store),
        Arc::clone(&alert_sender),
        shutdown_rx.clone(),
    ));
    let (sync_stop_tx, sync_stop_rx) = watch::channel(false);
    let sync = upstream
        .map(|syncer| tokio::spawn(syncer.run(snapshot_rx.clone(), upstream_tx, sync_stop_rx)));

    let web_state = Arc::new(WebState {
        snapshot: snapshot_rx.clone(),
        history: Arc::new(reader),
        admin_token: config.admin_token.clone().map(|t| t.0),
        commands: commands_tx.clone(),
        leds,
        alerts: alert_sender,
        limits: Limits {
            // An upload is a sheet: the same cap, one knob.
            body_max: usize::try_from(config.sheet_limits.max_file_bytes).unwrap_or(usize::MAX),
            ..Limits::default()
        },
        allowed_hosts: Arc::new(AllowedHosts::new(
            &config.allowed_hosts,
            web::WHERE_TO_ADD_HOSTS,
        )),
        tls,
    });
    let mut web_shutdown = shutdown_rx.clone();
    let web = tokio::spawn(web::serve(listener, web_state, async move {
        let _ = web_shutdown.wait_for(|s| *s).await;
    }));
    eprintln!("edgeprobe: {}", started_line(&config, &local));

    // Under systemd (Type=notify): ready now; the watchdog is fed while
    // rounds keep finishing.
    let notifier = systemd::Notifier::from_env().map(Arc::new);
    let feeder = notifier.as_ref().map(|n| {
        let _ = n.notify("READY=1");
        tokio::spawn(feed_systemd(
            Arc::clone(n),
            snapshot_rx.clone(),
            systemd::watchdog_period(),
        ))
    });

    let saved = monitor.run(shutdown_rx).await;
    if let Some(n) = &notifier {
        let _ = n.notify("STOPPING=1");
    }
    if let Some(feeder) = feeder {
        feeder.abort();
    }
    if let Some(sync) = sync {
        // The last round was just published: give the sync a moment to
        // send it, so a clean stop leaves nothing behind when it can.
        final_flush(&store, upstream_rx).await;
        let _ = sync_stop_tx.send(true);
        let _ = sync.await;
    }
    // The server bounds its own graceful shutdown (`Limits::shutdown_grace`).
    if let Ok(Err(e)) = web.await {
        eprintln!("edgeprobe: dashboard: {e}");
    }
    let _ = sender.await;
    // LEDs off, and pins handed back (a sysfs LED gets its trigger back).
    let _ = led_stop.send(true);
    let _ = led_task.await;
    if saved {
        eprintln!("edgeprobe: stopped; the last round is saved");
        Ok(())
    } else {
        Err("stopped, but the last round could not be saved (see above)".into())
    }
}

/// Open (or create) the history in the state directory, off the runtime's
/// threads: a damaged file is moved aside, which can take a while on an SD
/// card.
async fn open_store(config: &Config) -> Result<Store, String> {
    let policy = RetentionPolicy {
        max_age: config.store.retention,
        max_bytes: config.store.max_bytes,
        ..RetentionPolicy::default()
    };
    let state_dir = config.state_dir.clone();
    tokio::task::spawn_blocking(move || Store::open(&state_dir, policy))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The sockets and the sending thread, with the probe settings; an error
/// if nothing can ping at all, and the warnings (printed here, and shown
/// on the dashboard) for what only works in part.
fn live_probe(config: &Config) -> Result<(Arc<LiveProbe>, Vec<String>), String> {
    let prober = Prober::new(config.probe.rate)
        .map_err(|e| format!("cannot start the packet sending thread: {e}"))?;
    if !prober.can_ping() {
        return Err(format!(
            "cannot ping at all:\n  {}",
            prober.warnings(false).join("\n  ")
        ));
    }
    let warnings = prober.warnings(true);
    for w in &warnings {
        eprintln!("edgeprobe: warning: {w}");
    }
    let probe = LiveProbe {
        prober,
        ping: PingOptions {
            count: config.probe.count,
            timeout: config.probe.timeout,
            degraded_loss: config.probe.degraded_loss,
        },
        trace: TraceOptions {
            max_hops: config.probe.max_hops,
            timeout: config.probe.timeout,
            // A hop whose router has no token within a timeout is asked
            // again in a later round (see `monitor::state`).
            patience: config.probe.timeout,
            remember: config.probe.trace_every,
        },
        resolver: Resolver::new(),
    };
    Ok((Arc::new(probe), warnings))
}

/// The upstream sync, when `[mongo]` is configured.
fn syncer(config: &Config, store: &Arc<std::sync::Mutex<Store>>) -> Result<Option<Syncer>, String> {
    let Some(m) = &config.mongo else {
        return Ok(None);
    };
    // Retry at least once per interval: central judges a board offline
    // after three intervals without a heartbeat.
    let backoff_max = DEFAULT_BACKOFF_MAX.min(config.probe.interval.max(Duration::from_secs(5)));
    Syncer::new(m, backoff_max, config.board_id.clone(), Arc::clone(store))
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The line that says the monitor is up and where everything is.
fn started_line(config: &Config, dashboard: &str) -> String {
    format!(
        "board {} monitoring every {}; dashboard on {}://{dashboard}/ ; history in {}; upstream {}; LEDs {}; admin endpoints {}",
        config.board_id,
        crate::config::format_duration(config.probe.interval),
        if config.tls.is_some() { "https" } else { "http" },
        config.state_dir.display(),
        config
            .mongo
            .as_ref()
            .map_or_else(|| "off".to_string(), |m| crate::fleet::redact(&m.uri)),
        config.leds.backend.name(),
        if config.admin_token.is_some() { "on" } else { "off (no admin token)" }
    )
}

/// How often the alert queue is looked at.
const ALERT_PASS: Duration = Duration::from_secs(2);

/// Send the queued alert notifications until shutdown, a pass every
/// [`ALERT_PASS`]; what was refused or given up is said on stderr (and
/// counted, and listed on the notifications page).
async fn send_alerts(
    store: Arc<std::sync::Mutex<Store>>,
    sender: Arc<AlertSender>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(ALERT_PASS);
    // A slow pass (a channel taking its 10 s) is not followed by a burst.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        match sender.pass(&store, Timestamp::now()).await {
            Ok(report) => {
                for (channel, next) in report.attempts {
                    match next {
                        Next::Refused(why) => {
                            eprintln!("edgeprobe: alert to {channel} refused, not retried: {why}");
                        }
                        Next::GivenUp(why) => {
                            eprintln!("edgeprobe: alert to {channel} given up: {why}");
                        }
                        Next::Delivered | Next::RetryAt(..) => {}
                    }
                }
            }
            Err(e) => eprintln!("edgeprobe: alert queue: {e}"),
        }
    }
}

/// Open the configured LEDs and start driving them from the snapshots.
/// LEDs that cannot be opened are reported (and shown on the dashboard);
/// the monitor runs without them.
fn start_leds(
    settings: &LedSettings,
    snapshots: watch::Receiver<Arc<Snapshot>>,
) -> (LedPanel, tokio::task::JoinHandle<()>, watch::Sender<bool>) {
    let opened = leds::open_leds(settings);
    for failure in &opened.failures {
        eprintln!("edgeprobe: warning: LED not driven (probing goes on): {failure}");
    }
    let panel = LedPanel::new(settings, opened.failures);
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(leds::task::drive(
        opened.bank,
        panel.clone(),
        snapshots,
        Timestamp::now,
        stop_rx,
    ));
    (panel, task, stop_tx)
}

/// Tell systemd how the monitor is doing, and feed its watchdog (when one
/// is set) while the probe loop is alive by the `/healthz` rule: a loop
/// that stops finishing rounds stops the feeding, and systemd restarts us.
async fn feed_systemd(
    notifier: Arc<systemd::Notifier>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    watchdog: Option<Duration>,
) {
    let every = watchdog.unwrap_or(Duration::from_secs(10));
    loop {
        // Read under the channel's lock and let go before the sleep: a
        // snapshot held here would make each publish copy it.
        let (status, alive) = {
            let snap = snapshots.borrow();
            let alive = crate::monitor::health(&snap, Timestamp::now(), Mono::now()).ok();
            (systemd::status_line(&snap), alive)
        };
        let message = if watchdog.is_some() && alive {
            format!("WATCHDOG=1\n{status}")
        } else {
            status
        };
        if let Err(e) = notifier.notify(&message) {
            eprintln!("edgeprobe: cannot notify systemd: {e}");
        }
        tokio::time::sleep(every).await;
    }
}

/// How long a stop waits for the sync to send what is left.
const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// Wait until the sync has sent what is left and told the server (the
/// board document follows the last drain), the server is found
/// unreachable, or [`FINAL_FLUSH`] has passed, whichever comes first.
async fn final_flush(
    store: &Arc<std::sync::Mutex<Store>>,
    upstream: watch::Receiver<UpstreamView>,
) {
    let asked = Timestamp::now();
    let deadline = tokio::time::Instant::now() + FINAL_FLUSH;
    let mut first = true;
    while tokio::time::Instant::now() < deadline {
        let view = upstream.borrow().clone();
        if matches!(view, UpstreamView::Unreachable { .. }) {
            break;
        }
        let store = Arc::clone(store);
        let backlog = tokio::task::spawn_blocking(move || {
            store
                .lock()
                .map_or(None, |s| s.stats().ok().map(|st| st.backlog))
        })
        .await
        .ok()
        .flatten();
        let reported = matches!(view, UpstreamView::Synced { last_sync, .. } if last_sync >= asked);
        if backlog == Some(0) && (first || reported) {
            return;
        }
        first = false;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "edgeprobe: rows not yet upstream stay in the outbox and are sent after the next start"
    );
}

/// SIGHUP reloads the sheet; SIGTERM and SIGINT stop the monitor.
async fn signals(commands: mpsc::Sender<Command>, shutdown: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("edgeprobe: cannot install signal handlers; stop it with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                eprintln!("edgeprobe: SIGHUP: reloading the targets sheet");
                let _ = commands.send(Command::ReloadTargets).await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    eprintln!("edgeprobe: stopping after the round in flight (signal again to stop at once)");
    let _ = shutdown.send(true);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("edgeprobe: stopped at once; the round in flight is not saved");
    std::process::exit(i32::from(exit::UNUSABLE));
}

/// The dashboard's socket: one handed over by systemd-style socket
/// activation (`LISTEN_FDS=1`, `LISTEN_PID` = this process; the demo uses
/// it to serve the host's 127.0.0.1 from inside a network namespace), or a
/// new one bound to `addr`.
fn listen(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, String> {
    let activated = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id())
        && std::env::var("LISTEN_FDS").ok().as_deref() == Some("1");
    let std_listener = if activated {
        inherited_listener()?
    } else {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .map_err(|e| format!("cannot open the dashboard socket: {e}"))?;
        let _ = socket.set_reuse_address(true);
        socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(128))
            .map_err(|e| {
                format!("cannot listen on {addr}: {e}; choose another address with --listen (e.g. 127.0.0.1:8081)")
            })?;
        std::net::TcpListener::from(socket)
    };
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("dashboard socket: {e}"))?;
    tokio::net::TcpListener::from_std(std_listener).map_err(|e| format!("dashboard socket: {e}"))
}

/// File descriptor 3, passed by the process that started us.
fn inherited_listener() -> Result<std::net::TcpListener, String> {
    use std::os::fd::{FromRawFd, OwnedFd};
    const SD_LISTEN_FDS_START: i32 = 3;
    // Only trust fd 3 if it really is a listening TCP socket.
    let mut accepting: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    #[allow(unsafe_code)]
    // SAFETY: getsockopt writes at most `len` bytes into `accepting`, a
    // live c_int, and fails harmlessly if fd 3 is not a socket.
    let rc = unsafe {
        libc::getsockopt(
            SD_LISTEN_FDS_START,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut accepting as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || accepting != 1 {
        return Err("LISTEN_FDS is set but file descriptor 3 is not a listening socket; unset LISTEN_FDS and LISTEN_PID".into());
    }
    #[allow(unsafe_code)]
    // SAFETY: fd 3 was handed to this process (LISTEN_PID matches) and is a
    // listening socket, checked above; nothing else in the process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(SD_LISTEN_FDS_START) };
    // Handed over without close-on-exec; set it, so that no program this
    // process starts (the workbook reader) inherits the dashboard.
    #[allow(unsafe_code)]
    // SAFETY: fcntl on a descriptor this process owns only sets its flag.
    let rc = unsafe { libc::fcntl(SD_LISTEN_FDS_START, libc::F_SETFD, libc::FD_CLOEXEC) };
    if rc != 0 {
        return Err(format!(
            "cannot mark the dashboard socket close-on-exec: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(std::net::TcpListener::from(fd))
}
