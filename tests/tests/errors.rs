//! What the real binary says when it cannot run: one line that says what to do, exit 1.

mod support;

use std::time::Duration;

use support::RunningRunner;

fn assert_one_clear_line(stderr: &str, expected: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got: {stderr}");
    assert!(lines[0].contains(expected), "{:?} should mention {expected:?}", lines[0]);
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_exits_1_with_one_line_that_says_what_to_do() {
    let _client = support::client().await;
    let name = support::unique_name("no-such-queue");
    let mut runner = RunningRunner::start(&["--queue", &name]);
    let (code, stderr) = runner.exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr, "does not exist");
    assert!(stderr.contains(&name) && stderr.contains("create it"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_given_by_url_exits_1_too() {
    let _client = support::client().await;
    let url = format!("{}/000000000000/{}", support::endpoint(), support::unique_name("gone"));
    let mut runner = RunningRunner::start(&["--queue", &url]);
    let (code, stderr) = runner.exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr, "does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_with_nothing_listening_exits_1_once_the_start_timeout_has_passed() {
    // A port that was free a moment ago: nothing listens there.
    let endpoint = format!("http://127.0.0.1:{}", support::free_port());
    let started = std::time::Instant::now();
    let mut runner =
        RunningRunner::start(&["--queue", "orders", "--endpoint-url", &endpoint, "--start-timeout", "2"]);
    let (code, stderr) = runner.exit(Duration::from_secs(60)).await;
    let took = started.elapsed();
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr, "cannot reach SQS");
    // It keeps trying for the start timeout, not less (a refused connection is not given up on
    // at once: the endpoint may be starting), and gives up soon after it.
    assert!(took >= Duration::from_secs(2), "gave up after {took:?}, before the 2 s start timeout");
    assert!(took < Duration::from_secs(30), "still trying after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_address_already_in_use_exits_1_before_polling() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    // No SQS is needed: the address is checked first.
    let endpoint = format!("http://127.0.0.1:{}", support::free_port());
    let mut runner =
        RunningRunner::start(&["--queue", "orders", "--endpoint-url", &endpoint, "--metrics-addr", &addr]);
    let (code, stderr) = runner.exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr, "cannot serve metrics");
    assert!(stderr.contains(&addr) && stderr.contains("--metrics-addr"), "{stderr}");
}

fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked")
            && !stderr.contains("stack backtrace")
            && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_url_of_another_region_exits_1_with_one_line() {
    let client = support::client().await;
    let name = support::unique_name("regional");
    let url = client.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let mut runner = RunningRunner::start(&["--queue", &url, "--region", "eu-west-1"]);
    let (code, stderr) = runner.exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(1));
    assert_one_clear_line(&stderr, "eu-west-1");
    assert_no_panic(&stderr);
}

#[test]
fn bad_flags_exit_2_without_a_panic() {
    for args in [
        &["--queue", "q", "--pollers", "-1"][..],
        &["--queue", "q", "--wait-time-seconds", "99"],
        &["--queue", "q", "--log-format", "xml"],
        &["--queue", "q", "--max-in-flight", "0"],
        &["--queue", "", "--endpoint-url", "http://127.0.0.1:1"],
        &["--queue", "q", "--region", " "],
        &["send", "--queue", "q"],
    ] {
        let output = std::process::Command::new(support::runner_bin()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_no_panic(&stderr);
    }
}
