//! The `local-runner` command: parse the command line, set up logs, turn signals into a token,
//! build the handler, run. A binary's whole `main` is [`main`] with the handler's builder.

mod args;
mod plan;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::Credentials;
use clap::Parser;
use sqs_batch::{BoxError, Handler, Options, telemetry};
use tokio_util::sync::CancellationToken;

pub use args::{
    Cli, Command, DEFAULT_ENDPOINT, DEFAULT_REGION, DEFAULT_TEMPLATE, LogFormatArg, Place, Target,
};
pub use plan::{LambdaRun, Plan, TemplateFunction};

use crate::consumer::{self, InProcess};
use crate::template::Template;
use crate::{RunnerError, lambda, tools};

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
    let mut cli = Cli::parse();
    telemetry::init(cli.log_format(), std::env::var("RUST_LOG").ok().as_deref());
    telemetry::log_panics();
    let local_credentials = credentials_from_env();
    let command = cli.command.take();
    let plan = match command {
        Some(_) => None,
        None => match cli.into_plan() {
            Ok(plan) => Some(plan),
            Err(error) => return exit_with(Err(error)),
        },
    };
    if let Some(Plan::InProcess { function: Some(function), .. }) = &plan {
        set_environment(&function.environment);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return exit_with(Err(RunnerError::Thread(err.to_string()))),
    };
    let result = match (command, plan) {
        (Some(command), _) => runtime.block_on(tool(command, local_credentials)),
        (None, Some(plan)) => runtime.block_on(run(plan, local_credentials, build)),
        (None, None) => Ok(()),
    };
    exit_with(result)
}

/// Sets the template function's environment for the handler in this process, as Lambda sets it
/// for the function: the handler reads it as it would there (`std::env::var`).
#[allow(unsafe_code)]
fn set_environment(environment: &std::collections::BTreeMap<String, String>) {
    for (name, value) in environment {
        // SAFETY: called from `main` before the tokio runtime (or any other thread of this
        // process) starts, so nothing can read the environment while it changes.
        unsafe { std::env::set_var(name, value) };
    }
}

/// Runs a plan until a signal (or idle), then reports.
async fn run<B, Fut, H>(
    plan: Plan,
    local_credentials: Option<Credentials>,
    build: B,
) -> Result<(), RunnerError>
where
    B: FnOnce() -> Fut,
    Fut: Future<Output = Result<H, BoxError>>,
    H: Handler,
{
    let shutdown = CancellationToken::new();
    tokio::spawn(forward_signals(shutdown.clone()));
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
                mappings.spawn(lambda::run(run.config, run.function, run.mapping, shutdown.clone()));
            }
            let mut first_error = None;
            while let Some(done) = mappings.join_next().await {
                if let Ok(Err(error)) = done {
                    shutdown.cancel();
                    first_error.get_or_insert(error);
                }
            }
            first_error.map_or(Ok(()), Err)
        }
        Plan::InProcess { mut config, function_timeout, function } => {
            config.connection.local_credentials = local_credentials;
            let options = Options::from_vars(|name| std::env::var(name).ok())?;
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
            let handler = build().await.map_err(|err| RunnerError::Handler(err.to_string()))?;
            let mut executor = InProcess::new(Arc::new(handler), options);
            if let Some(timeout) = function_timeout {
                executor = executor.with_function_timeout(timeout);
            }
            consumer::run(*config, executor, shutdown).await.map(drop)
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

/// The subcommands: `check`, `up`, `send`, `dlq`, `redrive`.
async fn tool(command: Command, local_credentials: Option<Credentials>) -> Result<(), RunnerError> {
    let target = match &command {
        Command::Check { template, parameter_overrides } => return check(template, parameter_overrides),
        Command::Up { target, template, function, parameter_overrides } => {
            let (queue, mut connection) = target.parse()?;
            connection.local_credentials = local_credentials;
            let client = connection.client(Duration::ZERO).await;
            let parsed = Template::load_with(template, parameter_overrides)?;
            return tools::up(&client, queue.as_deref(), &parsed, template, function.as_deref()).await;
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
        Command::Send { file, count, body, group, .. } => {
            let bodies = match (file, count, body) {
                (Some(path), ..) => tools::Bodies::from_file(&path)?,
                (None, Some(count), Some(template)) => tools::Bodies::Numbered { count, template },
                _ => {
                    return Err(RunnerError::Usage(
                        "send: pass --file PATH, or --count N with --body TEXT".into(),
                    ));
                }
            };
            tools::send(&client, &connection, &queue, bodies, &group).await.map(drop)
        }
        Command::Dlq { limit, .. } => tools::show_dlq(&client, &connection, &queue, limit).await,
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

/// The first SIGINT or SIGTERM starts a graceful stop; a second one exits at once.
async fn forward_signals(shutdown: CancellationToken) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        eprintln!("local-runner: warning: cannot listen for SIGTERM; stop with Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
        return;
    };
    for signal in 1.. {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        if signal > 1 {
            eprintln!(
                "local-runner: second signal: exiting now; unsettled messages reappear after their visibility timeout"
            );
            std::process::exit(130);
        }
        tracing::info!("signal received: stopping gracefully (send another to exit at once)");
        shutdown.cancel();
    }
}
