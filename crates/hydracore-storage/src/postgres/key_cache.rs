//! Key lookups answered from memory. A key lookup is a round trip of its
//! own, ahead of every request's; a credential's fields never change but
//! for its revocation, and every request that reads or writes workflows
//! checks that in its own transaction (`Scope::credential_id`:
//! `hydracore_enter`, or the same statement at the start of each request
//! function). So a cached credential never lets a revoked key
//! touch data. What the cache can delay, by at most [`TTL`], is the 401 of
//! a revoked key's request that is refused before storage (a bad body, a
//! path of another instance): until then it gets that refusal instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Credential;

/// How long a looked-up credential is trusted for requests refused before
/// storage.
pub const TTL: Duration = Duration::from_secs(30);

/// More keys than one server sees in use; past it the cache starts over
/// rather than track recency.
const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Vec<u8>, (Credential, Instant)>>,
}

impl KeyCache {
    pub fn get(&self, key_hash: &[u8]) -> Option<Credential> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key_hash)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(credential, _)| credential.clone())
    }

    /// Remembers an unrevoked credential; a revoked one is looked up again
    /// each time, so its answer is always the database's.
    pub fn insert(&self, key_hash: &[u8], credential: &Credential) {
        if credential.is_revoked() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key_hash.to_vec(), (credential.clone(), Instant::now()));
    }

    /// After a request found its key revoked: the next lookups go to the
    /// database, which says so.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use hydracore_domain::Timestamp;
    use uuid::Uuid;

    use super::*;
    use crate::CredentialKind;

    fn credential(revoked: bool) -> Credential {
        Credential {
            id: Uuid::new_v4(),
            kind: CredentialKind::Proxy,
            tenant_id: Uuid::new_v4(),
            instance_id: Some(Uuid::new_v4()),
            scopes: Vec::new(),
            key_prefix: "hcp_test".into(),
            created_at: Timestamp::now(),
            revoked_at: revoked.then(Timestamp::now),
        }
    }

    #[test]
    fn a_live_credential_is_remembered_until_cleared() {
        let cache = KeyCache::default();
        let live = credential(false);
        cache.insert(b"key", &live);
        assert_eq!(cache.get(b"key").map(|c| c.id), Some(live.id));
        assert!(cache.get(b"other").is_none());
        cache.clear();
        assert!(cache.get(b"key").is_none());
    }

    #[test]
    fn a_full_cache_starts_over_and_keeps_the_newest() {
        let cache = KeyCache::default();
        let live = credential(false);
        for n in 0..CAPACITY {
            cache.insert(&n.to_le_bytes(), &live);
        }
        assert!(cache.get(&0_usize.to_le_bytes()).is_some());
        cache.insert(b"newest", &live);
        assert!(cache.get(&0_usize.to_le_bytes()).is_none());
        assert!(cache.get(b"newest").is_some());
    }

    #[test]
    fn a_revoked_credential_is_never_remembered() {
        let cache = KeyCache::default();
        cache.insert(b"key", &credential(true));
        assert!(cache.get(b"key").is_none());
    }
}
