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

pub use args::{Cli, Command, DEFAULT_ENDPOINT, DEFAULT_REGION, DEFAULT_TEMPLATE, LogFormatArg, Target};
pub use plan::{Mode, Plan};

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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return exit_with(Err(RunnerError::Thread(err.to_string()))),
    };
    let local_credentials = credentials_from_env();
    let result = match cli.command.take() {
        Some(command) => runtime.block_on(tool(command, local_credentials)),
        None => match cli.into_plan() {
            Ok(mut plan) => {
                plan.config.connection.local_credentials = local_credentials;
                runtime.block_on(run(plan, build))
            }
            Err(error) => Err(error),
        },
    };
    exit_with(result)
}

/// Runs a plan until a signal (or idle), then reports.
async fn run<B, Fut, H>(plan: Plan, build: B) -> Result<(), RunnerError>
where
    B: FnOnce() -> Fut,
    Fut: Future<Output = Result<H, BoxError>>,
    H: Handler,
{
    let shutdown = CancellationToken::new();
    tokio::spawn(forward_signals(shutdown.clone()));
    let Plan { config, mode } = plan;
    match mode {
        Mode::Lambda { function, mapping } => {
            lambda::run(config, *function, mapping, shutdown).await.map(drop)
        }
        Mode::InProcess { function_timeout } => {
            let options = Options::from_vars(|name| std::env::var(name).ok())?;
            let handler = build().await.map_err(|err| RunnerError::Handler(err.to_string()))?;
            let mut executor = InProcess::new(Arc::new(handler), options);
            if let Some(timeout) = function_timeout {
                executor = executor.with_function_timeout(timeout);
            }
            consumer::run(config, executor, shutdown).await.map(drop)
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
        Command::Check { template } => return check(template),
        Command::Up { target, .. }
        | Command::Send { target, .. }
        | Command::Dlq { target, .. }
        | Command::Redrive { target, .. } => target,
    };
    let (queue, mut connection) = target.parse()?;
    connection.local_credentials = local_credentials;
    let client = connection.client(Duration::ZERO).await;
    match command {
        Command::Check { .. } => Ok(()),
        Command::Up { template, function, .. } => {
            tools::up(&client, queue.as_str(), &template, function.as_deref()).await
        }
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
fn check(path: &std::path::Path) -> Result<(), RunnerError> {
    let template = Template::load(path)?;
    let findings = template.check();
    for finding in &findings {
        println!("{}: [{}] {}", path.display(), finding.rule, finding.message);
    }
    if findings.is_empty() {
        let names: Vec<&str> = template.functions.iter().map(|f| f.logical_id.as_str()).collect();
        println!("{}: ok ({})", path.display(), names.join(", "));
        Ok(())
    } else {
        Err(RunnerError::CheckFailed { broken: findings.len() })
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
