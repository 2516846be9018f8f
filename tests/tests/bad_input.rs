//! Bad and hostile input, end to end (RELIABILITY.md, "Bad input"): a run that can handle
//! nothing stops before it costs a message a receive, numbers past their range are usage errors,
//! a producer cannot write on the user's terminal, and an endpoint that is not SQS, or does not
//! answer, is said to be so within the start timeout.

#[path = "../../local-runner/tests/shared/numeric_flags.rs"]
mod numeric_flags;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use numeric_flags::{FLAGS, LAMBDA_FLAGS};
use support::{RunningRunner, bootstrap_bin, depth, good_body, queue_pair, runner_bin, send, template_path};

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

/// The lines of stderr that are not empty.
fn lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// A file in a fresh folder, with `mode`.
fn file(name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(support::unique_name(name));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_cannot_start_stops_the_run_before_a_message_is_received() {
    let client = support::client().await;
    let not_executable = file("README.md", "# not a program\n", 0o644);
    let exits_at_once = file("bootstrap", "#!/bin/sh\nexit 0\n", 0o755);
    let template = template_path("standard").display().to_string();
    for (bootstrap, said) in
        [(&not_executable, "Permission denied"), (&exits_at_once, "before taking an invocation")]
    {
        let queue = queue_pair(&client, "cannot-start", false, 30, 2).await;
        let bodies: Vec<String> = (0..5).map(|i| good_body(&format!("m{i}"), 0)).collect();
        send(&client, &queue.url, &bodies, None).await;
        let bootstrap = bootstrap.display().to_string();
        let mut runner = RunningRunner::start(&[
            "--queue",
            &queue.url,
            "--lambda",
            &bootstrap,
            "--template",
            &template,
            "--exit-when-idle",
            "2",
        ]);
        let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
        assert_eq!(code, Some(1), "{bootstrap}: {stderr}");
        let lines = lines(&stderr);
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains("cannot start") && lines[0].contains(said), "{}", lines[0]);
        // Nothing was received: every message is still there, none in flight, none dead-lettered.
        assert_eq!(depth(&client, &queue.url).await, (5, 0), "{bootstrap}");
        assert_eq!(depth(&client, &queue.dlq_url).await, (0, 0), "{bootstrap}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_stops_starting_mid_run_releases_its_batch_and_stops_the_run() {
    let client = support::client().await;
    let queue = queue_pair(&client, "stops-starting", false, 30, 2).await;
    // Answers one invocation, then exits; started again, it exits at once (the marker is there).
    let body = r#"#!/bin/sh
dir=$(dirname "$0")
[ -e "$dir/ran" ] && exit 4
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
id=$(curl -sS -D - -o /dev/null "$api/invocation/next" | tr -d '\r' | sed -n 's/^lambda-runtime-aws-request-id: //ip')
touch "$dir/ran"
curl -sS -X POST "$api/invocation/$id/response" -d '{"batchItemFailures":[]}' >/dev/null
"#;
    let bootstrap = file("bootstrap", body, 0o755);
    let bodies: Vec<String> = (0..3).map(|i| good_body(&format!("m{i}"), 0)).collect();
    send(&client, &queue.url, &bodies, None).await;
    let mode = support::lambda_one_by_one(&bootstrap.display().to_string(), 1);
    let mut args = vec!["--queue", &queue.url, "--wait-time-seconds", "1", "--exit-when-idle", "5"];
    args.extend(mode.iter().map(String::as_str));
    let mut runner = RunningRunner::start(&args);
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(lines(&stderr)[0].contains("cannot start") && stderr.contains("exit status: 4"), "{stderr}");
    let summary = runner.summary().expect("a summary");
    assert_eq!(summary["deleted"], 1, "{summary}");
    assert!(summary["released"].as_u64() >= Some(1), "the batch it could not invoke is released: {summary}");
    // Nothing is lost and nothing reached the dead-letter queue.
    assert_eq!(depth(&client, &queue.url).await, (2, 0));
    assert_eq!(depth(&client, &queue.dlq_url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_timeout_inside_the_deadline_reserve_is_refused_before_a_message_is_received() {
    let client = support::client().await;
    let queue = queue_pair(&client, "reserve", false, 30, 2).await;
    send(&client, &queue.url, &[good_body("m", 0)], None).await;
    let bootstrap = bootstrap_bin().display().to_string();
    let template = template_path("standard").display().to_string();
    for args in [
        vec!["--queue", &queue.url, "--no-template", "--function-timeout", "1"],
        vec![
            "--queue",
            &queue.url,
            "--lambda",
            &bootstrap,
            "--template",
            &template,
            "--function-timeout",
            "1",
        ],
        vec!["--queue", &queue.url, "--no-template", "--function-timeout", "0"],
    ] {
        let mut runner = RunningRunner::start(&args);
        let (code, stderr) = runner.exit(Duration::from_secs(30)).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        let first = lines(&stderr)[0];
        assert!(first.contains("deadline reserve") || first.contains("0 is not in 1..=900"), "{first}");
        assert_no_panic(&stderr);
    }
    assert_eq!(depth(&client, &queue.url).await, (1, 0), "the message was never received");
}

/// Every numeric flag, fed the values that used to overflow, wrap or panic: each is a usage error
/// (exit 2) that names the flag, never a panic, a hang, or a run.
#[test]
fn extreme_numbers_on_every_flag_exit_2_naming_the_flag() {
    let extremes = ["18446744073709551615", "9223372036854775807", "2305843009213693952", "-1", "1e9", "x"];
    let runner = runner_bin();
    for flag in FLAGS.iter().chain(&LAMBDA_FLAGS) {
        for value in extremes {
            let mut args =
                vec!["--queue", "q", "--endpoint-url", "http://127.0.0.1:1", "--no-template", flag, value];
            if LAMBDA_FLAGS.contains(flag) {
                args = vec![
                    "--queue",
                    "q",
                    "--endpoint-url",
                    "http://127.0.0.1:1",
                    "--lambda",
                    "/bin/true",
                    flag,
                    value,
                ];
            }
            let output = Command::new(&runner).args(&args).stdin(Stdio::null()).output().expect("run");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{flag} {value}: {stderr}");
            assert!(stderr.contains(flag.trim_start_matches('-')), "{flag} {value}: {stderr}");
            assert!(!stderr.contains("unexpected argument"), "{flag} {value}: {stderr}");
            assert_no_panic(&stderr);
        }
    }
    for (command, flag) in [("send", "--count"), ("dlq", "--limit"), ("redrive", "--timeout")] {
        for value in extremes {
            let mut args = vec![command, "--queue", "q", "--endpoint-url", "http://127.0.0.1:1", flag, value];
            if command == "send" {
                args.extend(["--body", "x"]);
            }
            let output = Command::new(&runner).args(&args).stdin(Stdio::null()).output().expect("run");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{command} {flag} {value}: {stderr}");
            assert_no_panic(&stderr);
        }
    }
}

#[test]
fn flags_of_the_lambda_mode_without_lambda_and_malformed_endpoints_are_usage_errors_at_once() {
    let runner = runner_bin();
    let started = Instant::now();
    for args in [
        &["--queue", "q", "--esm-batch-size", "5"][..],
        &["--queue", "q", "--batching-window", "5"],
        &["--queue", "q", "--max-concurrency", "5"],
        &["--queue", "q", "--endpoint-url", "http://"],
        &["--queue", "q", "--endpoint-url", "http://127.0.0.1 :4566"],
        &["--queue", "q", "--endpoint-url", "http://127.0.0.1:99999"],
    ] {
        let output =
            Command::new(&runner).args(args).arg("--no-template").stdin(Stdio::null()).output().expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_no_panic(&stderr);
    }
    assert!(started.elapsed() < Duration::from_secs(20), "usage errors are said at once, not after retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_not_sqs_is_named_in_one_short_line() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", web.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = web.accept().await {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let page = "<html><body>Error response: Unsupported method ('POST')</body></html>";
            let answer = format!(
                "HTTP/1.1 501 Unsupported method\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let mut runner =
        RunningRunner::start(&["--queue", "orders", "--endpoint-url", &endpoint, "--start-timeout", "5"]);
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    server.abort();
    assert_eq!(code, Some(1), "{stderr}");
    let lines = lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("not an SQS answer") && lines[0].contains("501"), "{}", lines[0]);
    assert!(lines[0].len() < 250, "{} characters: {}", lines[0].len(), lines[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_cannot_write_on_the_terminal_through_an_id_or_a_body() {
    let client = support::client().await;
    let queue = queue_pair(&client, "hostile", false, 30, 1).await;
    let forged = "\u{1b}[31mRED\u{1b}[0m\r\n12:00:00 ok      FORGED";
    let id_body = serde_json::json!({"id": forged, "kind": "k", "fail": "permanent"}).to_string();
    let long_id = serde_json::json!({"id": "i".repeat(200_000), "kind": "k"}).to_string();
    let raw_body = "line one\r\n12:00:00 ok      FORGED-IN-DLQ".to_owned();
    send(&client, &queue.url, &[id_body, long_id, raw_body], None).await;

    // Pretty lines, as a person sees them (colour off: stdout is not a terminal here).
    let output = Command::new(runner_bin())
        .args(["--queue", &queue.url, "--endpoint-url", &support::endpoint(), "--log-format", "pretty"])
        .args(["--no-template", "--wait-time-seconds", "1", "--exit-when-idle", "2"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\r'),
        "raw control characters reached the terminal"
    );
    assert!(!shown.lines().any(|l| l.starts_with("12:00:00 ok")), "a producer forged a line:\n{shown}");
    assert!(shown.contains(r"\x1b[31mRED"), "the id is shown, escaped:\n{shown}");
    assert!(shown.lines().all(|l| l.len() < 3_000), "a 200 KB id is echoed only in part");

    // The dead-letter listing shows what arrived there, escaped too.
    let output = Command::new(runner_bin())
        .args(["dlq", "--queue", &queue.url, "--endpoint-url", &support::endpoint()])
        .stdin(Stdio::null())
        .output()
        .expect("run dlq");
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(listing.contains("FORGED-IN-DLQ") || listing.contains(r"\x1b[31mRED"), "{listing}");
    assert!(!listing.contains('\u{1b}') && !listing.contains('\r'), "{listing}");
    assert!(!listing.lines().any(|l| l.starts_with("12:00:00")), "{listing}");
}

#[test]
fn a_template_of_nested_brackets_is_refused_in_moments() {
    let nested = file("nested.yaml", &"[".repeat(200_000), 0o644);
    let started = Instant::now();
    let output = Command::new(runner_bin())
        .args(["check", "--template"])
        .arg(&nested)
        .stdin(Stdio::null())
        .output()
        .expect("run check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("deeper than 64"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn check_names_a_number_past_its_limit_and_never_panics() {
    let template = std::fs::read_to_string(template_path("standard")).expect("the test template");
    let extreme = template.replacen("Timeout:", "Timeout: 18446744073709551615 #", 1);
    assert_ne!(extreme, template, "the test template sets a Timeout");
    let path = file("extreme.yaml", &extreme, 0o644);
    let output =
        Command::new(runner_bin()).args(["check", "--template"]).arg(&path).output().expect("run check");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("Timeout is 18446744073709551615, outside 1..=900"), "{stdout}");
    assert_no_panic(&stderr);
}

/// An executor with a bug: it panics on every batch.
struct Panicking;

impl local_runner::consumer::BatchExecutor for Panicking {
    async fn execute(
        &self,
        _records: sqs_batch::runtime::Records,
        _stop: &tokio_util::sync::CancellationToken,
        _abandon: &tokio_util::sync::CancellationToken,
    ) -> local_runner::consumer::Execution {
        panic!("a bug in the batch task")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_panics_fails_the_run_instead_of_leaving_it_up_or_calling_it_a_success() {
    let client = support::client().await;
    let queue = queue_pair(&client, "panics", false, 30, 2).await;
    send(&client, &queue.url, &[good_body("m", 0)], None).await;
    // An idle exit: the old behaviour was a batch in flight forever and no exit at all.
    let config = support::runner_config(&queue.url, 2);
    let run = local_runner::run(config, Panicking, tokio_util::sync::CancellationToken::new());
    let result = tokio::time::timeout(Duration::from_secs(60), run).await.expect("the run ends");
    match result {
        Err(local_runner::RunnerError::Panicked { task, text }) => {
            assert_eq!((task, text.as_str()), ("batch task", "a bug in the batch task"));
        }
        other => panic!("expected the run to fail with the panic, got {other:?}"),
    }
}

/// Tests whose outcome depends on timing: the nextest configuration runs every test of a
/// `timing` module alone.
mod timing {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_endpoint_that_takes_connections_and_never_answers_ends_the_run_at_the_start_timeout() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", silent.local_addr().expect("address"));
        // Accept and hold every connection without a word.
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                open.push(stream);
            }
        });
        let started = Instant::now();
        let mut runner =
            RunningRunner::start(&["--queue", "orders", "--endpoint-url", &endpoint, "--start-timeout", "8"]);
        let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
        let took = started.elapsed();
        held.abort();
        assert_eq!(code, Some(1), "{stderr}");
        assert!(lines(&stderr)[0].contains("cannot reach SQS"), "{stderr}");
        assert!(took < Duration::from_secs(20), "the start timeout (8 s) holds: exited after {took:?}");
        let waiting = runner
            .lines
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l["message"].as_str().is_some_and(|m| m.contains("does not answer yet")));
        assert!(waiting, "the wait was said while it lasted");
    }
}
