//! Helpers shared by the end-to-end tests: a client for the LocalStack under test, queue pairs
//! with a dead-letter queue, sending, counting, and the real binaries built with the test handler
//! (`e2e-runner`, `e2e-bootstrap`).
//!
//! LocalStack's endpoint comes from `LOCALSTACK_ENDPOINT` (scripts/test.sh sets it), else
//! `http://127.0.0.1:4566`. When nothing answers there, the tests fail, they do not skip.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part of this module

pub mod accounting;
pub mod dynamo;

use std::future::Future;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use e2e::{Recorder, TestHandler};
use local_runner::aws::{Connection, QueueRef};
use local_runner::lambda::{LambdaSpec, Mapping};
use local_runner::{Config, InProcess, RunnerError, Summary};
use sqs_batch::Options;
use sqs_batch::runtime::retry::Backoff;
use tokio_util::sync::CancellationToken;

/// Where the LocalStack under test listens.
pub fn endpoint() -> String {
    std::env::var("LOCALSTACK_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

/// A client for the LocalStack under test; panics with what to do when it is not up.
pub async fn client() -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
        .build();
    let client = Client::from_conf(config);
    if let Err(err) = client.list_queues().send().await {
        panic!(
            "LocalStack is not reachable at {}: run the tests with scripts/test.sh, which starts it \
             ({})",
            endpoint(),
            aws_sdk_sqs::error::DisplayErrorContext(&err)
        );
    }
    client
}

/// A queue with its dead-letter queue.
pub struct QueuePair {
    pub name: String,
    pub url: String,
    pub dlq_url: String,
}

/// A name no other test (or earlier run) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Creates a queue and its DLQ, with a redrive policy after `max_receive_count` receives.
pub async fn queue_pair(
    client: &Client,
    prefix: &str,
    fifo: bool,
    visibility_secs: u32,
    max_receive_count: u32,
) -> QueuePair {
    let suffix = if fifo { ".fifo" } else { "" };
    let name = unique_name(prefix);
    let fifo_attribute =
        |request: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder| {
            if fifo { request.attributes(QueueAttributeName::FifoQueue, "true") } else { request }
        };
    let dlq_url = fifo_attribute(client.create_queue().queue_name(format!("{name}-dlq{suffix}")))
        .send()
        .await
        .expect("create DLQ")
        .queue_url
        .expect("DLQ URL");
    let dlq_arn = attribute(client, &dlq_url, QueueAttributeName::QueueArn).await;
    let policy = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count });
    let url = fifo_attribute(client.create_queue().queue_name(format!("{name}{suffix}")))
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_secs.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL");
    QueuePair { name: format!("{name}{suffix}"), url, dlq_url }
}

/// One attribute of a queue.
pub async fn attribute(client: &Client, url: &str, name: QueueAttributeName) -> String {
    let output = client.get_queue_attributes().queue_url(url).attribute_names(name.clone()).send().await;
    output
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|mut a| a.remove(&name))
        .expect("attribute present")
}

/// (visible, in flight) message counts of a queue.
pub async fn depth(client: &Client, url: &str) -> (u64, u64) {
    let visible = attribute(client, url, QueueAttributeName::ApproximateNumberOfMessages).await;
    let hidden = attribute(client, url, QueueAttributeName::ApproximateNumberOfMessagesNotVisible).await;
    (visible.parse().expect("a count"), hidden.parse().expect("a count"))
}

/// Sends bodies in batches of ten; with `group`, to a FIFO queue under that message group.
pub async fn send(client: &Client, url: &str, bodies: &[String], group: Option<&str>) {
    let messages: Vec<(&str, Option<&str>)> = bodies.iter().map(|body| (body.as_str(), group)).collect();
    send_each(client, url, &messages).await;
}

/// Sends `(body, FIFO group)` pairs in order, in batches of ten; returns their message ids, in
/// the same order.
pub async fn send_each(client: &Client, url: &str, messages: &[(&str, Option<&str>)]) -> Vec<String> {
    let mut ids = Vec::with_capacity(messages.len());
    for (chunk_index, chunk) in messages.chunks(10).enumerate() {
        let entries = chunk.iter().enumerate().map(|(i, (body, group))| {
            let entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(*body);
            let entry = match group {
                Some(group) => entry
                    .message_group_id(*group)
                    .message_deduplication_id(format!("{group}-{chunk_index}-{i}-{}", unique_name("d"))),
                None => entry,
            };
            entry.build().expect("entry has id and body")
        });
        let output = client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries.collect()))
            .send()
            .await
            .expect("SendMessageBatch");
        assert!(output.failed.is_empty(), "send failed: {:?}", output.failed);
        let mut sent: Vec<(usize, String)> =
            output.successful.into_iter().map(|s| (s.id.parse().expect("an index"), s.message_id)).collect();
        sent.sort();
        ids.extend(sent.into_iter().map(|(_, id)| id));
    }
    ids
}

/// The URL of the queue called `name`, which must exist.
pub async fn queue_url(client: &Client, name: impl Into<String>) -> String {
    client.get_queue_url().queue_name(name).send().await.expect("the queue exists").queue_url.expect("a URL")
}

/// A valid test message body: `id`, and `ms` of work.
pub fn good_body(id: &str, ms: u64) -> String {
    e2e::body(id, ms)
}

/// Receives (and so hides for the queue's visibility timeout) everything in a queue; returns the
/// bodies. For dead-letter queues at the end of a test.
pub async fn drain_bodies(client: &Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let output = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        bodies.extend(messages.into_iter().filter_map(|m| m.body));
    }
}

/// A runner configuration for tests: short long polls, exit when idle, failures left to the
/// queue's own visibility timeout (the tests of the retry back-off turn it on), no stats lines.
pub fn runner_config(queue_url: &str, idle_secs: u64) -> Config {
    let connection = Connection::new(Some(endpoint()), "us-east-1");
    let mut config = Config::new(QueueRef::Url(queue_url.to_owned()), connection);
    config.wait_time = Duration::from_secs(1);
    config.exit_when_idle = Some(Duration::from_secs(idle_secs));
    config.pollers = NonZeroUsize::new(2).expect("2 is not zero");
    config.stats_interval = None;
    config
}

/// Runs the test handler in process with `config`, recording into `recorder`, until idle or
/// `stop`; failures come back at the queue's own visibility timeout.
pub fn run_recorded(
    config: Config,
    recorder: &Arc<Recorder>,
    stop: CancellationToken,
) -> impl Future<Output = Result<Summary, RunnerError>> + Send + 'static {
    local_runner::run(config, recorded(recorder, None), stop)
}

/// The test handler in process, recording into `recorder`, its failures given `retry_backoff`
/// (`None`: the queue's own visibility timeout), with a heartbeat.
pub fn recorded(recorder: &Arc<Recorder>, retry_backoff: Option<Backoff>) -> InProcess<TestHandler> {
    let handler = Arc::new(TestHandler::recording(Arc::clone(recorder)));
    InProcess::new(handler, Options { retry: retry_backoff, ..Options::default() })
}

/// `local-runner` built with the test handler.
pub fn runner_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_e2e-runner"))
}

/// The Lambda function built with the test handler.
pub fn bootstrap_bin() -> PathBuf {
    // A binary of another package: built beside this test's own binaries.
    let runner = runner_bin();
    let bootstrap = runner.with_file_name("e2e-bootstrap");
    assert!(
        bootstrap.exists(),
        "{} is missing: build every binary first (cargo build --workspace --bins)",
        bootstrap.display()
    );
    bootstrap
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The real `local-runner` binary running in the background, its JSON log lines collected.
pub struct RunningRunner {
    pub child: std::process::Child,
    pub lines: std::sync::Arc<Mutex<Vec<serde_json::Value>>>,
    /// When each line of `lines` arrived, from the start.
    pub arrived: std::sync::Arc<Mutex<Vec<Duration>>>,
    stdout: Option<std::thread::JoinHandle<()>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl RunningRunner {
    /// Starts `local-runner` with `--log-format json`, the LocalStack under test (unless `args`
    /// name another endpoint) and `args`.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// `local-runner --lambda bootstrap` over `queue_url` with the standard test template, no
    /// batching window and 1 s long polls, then `extra`.
    pub fn start_lambda(queue_url: &str, bootstrap: &std::path::Path, extra: &[&str]) -> Self {
        Self::start_lambda_with(&runner_bin().display().to_string(), "standard", queue_url, bootstrap, extra)
    }

    /// [`RunningRunner::start_lambda`] with another build of `local-runner` (`runner`), over the
    /// test template `tests/templates/{template}.yaml`.
    pub fn start_lambda_with(
        runner: &str,
        template: &str,
        queue_url: &str,
        bootstrap: &std::path::Path,
        extra: &[&str],
    ) -> Self {
        let template = repo_root().join(format!("tests/templates/{template}.yaml")).display().to_string();
        let bootstrap = bootstrap.display().to_string();
        let mut args = vec![
            "--queue",
            queue_url,
            "--lambda",
            &bootstrap,
            "--template",
            &template,
            "--batching-window",
            "0",
            "--wait-time-seconds",
            "1",
        ];
        args.extend_from_slice(extra);
        Self::start_binary(runner, &args, &[])
    }

    /// [`RunningRunner::start`] with `env` added to its environment (for the handler's options:
    /// in process they are the runner's own variables).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_binary(&runner_bin().display().to_string(), args, env)
    }

    /// [`RunningRunner::start_with_env`] with another build of `local-runner`.
    pub fn start_binary(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader, Read};
        use std::process::{Command, Stdio};
        let mut command = Command::new(binary);
        command.envs(env.iter().copied());
        command.args(["--log-format", "json"]);
        if !args.contains(&"--endpoint-url") {
            command.args(["--endpoint-url", &endpoint()]);
        }
        let mut child = command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start local-runner");
        let lines = std::sync::Arc::new(Mutex::new(Vec::new()));
        let arrived = std::sync::Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped");
        let (sink, times) = (std::sync::Arc::clone(&lines), std::sync::Arc::clone(&arrived));
        let started = Instant::now();
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("every stdout line is a JSON object: {line}"));
                let mut lines = sink.lock().expect("not poisoned");
                times.lock().expect("not poisoned").push(started.elapsed());
                lines.push(value);
            }
        });
        let mut err_pipe = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text);
            text
        });
        Self { child, lines, arrived, stdout: Some(stdout), stderr: Some(stderr) }
    }

    /// Body ids of the messages logged with `"outcome":"ok"`, in log order.
    pub fn handled_ids(&self) -> Vec<String> {
        let lines = self.lines.lock().expect("not poisoned");
        lines
            .iter()
            .filter(|line| line["outcome"] == "ok")
            .filter_map(|line| line["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// When each attempt at the message whose body id is `id` ended, and its receive count: from
    /// its outcome lines, in log order.
    pub fn attempts(&self, id: &str) -> Vec<(Duration, u64)> {
        let lines = self.lines.lock().expect("not poisoned");
        let arrived = self.arrived.lock().expect("not poisoned");
        lines
            .iter()
            .zip(arrived.iter())
            .filter(|(line, _)| line["id"] == id && line["outcome"].is_string())
            .map(|(line, at)| (*at, line["receive_count"].as_u64().unwrap_or(0)))
            .collect()
    }

    /// The final summary line, once it was logged.
    pub fn summary(&self) -> Option<serde_json::Value> {
        let lines = self.lines.lock().expect("not poisoned");
        lines.iter().find(|line| line["message"] == "summary").cloned()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the exit status, failing the test after `timeout`; returns (code, stderr).
    pub async fn exit(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let child = &mut self.child;
        let status = eventually(timeout, "local-runner to exit", || {
            let status = child.try_wait().expect("try_wait");
            async move { status }
        })
        .await;
        // Both pipes close when the process exits, so the reader threads end. Joining the stdout
        // reader means every line the process wrote (the summary last) is in `lines` on return.
        if let Some(reader) = self.stdout.take() {
            reader.join().expect("stdout reader");
        }
        let stderr = self.stderr.take().map(|t| t.join().expect("stderr reader")).unwrap_or_default();
        (status.code(), stderr)
    }
}

impl Drop for RunningRunner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repository").to_path_buf()
}

/// One of the test templates (`tests/templates/<name>.yaml`).
pub fn template_path(name: &str) -> PathBuf {
    repo_root().join("tests/templates").join(format!("{name}.yaml"))
}

/// `--lambda BOOTSTRAP` with the standard test template, one message an invocation, at most
/// `concurrency` at once and no batching window: a mapping whose invocations a test can count.
pub fn lambda_one_by_one(bootstrap: &str, concurrency: u32) -> Vec<String> {
    let template = template_path("standard").display().to_string();
    let concurrency = concurrency.to_string();
    ["--lambda", bootstrap, "--template", &template, "--esm-batch-size", "1"]
        .into_iter()
        .chain(["--max-concurrency", &concurrency, "--batching-window", "0"])
        .map(str::to_owned)
        .collect()
}

/// The test function and its event source mapping as the test template `name` describes them,
/// running the test bootstrap against the LocalStack under test: what `--lambda` builds.
pub fn lambda_spec(name: &str) -> (LambdaSpec, Mapping) {
    let template = local_runner::template::Template::load(&template_path(name)).expect("a test template");
    let function = template.function(None).expect("one SQS function");
    let connection = Connection::new(Some(endpoint()), "us-east-1");
    let spec = LambdaSpec::from_template(function, bootstrap_bin(), &connection);
    (spec, Mapping::from_template(&function.sqs_events[0]))
}

/// The executor of `function` behind `mapping`, counting on the back-off its variables set (as
/// `local-runner`'s plan reads them).
pub fn lambda_executor(function: LambdaSpec, mapping: &Mapping) -> local_runner::lambda::LambdaExecutor {
    let options = Options::from_vars(|name| function.environment.get(name).cloned())
        .expect("the test function's variables parse");
    local_runner::lambda::LambdaExecutor::new(function, mapping, options.retry)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// A LocalStack of a test's own, for tests that freeze or kill it: started with
/// scripts/localstack.sh in a fresh state folder, stopped (by its pid) on drop.
pub struct OwnLocalStack {
    pub endpoint: String,
    pub port: u16,
    state: PathBuf,
}

impl OwnLocalStack {
    /// Starts one on `port` (0: a free one).
    pub fn start(port: u16) -> Self {
        let state = std::env::temp_dir().join(unique_name("localstack"));
        let output = std::process::Command::new(repo_root().join("scripts/localstack.sh"))
            .arg("start")
            .env("LOCALSTACK_STATE", &state)
            .env("LOCALSTACK_PORT", port.to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run scripts/localstack.sh");
        assert!(output.status.success(), "scripts/localstack.sh start failed");
        let endpoint = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let port = endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("endpoint with a port");
        Self { endpoint, port, state }
    }

    pub fn pid(&self) -> u32 {
        std::fs::read_to_string(self.state.join("pid")).expect("pid file").trim().parse().expect("a pid")
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill").args([signal, &self.pid().to_string()]).status();
        assert!(status.expect("run kill").success(), "kill {signal} failed");
    }

    /// Stops it (SIGTERM, then SIGKILL after 10 s) and forgets its state, queues included.
    pub fn stop(&self) {
        let _ = std::process::Command::new(repo_root().join("scripts/localstack.sh"))
            .arg("stop")
            .env("LOCALSTACK_STATE", &self.state)
            .status();
    }

    pub async fn client(&self) -> Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
            .build();
        Client::from_conf(config)
    }
}

impl Drop for OwnLocalStack {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A TCP proxy on 127.0.0.1: `port` forwards to `target`. Dropping it (or `close`) stops
/// accepting and drops every connection it carries, pooled keep-alive ones included: an outage
/// in which existing connections break and new ones are refused.
pub struct Proxy {
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn open(port: u16, target: u16) -> Self {
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the proxy port is free");
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops every connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { task }
    }

    pub async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A plain HTTP/1.1 GET of `path` on `addr`: the status code and the body, or `None` when
/// nothing answers there.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}
