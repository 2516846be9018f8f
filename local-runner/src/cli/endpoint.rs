//! Where SQS is, from `--endpoint-url` and `--region`, checked at the edge: a URL that cannot be an
//! endpoint is a usage error before anything runs, for the main command and every subcommand.

use super::args::{Place, Target};
use crate::aws::{Connection, QueueRef};
use crate::error::RunnerError;

impl Target {
    /// The queue and where it is, validated as the main command's.
    ///
    /// # Errors
    /// [`RunnerError::Usage`] naming the flag.
    pub fn parse(&self) -> Result<(QueueRef, Connection), RunnerError> {
        Ok((QueueRef::parse(&self.queue)?, connection(&self.endpoint_url, &self.region)?))
    }
}

impl Place {
    /// The queue name, if one is given, and where.
    ///
    /// # Errors
    /// [`RunnerError::Usage`] naming the flag.
    pub fn parse(&self) -> Result<(Option<String>, Connection), RunnerError> {
        let queue = match self.queue.as_deref().map(str::trim) {
            Some("") => return Err(RunnerError::Usage("--queue must not be empty".into())),
            Some(name) if name.contains("://") => {
                return Err(RunnerError::Usage("up: --queue takes a queue name, not a URL".into()));
            }
            other => other.map(str::to_owned),
        };
        Ok((queue, connection(&self.endpoint_url, &self.region)?))
    }
}

/// `--endpoint-url` and `--region`: an empty endpoint means AWS's own. A URL that cannot be an
/// endpoint (no host, a space, a port past 65535) is a usage error now, not a minute of retries
/// that ends in "is LocalStack running?".
pub(super) fn connection(endpoint: &str, region: &str) -> Result<Connection, RunnerError> {
    let endpoint = match endpoint.trim() {
        "" => None,
        url => Some(endpoint_url(url)?),
    };
    match region.trim() {
        "" => Err(RunnerError::Usage("--region must not be empty (for example us-east-1)".into())),
        region => Ok(Connection::new(endpoint, region)),
    }
}

/// An endpoint URL as the SDK will use it: `http(s)://host[:port][/path]`.
fn endpoint_url(url: &str) -> Result<String, RunnerError> {
    let shown = crate::observe::printable(url, 100);
    let bad = |why: &str| {
        RunnerError::Usage(format!(
            "--endpoint-url {shown:?} {why}: give one like http://localhost:4566, or an empty string for AWS"
        ))
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad("must start with http:// or https://"));
    }
    let uri: axum::http::Uri = url.parse().map_err(|e| bad(&format!("is not a URL ({e})")))?;
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Err(bad("has no host"));
    };
    // `Authority::port` is `None` for a port that is not a u16: read what follows the host.
    let text = authority.as_str();
    let after_host = match text.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => text.rfind(':').map_or("", |at| &text[at..]),
    };
    if let Some(port) = after_host.strip_prefix(':')
        && port.parse::<u16>().is_err()
    {
        return Err(bad("has a port outside 0..=65535"));
    }
    if uri.query().is_some() {
        return Err(bad("has a query string"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}
