//! Usage errors: caught before anything runs, exit status 2, a message naming the flag.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_local-runner"))
        .args(args)
        .env_remove("SQS_QUEUE")
        .output()
        .expect("run local-runner");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_missing_queue_flag_is_a_usage_error() {
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--queue"), "{stderr}");
}

#[test]
fn a_batch_size_above_ten_is_a_usage_error() {
    let (code, stderr) = run(&["--queue", "q", "--batch-size", "11"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--batch-size"), "{stderr}");
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let (code, stderr) = run(&["--queue", "q", "--frobnicate"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--frobnicate"), "{stderr}");
}

#[test]
fn an_endpoint_without_a_scheme_is_a_usage_error() {
    let (code, stderr) = run(&["--queue", "q", "--endpoint-url", "localhost:4566"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--endpoint-url"), "{stderr}");
}

#[test]
fn help_lists_every_documented_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_local-runner")).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--queue",
        "--endpoint-url",
        "--region",
        "--pollers",
        "--batch-size",
        "--wait-time-seconds",
        "--max-in-flight",
        "--shutdown-timeout",
        "--exit-when-idle",
        "--log-format",
    ] {
        assert!(help.contains(flag), "--help should list {flag}");
    }
}
