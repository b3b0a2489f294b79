//! Support for the unit tests and the integration tests (tests/ cannot reach
//! a `#[cfg(test)]` item): a deterministic random stream for the fuzz runs
//! and scratch paths. Never used by the agent itself.

/// xorshift64*: deterministic and dependency-free, so a fixed seed makes a
/// failure reproducible.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)] // an endless stream: no Option to unwrap
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n`; `n` must not be 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A path under the temp directory unique to this user and this process;
/// whatever of ours was there is removed. The uid is part of the name: a
/// file another user's run left under a reused pid cannot be removed from a
/// sticky /tmp, and an unprivileged test run failed on exactly that.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let uid = rustix::process::getuid().as_raw();
    let p = std::env::temp_dir().join(format!("kestrel-test-{uid}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_dir_all(&p);
    p
}
