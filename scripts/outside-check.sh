#!/usr/bin/env bash
# A project outside this workspace adds the crates as the README says (a path source, one line
# each) and builds a handler, its tests with the test kit, its Lambda bootstrap and its local
# runner, with nothing else copied from here. Runs in a temporary directory; its build shares
# this workspace's target directory, and its lock file starts from this one, so the dependencies
# it shares are not built twice (its binaries get names of their own there, so as not to replace
# the workspace's `bootstrap` and `local-runner`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
project=$(mktemp -d "${TMPDIR:-/tmp}/outside-project.XXXXXX")
trap 'rm -rf "$project"' EXIT

mkdir -p "$project/src/bin" "$project/tests"
cat >"$project/Cargo.toml" <<TOML
[package]
name = "my-handler"
version = "0.1.0"
edition = "2024"
publish = false

[features]
local = ["dep:local-runner"]

[[bin]]
name = "outside-bootstrap"
path = "src/bin/bootstrap.rs"

[[bin]]
name = "outside-local-runner"
path = "src/bin/local-runner.rs"
required-features = ["local"]

[dependencies]
sqs-batch = { path = "$root/sqs-batch" }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
serde = { version = "1", features = ["derive"] }
tracing = "0.1"
local-runner = { path = "$root/local-runner", optional = true }
TOML
cat >"$project/src/lib.rs" <<'RUST'
//! An order handler, written against the crates alone.
use sqs_batch::{BoxError, Context, Error, Handler, handler_fn};

/// An order.
#[derive(serde::Deserialize)]
pub struct Order {
    id: String,
    quantity: u32,
}

async fn handle(order: Order, context: Context) -> Result<(), Error> {
    if order.quantity == 0 {
        return Err(Error::permanent("an order of nothing"));
    }
    tracing::info!(id = %order.id, delivery = context.receive_count(), "stored");
    Ok(())
}

/// The handler, once per process.
pub async fn build() -> Result<impl Handler, BoxError> {
    Ok(handler_fn(handle).log_id(|order: &Order| order.id.as_str()))
}
RUST
cat >"$project/src/bin/bootstrap.rs" <<'RUST'
#[tokio::main]
async fn main() -> Result<(), sqs_batch::BoxError> {
    sqs_batch::lambda::run(my_handler::build).await
}
RUST
cat >"$project/src/bin/local-runner.rs" <<'RUST'
fn main() -> std::process::ExitCode {
    local_runner::main(my_handler::build)
}
RUST
cat >"$project/tests/kit.rs" <<'RUST'
use sqs_batch::testing::{record, run};

#[tokio::test]
async fn a_good_order_succeeds_and_an_empty_one_fails_alone() {
    let handler = my_handler::build().await.expect("it builds");
    let report = run(handler, [record(r#"{"id":"a","quantity":1}"#), record(r#"{"id":"b","quantity":0}"#)]).await;
    assert_eq!(report.labels(), ["ok", "failed"]);
    assert_eq!(report.failed_ids(), ["m1"]);
}
RUST
cp Cargo.lock "$project/Cargo.lock"

cd "$project"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --offline --bins --features local
cargo test --offline
echo "outside-check: a project outside the workspace built its handler, bootstrap and local runner, and its kit test passed" >&2
