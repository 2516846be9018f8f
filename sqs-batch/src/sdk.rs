//! The AWS SDK configuration of the framework's own clients: the retry back-off's SQS client, the
//! idempotency table's DynamoDB client and the large payloads' S3 client.
//!
//! Their HTTPS goes through rustls with *ring* rather than the SDK's default TLS stack (rustls with
//! aws-lc-rs): a function links whichever the framework chooses, and ring adds much less to its
//! binary, so to every cold start and deployment (BENCHMARKS.md, "The function's weight"). A
//! function whose own clients use the SDK's defaults links both; it still works.

use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The configuration the SDK reads from the environment (`aws_config::defaults`), with the
/// framework's HTTPS client.
pub(crate) fn defaults() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https(),
    )
}
