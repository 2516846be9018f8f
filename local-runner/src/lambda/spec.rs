//! The function as Lambda would run it: binary, settings, environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::aws::{Connection, is_local_endpoint};
use crate::template::FunctionSpec;

/// The function as Lambda would run it.
#[derive(Debug, Clone)]
pub struct LambdaSpec {
    /// The bootstrap binary.
    pub bootstrap: PathBuf,
    /// The function name (the template's logical id).
    pub function_name: String,
    /// `MemorySize`, passed as `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: u64,
    /// `Timeout`: an invocation running longer is killed.
    pub timeout: Duration,
    /// The function's environment variables.
    pub environment: BTreeMap<String, String>,
    /// `LoggingConfig.LogFormat`, as `AWS_LAMBDA_LOG_FORMAT`.
    pub log_format: Option<String>,
    /// `LoggingConfig.ApplicationLogLevel`, as `AWS_LAMBDA_LOG_LEVEL`.
    pub log_level: Option<String>,
    /// The region.
    pub region: String,
    /// The SQS endpoint the runner uses; a local one is passed on as `AWS_ENDPOINT_URL` with
    /// dummy credentials, so the function's own AWS calls reach the same emulator.
    pub endpoint_url: Option<String>,
}

impl LambdaSpec {
    /// The function as the template describes it, run from `bootstrap` against `connection`.
    /// Fields may be overridden afterwards (the CLI's `--function-timeout`).
    #[must_use]
    pub fn from_template(function: &FunctionSpec, bootstrap: PathBuf, connection: &Connection) -> Self {
        Self {
            bootstrap,
            function_name: function.logical_id.clone(),
            memory_mb: function.memory_mb,
            timeout: function.timeout,
            environment: function.environment.clone(),
            log_format: function.log_format.clone(),
            log_level: function.log_level.clone(),
            region: connection.region.clone(),
            endpoint_url: connection.endpoint_url.clone(),
        }
    }

    pub(crate) fn function_arn(&self) -> String {
        format!("arn:aws:lambda:{}:000000000000:function:{}", self.region, self.function_name)
    }

    /// The environment of a bootstrap process: Lambda's reserved variables, then the function's.
    pub(crate) fn process_environment(&self, index: usize, api: SocketAddr) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", self.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.memory_mb.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.function_name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/[$LATEST]{index:032x}")),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_DEFAULT_REGION", self.region.clone()),
            ("_HANDLER", "bootstrap".to_owned()),
            (
                "LAMBDA_TASK_ROOT",
                self.bootstrap.parent().map(|p| p.display().to_string()).unwrap_or_default(),
            ),
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("LANG", "en_US.UTF-8".to_owned()),
            ("TZ", ":UTC".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(format) = &self.log_format {
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), format.clone()));
        }
        if let Some(level) = &self.log_level {
            env.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.clone()));
        }
        if let Some(endpoint) = self.endpoint_url.as_deref().filter(|e| is_local_endpoint(e)) {
            env.push(("AWS_ENDPOINT_URL".into(), endpoint.to_owned()));
            env.push(("AWS_ACCESS_KEY_ID".into(), "test".into()));
            env.push(("AWS_SECRET_ACCESS_KEY".into(), "test".into()));
            // The runner's own local endpoints of other services (a local DynamoDB for the
            // idempotency layer): the function's calls reach the same emulators the runner's
            // environment names. Local ones only: the function's environment is the template's.
            env.extend(service_endpoints(std::env::vars()));
        }
        env.extend(self.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }
}

/// The `AWS_ENDPOINT_URL_<SERVICE>` variables of `vars` that name a local endpoint.
fn service_endpoints(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.filter(|(name, value)| {
        name.strip_prefix("AWS_ENDPOINT_URL_").is_some_and(|service| !service.is_empty())
            && is_local_endpoint(value)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_service_endpoints_of_the_runners_environment_reach_the_function() {
        let vars = [
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:4569"),
            ("AWS_ENDPOINT_URL_S3", "https://s3.eu-west-1.amazonaws.com"),
            ("AWS_ENDPOINT_URL_", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("HOME", "/root"),
        ];
        let passed = service_endpoints(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        assert_eq!(passed, [("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), "http://127.0.0.1:4569".to_owned())]);
    }
}
