//! `local-runner`: parse the command line, set up logs, turn signals into a token, run.

use std::process::ExitCode;
use std::sync::Arc;

use aws_sdk_sqs::config::Credentials;
use clap::{CommandFactory, Parser, error::ErrorKind};
use handler::ExampleHandler;
use handler::telemetry;
use local_runner::Cli;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format(), std::env::var("RUST_LOG").ok().as_deref());
    let mut config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => Cli::command().error(ErrorKind::ValueValidation, message).exit(),
    };
    config.local_credentials = credentials_from_env();

    let shutdown = CancellationToken::new();
    tokio::spawn(forward_signals(shutdown.clone()));
    match local_runner::run(config, Arc::new(ExampleHandler), shutdown).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("local-runner: error: {error}");
            ExitCode::from(error.exit_code())
        }
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
