//! `--watch`: an edit of the handler goes live in a running drain with no restart by hand, and
//! no message is lost or handled twice across the swap from the old build to the new one, in
//! process and through the bootstrap.
//!
//! The handler edited is `tests/watched` (`watched-runner`, `watched-bootstrap`), which nothing
//! else uses; the test rewrites its `src/version.rs` and puts it back. The watch builds what
//! scripts/test.sh built (`--workspace --exclude bench --bins --tests --features handler/local`),
//! so only that crate recompiles.

mod support;

mod timing {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use super::support::{self, RunningRunner, depth, eventually, queue_pair, repo_root, runner_bin};

    const ORIGINAL: &str = "pub const VERSION: u32 = 1;";
    const EDITED: &str = "pub const VERSION: u32 = 2;";

    /// `tests/watched/src/version.rs`, put back as it was when dropped (a failing test included).
    struct VersionFile {
        path: PathBuf,
        original: String,
    }

    impl VersionFile {
        fn open() -> Self {
            let path = repo_root().join("tests/watched/src/version.rs");
            let text = std::fs::read_to_string(&path).expect("read version.rs");
            // A run killed mid-test may have left the edit behind: start from the original.
            let original = text.replace(EDITED, ORIGINAL);
            assert!(original.contains(ORIGINAL), "version.rs holds {ORIGINAL:?}: {original}");
            std::fs::write(&path, &original).expect("write version.rs");
            Self { path, original }
        }

        fn edit(&self) {
            std::fs::write(&self.path, self.original.replace(ORIGINAL, EDITED)).expect("edit version.rs");
        }
    }

    impl Drop for VersionFile {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.path, &self.original);
        }
    }

    fn watched_bin(name: &str) -> String {
        let path = runner_bin().with_file_name(name);
        assert!(
            path.exists(),
            "{} is missing: build every binary first (cargo build --workspace --bins)",
            path.display()
        );
        path.display().to_string()
    }

    /// `(id, version)` of each `handled` line, in log order.
    fn handled(runner: &RunningRunner) -> Vec<(String, u64)> {
        let lines = runner.lines.lock().expect("not poisoned");
        lines
            .iter()
            .filter(|line| line["message"] == "handled")
            .filter_map(|line| Some((line["id"].as_str()?.to_owned(), line["version"].as_u64()?)))
            .collect()
    }

    async fn an_edit_goes_live_mid_drain(mode: &[&str]) {
        let client = support::client().await;
        let queue = queue_pair(&client, "watch", false, 30, 2).await;
        let version = VersionFile::open();
        // 40 messages of 1 s each, two at a time: a 20 s drain that the edit lands in (topped up
        // below while the rebuild takes longer).
        let bodies: Vec<String> = (0..40).map(|i| format!(r#"{{"id":"w{i}","ms":1000}}"#)).collect();
        support::send(&client, &queue.url, &bodies, None).await;
        let mut args = vec![
            "--queue",
            &queue.url,
            "--watch",
            "--watch-cargo-args",
            "--workspace --exclude bench --bins --tests --features handler/local",
            "--exit-when-idle",
            "4",
            "--wait-time-seconds",
            "1",
        ];
        args.extend_from_slice(mode);
        let mut runner = RunningRunner::start_binary(&watched_bin("watched-runner"), &args, &[]);
        eventually(Duration::from_secs(60), "the first build to handle a message", || {
            let seen = handled(&runner).iter().any(|(_, v)| *v == 1);
            async move { seen.then_some(()) }
        })
        .await;
        version.edit();
        let edited = Instant::now();
        // The queue never runs dry before the rebuild lands, however long that build takes on a
        // loaded machine: while the edited build has handled nothing, the queue is topped up.
        let mut sent = bodies.len();
        while !handled(&runner).iter().any(|(_, v)| *v == 2) {
            assert!(
                edited.elapsed() < Duration::from_secs(180),
                "the edited build handled no message in 180 s"
            );
            if depth(&client, &queue.url).await.0 < 4 {
                let more: Vec<String> =
                    (sent..sent + 4).map(|i| format!(r#"{{"id":"w{i}","ms":1000}}"#)).collect();
                support::send(&client, &queue.url, &more, None).await;
                sent += more.len();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let live_after = edited.elapsed();
        let (code, stderr) = runner.exit(Duration::from_secs(120)).await;
        assert_eq!(code, Some(0), "{stderr}");
        let handled = handled(&runner);
        let mut times: BTreeMap<&str, u32> = BTreeMap::new();
        for (id, _) in &handled {
            *times.entry(id.as_str()).or_default() += 1;
        }
        assert_eq!(times.len(), sent, "every message was handled: {handled:?}");
        assert!(times.values().all(|&n| n == 1), "none twice: {times:?}");
        let by_edit = handled.iter().filter(|(_, v)| *v == 2).count();
        assert!(by_edit > 0 && by_edit < sent, "both builds handled some: {handled:?}");
        let restarts = runner
            .lines
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|l| l["message"] == "restarted with the new build")
            .count();
        assert_eq!(restarts, 1, "one rebuild, one restart");
        assert_eq!(depth(&client, &queue.url).await, (0, 0), "nothing left on the queue");
        assert_eq!(depth(&client, &queue.dlq_url).await, (0, 0), "nothing dead-lettered");
        eprintln!("the edit was live after {live_after:?}; {by_edit} of {sent} messages handled by it");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_process_an_edit_of_the_handler_goes_live_mid_drain_and_no_message_is_lost_or_handled_twice() {
        an_edit_goes_live_mid_drain(&[
            "--no-template",
            "--pollers",
            "1",
            "--batch-size",
            "2",
            "--max-in-flight",
            "2",
        ])
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_lambda_an_edit_of_the_bootstrap_goes_live_mid_drain_and_no_message_is_lost_or_handled_twice()
     {
        let mode = support::lambda_one_by_one(&watched_bin("watched-bootstrap"), 2);
        an_edit_goes_live_mid_drain(&mode.iter().map(String::as_str).collect::<Vec<_>>()).await;
    }
}
