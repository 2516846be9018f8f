//! The command's numeric flags, which the bad-input tests feed extreme numbers: one list for the
//! property tests of the plan and the end-to-end test of the binary (`tests/tests/bad_input.rs`
//! includes this file), which `number_properties.rs` checks against the command itself.

/// The numeric flags of both modes.
pub(crate) const FLAGS: [&str; 11] = [
    "--pollers",
    "--batch-size",
    "--wait-time-seconds",
    "--max-in-flight",
    "--shutdown-timeout",
    "--exit-when-idle",
    "--retry-backoff",
    "--retry-backoff-max",
    "--start-timeout",
    "--stats-interval",
    "--function-timeout",
];

/// The numeric flags of the emulated event source mapping, which need `--lambda`.
pub(crate) const LAMBDA_FLAGS: [&str; 3] = ["--esm-batch-size", "--batching-window", "--max-concurrency"];
