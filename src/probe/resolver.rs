//! Host names of the sheet to addresses, a few at a time, remembered for
//! a while.
//!
//! The system resolver (`getaddrinfo`) blocks a thread of tokio's blocking
//! pool per lookup, the pool the store's writes use too, and cannot be
//! cancelled: a lookup that times out holds its thread until the resolver
//! gives up. So at most [`LOOKUPS_AT_ONCE`] run at once, each keeping its
//! permit until `getaddrinfo` returns, and answers are cached
//! ([`AnswerCache`], pure): an address for [`KEEP_ADDRESS`], a failure for
//! the shorter [`KEEP_FAILURE`], at most [`CACHED_NAMES`] names.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::lock::lock;

/// How long a name lookup may take, waiting for its turn included, before
/// the target counts as unresolved (for this round, in the monitor).
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Lookups that may block a thread at once.
pub const LOOKUPS_AT_ONCE: usize = 4;

/// How long an address found is used without asking again.
pub const KEEP_ADDRESS: Duration = Duration::from_secs(60);

/// How long a failed lookup is remembered: short, so that a name fixed in
/// DNS is seen soon, but a dead resolver is not asked every round.
pub const KEEP_FAILURE: Duration = Duration::from_secs(10);

/// Names the cache holds at most.
pub const CACHED_NAMES: usize = 4096;

/// Why a host name gave no address.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "no answer from the resolver within {}s; check the board's DNS servers (/etc/resolv.conf), or put the address in the sheet",
        .0.as_secs()
    )]
    Timeout(Duration),
    #[error(transparent)]
    Lookup(Arc<io::Error>),
    #[error("the name has no addresses")]
    NoAddresses,
}

/// What a lookup gave.
pub type Answer = Result<IpAddr, ResolveError>;

/// Resolves host names for every target of the process.
pub struct Resolver {
    permits: Arc<Semaphore>,
    cache: Mutex<AnswerCache>,
}

impl Resolver {
    pub fn new() -> Resolver {
        Resolver {
            permits: Arc::new(Semaphore::new(LOOKUPS_AT_ONCE)),
            cache: Mutex::new(AnswerCache::new(CACHED_NAMES)),
        }
    }

    /// The first address of `host`, from the cache or the system resolver
    /// within [`RESOLVE_TIMEOUT`].
    pub async fn resolve(&self, host: &str) -> Answer {
        if let Some(answer) = lock(&self.cache).get(host, Instant::now()) {
            return answer;
        }
        let answer = tokio::time::timeout(RESOLVE_TIMEOUT, self.look_up(host))
            .await
            .unwrap_or(Err(ResolveError::Timeout(RESOLVE_TIMEOUT)));
        lock(&self.cache).put(host, answer.clone(), Instant::now());
        answer
    }

    /// Ask the system resolver once a permit is free.
    async fn look_up(&self, host: &str) -> Answer {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        // Another lookup of this name may have finished meanwhile.
        if let Some(answer) = lock(&self.cache).get(host, Instant::now()) {
            return answer;
        }
        let name = host.to_owned();
        let blocking = tokio::task::spawn_blocking(move || {
            // Held until getaddrinfo returns, even after a timeout.
            let _permit = permit;
            (name.as_str(), 0).to_socket_addrs()
        });
        match blocking.await {
            Ok(Ok(mut addrs)) => addrs
                .next()
                .map(|a| a.ip())
                .ok_or(ResolveError::NoAddresses),
            Ok(Err(e)) => Err(ResolveError::Lookup(Arc::new(e))),
            Err(e) => Err(ResolveError::Lookup(Arc::new(io::Error::other(e)))),
        }
    }
}

impl Default for Resolver {
    fn default() -> Resolver {
        Resolver::new()
    }
}

/// Answers by name until they expire, at most `capacity` names. Pure:
/// the caller says what time it is.
#[derive(Debug)]
pub struct AnswerCache {
    entries: HashMap<String, (Answer, Instant)>,
    capacity: usize,
}

impl AnswerCache {
    pub fn new(capacity: usize) -> AnswerCache {
        AnswerCache {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// The answer for `host` if it has not expired at `now`.
    pub fn get(&self, host: &str, now: Instant) -> Option<Answer> {
        let (answer, expires) = self.entries.get(&host.to_ascii_lowercase())?;
        (now < *expires).then(|| answer.clone())
    }

    /// Remember `answer` for `host` from `now`: an address for
    /// [`KEEP_ADDRESS`], a failure for [`KEEP_FAILURE`]. When full, expired
    /// answers go first, then the one that would expire soonest.
    pub fn put(&mut self, host: &str, answer: Answer, now: Instant) {
        let keep = if answer.is_ok() {
            KEEP_ADDRESS
        } else {
            KEEP_FAILURE
        };
        let key = host.to_ascii_lowercase();
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, (_, expires)| *expires > now);
            if self.entries.len() >= self.capacity {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(name, _)| name.clone());
                if let Some(name) = soonest {
                    self.entries.remove(&name);
                }
            }
        }
        if self.capacity > 0 {
            self.entries.insert(key, (answer, now + keep));
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 7));
    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn addresses_are_kept_a_minute_and_failures_ten_seconds() {
        let t0 = Instant::now();
        let mut cache = AnswerCache::new(8);
        cache.put("Printer.Example", Ok(ADDR), t0);
        cache.put("gone.example", Err(ResolveError::NoAddresses), t0);
        assert_eq!(cache.get("printer.example", t0).unwrap().unwrap(), ADDR);
        assert!(cache
            .get("gone.example", t0 + KEEP_FAILURE - SECOND)
            .is_some());
        assert!(cache.get("gone.example", t0 + KEEP_FAILURE).is_none());
        assert!(cache
            .get("printer.example", t0 + KEEP_ADDRESS - SECOND)
            .is_some());
        assert!(cache.get("printer.example", t0 + KEEP_ADDRESS).is_none());
        assert!(cache.get("never.example", t0).is_none());
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_dropping_the_expired_first() {
        let t0 = Instant::now();
        let mut cache = AnswerCache::new(3);
        cache.put("failed.example", Err(ResolveError::NoAddresses), t0);
        cache.put("a.example", Ok(ADDR), t0);
        cache.put("b.example", Ok(ADDR), t0 + SECOND);
        let later = t0 + KEEP_FAILURE + SECOND;
        cache.put("c.example", Ok(ADDR), later);
        assert_eq!(cache.len(), 3);
        assert!(
            cache.get("failed.example", t0).is_none(),
            "expired, gone first"
        );
        cache.put("d.example", Ok(ADDR), later);
        assert_eq!(cache.len(), 3);
        assert!(
            cache.get("a.example", t0).is_none(),
            "the soonest to expire"
        );
        for kept in ["b.example", "c.example", "d.example"] {
            assert!(cache.get(kept, later).is_some(), "{kept}");
        }
        for n in 0..100 {
            cache.put(&format!("n{n}.example"), Ok(ADDR), later);
        }
        assert_eq!(cache.len(), 3);
    }
}
