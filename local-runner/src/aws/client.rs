//! Where SQS is, who calls it, and the client that does.

use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{
    BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig, timeout::TimeoutConfig,
};

/// Connection attempts that take longer than this fail; the SDK then retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Slack over the long-poll wait before a request attempt counts as hung.
const ATTEMPT_SLACK: Duration = Duration::from_secs(10);

/// Where SQS is and who calls it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The SQS endpoint; `None` means AWS's own for the region, whatever the environment or a
    /// profile says (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SQS`, `endpoint_url`).
    pub endpoint_url: Option<String>,
    /// The region.
    pub region: String,
    /// Credentials for a local endpoint (their `Debug` hides the secret). `None` there means the
    /// dummy `test`/`test`; other endpoints always use the AWS credential chain.
    pub local_credentials: Option<Credentials>,
}

impl Connection {
    /// A connection to `endpoint_url` (`None`: AWS's own) in `region`.
    #[must_use]
    pub fn new(endpoint_url: Option<String>, region: impl Into<String>) -> Self {
        Self { endpoint_url, region: region.into(), local_credentials: None }
    }

    /// The endpoint for messages: its URL, or "AWS (region)".
    #[must_use]
    pub fn describe(&self) -> String {
        self.endpoint_url.clone().unwrap_or_else(|| format!("AWS ({})", self.region))
    }

    /// Whether the endpoint is this machine (then dummy credentials are allowed).
    #[must_use]
    pub fn is_local(&self) -> bool {
        self.endpoint_url.as_deref().is_some_and(is_local_endpoint)
    }

    /// Builds a client whose request attempts may take up to `longest_wait` (a long poll) plus
    /// some slack before they count as hung and are retried.
    ///
    /// Against a local endpoint, credentials are [`Connection::local_credentials`] when given,
    /// and the dummy `test`/`test` otherwise: a local run never reaches out to the network for
    /// credentials. The full AWS credential chain (profiles, SSO, instance metadata) is used only
    /// for other endpoints.
    ///
    /// Stalled-stream protection is off: every attempt already has a timeout that covers its whole
    /// answer, and the protection's timers and body wrapper cost about a tenth of a consumer's
    /// messages per CPU second (BENCHMARKS.md, "Where the CPU goes").
    pub async fn client(&self, longest_wait: Duration) -> Client {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(longest_wait + ATTEMPT_SLACK)
            .build();
        let region = Region::new(self.region.clone());
        if let Some(endpoint) = self.endpoint_url.as_deref().filter(|e| is_local_endpoint(e)) {
            let credentials = self
                .local_credentials
                .clone()
                .unwrap_or_else(|| Credentials::new("test", "test", None, None, "local-dummy"));
            let sqs = aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .http_client(https_client())
                .region(region)
                .endpoint_url(endpoint)
                .credentials_provider(credentials)
                .timeout_config(timeouts)
                .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
                .build();
            return Client::from_conf(sqs);
        }
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .region(region)
            .timeout_config(timeouts)
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .load()
            .await;
        Client::from_conf(remote_config(&shared, self.endpoint_url.clone()))
    }
}

/// The client configuration for a remote endpoint: the shared configuration's credentials,
/// region and timeouts, with the endpoint ours to decide: `endpoint`, or AWS's own, never one
/// picked up from the environment or a profile behind the user's back.
fn remote_config(shared: &aws_config::SdkConfig, endpoint: Option<String>) -> aws_sdk_sqs::Config {
    let mut builder = aws_sdk_sqs::config::Builder::from(shared);
    builder.set_endpoint_url(endpoint);
    builder.build()
}

/// The HTTP(S) client of every SDK client the runner builds: rustls with ring, the TLS stack the
/// framework gives functions, so a function built beside the runner links that one alone.
pub(crate) fn https_client() -> aws_sdk_sqs::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// Whether an endpoint is this machine: only then may dummy credentials be used.
#[must_use]
pub fn is_local_endpoint(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url);
    let host = host.split(['/', '?']).next().unwrap_or(host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_localhost_endpoints_are_local() {
        for url in [
            "http://localhost:4566",
            "http://127.0.0.1:4566",
            "http://[::1]:4566/",
            "http://sqs.localhost:1",
            "http://127.5.0.1",
        ] {
            assert!(is_local_endpoint(url), "{url}");
        }
    }

    #[test]
    fn remote_endpoints_are_not_local() {
        for url in [
            "https://sqs.us-east-1.amazonaws.com",
            "http://10.0.0.5:4566",
            "http://localhost.example.com",
            "http://192.168.1.2",
        ] {
            assert!(!is_local_endpoint(url), "{url}");
        }
    }

    #[test]
    fn aws_own_endpoint_is_not_overridden_by_a_configured_one() {
        // What the SDK loads from AWS_ENDPOINT_URL or a profile lands in the shared configuration.
        let shared = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url("http://from-the-environment:1")
            .build();
        let aws_own = format!("{:?}", remote_config(&shared, None));
        assert!(!aws_own.contains("from-the-environment"), "{aws_own}");
        let explicit = format!("{:?}", remote_config(&shared, Some("https://sqs.example.test".into())));
        assert!(
            explicit.contains("https://sqs.example.test") && !explicit.contains("from-the-environment"),
            "{explicit}"
        );
    }
}
