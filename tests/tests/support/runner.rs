//! The runner under test: in this process with the test handler, or as the command, a child
//! whose JSON lines are collected; the Lambda function behind an emulated mapping.

use super::*;

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

/// The executor of `function` behind `mapping`, counting on the back-off its variables set, read
/// by the plan's own reading of a function's options.
pub fn lambda_executor(function: LambdaSpec, mapping: &Mapping) -> local_runner::lambda::LambdaExecutor {
    let var = |name: &str| function.environment.get(name).cloned();
    let options = local_runner::template::function_options(var, Some(function.timeout))
        .expect("the test function's variables parse and its timeout outlasts its reserve");
    local_runner::lambda::LambdaExecutor::new(function, mapping, options.retry)
}
