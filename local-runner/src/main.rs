//! `local-runner`: parse the command line, set up logs, turn signals into a token, run.

use std::process::ExitCode;
use std::sync::Arc;

use aws_sdk_sqs::config::Credentials;
use clap::{CommandFactory, Parser, error::ErrorKind};
use handler::ExampleHandler;
use handler::lambda::FunctionOptions;
use handler::telemetry;
use local_runner::config::{Command, Mode};
use local_runner::executor::InProcess;
use local_runner::template::Template;
use local_runner::{Cli, RunnerError, Summary, dev};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    telemetry::init(cli.log_format(), std::env::var("RUST_LOG").ok().as_deref());
    if let Some(command) = cli.command.take() {
        return tool(command).await;
    }
    let (mut config, mode) = match cli.into_run() {
        Ok(run) => run,
        Err(message) => Cli::command().error(ErrorKind::ValueValidation, message).exit(),
    };
    config.local_credentials = credentials_from_env();

    let shutdown = CancellationToken::new();
    tokio::spawn(forward_signals(shutdown.clone()));
    let result: Result<Summary, RunnerError> = match mode {
        Mode::Lambda(spec) => local_runner::run_lambda(config, spec, shutdown).await,
        Mode::InProcess { function_timeout: None } => {
            local_runner::run(config, Arc::new(ExampleHandler), shutdown).await
        }
        Mode::InProcess { function_timeout: Some(timeout) } => {
            let reserve = FunctionOptions::default().deadline_reserve;
            let executor = InProcess::new(Arc::new(ExampleHandler)).with_deadline(timeout, reserve);
            local_runner::run_with(config, executor, shutdown).await
        }
    };
    exit_with(result.map(drop))
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
async fn tool(command: Command) -> ExitCode {
    let target = match &command {
        Command::Check { template } => return check(template),
        Command::Up { target, .. }
        | Command::Send { target, .. }
        | Command::Dlq { target, .. }
        | Command::Redrive { target, .. } => target.clone(),
    };
    let mut config = match target.into_config() {
        Ok(config) => config,
        Err(message) => Cli::command().error(ErrorKind::ValueValidation, message).exit(),
    };
    config.local_credentials = credentials_from_env();
    let client = local_runner::sqs::client(&config).await;
    let result = match command {
        Command::Check { .. } => Ok(()),
        Command::Up { target, template, function } => {
            if target.queue.contains("://") {
                Cli::command()
                    .error(ErrorKind::ValueValidation, "up: --queue takes a queue name, not a URL")
                    .exit();
            }
            dev::up(&client, target.queue.trim(), &template, function.as_deref()).await
        }
        Command::Send { file: Some(path), group, .. } => match std::fs::read_to_string(&path) {
            Ok(text) => {
                let lines = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
                dev::send(&client, &config, dev::Bodies::Lines(lines), &group).await.map(drop)
            }
            Err(err) => {
                eprintln!("local-runner: error: cannot read {}: {err}", path.display());
                return ExitCode::from(1);
            }
        },
        Command::Send { count, work_ms, group, .. } => {
            let bodies = dev::Bodies::Examples { count: count.unwrap_or(0), work_ms };
            dev::send(&client, &config, bodies, &group).await.map(drop)
        }
        Command::Dlq { limit, .. } => dev::show_dlq(&client, &config, limit).await,
        Command::Redrive { timeout, .. } => {
            dev::redrive(&client, &config, std::time::Duration::from_secs(timeout)).await
        }
    };
    exit_with(result)
}

/// `local-runner check`: one line per broken rule, exit 1 if any.
fn check(path: &std::path::Path) -> ExitCode {
    let template = match Template::load(path) {
        Ok(template) => template,
        Err(error) => {
            eprintln!("local-runner: error: {error}");
            return ExitCode::from(1);
        }
    };
    let findings = template.check();
    for finding in &findings {
        println!("{}: [{}] {}", path.display(), finding.rule, finding.message);
    }
    if findings.is_empty() {
        let names: Vec<&str> = template.functions.iter().map(|f| f.logical_id.as_str()).collect();
        println!("{}: ok ({})", path.display(), names.join(", "));
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
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
