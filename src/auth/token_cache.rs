//! A bounded per-isolate cache of verified tokens, so a client that sends the same token on every
//! request pays for one signature check, not one per request.
//!
//! Entries are keyed by SHA-256 of `scheme name ‖ NUL ‖ token` (an ES256 token in its low-S form,
//! so its malleated twin is the same entry): the token itself is never kept as a key. An entry is served until `min(token exp, inserted + max_age_s)` (inclusive) and never
//! past the token's `exp`, even though `verify` would accept a token up to `exp + leeway`. When
//! the cache is full, expired entries go first, then the entry that expires soonest (the oldest
//! among equals). Lookups are O(1) on average; eviction is O(capacity), fine for small capacities.
//!
//! The cache knows nothing of configuration: the caller must [`TokenCache::clear`] it whenever
//! the configuration (issuer, audiences, keys, …) changes, or fold a configuration generation
//! into the scheme name. A key removed from a JWKS stops verifying cached tokens only when their
//! entries end, so keep `max_age_s` short (a minute or so).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::rc::Rc;

use super::jwt::VerifiedToken;

struct Entry {
    verified: Rc<VerifiedToken>,
    /// Last unix second at which the entry may be served.
    until_s: i64,
    /// Insertion order, to break ties when evicting.
    seq: u64,
}

/// Verified tokens by hash of scheme name and token.
pub struct TokenCache {
    capacity: usize,
    entries: HashMap<[u8; 32], Entry>,
    next_seq: u64,
}

/// The key of `token` under `scheme`; an ES256 token and its malleated twin share one (see
/// [`super::jwt::cache_form`]), so a twin cannot force a second verification.
fn cache_key(scheme: &str, token: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(scheme.as_bytes());
    hasher.update([0u8]);
    hasher.update(super::jwt::cache_form(token).as_bytes());
    hasher.finalize().into()
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens (0 disables it).
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            entries: HashMap::with_capacity(capacity.min(1024)),
            next_seq: 0,
        }
    }

    /// The verified token for `token` under `scheme`, if cached and still servable at `now_s`.
    pub fn get(&mut self, scheme: &str, token: &str, now_s: i64) -> Option<Rc<VerifiedToken>> {
        let key = cache_key(scheme, token);
        let entry = self.entries.get(&key)?;
        if now_s > entry.until_s {
            self.entries.remove(&key);
            return None;
        }
        Some(Rc::clone(&entry.verified))
    }

    /// Remembers `verified` for `token` under `scheme` until `min(exp, now_s + max_age_s)`.
    /// Nothing is stored when `max_age_s` is not positive or the token is already past `exp`.
    pub fn insert(
        &mut self,
        scheme: &str,
        token: &str,
        verified: Rc<VerifiedToken>,
        now_s: i64,
        max_age_s: i64,
    ) {
        if self.capacity == 0 || max_age_s <= 0 {
            return;
        }
        let mut until_s = now_s.saturating_add(max_age_s);
        if let Some(exp) = verified.expires_at {
            until_s = until_s.min(exp);
        }
        if until_s < now_s {
            return;
        }
        let key = cache_key(scheme, token);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.evict(now_s);
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.entries.insert(
            key,
            Entry {
                verified,
                until_s,
                seq,
            },
        );
    }

    /// Makes room for one entry.
    fn evict(&mut self, now_s: i64) {
        self.entries.retain(|_, e| e.until_s >= now_s);
        while self.entries.len() >= self.capacity {
            let victim = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.until_s, e.seq))
                .map(|(k, _)| *k);
            match victim {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Forgets every entry (call it when the configuration changes).
    pub fn clear(&mut self) {
        self.entries.clear();
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
    use serde_json::Map;

    fn token(exp: Option<i64>, sub: &str) -> Rc<VerifiedToken> {
        Rc::new(VerifiedToken {
            claims: Map::new(),
            subject: Some(sub.into()),
            expires_at: exp,
        })
    }

    #[test]
    fn serves_until_the_earlier_of_exp_and_max_age() {
        let mut c = TokenCache::new(8);
        c.insert("s", "t1", token(Some(1_000), "a"), 900, 60);
        assert_eq!(c.get("s", "t1", 900).unwrap().subject.as_deref(), Some("a"));
        assert!(c.get("s", "t1", 960).is_some());
        assert!(c.get("s", "t1", 961).is_none(), "max age passed");
        assert!(c.is_empty(), "an expired entry is dropped on lookup");

        c.insert("s", "t2", token(Some(1_000), "b"), 990, 60);
        assert!(c.get("s", "t2", 1_000).is_some());
        assert!(c.get("s", "t2", 1_001).is_none(), "never served past exp");

        c.insert("s", "t3", token(None, "c"), 0, 30);
        assert!(c.get("s", "t3", 30).is_some());
        assert!(c.get("s", "t3", 31).is_none());
    }

    #[test]
    fn tokens_past_exp_or_without_max_age_are_not_stored() {
        let mut c = TokenCache::new(8);
        // verify() accepts this within leeway, but the cache never extends past exp.
        c.insert("s", "late", token(Some(100), "a"), 101, 60);
        c.insert("s", "zero", token(Some(1_000), "a"), 100, 0);
        c.insert("s", "neg", token(Some(1_000), "a"), 100, -5);
        assert!(c.is_empty());
        let mut off = TokenCache::new(0);
        off.insert("s", "t", token(Some(1_000), "a"), 100, 60);
        assert!(off.get("s", "t", 100).is_none());
    }

    #[test]
    fn entries_are_per_scheme() {
        let mut c = TokenCache::new(8);
        c.insert("a", "tok", token(Some(1_000), "x"), 0, 60);
        assert!(c.get("a", "tok", 0).is_some());
        assert!(c.get("b", "tok", 0).is_none());
        // The NUL separator keeps ("a", "btok") and ("ab", "tok") apart.
        c.insert("ab", "tok", token(Some(1_000), "y"), 0, 60);
        assert!(c.get("a", "btok", 0).is_none());
        assert_eq!(c.get("ab", "tok", 0).unwrap().subject.as_deref(), Some("y"));
    }

    #[test]
    fn full_cache_evicts_expired_then_soonest_expiring() {
        let mut c = TokenCache::new(3);
        c.insert("s", "long", token(Some(10_000), "l"), 0, 5_000);
        c.insert("s", "short", token(Some(100), "s"), 0, 5_000);
        c.insert("s", "mid", token(Some(1_000), "m"), 0, 5_000);
        c.insert("s", "new", token(Some(2_000), "n"), 0, 5_000);
        assert_eq!(c.len(), 3);
        assert!(c.get("s", "short", 0).is_none(), "soonest expiring evicted");
        assert!(c.get("s", "long", 0).is_some());
        assert!(c.get("s", "mid", 0).is_some());
        assert!(c.get("s", "new", 0).is_some());

        // At t=1500 "mid" has expired: it goes first, the others stay.
        c.insert("s", "later", token(Some(3_000), "x"), 1_500, 5_000);
        assert_eq!(c.len(), 3);
        assert!(c.get("s", "long", 1_500).is_some());
        assert!(c.get("s", "new", 1_500).is_some());
        assert!(c.get("s", "later", 1_500).is_some());
    }

    #[test]
    fn ties_evict_the_oldest_and_reinsert_does_not_evict() {
        let mut c = TokenCache::new(2);
        c.insert("s", "a", token(Some(500), "a"), 0, 60);
        c.insert("s", "b", token(Some(500), "b"), 0, 60);
        c.insert("s", "b", token(Some(500), "b2"), 0, 60);
        assert_eq!(c.len(), 2, "replacing an entry needs no room");
        c.insert("s", "c", token(Some(500), "c"), 0, 60);
        assert!(c.get("s", "a", 0).is_none(), "oldest of equals evicted");
        assert_eq!(c.get("s", "b", 0).unwrap().subject.as_deref(), Some("b2"));
        assert!(c.get("s", "c", 0).is_some());
        c.clear();
        assert!(c.is_empty());
    }
}
