//! `edgeprobe central`: the fleet dashboard. Reads its settings (flags or
//! `EDGEPROBE_*` variables; the MongoDB flags are the shared
//! [`MongoArgs`], resolved into a [`MongoSettings`]), opens the listener,
//! serves until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;

use super::exit;
use super::mongo_args::MongoArgs;
use crate::central::{self, CentralState, MongoFleet};
use crate::fleet::MongoSettings;
use crate::http::Limits;

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

/// Serve the fleet dashboard until SIGTERM or Ctrl-C.
pub fn run(args: &CentralArgs) -> u8 {
    let fleet = args.uri().and_then(|uri| {
        let settings = MongoSettings {
            database: args.database.clone(),
            ..MongoSettings::new(uri)
        };
        MongoFleet::new(&settings).map_err(|e| e.to_string())
    });
    match fleet {
        Ok(fleet) => super::serve_until_done("central: ", serve(fleet, args)),
        Err(e) => {
            eprintln!("edgeprobe: central: {e}");
            exit::UNUSABLE
        }
    }
}

async fn serve(fleet: MongoFleet, args: &CentralArgs) -> Result<(), String> {
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
    let server = central::FleetSource::server(&fleet).to_string();
    let state = Arc::new(CentralState {
        source: Arc::new(fleet),
        database: args.database.clone(),
        limits: Limits::default(),
    });
    // Same words as `edgeprobe run`, so scripts find the address alike.
    eprintln!(
        "edgeprobe: central: dashboard on http://{local}/ ; MongoDB {server}, database {}",
        args.database
    );
    central::serve(listener, state, stop_signal())
        .await
        .map_err(|e| format!("dashboard: {e}"))?;
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
