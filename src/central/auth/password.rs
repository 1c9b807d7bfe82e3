//! Passwords: the argon2id PHC strings that `edgeprobe central
//! hash-password` makes and `[[auth.users]] password_hash` holds, and the
//! check at sign-in. A name that is not configured is checked against a
//! decoy hash with the same parameters, so the time taken does not tell
//! which names exist.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::random_bytes;

/// The shortest password `hash-password` accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Whether `password` may be used for a new hash; the message says why
/// not and what to do.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars == 0 {
        return Err(
            "no password was given: type it on standard input, one line \
                    (e.g. `edgeprobe central hash-password < file`)"
                .into(),
        );
    }
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password has {chars} characters; use at least {MIN_PASSWORD_CHARS} \
             (a few words in a row are long and easy to type)"
        ));
    }
    Ok(())
}

/// A new argon2id PHC string for `password` with argon2's default
/// parameters (19 MiB, 2 passes, 1 lane) and a random 16-byte salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    hash_with(&Argon2::default(), password)
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| format!("cannot encode a salt: {e}"))?;
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Why a `password_hash` cannot be used; says what to do.
pub fn check_stored_hash(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| {
        format!("not a PHC string ({e}); make one with `edgeprobe central hash-password`")
    })?;
    argon2_of(&hash).map(|_| ())
}

/// The hasher whose algorithm, version and parameters `hash` names.
fn argon2_of(hash: &PasswordHash<'_>) -> Result<Argon2<'static>, String> {
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(|_| {
        format!(
            "{} is not argon2 (argon2id, argon2i or argon2d); make one with \
             `edgeprobe central hash-password`",
            hash.algorithm
        )
    })?;
    let version = match hash.version {
        None => Version::default(),
        Some(v) => Version::try_from(v)
            .map_err(|_| format!("argon2 version {v} is unknown; use v=19 (hash-password)"))?,
    };
    let params = Params::try_from(hash)
        .map_err(|e| format!("its argon2 parameters cannot be used ({e}); make a new hash"))?;
    Ok(Argon2::new(algorithm, version, params))
}

/// A hash of a random password made with the parameters of `like` (a
/// configured user's hash): checking a password against it takes as long
/// as checking one against `like`, and never succeeds in practice.
pub fn decoy_like(like: &str) -> Result<String, String> {
    let hash = PasswordHash::new(like).map_err(|e| format!("not a PHC string ({e})"))?;
    let argon2 = argon2_of(&hash)?;
    let secret = random_bytes::<32>()?;
    let never_typed: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    hash_with(&argon2, &never_typed)
}

/// Whether `password` matches `phc` (a hash checked at start, see
/// [`check_stored_hash`]). Slow on purpose: run it off the async workers.
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    // The hash names its own algorithm and parameters.
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_empty_passwords_are_refused() {
        assert!(check_new_password("").unwrap_err().contains("no password"));
        let short = check_new_password("eleven-char").unwrap_err();
        assert!(
            short.contains("11 characters") && short.contains("at least 12"),
            "{short}"
        );
        assert_eq!(check_new_password("twelve-chars"), Ok(()));
        // Characters, not bytes.
        assert!(check_new_password("ééééééééééé").is_err());
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash_password("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(check_stored_hash(&phc), Ok(()));
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse batterY"));
        assert_ne!(
            phc,
            hash_password("correct horse battery").expect("hash"),
            "salted"
        );
    }

    #[test]
    fn a_decoy_has_the_parameters_of_the_hash_it_imitates() {
        let argon2 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).expect("params"),
        );
        let phc = hash_with(&argon2, "some password").expect("hash");
        let decoy = decoy_like(&phc).expect("decoy");
        assert!(decoy.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{decoy}");
        assert!(!verify_password(&decoy, "some password"));
    }

    #[test]
    fn unusable_stored_hashes_are_explained() {
        let not_phc = check_stored_hash("hunter2").unwrap_err();
        assert!(not_phc.contains("hash-password"), "{not_phc}");
        let other = check_stored_hash(
            "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGg",
        )
        .unwrap_err();
        assert!(other.contains("not argon2"), "{other}");
        assert!(!verify_password("hunter2", "hunter2"));
    }
}
