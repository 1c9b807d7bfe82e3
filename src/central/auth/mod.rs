//! Sign-in for `edgeprobe central`, the pure parts: the `[auth]` settings
//! ([`settings`]), the signed session cookie ([`cookie`]), argon2
//! password hashes ([`password`]), API bearer tokens stored as SHA-256
//! ([`token`]), and the decision who a request is ([`gate`]). The HTTP
//! edge that reads requests and writes cookies is `central::signin`; the
//! CLI's `hash-password` and `new-token` are thin wrappers over
//! [`password`] and [`token`].
//!
//! Nothing here keeps state: a session is a cookie signed with the key
//! file's bytes, so every replica with the same file accepts it.

pub mod cookie;
pub mod gate;
pub mod password;
pub mod settings;
pub mod token;

pub use gate::{Admit, Credentials, Refusal};
pub use settings::AuthSettings;

/// `N` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the operating system gave no random bytes (getrandom failed)".to_string())?;
    Ok(bytes)
}
