//! Numbers from the command line and from a template are untrusted: whatever their value, the
//! edge turns them into a plan or into a usage error, never a panic, and what it lets through is
//! inside the documented range (RELIABILITY.md, "Bad input").

use clap::{CommandFactory, FromArgMatches};
use local_runner::cli::{Cli, Plan};
use local_runner::template::Template;
use proptest::prelude::*;

/// Any number as text, the extremes and the signs included.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0u64..2_000).prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("1e400".to_owned()),
        Just("-0".to_owned()),
    ]
}

#[path = "shared/numeric_flags.rs"]
mod numeric_flags;

use numeric_flags::{FLAGS, LAMBDA_FLAGS};

/// The command line of `args` as if nothing were exported (no clap `env` fallback).
fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::from_arg_matches(&Cli::command().mut_args(|arg| arg.env(None)).try_get_matches_from(args)?)
}

/// A usage error: exit status 2 and one line, which names `flag` when clap refused its value.
fn is_usage_error(error: &str, code: i32, flag: &str, by_clap: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(code, 2, "{}", error);
    let error = error.trim_end();
    prop_assert!(!error.is_empty(), "an error says what is wrong");
    if by_clap {
        prop_assert!(error.contains(flag), "{}", error);
    } else {
        prop_assert!(!error.contains('\n'), "one line: {}", error);
    }
    Ok(())
}

fn test_template() -> String {
    format!("{}/../tests/templates/standard.yaml", env!("CARGO_MANIFEST_DIR"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_number_on_any_flag_makes_a_plan_or_a_usage_error(flag in 0..FLAGS.len(), value in number()) {
        let args = ["local-runner", "--queue", "q", "--no-template", FLAGS[flag], &value];
        match cli(&args).map(|cli| cli.into_plan_with(&|_| None)) {
            Err(error) => is_usage_error(&error.to_string(), error.exit_code(), FLAGS[flag], true)?,
            Ok(Err(error)) => is_usage_error(&error.to_string(), i32::from(error.exit_code()), FLAGS[flag], false)?,
            Ok(Ok(Plan::InProcess(run))) => {
                let config = &run.config;
                prop_assert!(config.in_flight_limit(&run.mode()).get() <= 120_000);
                prop_assert!(config.shutdown_timeout.as_secs() <= 43_200);
                prop_assert!(config.start_timeout.as_secs() <= 3_600);
            }
            Ok(Ok(Plan::Lambda(_))) => prop_assert!(false, "no --lambda, yet a Lambda plan"),
        }
    }

    #[test]
    fn any_number_on_a_mapping_flag_makes_a_plan_or_a_usage_error(flag in 0..LAMBDA_FLAGS.len(), value in number()) {
        let template = test_template();
        let args = ["local-runner", "--queue", "q", "--lambda", "/bin/true", "--template", &template, LAMBDA_FLAGS[flag], &value];
        match cli(&args).map(|cli| cli.into_plan_with(&|_| None)) {
            Err(error) => is_usage_error(&error.to_string(), error.exit_code(), LAMBDA_FLAGS[flag], true)?,
            Ok(Err(error)) => is_usage_error(&error.to_string(), i32::from(error.exit_code()), LAMBDA_FLAGS[flag], false)?,
            Ok(Ok(Plan::Lambda(runs))) => {
                for run in runs {
                    prop_assert!(run.mapping.batch_size.get() <= 10_000);
                    prop_assert!(run.mapping.batching_window.as_secs() <= 300);
                    prop_assert!(run.mapping.max_concurrency.get() <= 1_000);
                }
            }
            Ok(Ok(Plan::InProcess(_))) => prop_assert!(false, "--lambda, yet an in-process plan"),
        }
    }

    #[test]
    fn any_number_in_any_numeric_template_field_is_read_in_range_or_reported(field in 0..8usize, value in number()) {
        let base = std::fs::read_to_string(test_template()).expect("the test template");
        // Each numeric field the model reads: its line replaced, or added where the template
        // has none.
        let (from, to) = match field {
            0 => ("    Timeout: 30\n", format!("    Timeout: {value}\n")),
            1 => ("    Timeout: 30\n", format!("    Timeout: 30\n    MemorySize: {value}\n")),
            2 => ("BatchSize: 10", format!("BatchSize: {value}")),
            3 => ("BatchSize: 10", format!("BatchSize: 10\n            MaximumBatchingWindowInSeconds: {value}")),
            4 => ("BatchSize: 10", format!("BatchSize: 10\n            ScalingConfig:\n              MaximumConcurrency: {value}")),
            5 => ("VisibilityTimeout: 190", format!("VisibilityTimeout: {value}")),
            6 => ("VisibilityTimeout: 190", format!("VisibilityTimeout: 190\n      MessageRetentionPeriod: {value}")),
            _ => ("maxReceiveCount: 5", format!("maxReceiveCount: {value}")),
        };
        prop_assume!(base.contains(from));
        let Ok(template) = Template::parse(&base.replacen(from, &to, 1)) else { return Ok(()) };
        // Nothing here may panic, whatever was read.
        let findings = template.check();
        if template.problems.is_empty() {
            let function = &template.functions[0];
            prop_assert!((1..=900).contains(&function.timeout.as_secs()));
            prop_assert!((128..=10_240).contains(&function.memory_mb));
            let event = &function.sqs_events[0];
            prop_assert!((1..=10_000).contains(&event.batch_size));
            prop_assert!(event.batching_window.as_secs() <= 300);
            prop_assert!(event.max_concurrency.is_none_or(|c| (2..=1_000).contains(&c)));
            for queue in template.queues.values() {
                prop_assert!(queue.visibility_timeout.as_secs() <= 43_200);
                prop_assert!(queue.redrive.as_ref().is_none_or(|(_, count)| (1..=1_000).contains(count)));
            }
        } else {
            prop_assert!(template.usable().is_err());
            prop_assert!(template.problems.iter().all(|problem| findings.contains(problem)));
        }
    }
}

/// The list the bad-input tests use is the command's: every flag that takes a whole number (it
/// refuses `x` as a value and takes `1`) is on it, and nothing else.
#[test]
fn the_numeric_flags_tested_are_every_flag_of_the_command_that_takes_a_number() {
    let refuses = |flag: &str, value: &str| {
        Cli::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(["local-runner", flag, value])
            .is_err_and(|e| e.kind() == clap::error::ErrorKind::ValueValidation)
    };
    let mut numeric: Vec<String> = Cli::command()
        .get_arguments()
        .filter(|arg| arg.get_action().takes_values())
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .filter(|flag| refuses(flag, "x") && !refuses(flag, "1"))
        .collect();
    let mut listed: Vec<String> = FLAGS.iter().chain(&LAMBDA_FLAGS).map(|f| (*f).to_owned()).collect();
    listed.sort();
    numeric.sort();
    assert_eq!(listed, numeric);
}
