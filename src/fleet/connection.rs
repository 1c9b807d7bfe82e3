//! The MongoDB connection both sides open, the boards' sync
//! (`crate::upstream`) and the fleet dashboard (`crate::central`): the
//! client options and timeouts, a client made on first use, and the one
//! place that makes a connection string safe to print (labels without
//! credentials, messages with the password scrubbed).
//!
//! The client is created on first use, not at start: parsing a
//! `mongodb+srv://` URI resolves DNS, and a board that boots (or a central
//! that starts) while the network is down must still start. Timeouts are
//! short so that a dead server fails an operation in seconds rather than
//! the driver's default 30 s; options in the URI win over ours.

use std::fmt;
use std::time::Duration;

use mongodb::options::{ClientOptions, ConnectionString};
use mongodb::{Client, Database};
use tokio::sync::OnceCell;

/// How long an operation waits for a usable server before failing.
pub const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which step of making the client failed.
#[derive(Debug)]
pub enum SetupError {
    /// Reading the URI into options (an SRV name that does not resolve).
    Options(mongodb::error::Error),
    /// Creating the client from them.
    Client(mongodb::error::Error),
}

/// A database on a MongoDB server, connected on first use.
pub struct Connection {
    /// With credentials: never printed (see the `Debug` impl).
    uri: String,
    database: String,
    /// The driver's `appName`, unless the URI sets one.
    app_name: &'static str,
    /// Made on first use, and again after a failure.
    client: OnceCell<Client>,
}

impl fmt::Debug for Connection {
    // By hand: the derived form would print the URI with its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("database", &self.database)
            .field("app_name", &self.app_name)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Check the URI's syntax (no network yet) and remember where to go.
    pub fn new(
        uri: &str,
        database: &str,
        app_name: &'static str,
    ) -> Result<Connection, mongodb::error::Error> {
        ConnectionString::parse(uri)?;
        Ok(Connection {
            uri: uri.to_string(),
            database: database.to_string(),
            app_name,
            client: OnceCell::new(),
        })
    }

    /// The database's name.
    pub fn database_name(&self) -> &str {
        &self.database
    }

    /// The client, made now if it was not yet.
    pub async fn client(&self) -> Result<&Client, SetupError> {
        self.client
            .get_or_try_init(|| async {
                let mut opts = ClientOptions::parse(&self.uri)
                    .await
                    .map_err(SetupError::Options)?;
                opts.server_selection_timeout
                    .get_or_insert(SERVER_SELECTION_TIMEOUT);
                opts.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
                opts.app_name
                    .get_or_insert_with(|| self.app_name.to_string());
                Client::with_options(opts).map_err(SetupError::Client)
            })
            .await
    }

    /// The database, through [`Connection::client`].
    pub async fn database(&self) -> Result<Database, SetupError> {
        Ok(self.client().await?.database(&self.database))
    }

    /// `text` with this connection's credentials scrubbed ([`scrub`]).
    pub fn scrub(&self, text: &str) -> String {
        scrub(text, &self.uri)
    }
}

/// What [`redact`] gives for a URI it cannot read.
const INVALID: &str = "(unreadable MongoDB URI)";

/// The servers and database of a MongoDB URI, without credentials or
/// options: `host:port[,host:port][/db]`, hosts as written (an SRV URI
/// gives its DNS name). Safe to log and to show.
///
/// Parsed here rather than by the driver, which refuses URIs with options
/// it does not know, and those still need a name in messages. Everything
/// up to the last `@` is dropped (a password with an unescaped `?` or `/`
/// must not leak either), and a result that does not look like host names
/// and a database name gives a fixed placeholder instead.
pub fn redact(uri: &str) -> String {
    redacted_parts(uri).map_or_else(
        || INVALID.to_string(),
        |(hosts, db)| match db {
            Some(db) => format!("{hosts}/{db}"),
            None => hosts.to_string(),
        },
    )
}

/// The host list of a URI as [`redact`] shows it, without the database.
pub fn redacted_hosts(uri: &str) -> &str {
    redacted_parts(uri).map_or(INVALID, |(h, _)| h)
}

/// The host list and the database of a URI, as [`redact`] shows them.
fn redacted_parts(uri: &str) -> Option<(&str, Option<&str>)> {
    let (scheme, rest) = uri.split_once("://")?;
    if scheme != "mongodb" && scheme != "mongodb+srv" {
        return None;
    }
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let end = rest.find('?').unwrap_or(rest.len());
    let rest = &rest[..end];
    let (hosts, db) = match rest.split_once('/') {
        Some((h, db)) => (h, Some(db).filter(|d| !d.is_empty())),
        None => (rest, None),
    };
    let host_ok = |c: char| c.is_ascii_alphanumeric() || ".-_:[],%".contains(c);
    let db_ok = |c: char| c.is_ascii_alphanumeric() || "-_".contains(c);
    // Each host is a name or [IPv6], then an optional numeric port: so
    // `user:pass` without an `@` is not taken for a host and port.
    let port_ok = |h: &str| {
        let after = h.rsplit_once(']').map_or(h, |(_, p)| p);
        after
            .rsplit_once(':')
            .is_none_or(|(_, port)| !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()))
    };
    let plausible = !hosts.is_empty()
        && hosts.chars().all(host_ok)
        && hosts.split(',').all(|h| !h.is_empty() && port_ok(h))
        && db.is_none_or(|d| d.chars().all(db_ok));
    plausible.then_some((hosts, db))
}

/// `mongodb://user:pw@a:27017,b:27017/db?authSource=x` →
/// `mongodb://a:27017,b:27017`: scheme and hosts only. User info, the
/// database and the options (some carry secrets, e.g. a TLS key password)
/// are left out. Something without a scheme is not echoed at all.
pub fn server_label(uri: &str) -> String {
    let Some((scheme, rest)) = uri.trim().split_once("://") else {
        return "the configured MongoDB server".to_string();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{hosts}")
}

/// The secret parts of `uri`: its user info as written (up to the last
/// `@` of the host part, and of everything before the options, since a
/// password may hold an unescaped `/`), the password alone, and each
/// percent-decoded; longest first, so the whole is replaced before its
/// parts. Something without a scheme is all secret.
fn secrets(uri: &str) -> Vec<String> {
    let uri = uri.trim();
    let Some((_, rest)) = uri.split_once("://") else {
        return vec![uri.to_string()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let before_options = rest.split_once('?').map_or(rest, |(a, _)| a);
    let mut out = Vec::new();
    for part in [authority, before_options] {
        if let Some((userinfo, _)) = part.rsplit_once('@') {
            out.push(userinfo.to_string());
            if let Some((_, password)) = userinfo.split_once(':') {
                out.push(password.to_string());
            }
        }
    }
    let decoded: Vec<String> = out.iter().map(|s| percent_decode_lossy(s)).collect();
    out.extend(decoded);
    out.retain(|s| !s.is_empty());
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `message` with every credential of `uri` replaced by `***`: the user
/// info and the password, as written and decoded. The driver's messages
/// are not known to quote the password, but this makes sure of it for
/// every message the sync and central show or log.
pub fn scrub(message: &str, uri: &str) -> String {
    let mut out = message.to_string();
    for secret in secrets(uri) {
        out = out.replace(&secret, "***");
    }
    out
}

/// Decode `%XX` escapes, leaving malformed ones as written and replacing
/// bytes that are not UTF-8: a password decodes however it is spelt.
fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_credentials_and_options() {
        assert_eq!(redact("mongodb://user:pass@h:1/?x=1"), "h:1");
        assert_eq!(
            redact("mongodb://user:p%40ss@h1:1,h2:2/fleet?replicaSet=rs0&authSource=admin"),
            "h1:1,h2:2/fleet"
        );
        assert_eq!(redact("mongodb://h"), "h");
        assert_eq!(
            redact("mongodb://127.0.0.1:27018/edgeprobe"),
            "127.0.0.1:27018/edgeprobe"
        );
        assert_eq!(
            redact("mongodb+srv://admin:s3cret@cluster0.example.net/edgeprobe?retryWrites=true"),
            "cluster0.example.net/edgeprobe"
        );
        assert_eq!(redact("mongodb://[::1]:27017/db"), "[::1]:27017/db");
    }

    #[test]
    fn redact_never_echoes_credentials() {
        for (uri, shown) in [
            ("http://user:pass@h:1/", INVALID),
            ("user:pass@h:1", INVALID),
            ("", INVALID),
            ("mongodb://user:pa:ss@h:1/", "h:1"),
            ("mongodb://user:pa/ss@h:1/db", "h:1/db"),
            ("mongodb://user:pa?ss@h:1/db?w=1", "h:1/db"),
            ("mongodb://user:pa@ss@h:1", "h:1"),
            ("mongodb://user:pass@", INVALID),
            ("mongodb://user:pass", INVALID),
        ] {
            let r = redact(uri);
            assert_eq!(r, shown, "{uri}");
            assert!(!r.contains("pa") && !r.contains("user"), "{uri} -> {r}");
        }
    }

    #[test]
    fn labels_keep_scheme_and_hosts_only() {
        assert_eq!(
            server_label("mongodb://127.0.0.1:27017"),
            "mongodb://127.0.0.1:27017"
        );
        assert_eq!(
            server_label("mongodb://ops:s3cr%40t@a.example:27017,b.example/edgeprobe?authSource=admin&tlsCertificateKeyFilePassword=x"),
            "mongodb://a.example:27017,b.example"
        );
        assert_eq!(
            server_label("mongodb+srv://u:p@cluster0.example.net/?retryWrites=true"),
            "mongodb+srv://cluster0.example.net"
        );
        // A password containing '@' (wrongly unescaped): still cut at the last '@'.
        assert_eq!(server_label("mongodb://u:p@ss@h:1"), "mongodb://h:1");
        assert_eq!(server_label("u:p@h:1"), "the configured MongoDB server");
    }

    #[test]
    fn scrub_removes_user_info_and_password_in_every_spelling() {
        let uri = "mongodb://ops:s3cr%40t@h:27017/";
        let msg = "auth failed for ops:s3cr%40t, password s3cr@t or s3cr%40t";
        let out = scrub(msg, uri);
        assert!(!out.contains("s3cr"), "{out}");
        assert_eq!(scrub("nothing secret", "mongodb://h:1"), "nothing secret");
    }

    #[test]
    fn scrub_removes_the_password_as_written_and_decoded() {
        let uri = "mongodb://ops:p%40ss%2Fw0rd@h:1/db";
        assert_eq!(
            scrub("auth failed for p%40ss%2Fw0rd and p@ss/w0rd", uri),
            "auth failed for *** and ***"
        );
        assert_eq!(scrub("nothing here", "mongodb://h:1"), "nothing here");
        assert_eq!(percent_decode_lossy("a%2"), "a%2");
        assert_eq!(percent_decode_lossy("%zz%41"), "%zzA");
    }
}
