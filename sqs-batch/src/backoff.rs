//! The retry back-off as a function's variables set it: how long a failed message stays hidden,
//! by its receive count. Below the batch core and the options that read it; [`crate::runtime::retry`]
//! plans each batch's failures with it.

use std::time::Duration;

/// Seconds of visibility after a failed first receive; 0 turns the back-off off.
pub const RETRY_BACKOFF_VAR: &str = "RETRY_BACKOFF_SECS";
/// What each further receive multiplies the visibility by (1 is a fixed delay).
pub const RETRY_BACKOFF_MULTIPLIER_VAR: &str = "RETRY_BACKOFF_MULTIPLIER";
/// The longest visibility the back-off sets, in seconds.
pub const RETRY_BACKOFF_MAX_VAR: &str = "RETRY_BACKOFF_MAX_SECS";
/// `none`, `full` or `half`: how much of each visibility is left to chance.
pub const RETRY_BACKOFF_JITTER_VAR: &str = "RETRY_BACKOFF_JITTER";

/// SQS keeps a message invisible for at most 12 hours.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
/// The largest multiplier accepted: beyond it the cap is reached on the second receive anyway.
pub const MAX_MULTIPLIER: f64 = 100.0;

/// How much of a back-off step is random, as Spring Cloud AWS defines it: spreading the retries
/// of messages that failed together, so that they do not all come back in the same second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Exactly the computed step.
    #[default]
    None,
    /// Anywhere from zero to the computed step.
    Full,
    /// Anywhere from half the computed step to all of it.
    Half,
}

impl Jitter {
    /// Its name in `RETRY_BACKOFF_JITTER`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Full => "full",
            Self::Half => "half",
        }
    }

    /// From its name, any case.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Some(Self::None),
            "full" => Some(Self::Full),
            "half" => Some(Self::Half),
            _ => None,
        }
    }
}

/// A failed message's visibility from its receive count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The visibility after the first failed receive (at least a second).
    pub initial: Duration,
    /// What each further receive multiplies it by (1.0 ..= [`MAX_MULTIPLIER`]).
    pub multiplier: f64,
    /// The longest visibility it sets (never more than [`MAX_VISIBILITY`]).
    pub max: Duration,
    /// How much of each step is random.
    pub jitter: Jitter,
}

impl Default for Backoff {
    /// 2 s, doubling, at most 15 minutes, no jitter: 2, 4, 8, 16 ... seconds.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(2),
            multiplier: 2.0,
            max: Duration::from_secs(900),
            jitter: Jitter::None,
        }
    }
}

impl Backoff {
    /// The step for a message that failed on its `receive_count`-th receive, before jitter:
    /// `initial × multiplier^(receive_count − 1)`, at most `max` and 12 hours.
    #[must_use]
    pub fn step(&self, receive_count: u32) -> Duration {
        let exponent = i32::try_from(receive_count.saturating_sub(1)).unwrap_or(i32::MAX);
        let cap = self.max.min(MAX_VISIBILITY);
        let seconds = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        // Past the cap (or not a number, which the parsed settings cannot give): the cap.
        if seconds.is_finite() && seconds < cap.as_secs_f64() {
            Duration::from_secs_f64(seconds)
        } else {
            cap
        }
    }

    /// The visibility, in SQS's whole seconds, for a message that failed on its
    /// `receive_count`-th receive; `chance` (0.0 ..= 1.0) draws the jitter.
    #[must_use]
    pub fn visibility_secs(&self, receive_count: u32, chance: f64) -> i32 {
        let step = self.step(receive_count).as_secs_f64();
        let chance = chance.clamp(0.0, 1.0);
        let seconds = match self.jitter {
            Jitter::None => step,
            Jitter::Full => step * chance,
            Jitter::Half => step / 2.0 + step / 2.0 * chance,
        };
        // At most 12 hours (43,200 s): always fits.
        i32::try_from(seconds.round() as u64).unwrap_or(i32::MAX)
    }
}
