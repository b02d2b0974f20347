//! Credentials: enrollment tokens and host secrets (random, kept only as SHA-256), the
//! `Authorization: Bearer {host_id}.{secret}` header, and platform users' passwords (argon2).

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::SecretHash;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header (want: Bearer HOST_ID.SECRET)")]
    Missing,
    #[error("malformed Authorization header (want: Bearer HOST_ID.SECRET)")]
    Malformed,
    #[error("unknown host or wrong secret")]
    BadCredential,
    #[error("this host's credential was revoked")]
    Revoked,
    #[error("hashing the password: {0}")]
    Password(String),
}

/// A new random secret (256 bits, lowercase hex): enrollment tokens and host secrets.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What the store keeps of a secret.
pub fn secret_hash(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two hashes in time that does not depend on where they differ.
pub fn same_hash(a: &SecretHash, b: &SecretHash) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `Bearer {host_id}.{secret}`.
pub fn parse_bearer(header: Option<&str>) -> Result<(Uuid, &str), AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed);
    }
    let (id, secret) = token.trim().split_once('.').ok_or(AuthError::Malformed)?;
    let id = Uuid::parse_str(id).map_err(|_| AuthError::Malformed)?;
    if secret.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok((id, secret))
}

/// Hashes a platform user's password (argon2id, random salt) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Password(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Password(e.to_string()))
}

/// The shortest password a platform user may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// A platform user's name: 1 to 64 characters, no white space or control characters.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err(format!("user name {name:?}: 1 to 64 characters"));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "user name {name:?}: no spaces or control characters"
        ));
    }
    Ok(())
}

/// A new password: at least [`MIN_PASSWORD_CHARS`] characters, at most 1024 bytes.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password needs at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > 1024 {
        return Err("the password is longer than 1024 bytes".into());
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    use super::*;

    #[test]
    fn bearer_headers() {
        let id = Uuid::from_u128(42);
        assert_eq!(
            parse_bearer(Some(&format!("Bearer {id}.s3cret"))).unwrap(),
            (id, "s3cret")
        );
        assert!(matches!(parse_bearer(None), Err(AuthError::Missing)));
        for bad in [
            "Basic abc",
            "Bearer",
            "Bearer nodot",
            "Bearer not-a-uuid.x",
            &format!("Bearer {id}."),
        ] {
            assert!(
                matches!(parse_bearer(Some(bad)), Err(AuthError::Malformed)),
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_and_passwords() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_hash(&secret_hash(&a), &secret_hash(&a)));
        assert!(!same_hash(&secret_hash(&a), &secret_hash(&b)));
        let phc = hash_password("correct horse").unwrap();
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
    }
}
