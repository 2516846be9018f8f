//! A LocalStack of a test's own, for the tests that freeze or kill it.

use super::*;

/// A LocalStack of a test's own, for tests that freeze or kill it: started with
/// scripts/localstack.sh in a fresh state folder, stopped (by its pid) on drop.
pub struct OwnLocalStack {
    pub endpoint: String,
    pub port: u16,
    state: PathBuf,
}

impl OwnLocalStack {
    /// Starts one on `port` (0: a free one).
    pub fn start(port: u16) -> Self {
        let state = std::env::temp_dir().join(unique_name("localstack"));
        let output = std::process::Command::new(repo_root().join("scripts/localstack.sh"))
            .arg("start")
            .env("LOCALSTACK_STATE", &state)
            .env("LOCALSTACK_PORT", port.to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run scripts/localstack.sh");
        assert!(output.status.success(), "scripts/localstack.sh start failed");
        let endpoint = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let port = endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("endpoint with a port");
        Self { endpoint, port, state }
    }

    pub fn pid(&self) -> u32 {
        std::fs::read_to_string(self.state.join("pid")).expect("pid file").trim().parse().expect("a pid")
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill").args([signal, &self.pid().to_string()]).status();
        assert!(status.expect("run kill").success(), "kill {signal} failed");
    }

    /// Stops it (SIGTERM, then SIGKILL after 10 s) and forgets its state, queues included.
    pub fn stop(&self) {
        let _ = std::process::Command::new(repo_root().join("scripts/localstack.sh"))
            .arg("stop")
            .env("LOCALSTACK_STATE", &self.state)
            .status();
    }

    pub async fn client(&self) -> Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
            .build();
        Client::from_conf(config)
    }
}

impl Drop for OwnLocalStack {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
