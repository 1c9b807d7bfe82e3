//! How many connections one client holds: at most
//! [`Limits::max_connections_per_client`](super::Limits) each, so that one
//! address cannot take every connection the server serves at once.
//!
//! A client is an IPv4 address, or an IPv6 /64 (one host can pick any
//! address of its /64; an IPv4-mapped address counts as the IPv4 one).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Whom a connection counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    pub fn of(peer: IpAddr) -> Client {
        match peer.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Client(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
            v4 => Client(v4),
        }
    }
}

/// The connections each client holds now.
#[derive(Debug)]
pub struct ClientSlots {
    per_client: usize,
    held: Mutex<HashMap<Client, usize>>,
}

/// One connection counted against its client until dropped.
#[derive(Debug)]
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: Client,
}

impl ClientSlots {
    pub fn new(per_client: usize) -> Arc<ClientSlots> {
        Arc::new(ClientSlots {
            per_client: per_client.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `peer`, or `None` when its client
    /// already holds as many as it may.
    pub fn try_take(self: &Arc<Self>, peer: IpAddr) -> Option<ClientSlot> {
        let client = Client::of(peer);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(client).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            slots: Arc::clone(self),
            client,
        })
    }

    /// How many connections `peer`'s client holds.
    pub fn held_by(&self, peer: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(&Client::of(peer)).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_client_holds_at_most_its_share_until_it_lets_go() {
        let slots = ClientSlots::new(2);
        let a1 = slots.try_take(ip("127.0.0.2")).expect("first");
        let _a2 = slots.try_take(ip("127.0.0.2")).expect("second");
        assert!(slots.try_take(ip("127.0.0.2")).is_none(), "third");
        assert!(slots.try_take(ip("127.0.0.3")).is_some(), "another client");
        drop(a1);
        assert_eq!(slots.held_by(ip("127.0.0.2")), 1);
        assert!(
            slots.try_take(ip("127.0.0.2")).is_some(),
            "after one closed"
        );
        assert!(
            slots
                .held
                .lock()
                .unwrap()
                .get(&Client::of(ip("127.0.0.3")))
                .is_none(),
            "a client with nothing open is forgotten"
        );
    }

    #[test]
    fn a_v6_client_is_its_64_and_a_mapped_v4_is_the_v4() {
        assert_eq!(
            Client::of(ip("2001:db8:1:2:aaaa::1")),
            Client::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            Client::of(ip("2001:db8:1:2::1")),
            Client::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Client::of(ip("::ffff:198.18.0.7")),
            Client::of(ip("198.18.0.7"))
        );
    }
}
