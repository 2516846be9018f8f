//! The plan's tests build it from their arguments alone: neither clap's `env` fallbacks nor the
//! options read the process environment, so an exported `AWS_ENDPOINT_URL` or
//! `RETRY_BACKOFF_SECS` cannot change what they see.

use std::num::NonZeroUsize;

use clap::{CommandFactory, FromArgMatches};

use super::*;
use crate::aws::Connection;
use crate::template::Template;
use sqs_batch::runtime::retry;

/// The command line of `args` as if nothing were exported.
fn cli(args: &[&str]) -> Result<Cli, String> {
    let matches = Cli::command()
        .mut_args(|arg| arg.env(None))
        .try_get_matches_from([&["local-runner"], args].concat())
        .map_err(|e| e.to_string())?;
    Cli::from_arg_matches(&matches).map_err(|e| e.to_string())
}

/// The plan of `args`, with an empty process environment.
fn plan(args: &[&str]) -> Result<Plan, String> {
    cli(args)?.into_plan_with(&|_| None).map_err(|e| e.to_string())
}

/// A template file of `Queue` (`queue`, its flow mapping) and the function `Fn` with
/// `properties` (its `Properties`, unindented), named after `name`: the caller removes it.
fn function_template(name: &str, queue: &str, properties: &str) -> (std::path::PathBuf, String) {
    let path = std::env::temp_dir().join(format!("{name}-{}.yaml", std::process::id()));
    let properties: String =
        properties.trim_start_matches('\n').lines().map(|line| format!("      {line}\n")).collect();
    let text = format!(
        "Resources:\n  Queue: {queue}\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n{properties}"
    );
    std::fs::write(&path, text).expect("a temporary template");
    let display = path.display().to_string();
    (path, display)
}

fn parse(args: &[&str]) -> Result<InProcessRun, String> {
    match plan(&[&["--no-template"], args].concat())? {
        Plan::InProcess(run) => Ok(*run),
        Plan::Lambda(_) => Err("not in process".into()),
    }
}

#[test]
fn a_queue_name_and_the_defaults_make_a_config() {
    let run = parse(&["--queue", "orders"]).unwrap();
    let config = &run.config;
    assert_eq!(config.queue, QueueRef::Name("orders".into()));
    assert_eq!(config.connection.endpoint_url.as_deref(), Some("http://localhost:4566"));
    assert_eq!(config.pollers.get(), 2);
    assert_eq!(run.batch_size, 10);
    assert_eq!(config.wait_time, Duration::from_secs(20));
    assert_eq!(config.in_flight_limit(&run.mode()).get(), 20);
}

#[test]
fn the_command_lines_defaults_are_the_consumers() {
    let run = parse(&["--queue", "orders"]).unwrap();
    assert_eq!(
        run.mode(),
        Mode::InProcess {
            batch_size: NonZeroUsize::new(10).unwrap(),
            retry_backoff: Some(retry::Backoff::default()),
            heartbeat: true
        }
    );
    let from_flags = run.config;
    let defaults = Config::new(QueueRef::Name("orders".into()), Connection::new(None, "us-east-1"));
    assert_eq!(
        (from_flags.shutdown_timeout, from_flags.start_timeout, from_flags.stats_interval),
        (defaults.shutdown_timeout, defaults.start_timeout, defaults.stats_interval)
    );
}

#[test]
fn the_retry_back_off_is_the_function_s_and_the_flags_override_it() {
    let (path, template) = function_template(
        "backoff",
        "{Type: AWS::SQS::Queue}",
        r#"
Environment:
  Variables: {RETRY_BACKOFF_SECS: "5", RETRY_BACKOFF_MULTIPLIER: "3", RETRY_BACKOFF_JITTER: full}
Events:
  Q: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
"#,
    );
    let backoff =
        |extra: &[&str]| match plan(&[&["--queue", "Queue", "--template", &template], extra].concat()) {
            Ok(Plan::InProcess(run)) => Ok(run.options.retry),
            Ok(Plan::Lambda(_)) => Err("not in process".to_owned()),
            Err(error) => Err(error),
        };
    let from_template = backoff(&[]).unwrap().unwrap();
    assert_eq!(
        (from_template.initial, from_template.multiplier, from_template.jitter),
        (Duration::from_secs(5), 3.0, retry::Jitter::Full)
    );
    let overridden = backoff(&["--retry-backoff", "1", "--retry-backoff-max", "10"]).unwrap().unwrap();
    assert_eq!(
        (overridden.initial, overridden.max, overridden.multiplier),
        (Duration::from_secs(1), Duration::from_secs(10), 3.0)
    );
    assert_eq!(backoff(&["--retry-backoff", "0"]).unwrap(), None, "0: the queue's timeout");
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace("full", "lots")).unwrap();
    let error = backoff(&[]).unwrap_err();
    assert!(error.contains("Fn") && error.contains("RETRY_BACKOFF_JITTER"), "{error}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn in_process_holds_as_many_messages_as_the_deployed_function_handles_unless_told() {
    let (path, template) = function_template(
        "in-flight",
        "{Type: AWS::SQS::Queue}",
        r#"
Events:
  Q:
    Type: SQS
    Properties: {Queue: !GetAtt Queue.Arn, BatchSize: 10, ScalingConfig: {MaximumConcurrency: 7}}
"#,
    );
    let in_process =
        |extra: &[&str]| match plan(&[&["--queue", "Queue", "--template", &template], extra].concat())
            .unwrap()
        {
            Plan::InProcess(run) => run.config.in_flight_limit(&run.mode()).get(),
            Plan::Lambda(_) => 0,
        };
    assert_eq!(in_process(&[]), 70, "BatchSize × MaximumConcurrency");
    assert_eq!(in_process(&["--max-in-flight", "15"]), 15, "the flag wins");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn in_process_the_templates_timeout_is_each_batchs_deadline_unless_the_flag_says_otherwise() {
    let (path, template) = function_template(
        "timeout",
        "{Type: AWS::SQS::Queue, Properties: {VisibilityTimeout: 120}}",
        r#"
Timeout: 17
Events:
  Q: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
"#,
    );
    let timeout = |extra: &[&str]| match plan(&[&["--queue", "Queue"], extra].concat()).unwrap() {
        Plan::InProcess(run) => run.function_timeout,
        Plan::Lambda(_) => None,
    };
    assert_eq!(timeout(&["--template", &template]), Some(Duration::from_secs(17)), "the template's Timeout");
    assert_eq!(timeout(&["--template", &template, "--function-timeout", "9"]), Some(Duration::from_secs(9)));
    assert_eq!(timeout(&["--no-template"]), None, "no function, no deadline");
    assert_eq!(timeout(&["--no-template", "--function-timeout", "9"]), Some(Duration::from_secs(9)));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_queue_url_is_used_as_it_is() {
    let config = parse(&["--queue", "http://127.0.0.1:4566/000000000000/orders"]).unwrap().config;
    assert_eq!(config.queue, QueueRef::Url("http://127.0.0.1:4566/000000000000/orders".into()));
}

#[test]
fn batch_size_and_wait_time_outside_sqs_limits_are_usage_errors() {
    assert!(parse(&["--queue", "q", "--batch-size", "11"]).is_err());
    assert!(parse(&["--queue", "q", "--batch-size", "0"]).is_err());
    assert!(parse(&["--queue", "q", "--wait-time-seconds", "21"]).is_err());
    assert!(parse(&["--queue", "q", "--pollers", "0"]).is_err());
}

#[test]
fn an_endpoint_that_cannot_be_one_is_a_usage_error() {
    for endpoint in [
        "http://",
        "https://",
        "http:// 127.0.0.1:4566",
        "http://127.0.0.1:99999",
        "http://a b",
        "http://:4566",
    ] {
        let error = parse(&["--queue", "q", "--endpoint-url", endpoint]).unwrap_err();
        assert!(error.contains("--endpoint-url"), "{endpoint}: {error}");
    }
    for endpoint in ["http://localhost:4566", "https://sqs.us-east-1.amazonaws.com/", "http://[::1]:4566"] {
        assert!(parse(&["--queue", "q", "--endpoint-url", endpoint]).is_ok(), "{endpoint}");
    }
}

#[test]
fn an_endpoint_without_a_scheme_is_rejected_and_an_empty_one_means_aws() {
    assert!(parse(&["--queue", "q", "--endpoint-url", "localhost:4566"]).is_err());
    assert_eq!(parse(&["--queue", "q", "--endpoint-url", ""]).unwrap().config.connection.endpoint_url, None);
}

#[test]
fn exit_when_idle_caps_the_long_poll_wait() {
    let config = parse(&["--queue", "q", "--exit-when-idle", "3"]).unwrap().config;
    assert_eq!(config.long_poll(), Duration::from_secs(3));
}

#[test]
fn with_several_functions_the_one_reading_the_queue_is_chosen() {
    let template = Template::parse(
        r#"
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties:
      Events: {Q: {Type: SQS, Properties: {Queue: !GetAtt QueueA.Arn}}}
  B:
    Type: AWS::Serverless::Function
    Properties:
      Events: {Q: {Type: SQS, Properties: {Queue: !GetAtt QueueB.Arn}}}
  QueueA: {Type: AWS::SQS::Queue, Properties: {QueueName: orders}}
  QueueB: {Type: AWS::SQS::Queue}
"#,
    )
    .unwrap();
    let chosen = |queue: &str| {
        in_process::choose_for_queue(&template, None, &QueueRef::parse(queue).unwrap())
            .map(|f| f.map(|f| f.logical_id.clone()))
    };
    assert_eq!(chosen("orders").unwrap().as_deref(), Some("A"));
    assert_eq!(chosen("http://127.0.0.1:4566/000000000000/QueueB").unwrap().as_deref(), Some("B"));
    assert!(matches!(chosen("other"), Err(RunnerError::Usage(_))));
}
