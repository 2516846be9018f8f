//! How a function runs its batches, read once from the environment it is given: Lambda's
//! process environment, or the template's `Environment.Variables` under `local-runner`. The same
//! variables mean the same thing in both runtimes.

use std::num::NonZeroUsize;
use std::time::Duration;

use thiserror::Error as ThisError;

use crate::backoff::{
    Backoff, Jitter, MAX_MULTIPLIER, MAX_VISIBILITY, RETRY_BACKOFF_JITTER_VAR, RETRY_BACKOFF_MAX_VAR,
    RETRY_BACKOFF_MULTIPLIER_VAR, RETRY_BACKOFF_VAR,
};

/// Messages (FIFO: message groups) handled at once within one batch.
pub const CONCURRENCY_VAR: &str = "HANDLER_CONCURRENCY";
/// Milliseconds kept in hand before the invocation's deadline.
pub const DEADLINE_RESERVE_VAR: &str = "DEADLINE_RESERVE_MS";
/// `true`: a batch in which every message failed fails the invocation.
pub const FAIL_ON_FULL_BATCH_FAILURE_VAR: &str = "FAIL_ON_FULL_BATCH_FAILURE";
/// `stop-batch` (AWS's rule, the default) or `skip-group`: what a FIFO failure stops.
pub const FIFO_ON_FAILURE_VAR: &str = "FIFO_ON_FAILURE";

/// The most messages a batch can hold (the event source mapping's largest `BatchSize`): more
/// concurrency than that can never be used.
pub const MAX_CONCURRENCY: usize = 10_000;
/// The longest reserve worth keeping: Lambda's longest function timeout, 15 minutes.
pub const MAX_DEADLINE_RESERVE_MS: u64 = 900_000;

/// How a function runs its batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The most messages (FIFO: message groups) handled at once within one batch
    /// (`HANDLER_CONCURRENCY`, default 10: a full SQS receive, and the event source mapping's
    /// default batch size).
    pub concurrency: NonZeroUsize,
    /// Time kept in hand before the invocation's deadline (`DEADLINE_RESERVE_MS`, default 1000):
    /// once less than this remains, no further message starts, and those not started are
    /// reported as batch item failures. Without it, a slow batch would run into the function
    /// timeout, the whole invocation would fail, and every message of it, finished or not, would
    /// come back.
    pub deadline_reserve: Duration,
    /// Fail the whole invocation when every message of a batch failed
    /// (`FAIL_ON_FULL_BATCH_FAILURE=true`, default off), so that the event source mapping backs
    /// off instead of invoking again at full speed, as Powertools does. `local-runner` backs its
    /// pollers off the same way.
    pub fail_on_full_batch_failure: bool,
    /// When a failed message comes back ([`crate::runtime::retry`]): its visibility from its receive
    /// count (`RETRY_BACKOFF_SECS`, `RETRY_BACKOFF_MULTIPLIER`, `RETRY_BACKOFF_MAX_SECS`,
    /// `RETRY_BACKOFF_JITTER`; default 2 s doubling up to 15 minutes); `None`
    /// (`RETRY_BACKOFF_SECS=0`) leaves the queue's visibility timeout.
    pub retry: Option<Backoff>,
    /// What a failure in a FIFO batch stops (`FIFO_ON_FAILURE`).
    pub fifo: FifoMode,
}

/// What a failure in a batch from a FIFO queue stops. Either way a group never runs past its
/// own failure, so its order holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FifoMode {
    /// AWS's rule for FIFO batches (`stop-batch`): after the first failure no message of the
    /// batch starts, whatever its group; what has not started is reported failed and comes back.
    #[default]
    StopBatch,
    /// Powertools' `skip_group_on_error` (`skip-group`): only the failed group stops; the other
    /// groups of the batch go on.
    SkipGroup,
}

impl FifoMode {
    /// Its name in `FIFO_ON_FAILURE`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StopBatch => "stop-batch",
            Self::SkipGroup => "skip-group",
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: NonZeroUsize::new(10).expect("10 is not zero"),
            deadline_reserve: Duration::from_secs(1),
            fail_on_full_batch_failure: false,
            retry: Some(Backoff::default()),
            fifo: FifoMode::StopBatch,
        }
    }
}

/// A variable that is set but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[error("{name} must be {expected}, got {value:?}")]
pub struct OptionsError {
    /// The variable.
    pub name: &'static str,
    /// What it was.
    pub value: String,
    /// What it must be.
    pub expected: &'static str,
}

impl Options {
    /// Reads the options from variables looked up with `var` (for a process: `|name|
    /// std::env::var(name).ok()`); unset variables keep their defaults.
    ///
    /// # Errors
    /// [`OptionsError`] naming the first variable that is set to something unusable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, OptionsError> {
        let mut options = Self::default();
        let bad = |name, value: &str, expected| OptionsError { name, value: value.to_owned(), expected };
        if let Some(value) = var(CONCURRENCY_VAR) {
            options.concurrency = value
                .trim()
                .parse()
                .ok()
                .filter(|n: &NonZeroUsize| n.get() <= MAX_CONCURRENCY)
                .ok_or_else(|| bad(CONCURRENCY_VAR, &value, "a whole number from 1 to 10000"))?;
        }
        if let Some(value) = var(DEADLINE_RESERVE_VAR) {
            let ms: u64 =
                value.trim().parse().ok().filter(|ms| *ms <= MAX_DEADLINE_RESERVE_MS).ok_or_else(|| {
                    bad(DEADLINE_RESERVE_VAR, &value, "a whole number of milliseconds from 0 to 900000")
                })?;
            options.deadline_reserve = Duration::from_millis(ms);
        }
        if let Some(value) = var(FAIL_ON_FULL_BATCH_FAILURE_VAR) {
            options.fail_on_full_batch_failure = match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" | "" => false,
                _ => return Err(bad(FAIL_ON_FULL_BATCH_FAILURE_VAR, &value, "true or false")),
            };
        }
        if let Some(value) = var(FIFO_ON_FAILURE_VAR) {
            options.fifo = match value.trim().to_ascii_lowercase().as_str() {
                "stop-batch" | "" => FifoMode::StopBatch,
                "skip-group" => FifoMode::SkipGroup,
                _ => return Err(bad(FIFO_ON_FAILURE_VAR, &value, "stop-batch or skip-group")),
            };
        }
        options.retry = backoff_from_vars(&var)?;
        Ok(options)
    }
}

/// The retry back-off from its four variables; `None` when `RETRY_BACKOFF_SECS` is 0.
fn backoff_from_vars(var: &impl Fn(&str) -> Option<String>) -> Result<Option<Backoff>, OptionsError> {
    let bad = |name, value: &str, expected| OptionsError { name, value: value.to_owned(), expected };
    let max_secs = MAX_VISIBILITY.as_secs();
    let seconds = |name, value: &str| {
        value.trim().parse::<u64>().ok().filter(|s| *s <= max_secs).map(Duration::from_secs).ok_or_else(
            || {
                bad(
                    name,
                    value,
                    "a whole number of seconds from 0 to 43200 (12 hours, SQS's longest visibility)",
                )
            },
        )
    };
    let mut backoff = Backoff::default();
    if let Some(value) = var(RETRY_BACKOFF_VAR) {
        backoff.initial = seconds(RETRY_BACKOFF_VAR, &value)?;
    }
    if let Some(value) = var(RETRY_BACKOFF_MAX_VAR) {
        backoff.max = seconds(RETRY_BACKOFF_MAX_VAR, &value)?;
    }
    if let Some(value) = var(RETRY_BACKOFF_MULTIPLIER_VAR) {
        backoff.multiplier = value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|m| (1.0..=MAX_MULTIPLIER).contains(m))
            .ok_or_else(|| bad(RETRY_BACKOFF_MULTIPLIER_VAR, &value, "a number from 1 to 100"))?;
    }
    if let Some(value) = var(RETRY_BACKOFF_JITTER_VAR) {
        backoff.jitter = Jitter::parse(&value)
            .ok_or_else(|| bad(RETRY_BACKOFF_JITTER_VAR, &value, "none, full or half"))?;
    }
    // A max below the first step would make every step the max: the first step is the floor.
    backoff.max = backoff.max.max(backoff.initial);
    Ok((!backoff.initial.is_zero()).then_some(backoff))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Options, OptionsError> {
        let vars: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Options::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn unset_variables_keep_the_defaults() {
        assert_eq!(from(&[]), Ok(Options::default()));
    }

    #[test]
    fn each_variable_sets_its_option() {
        let options = from(&[
            (CONCURRENCY_VAR, "3"),
            (DEADLINE_RESERVE_VAR, "250"),
            (FAIL_ON_FULL_BATCH_FAILURE_VAR, "true"),
            (FIFO_ON_FAILURE_VAR, "skip-group"),
            (RETRY_BACKOFF_VAR, "5"),
            (RETRY_BACKOFF_MULTIPLIER_VAR, "1.5"),
            (RETRY_BACKOFF_MAX_VAR, "60"),
            (RETRY_BACKOFF_JITTER_VAR, "Half"),
        ])
        .unwrap();
        assert_eq!(options.fifo, FifoMode::SkipGroup);
        let expected = Backoff {
            initial: Duration::from_secs(5),
            multiplier: 1.5,
            max: Duration::from_secs(60),
            jitter: Jitter::Half,
        };
        assert_eq!(options.retry, Some(expected));
        assert_eq!(options.concurrency.get(), 3);
        assert_eq!(options.deadline_reserve, Duration::from_millis(250));
        assert!(options.fail_on_full_batch_failure);
    }

    #[test]
    fn numbers_past_their_range_are_refused_not_wrapped() {
        for (name, value) in [
            (CONCURRENCY_VAR, "10001"),
            (CONCURRENCY_VAR, "2305843009213693952"),
            (CONCURRENCY_VAR, "-1"),
            (DEADLINE_RESERVE_VAR, "900001"),
            (DEADLINE_RESERVE_VAR, "18446744073709551615"),
            (RETRY_BACKOFF_VAR, "43201"),
            (RETRY_BACKOFF_MAX_VAR, "99999999999999999999"),
            (RETRY_BACKOFF_MULTIPLIER_VAR, "0.5"),
            (RETRY_BACKOFF_MULTIPLIER_VAR, "inf"),
            (RETRY_BACKOFF_MULTIPLIER_VAR, "NaN"),
        ] {
            let error = from(&[(name, value)]).unwrap_err();
            assert_eq!(error.name, name, "{value}");
        }
        assert_eq!(from(&[(CONCURRENCY_VAR, "10000")]).unwrap().concurrency.get(), 10_000);
    }

    #[test]
    fn a_zero_back_off_leaves_failures_to_the_queue_s_timeout() {
        assert_eq!(from(&[(RETRY_BACKOFF_VAR, "0")]).unwrap().retry, None);
        let floor = from(&[(RETRY_BACKOFF_VAR, "30"), (RETRY_BACKOFF_MAX_VAR, "10")]).unwrap().retry.unwrap();
        assert_eq!(floor.max, Duration::from_secs(30), "the max is never below the first step");
    }

    #[test]
    fn an_unusable_value_names_its_variable() {
        for (name, value) in [
            (CONCURRENCY_VAR, "0"),
            (DEADLINE_RESERVE_VAR, "1s"),
            (FAIL_ON_FULL_BATCH_FAILURE_VAR, "maybe"),
            (FIFO_ON_FAILURE_VAR, "skip"),
            (RETRY_BACKOFF_JITTER_VAR, "some"),
        ] {
            let error = from(&[(name, value)]).unwrap_err();
            assert_eq!(error.name, name);
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }
}
