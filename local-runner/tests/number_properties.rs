//! Numbers from the command line and from a template are untrusted: whatever their value, the
//! edge turns them into a plan or into a usage error, never a panic, and what it lets through is
//! inside the documented range (RELIABILITY.md, "Bad input").

use clap::Parser;
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

const FLAGS: [&str; 11] = [
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
const LAMBDA_FLAGS: [&str; 3] = ["--esm-batch-size", "--batching-window", "--max-concurrency"];

fn test_template() -> String {
    format!("{}/../tests/templates/standard.yaml", env!("CARGO_MANIFEST_DIR"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_number_on_any_flag_makes_a_plan_or_a_usage_error(flag in 0..FLAGS.len(), value in number()) {
        let args = ["local-runner", "--queue", "q", "--no-template", FLAGS[flag], &value];
        if let Ok(cli) = Cli::try_parse_from(args)
            && let Ok(Plan::InProcess(run)) = cli.into_plan()
        {
            let config = &run.config;
            prop_assert!(config.in_flight_limit(&run.mode()).get() <= 120_000);
            prop_assert!(config.shutdown_timeout.as_secs() <= 43_200);
            prop_assert!(config.start_timeout.as_secs() <= 3_600);
        }
    }

    #[test]
    fn any_number_on_a_mapping_flag_makes_a_plan_or_a_usage_error(flag in 0..LAMBDA_FLAGS.len(), value in number()) {
        let template = test_template();
        let args = ["local-runner", "--queue", "q", "--lambda", "/bin/true", "--template", &template, LAMBDA_FLAGS[flag], &value];
        if let Ok(cli) = Cli::try_parse_from(args)
            && let Ok(Plan::Lambda(runs)) = cli.into_plan()
        {
            for run in runs {
                prop_assert!(run.mapping.batch_size.get() <= 10_000);
                prop_assert!(run.mapping.batching_window.as_secs() <= 300);
                prop_assert!(run.mapping.max_concurrency.get() <= 1_000);
            }
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
