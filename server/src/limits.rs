//! Request rate limits: one token bucket per key (an enrolled host, or the address of a client
//! that is not authenticated yet).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Above this many tracked keys, idle (full) buckets are forgotten.
const PRUNE_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets: `rate` requests per second on average, bursts of up to `burst`.
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(rate: f64, burst: u32) -> RateLimiter<K> {
        RateLimiter {
            rate: rate.max(0.001),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`; false when its bucket is empty (the request is refused).
    pub fn allow(&self, key: &K) -> bool {
        self.allow_at(key, Instant::now())
    }

    fn refill(&self, b: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        Bucket {
            tokens: (b.tokens + elapsed * self.rate).min(self.burst),
            at: now,
        }
    }

    fn allow_at(&self, key: &K, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, b| self.refill(*b, now).tokens < self.burst);
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        *b = self.refill(*b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bursts_then_the_rate() {
        let l = RateLimiter::new(10.0, 5);
        let t0 = Instant::now();
        assert!((0..5).all(|_| l.allow_at(&1, t0)));
        assert!(!l.allow_at(&1, t0));
        // Another key has its own bucket.
        assert!(l.allow_at(&2, t0));
        // 10/s: one token every 100 ms.
        assert!(!l.allow_at(&1, t0 + Duration::from_millis(50)));
        assert!(l.allow_at(&1, t0 + Duration::from_millis(160)));
        assert!(!l.allow_at(&1, t0 + Duration::from_millis(170)));
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(3600);
        assert!((0..5).all(|_| l.allow_at(&1, later)));
        assert!(!l.allow_at(&1, later));
    }
}
