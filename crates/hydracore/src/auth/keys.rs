//! Opaque keys: minted at random, shown once, stored as a SHA-256 hash.
//!
//! A fast hash is right here (unlike for passwords): keys carry 256 bits of
//! randomness, so there is nothing to brute-force, and every request pays
//! for the hash.

use hydracore_storage::CredentialKind;
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

/// Random characters after the prefix: 43 alphanumerics ≈ 256 bits.
const SECRET_CHARS: usize = 43;
/// How much of a key `keys list` shows, so people can tell keys apart.
const SHOWN_PREFIX_CHARS: usize = 12;

/// A freshly minted key. `key` is the secret; print it once, store the rest.
pub struct MintedKey {
    pub key: String,
    pub hash: Vec<u8>,
    pub prefix: String,
}

pub fn mint(kind: CredentialKind) -> MintedKey {
    let tag = match kind {
        CredentialKind::Proxy => "hcp_",
        CredentialKind::Api => "hck_",
    };
    let key = format!(
        "{tag}{}",
        Alphanumeric.sample_string(&mut rand::rngs::OsRng, SECRET_CHARS)
    );
    MintedKey {
        hash: hash(&key),
        prefix: key.chars().take(SHOWN_PREFIX_CHARS).collect(),
        key,
    }
}

pub fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Whether a presented secret is the configured one. Their hashes are
/// compared, so the time taken tells nothing about how much of the secret
/// was guessed right.
pub fn same_secret(presented: &str, configured: &str) -> bool {
    hash(presented) == hash(configured)
}

/// A random secret for signing development JWTs.
pub fn random_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 48)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_are_distinct_tagged_and_hashed() {
        let a = mint(CredentialKind::Proxy);
        let b = mint(CredentialKind::Proxy);
        assert_ne!(a.key, b.key);
        assert!(a.key.starts_with("hcp_") && a.key.len() == 4 + SECRET_CHARS);
        assert_eq!(a.hash, hash(&a.key));
        assert!(mint(CredentialKind::Api).key.starts_with("hck_"));
        assert!(a.key.starts_with(&a.prefix));
    }
}
