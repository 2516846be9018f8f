//! Credentials never reach the logs, even at debug level.

mod support;

use std::process::{Command, Stdio};

use support::{good_body, queue_pair, runner_bin, send};

const KEY_ID: &str = "AKIACANARY7Q3XJ5W2ZK";
const SECRET: &str = "canary-secret-5c2f0e7a9b1d4e6f8a0b2c4d6e8f0a1b";
const TOKEN: &str = "canary-session-token-9e8d7c6b5a4f3e2d1c0b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_the_environment_never_appear_in_the_output() {
    let client = support::client().await;
    let queue = queue_pair(&client, "canary", false, 30, 5).await;
    let bodies: Vec<String> =
        (0..20).map(|i| good_body(&format!("m{i}"), 0)).chain(["not json".to_owned()]).collect();
    send(&client, &queue.url, &bodies, None).await;

    for level in ["info", "debug"] {
        let output = Command::new(runner_bin())
            .args(["--queue", &queue.url, "--endpoint-url", &support::endpoint(), "--log-format", "json"])
            .args(["--wait-time-seconds", "1", "--exit-when-idle", "1", "--retry-backoff", "0"])
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", TOKEN)
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .output()
            .expect("run local-runner");
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
        let all = [output.stdout, output.stderr].concat();
        let text = String::from_utf8_lossy(&all);
        assert!(text.lines().count() > 3, "the run logged something at {level}");
        for canary in [KEY_ID, SECRET, TOKEN] {
            assert!(!text.contains(canary), "a credential appeared in the {level} output");
        }
    }
}
