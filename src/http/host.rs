//! Which names a dashboard answers to (the `Host` header), against DNS
//! rebinding: a page on some other site that gets its name pointed at
//! the board's address would otherwise read the dashboard with the
//! visitor's browser. A request for another name is answered 421.
//!
//! Allowed: the configured names, `localhost`, and IP literals of the
//! address the connection came in on or of loopback. A request without
//! a `Host` (HTTP/1.0 scripts) is let through: browsers always send one.

use std::net::IpAddr;

use hyper::StatusCode;

use super::response::{text, Resp};

/// The names one dashboard answers to besides its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    /// Lower case, without a trailing dot.
    names: Vec<String>,
    /// Where an operator adds a name, for the 421 answer.
    where_to_add: &'static str,
}

impl AllowedHosts {
    /// `names` (any case, a trailing dot or not), and where an operator
    /// adds one (e.g. "`[web] allowed_hosts` in the config file").
    pub fn new<S: AsRef<str>>(names: &[S], where_to_add: &'static str) -> AllowedHosts {
        AllowedHosts {
            names: names.iter().map(|n| normal_name(n.as_ref())).collect(),
            where_to_add,
        }
    }

    /// Whether a request with this `Host` header, on a connection to
    /// `local`, is for this dashboard.
    pub fn allows(&self, host: Option<&str>, local: IpAddr) -> bool {
        let Some(host) = host else {
            return true;
        };
        let name = host_without_port(host);
        if let Ok(ip) = name.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            return ip.is_loopback() || ip == local.to_canonical();
        }
        let name = normal_name(name);
        name == "localhost" || self.names.contains(&name)
    }

    /// The 421 for a request naming another host.
    pub fn misdirected(&self, host: &str) -> Resp {
        text(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this dashboard does not answer to the name {:?}: open it by the board's \
                 address, or add the name to {} and restart\n",
                host_without_port(host),
                self.where_to_add
            ),
        )
    }
}

/// A name as compared: lower case, without the dot of a fully
/// qualified name.
fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `name`, `name:port`, `[v6]` or `[v6]:port` without the port and
/// brackets.
fn host_without_port(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_configured_localhost_and_own_or_loopback_addresses_only() {
        let hosts = AllowedHosts::new(&["Closet-3.LAN."], "`[web] allowed_hosts`");
        let local: IpAddr = "198.18.0.2".parse().unwrap();
        for ok in [
            "closet-3.lan",
            "CLOSET-3.lan:8080",
            "closet-3.lan.",
            "localhost:8080",
            "198.18.0.2:8080",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:8080",
            "[::ffff:198.18.0.2]",
        ] {
            assert!(hosts.allows(Some(ok), local), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "closet-3.lan.evil.example",
            "198.18.0.3:8080",
            "[2001:db8::1]:8080",
            "",
        ] {
            assert!(!hosts.allows(Some(refused), local), "{refused}");
        }
        assert!(hosts.allows(None, local), "HTTP/1.0 without Host");
    }

    #[test]
    fn the_refusal_names_the_host_and_where_to_add_it() {
        let hosts = AllowedHosts::new(&[] as &[&str], "`[web] allowed_hosts` in the config file");
        let r = hosts.misdirected("evil.example:8080");
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
        let body = format!("{:?}", r.body());
        assert!(
            body.contains("evil.example") && body.contains("[web] allowed_hosts"),
            "{body}"
        );
    }
}
