//! The local DynamoDB of the idempotency tests: a client, a fresh table per test, what it holds,
//! and a DynamoDB of a test's own to freeze.
//!
//! Its endpoint comes from `DYNAMODB_ENDPOINT` (scripts/test.sh starts one with
//! scripts/dynamodb.sh), else `http://127.0.0.1:4569`. When nothing answers there, the tests fail.

use std::path::PathBuf;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::{repo_root, unique_name};

/// Where the DynamoDB under test listens.
pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4569".into())
}

/// A client for the DynamoDB at `endpoint`.
pub fn client_at(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
        .build();
    Client::from_conf(config)
}

/// A new idempotency table, laid out as `template.yaml` declares it (key `id`, TTL `expiration`).
pub async fn table(client: &Client) -> String {
    let name = unique_name("idempotency");
    let created = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("a definition"),
        )
        .key_schema(
            KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().expect("a key"),
        )
        .send()
        .await;
    if let Err(error) = created {
        panic!(
            "no DynamoDB at {}: run the tests with scripts/test.sh, which starts one ({})",
            endpoint(),
            aws_sdk_dynamodb::error::DisplayErrorContext(&error)
        );
    }
    let ttl =
        TimeToLiveSpecification::builder().attribute_name("expiration").enabled(true).build().expect("a TTL");
    client
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .expect("TTL on");
    name
}

/// The `status` of every record in `table`.
pub async fn statuses(client: &Client, table: &str) -> Vec<String> {
    let scan = client.scan().table_name(table).consistent_read(true).send().await.expect("a scan");
    scan.items().iter().filter_map(|item| item.get("status")?.as_s().ok().cloned()).collect()
}

/// The environment that turns the test function's idempotency on, with `table` at `endpoint`.
pub fn env<'a>(table: &'a str, endpoint: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("IDEMPOTENCY_TABLE", table),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]
}

/// A DynamoDB of a test's own, to freeze: started with scripts/dynamodb.sh in a fresh state
/// folder, stopped (by its pid) on drop.
pub struct OwnDynamo {
    pub endpoint: String,
    state: PathBuf,
}

impl OwnDynamo {
    pub fn start() -> Self {
        let state = std::env::temp_dir().join(unique_name("dynamodb"));
        let output = std::process::Command::new(repo_root().join("scripts/dynamodb.sh"))
            .arg("start")
            .env("DYNAMODB_STATE", &state)
            .env("DYNAMODB_PORT", "0")
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run scripts/dynamodb.sh");
        assert!(output.status.success(), "scripts/dynamodb.sh start failed");
        let endpoint = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Self { endpoint, state }
    }

    /// Sends `signal` (`-STOP` freezes it: connections open, nothing answers; `-CONT` thaws).
    pub fn signal(&self, signal: &str) {
        let pid = std::fs::read_to_string(self.state.join("pid")).expect("pid file");
        let status = std::process::Command::new("kill").args([signal, pid.trim()]).status();
        assert!(status.expect("run kill").success(), "kill {signal} failed");
    }
}

impl Drop for OwnDynamo {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_root().join("scripts/dynamodb.sh"))
            .arg("stop")
            .env("DYNAMODB_STATE", &self.state)
            .status();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
