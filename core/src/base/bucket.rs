//! libsinsp's token_bucket (token_bucket.cpp): the drop alerts' and the
//! rule alerts' rate limit.

/// libsinsp's token_bucket: starts full.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    rate: f64,
    max_tokens: f64,
    tokens: f64,
    last_ns: u64,
}

impl TokenBucket {
    pub fn new(rate: f64, max_tokens: f64, now_ns: u64) -> Self {
        TokenBucket {
            rate,
            max_tokens,
            tokens: max_tokens,
            last_ns: now_ns,
        }
    }

    pub fn claim(&mut self, now_ns: u64) -> bool {
        let gained = self.rate * (now_ns.saturating_sub(self.last_ns) as f64 / 1e9);
        self.last_ns = now_ns;
        self.tokens = (self.tokens + gained).min(self.max_tokens);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}
