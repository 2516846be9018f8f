//! Helpers shared by the end-to-end tests: a client for the LocalStack under test, queue pairs
//! with a dead-letter queue, sending, counting, and the real binaries built with the test handler
//! (`e2e-runner`, `e2e-bootstrap`). By job: `sqs` (queues and messages), `runner` (the runner
//! under test), `localstack` (one of a test's own), `net` (a fault proxy, HTTP), `dynamo`,
//! `accounting`; here, what they all use (the endpoint, names, paths, waiting).
//!
//! LocalStack's endpoint comes from `LOCALSTACK_ENDPOINT` (scripts/test.sh sets it), else
//! `http://127.0.0.1:4566`. When nothing answers there, the tests fail, they do not skip.

#![allow(dead_code, unreachable_pub)] // each test file uses its own part of this module

pub mod accounting;
pub mod dynamo;
mod localstack;
mod net;
mod runner;
mod sqs;

// Each test file uses its own part of these.
#[allow(unused_imports)]
pub use localstack::*;
#[allow(unused_imports)]
pub use net::*;
#[allow(unused_imports)]
pub use runner::*;
#[allow(unused_imports)]
pub use sqs::*;

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

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repository").to_path_buf()
}

/// One of the test templates (`tests/templates/<name>.yaml`).
pub fn template_path(name: &str) -> PathBuf {
    repo_root().join("tests/templates").join(format!("{name}.yaml"))
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}
