//! A function's handler options ([`sqs_batch::Options`]), read from its variables as its handler
//! reads them at start, and held against its timeout: the one reading of them, for the plan of
//! both modes and for `check`.

use std::time::Duration;

use sqs_batch::Options;
use sqs_batch::runtime::DEADLINE_RESERVE_VAR;
use thiserror::Error;

/// Why a function's options cannot run it.
#[derive(Debug, Error, PartialEq)]
pub enum OptionsProblem {
    /// A variable the handler reads does not parse: the deployed function would not start.
    #[error(transparent)]
    Unreadable(#[from] sqs_batch::OptionsError),
    /// The timeout leaves nothing after the deadline reserve: every batch would start no message,
    /// and its messages would spend their receives on the way to the dead-letter queue.
    #[error(
        "the function timeout ({} ms) does not exceed its deadline reserve {DEADLINE_RESERVE_VAR} ({} ms), so no \
         message could ever start: raise Timeout (or --function-timeout), or lower {DEADLINE_RESERVE_VAR}",
        timeout.as_millis(),
        reserve.as_millis()
    )]
    InsideReserve {
        /// The function's timeout.
        timeout: Duration,
        /// Its deadline reserve.
        reserve: Duration,
    },
}

/// The options of the function whose variables `var` looks up, checked against its `timeout`
/// (none: no deadline, nothing to check).
///
/// # Errors
/// [`OptionsProblem`] saying which variable or which pair of settings.
pub fn function_options(
    var: impl Fn(&str) -> Option<String>,
    timeout: Option<Duration>,
) -> Result<Options, OptionsProblem> {
    let options = Options::from_vars(var)?;
    match timeout {
        Some(timeout) if timeout <= options.deadline_reserve => {
            Err(OptionsProblem::InsideReserve { timeout, reserve: options.deadline_reserve })
        }
        _ => Ok(options),
    }
}
