//! Reconnect backoff: capped exponential ceiling with full jitter, drawn from a seeded
//! [`SplitMix64`] so schedules match the Python and Go SDKs bit for bit
//! (`tests/vectors/backoff.json`).

use std::time::Duration;

/// Ceiling of the first delay, in seconds.
pub const RECONNECT_INITIAL_S: f64 = 0.1;
/// Largest ceiling, in seconds.
pub const RECONNECT_CAP_S: f64 = 10.0;
/// Growth of the ceiling per attempt.
pub const RECONNECT_MULTIPLIER: f64 = 2.0;

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator every SDK implements
/// identically.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` from the top 53 bits of the next output.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Delays of successive reconnect attempts: attempt `n` (from 0) sleeps
/// `uniform(0, min(cap, initial * multiplier^n))`. Full jitter spreads a fleet that lost the
/// same server over the whole window instead of reconnecting in lock-step waves.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Ceiling of the first delay, in seconds.
    pub initial_s: f64,
    /// Largest ceiling, in seconds.
    pub cap_s: f64,
    /// Growth of the ceiling per attempt.
    pub multiplier: f64,
    rng: SplitMix64,
    attempt: u32,
}

impl Backoff {
    /// The default schedule (0.1 s doubling to 10 s) drawing from `rng`.
    pub fn new(rng: SplitMix64) -> Self {
        Self::with(
            RECONNECT_INITIAL_S,
            RECONNECT_CAP_S,
            RECONNECT_MULTIPLIER,
            rng,
        )
    }

    /// A schedule with explicit parameters.
    pub fn with(initial_s: f64, cap_s: f64, multiplier: f64, rng: SplitMix64) -> Self {
        Self {
            initial_s,
            cap_s,
            multiplier,
            rng,
            attempt: 0,
        }
    }

    /// Upper bound in seconds of the delay of attempt `n` (from 0).
    pub fn ceiling(&self, n: u32) -> f64 {
        // Cap the exponent too, so a long outage cannot overflow.
        self.cap_s
            .min(self.initial_s * self.multiplier.powi(n.min(64) as i32))
    }

    /// Delay in seconds before the next attempt; advances the counter.
    pub fn next_seconds(&mut self) -> f64 {
        let ceiling = self.ceiling(self.attempt);
        self.attempt += 1;
        ceiling * self.rng.next_f64()
    }

    /// [`Backoff::next_seconds`] as a Duration.
    pub fn next_delay(&mut self) -> Duration {
        Duration::from_secs_f64(self.next_seconds())
    }

    /// Start over after a healthy session.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
