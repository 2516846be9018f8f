//! The `local-runner` command: parse the command line, set up logs, turn signals into a token,
//! build the handler, run. A binary's whole `main` is [`main`] with the handler's builder.

mod args;
mod endpoint;
mod plan;
mod process;
mod signals;
mod watch;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::Credentials;
use clap::Parser;
use sqs_batch::runtime::telemetry;
use sqs_batch::runtime::telemetry::LogFormat;
use sqs_batch::{BoxError, Handler};
use tokio_util::sync::CancellationToken;

pub use args::{
    Cli, Command, DEFAULT_ENDPOINT, DEFAULT_REGION, DEFAULT_TEMPLATE, LogFormatArg, Place, Target, limits,
};
pub use plan::{InProcessRun, LambdaRun, Plan, TemplateFunction};

use crate::consumer::{self, InProcess};
use crate::error::RunnerError;
use crate::lambda::LambdaExecutor;
use crate::observe::{Summary, terminal};
use crate::template::Template;
use crate::tools;

/// The whole `main` of a `local-runner` built with a handler: `build` makes the handler, once,
/// for the in-process mode (the subcommands and `--lambda` never call it).
///
/// ```no_run
/// # async fn build() -> Result<sqs_batch::HandlerFn<String, fn(String, sqs_batch::Context) -> std::future::Ready<Result<(), sqs_batch::Error>>>, sqs_batch::BoxError> { unimplemented!() }
/// fn main() -> std::process::ExitCode {
///     local_runner::main(build)
/// }
/// ```
pub fn main<B, Fut, H>(build: B) -> ExitCode
where
    B: FnOnce() -> Fut,
    Fut: Future<Output = Result<H, BoxError>>,
    H: Handler,
{
    main_with(Some(build))
}

/// The handler a `local-runner` without one is typed with: it is never built.
type NoHandler = sqs_batch::HandlerFn<
    serde_json::Value,
    fn(serde_json::Value, sqs_batch::Context) -> std::future::Ready<Result<(), sqs_batch::Error>>,
>;

/// The whole `main` of the `local-runner` command `cargo install` gives: no handler compiled in.
/// It runs any Lambda function's bootstrap behind the emulated event source mapping (`--lambda`)
/// and every subcommand; the in-process mode, which needs a handler, says in one line how to get
/// one.
pub fn main_without_handler() -> ExitCode {
    main_with(None::<fn() -> std::future::Ready<Result<NoHandler, BoxError>>>)
}

/// What the in-process mode of a `local-runner` without a handler answers.
pub const NO_HANDLER: &str = "this local-runner has no handler compiled in: run your function's bootstrap with --lambda PATH (e.g. --lambda target/lambda/NAME/bootstrap), or add local-runner to your handler's crate for the in-process mode (README: \"Add it to a project\")";

fn main_with<B, Fut, H>(build: Option<B>) -> ExitCode
where
    B: FnOnce() -> Fut,
    Fut: Future<Output = Result<H, BoxError>>,
    H: Handler,
{
    let mut cli = Cli::parse();
    let human = cli.log_format() == LogFormat::Pretty;
    let _flush_at_exit = process::init_logs(human);
    telemetry::log_panics();
    let local_credentials = credentials_from_env();
    let command = cli.command.take();
    let watch = cli.watch.then(|| cli.watch_cargo_args.take());
    let plan = match command {
        Some(_) => None,
        None => match cli.into_plan() {
            Ok(Plan::InProcess(_)) if build.is_none() => {
                return exit_with(Err(RunnerError::Usage(NO_HANDLER.into())));
            }
            Ok(plan) => Some(plan),
            Err(error) => return exit_with(Err(error)),
        },
    };
    if let (Some(cargo_args), Some(plan)) = (watch, &plan) {
        // The watch runs no handler: it runs this command again, without --watch, per build.
        let binaries = match plan {
            Plan::Lambda(runs) => runs.iter().map(|run| run.function.bootstrap.clone()).collect(),
            Plan::InProcess(_) => Vec::new(),
        };
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(err) => return exit_with(Err(RunnerError::Thread(err))),
        };
        let watched = runtime
            .block_on(async { watch::Watch::find(binaries, cargo_args.as_deref()).await?.run().await });
        return match watched {
            Ok(status) => ExitCode::from(status.code().and_then(|code| u8::try_from(code).ok()).unwrap_or(1)),
            Err(error) => exit_with(Err(error)),
        };
    }
    if let Some(Plan::InProcess(run)) = &plan {
        process::set_handler_environment(run);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return exit_with(Err(RunnerError::Thread(err))),
    };
    // A panic anywhere on the way is a bug: it ends the run with an error line and exit 1, never
    // with a success or a hang.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match (command, plan) {
        (Some(command), _) => runtime.block_on(tool(command, local_credentials, build)),
        (None, Some(plan)) => runtime.block_on(run(plan, local_credentials, build, human)),
        (None, None) => Ok(()),
    }));
    // Spans not exported yet go out before the process does (with OpenTelemetry on).
    telemetry::flush();
    exit_with(result.unwrap_or_else(|panic| {
        Err(RunnerError::Panicked { task: "main task", text: sqs_batch::runtime::panic_text(&*panic) })
    }))
}

/// Runs a plan until a signal (or idle), then reports: for people (`human`), the summary of
/// [`terminal::summary_text`]; for tools, the `summary` event each run logged.
async fn run<B, Fut, H>(
    plan: Plan,
    local_credentials: Option<Credentials>,
    build: Option<B>,
    human: bool,
) -> Result<(), RunnerError>
where
    B: FnOnce() -> Fut,
    Fut: Future<Output = Result<H, BoxError>>,
    H: Handler,
{
    let shutdown = CancellationToken::new();
    tokio::spawn(forward_signals(shutdown.clone(), StopNotice::of(&plan)));
    let report = |summary: &Summary| {
        if human {
            terminal::print(&terminal::summary_text(summary, terminal::colour()));
        }
    };
    match plan {
        Plan::Lambda(runs) => {
            let mut mappings = tokio::task::JoinSet::new();
            for mut run in runs {
                run.config.connection.local_credentials.clone_from(&local_credentials);
                tracing::info!(
                    function = %run.function.function_name,
                    bootstrap = %run.function.bootstrap.display(),
                    queue = run.config.queue.as_str(),
                    batch_size = run.mapping.batch_size.get(),
                    batching_window_secs = run.mapping.batching_window.as_secs(),
                    max_concurrency = run.mapping.max_concurrency.get(),
                    filters = run.config.filters.len(),
                    "event source mapping"
                );
                let executor = LambdaExecutor::new(run.function, &run.mapping, run.options.retry);
                mappings.spawn(consumer::run(run.config, executor, shutdown.clone()));
            }
            let mut first_error = None;
            while let Some(done) = mappings.join_next().await {
                let error = match done {
                    Ok(Ok(summary)) => {
                        report(&summary);
                        continue;
                    }
                    Ok(Err(error)) => error,
                    Err(join) => RunnerError::Panicked {
                        task: "event source mapping",
                        text: if join.is_panic() {
                            sqs_batch::runtime::panic_text(&*join.into_panic())
                        } else {
                            "it was cancelled".into()
                        },
                    },
                };
                // One mapping that cannot go on stops the others: the run as a whole failed.
                shutdown.cancel();
                first_error.get_or_insert(error);
            }
            first_error.map_or(Ok(()), Err)
        }
        Plan::InProcess(run) => {
            let InProcessRun { mut config, function_timeout, function, options, heartbeat, batch_size } =
                *run;
            config.connection.local_credentials = local_credentials;
            match &function {
                Some(function) => tracing::info!(
                    function = %function.name,
                    template = %function.template.display(),
                    environment = ?function.environment.keys().collect::<Vec<_>>(),
                    filters = config.filters.len(),
                    handler_concurrency = options.concurrency.get(),
                    "following the template's function"
                ),
                None => tracing::info!(
                    handler_concurrency = options.concurrency.get(),
                    "no template function: running with the handler's defaults"
                ),
            }
            let build = build.ok_or_else(|| RunnerError::Usage(NO_HANDLER.into()))?;
            let handler = build().await.map_err(RunnerError::Handler)?;
            let mut executor = InProcess::new(Arc::new(handler), options).with_batch_size(batch_size);
            if let Some(timeout) = function_timeout {
                executor = executor.with_function_timeout(timeout);
            }
            if !heartbeat {
                executor = executor.without_heartbeat();
            }
            let summary = consumer::run(config, executor, shutdown).await?;
            report(&summary);
            Ok(())
        }
    }
}

/// Exit 0, or the error's one line on stderr and its exit status.
fn exit_with(result: Result<(), RunnerError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("local-runner: error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// The subcommands: `check`, `up`, `send`, `dlq`, `redrive`. Only `dlq` builds the handler: to
/// say why a body in the dead-letter queue does not parse.
async fn tool<B, Fut, H>(
    command: Command,
    local_credentials: Option<Credentials>,
    build: Option<B>,
) -> Result<(), RunnerError>
where
    B: FnOnce() -> Fut,
    Fut: Future<Output = Result<H, BoxError>>,
    H: Handler,
{
    let target = match &command {
        Command::Check { template, parameter_overrides } => return check(template, parameter_overrides),
        Command::Up { target, template, function, parameter_overrides } => {
            let (queue, mut connection) = target.parse()?;
            connection.local_credentials = local_credentials;
            let client = connection.client(Duration::ZERO).await;
            let parsed = Template::load_with(template, parameter_overrides)?;
            parsed.usable()?;
            return tools::up(&connection, &client, queue.as_deref(), &parsed, template, function.as_deref())
                .await;
        }
        Command::Send { target, .. } | Command::Dlq { target, .. } | Command::Redrive { target, .. } => {
            target
        }
    };
    let (queue, mut connection) = target.parse()?;
    connection.local_credentials = local_credentials;
    let client = connection.client(Duration::ZERO).await;
    match command {
        Command::Check { .. } | Command::Up { .. } => Ok(()),
        Command::Send { file, count, body, group, payload_bucket, payload_threshold, .. } => {
            let bodies = match (file, count, body) {
                (Some(path), ..) => tools::Bodies::from_file(&path)?,
                (None, Some(count), Some(template)) => {
                    tools::Bodies::Numbered { count: count.get(), template }
                }
                _ => {
                    return Err(RunnerError::Usage(
                        "send: pass --file PATH, or --count N with --body TEXT".into(),
                    ));
                }
            };
            let offload =
                payload_bucket.map(|bucket| tools::Offload { bucket, threshold: payload_threshold });
            tools::send(&client, &connection, &queue, bodies, &group, offload.as_ref()).await.map(drop)
        }
        Command::Dlq { limit, .. } => {
            // Without a handler (the installed command), bodies are shown unchecked.
            let handler = match build {
                None => None,
                Some(build) => match build().await {
                    Ok(handler) => Some(handler),
                    Err(err) => {
                        eprintln!(
                            "local-runner: the handler could not be built ({err}); bodies are shown unchecked"
                        );
                        None
                    }
                },
            };
            let explain = |body: &str| {
                let context = sqs_batch::Context::new(sqs_batch::SqsMessage::default());
                handler
                    .as_ref()
                    .map(|handler| handler.parse(body.to_owned(), &context).err().map(|e| format!("{e:#}")))
            };
            tools::show_dlq(&client, &connection, &queue, limit.get(), &explain).await
        }
        Command::Redrive { timeout, .. } => {
            tools::redrive(&client, &connection, &queue, Duration::from_secs(timeout)).await
        }
    }
}

/// `local-runner check`: one line per broken rule, exit 1 if any.
fn check(path: &std::path::Path, parameter_overrides: &[(String, String)]) -> Result<(), RunnerError> {
    let template = Template::load_with(path, parameter_overrides)?;
    let findings = template.check();
    for finding in &findings {
        let level = if finding.warning { "warning: " } else { "" };
        println!("{}: {level}[{}] {}", path.display(), finding.rule, finding.message);
    }
    let broken = findings.iter().filter(|f| !f.warning).count();
    if broken == 0 {
        let names: Vec<&str> = template.functions.iter().map(|f| f.logical_id.as_str()).collect();
        println!("{}: ok ({})", path.display(), names.join(", "));
        Ok(())
    } else {
        Err(RunnerError::CheckFailed { broken })
    }
}

/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`), if both are set; used only
/// against a local endpoint.
fn credentials_from_env() -> Option<Credentials> {
    let key = std::env::var("AWS_ACCESS_KEY_ID").ok()?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok()?;
    Some(Credentials::new(key, secret, std::env::var("AWS_SESSION_TOKEN").ok(), None, "environment"))
}

/// What a stop waits for, said when it starts: a person pressing Ctrl-C sees why the runner does
/// not exit at once, and what a second Ctrl-C would cost.
#[derive(Debug, Clone, Copy)]
struct StopNotice {
    wait_time: Duration,
    shutdown_timeout: Duration,
}

impl StopNotice {
    fn of(plan: &Plan) -> Self {
        let config = match plan {
            Plan::InProcess(run) => Some(&run.config),
            Plan::Lambda(runs) => runs.first().map(|run| &run.config),
        };
        config.map_or(Self { wait_time: Duration::ZERO, shutdown_timeout: Duration::ZERO }, |config| Self {
            wait_time: config.long_poll(),
            shutdown_timeout: config.shutdown_timeout,
        })
    }
}

/// The first SIGINT or SIGTERM starts a graceful stop; a second one exits at once.
async fn forward_signals(shutdown: CancellationToken, notice: StopNotice) {
    let mut signals = match signals::listen() {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("local-runner: warning: cannot listen for SIGTERM ({err}); stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    let mut received = 0;
    while let Some(name) = signals.recv().await {
        received += 1;
        if received > 1 {
            terminal::clear_status();
            eprintln!(
                "local-runner: {name} again: exiting now; messages received and not settled reappear after their visibility timeout"
            );
            std::process::exit(130);
        }
        tracing::warn!(
            wait_time_seconds = notice.wait_time.as_secs(),
            shutdown_timeout_secs = notice.shutdown_timeout.as_secs(),
            "{name}: stopping. Letting the long polls in flight return (up to {} s) and started messages finish (up to {} s); \
             {name} again quits at once, and the messages already received then come back only after their visibility timeout",
            notice.wait_time.as_secs(),
            notice.shutdown_timeout.as_secs(),
        );
        shutdown.cancel();
    }
}
