//! Helpers shared by the end-to-end tests: a client for the LocalStack under test, queue pairs
//! with a dead-letter queue, sending, counting, and the real `local-runner` binary.
//!
//! LocalStack's endpoint comes from `LOCALSTACK_ENDPOINT` (scripts/test.sh sets it), else
//! `http://127.0.0.1:4566`. When nothing answers there, the tests fail, they do not skip.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part of this module

pub mod accounting;

use std::future::Future;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use handler::{ExampleHandler, Handler, HandlerError, Message, SqsMessage};
use local_runner::{Config, QueueRef};

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

async fn attribute(client: &Client, url: &str, name: QueueAttributeName) -> String {
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
    for (chunk_index, chunk) in bodies.chunks(10).enumerate() {
        let entries = chunk.iter().enumerate().map(|(i, body)| {
            let entry = SendMessageBatchRequestEntry::builder().id(format!("e{i}")).message_body(body);
            let entry = match group {
                Some(group) => entry
                    .message_group_id(group)
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
    }
}

/// A valid example message body.
pub fn good_body(id: &str, work_ms: u64) -> String {
    serde_json::json!({ "id": id, "kind": "test", "work_ms": work_ms }).to_string()
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
/// queue's own visibility timeout (the tests of the retry back-off turn it on).
pub fn runner_config(queue_url: &str, idle_secs: u64) -> Config {
    let mut config = Config::new(QueueRef::Url(queue_url.to_owned()), Some(endpoint()));
    config.wait_time = Duration::from_secs(1);
    config.retry_backoff = None;
    config.exit_when_idle = Some(Duration::from_secs(idle_secs));
    config.pollers = NonZeroUsize::new(2).expect("2 is not zero");
    config
}

/// One attempt seen by [`Recording`]: the body's `id` (or the raw body when it did not parse),
/// the message's receive count, and its group.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: Instant,
    pub id: String,
    pub receive_count: u32,
    pub group: Option<String>,
    pub ok: bool,
}

/// The example handler, recording every attempt and every completed message in order. A message
/// whose `id` is `flaky_id` or starts with `flaky-` fails on its first delivery (a transient
/// failure) and succeeds after;
/// one whose `id` starts with `panic-` panics on its first delivery.
#[derive(Default)]
pub struct Recording {
    pub attempts: Mutex<Vec<Attempt>>,
    /// Ids of the messages whose handling succeeded, in completion order.
    pub completed: Mutex<Vec<String>>,
    pub flaky_id: Option<String>,
    /// Messages in `handle` right now, and the most there ever were.
    pub running: AtomicU32,
    pub peak: AtomicU32,
}

impl Recording {
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().expect("not poisoned").clone()
    }

    /// Ids of the messages handled successfully, in completion order.
    pub fn handled(&self) -> Vec<String> {
        self.completed.lock().expect("not poisoned").clone()
    }
}

impl Handler for Recording {
    type Message = (Message, u32);

    fn parse(&self, record: &SqsMessage) -> Result<(Message, u32), HandlerError> {
        let parsed = ExampleHandler.parse(record);
        let receive_count =
            record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(0);
        let attempt = Attempt {
            at: Instant::now(),
            id: match &parsed {
                Ok(message) => message.id.clone(),
                Err(_) => record.body.clone().unwrap_or_default(),
            },
            receive_count,
            group: record.attributes.get("MessageGroupId").cloned(),
            ok: parsed.is_ok(),
        };
        self.attempts.lock().expect("not poisoned").push(attempt);
        parsed.map(|message| (message, receive_count))
    }

    fn log_id<'m>(&self, message: &'m (Message, u32)) -> Option<&'m str> {
        Some(&message.0.id)
    }

    async fn handle(&self, (message, receive_count): (Message, u32)) -> Result<(), HandlerError> {
        let flaky = self.flaky_id.as_deref() == Some(message.id.as_str()) || message.id.starts_with("flaky-");
        if flaky && receive_count == 1 {
            return Err(HandlerError::Transient("fails on its first delivery".into()));
        }
        if message.id.starts_with("panic-") && receive_count == 1 {
            panic!("injected panic for {}", message.id);
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let id = message.id.clone();
        let result = ExampleHandler.handle(message).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        if result.is_ok() {
            self.completed.lock().expect("not poisoned").push(id);
        }
        result
    }
}

/// The `local-runner` binary that `cargo test --workspace` built beside this test.
pub fn runner_bin() -> PathBuf {
    built_binary("local-runner")
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
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl RunningRunner {
    /// Starts `local-runner` with `--log-format json`, the LocalStack under test (unless `args`
    /// name another endpoint) and `args`.
    pub fn start(args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader, Read};
        use std::process::{Command, Stdio};
        let mut command = Command::new(runner_bin());
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
        let stdout = child.stdout.take().expect("piped");
        let sink = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("every stdout line is a JSON object: {line}"));
                sink.lock().expect("not poisoned").push(value);
            }
        });
        let mut err_pipe = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text);
            text
        });
        Self { child, lines, stderr: Some(stderr) }
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
        // stderr closes when the process exits, so the reader thread ends.
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

/// A binary that `cargo test --workspace` built beside this test (`bootstrap`, `local-runner`).
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let bin = dir.join(name);
    assert!(bin.exists(), "{} is missing: run the tests with `cargo test --workspace`", bin.display());
    bin
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repository").to_path_buf()
}

/// A Lambda spec for the repository's function, read from template.yaml, running `bootstrap`.
pub fn lambda_spec(bootstrap: PathBuf) -> local_runner::lambda::LambdaSpec {
    lambda_spec_of("template.yaml", bootstrap)
}

/// As [`lambda_spec`], for the function of another of the repository's templates.
pub fn lambda_spec_of(template: &str, bootstrap: PathBuf) -> local_runner::lambda::LambdaSpec {
    let template = local_runner::template::Template::load(&repo_root().join(template)).expect(template);
    let function = template.function(None).expect("one SQS function");
    local_runner::lambda::LambdaSpec::from_template(
        function,
        bootstrap,
        "us-east-1".into(),
        Some(endpoint()),
        2,
    )
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
/// accepting, so new connections are refused: an endpoint outage that fails fast.
pub struct Proxy {
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn open(port: u16, target: u16) -> Self {
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the proxy port is free");
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
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
