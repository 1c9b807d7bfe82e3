//! The `--mongo-uri` / `--mongo-uri-file` flags that `edgeprobe run` (to
//! sync to the fleet's MongoDB) and `edgeprobe central` (to read it) share.

use std::path::PathBuf;

use clap::Args;

/// Where the fleet's MongoDB is, from the command line or the environment.
#[derive(Debug, Args)]
pub struct MongoArgs {
    /// The fleet's MongoDB (mongodb://... or mongodb+srv://...), e.g.
    /// mongodb://db.example:27017: `run` syncs results to it, `central`
    /// reads them. With a password in it, prefer --mongo-uri-file:
    /// arguments show in `ps`.
    #[arg(
        long,
        env = "EDGEPROBE_MONGO_URI",
        value_name = "URI",
        hide_env_values = true
    )]
    pub mongo_uri: Option<String>,
    /// File holding the MongoDB URI (surrounding whitespace ignored).
    #[arg(long, env = "EDGEPROBE_MONGO_URI_FILE", value_name = "FILE")]
    pub mongo_uri_file: Option<PathBuf>,
}
