//! What a person sees: `local-runner` in a pseudo-terminal, its output run through a terminal
//! emulator (vt100), and the screen checked the way a person would read it: the status line is
//! drawn while messages are handled, never runs together with a log line, and the summary is on
//! screen at the end. Ctrl-C says what the stop waits for.

mod support;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use support::{good_body, queue_pair, runner_bin, send};

const ROWS: u16 = 40;
const COLS: u16 = 160;
/// The emulator's size: [`COLS`] wide, and tall enough for a whole run.
const SCREEN_ROWS: std::num::NonZeroU16 = std::num::NonZeroU16::new(2000).expect("not zero");
const COLUMNS: std::num::NonZeroU16 = std::num::NonZeroU16::new(COLS).expect("not zero");

/// `local-runner` (the test handler's) running in a pseudo-terminal of 40 × 160.
struct OnScreen {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    chunks: mpsc::Receiver<Vec<u8>>,
    /// Tall enough that nothing scrolls away: the whole run stays readable. The program only
    /// moves the cursor relative to where it is, so it draws the same rows it would on 40.
    screen: vt100::Parser,
    raw: Vec<u8>,
    /// The program has closed the terminal: all its output is on the screen.
    closed: bool,
}

impl OnScreen {
    fn start(args: &[&str]) -> Self {
        let pty = native_pty_system()
            .openpty(PtySize { rows: ROWS, cols: COLS, pixel_width: 0, pixel_height: 0 })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(runner_bin());
        command.args(args);
        command.args(["--endpoint-url", &support::endpoint()]);
        command.env("TERM", "xterm-256color");
        command.env_remove("NO_COLOR");
        command.env_remove("RUST_LOG");
        command.cwd(support::repo_root());
        let child = pty.slave.spawn_command(command).expect("start local-runner in the pty");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("the pty's output");
        let keys = pty.master.take_writer().expect("the pty's input");
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps the master open for as long as the output is read.
            let _master = pty.master;
            let mut buffer = [0u8; 8192];
            // The read fails (EIO) once the program has exited and closed the terminal.
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 || tx.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            keys,
            chunks,
            screen: vt100::Parser::new(SCREEN_ROWS, COLUMNS, 0),
            raw: Vec::new(),
            closed: false,
        }
    }

    /// Feeds output to the screen until `done` says so of the screen, checking every state the
    /// screen passes through with `check`; fails after `timeout`.
    fn until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&Self) -> bool,
        check: &dyn Fn(&[String]),
    ) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => {
                    self.raw.extend_from_slice(&chunk);
                    self.screen.process(&chunk);
                    check(&self.rows());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.closed = true;
                    assert!(done(self), "the output ended before {what}:\n{}", self.rows().join("\n"));
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("{what} did not happen in {timeout:?}:\n{}", self.rows().join("\n"));
                }
            }
        }
    }

    /// Every row of the screen that holds anything, as a person reads it.
    fn rows(&self) -> Vec<String> {
        self.screen
            .screen()
            .rows(0, COLS)
            .map(|row| row.trim_end().to_owned())
            .filter(|row| !row.is_empty())
            .collect()
    }

    /// The screen's text, rows wrapped at its width joined again.
    fn text(&self) -> String {
        self.screen.screen().contents()
    }

    fn shows(&self, text: &str) -> bool {
        self.text().contains(text)
    }

    fn ended(&self) -> bool {
        self.closed
    }

    fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "local-runner did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OnScreen {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Whether `text` holds a log line's time stamp (`12:04:05 `) anywhere.
fn time_stamps(text: &str) -> usize {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(8))
        .filter(|&i| {
            let b = &bytes[i..i + 9];
            b[0..2].iter().chain(&b[3..5]).chain(&b[6..8]).all(u8::is_ascii_digit)
                && b[2] == b':'
                && b[5] == b':'
                && b[8] == b' '
                && (i == 0 || !bytes[i - 1].is_ascii_digit())
        })
        .count()
}

/// No row holds the status line's text together with a log line, and no row holds two log lines.
fn no_row_runs_together(rows: &[String]) {
    for row in rows {
        let status = row.contains("in flight") && row.contains("msg/s");
        let stamps = time_stamps(row);
        assert!(!(status && stamps > 0), "the status line and a log line share a row:\n{row}");
        assert!(stamps <= 1, "two log lines share a row:\n{row}");
        if stamps == 1 {
            assert!(
                time_stamps(&row[..9.min(row.len())]) == 1,
                "a log line starts mid-row (something was written before it):\n{row}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_line_never_shares_a_row_with_a_log_line_and_the_summary_ends_the_screen() {
    let client = support::client().await;
    let queue = queue_pair(&client, "terminal", false, 5, 2).await;
    let mut bodies: Vec<String> = (0..150).map(|i| good_body(&format!("order-{i}"), 40)).collect();
    bodies.extend((0..4).map(|_| "not json".to_owned()));
    send(&client, &queue.url, &bodies, None).await;

    let mut screen = OnScreen::start(&[
        "--queue",
        &queue.url,
        "--exit-when-idle",
        "2",
        "--wait-time-seconds",
        "1",
        "--pollers",
        "1",
        "--batch-size",
        "5",
    ]);
    let started = Instant::now();
    screen.until(Duration::from_secs(120), "the run to end", OnScreen::ended, &no_row_runs_together);
    assert_eq!(screen.exit_code(), 0, "{}", screen.rows().join("\n"));
    let raw = String::from_utf8_lossy(&screen.raw).into_owned();
    assert!(raw.contains("msg/s") && raw.contains("in flight"), "the status line was drawn at some point");
    let rows = screen.rows();
    let text = rows.join("\n");
    assert!(!rows.iter().any(|row| row.contains("msg/s")), "the status line is gone at the end:\n{text}");
    let summary = rows.iter().position(|row| row.starts_with("summary ")).expect("a summary on screen");
    let after = &rows[summary..];
    assert!(after.iter().any(|row| row.trim() == "150 ok, 150 deleted"), "{text}");
    assert!(
        after.iter().any(|row| row.trim() == "8 failed, by reason:"),
        "4 bad bodies, received twice each:\n{text}"
    );
    assert!(
        after
            .iter()
            .any(|row| row.contains("invalid body: not valid JSON")
                && row.contains("(8 failures, 4 messages)")),
        "{text}"
    );
    assert!(
        after
            .iter()
            .any(|row| row.trim() == format!("-> 4 to the DLQ {}-dlq (after 2 receives)", queue.name)),
        "{text}"
    );
    assert!(rows.iter().any(|row| row.contains(" ok      order-")), "compact outcome lines:\n{text}");
    assert!(started.elapsed() < Duration::from_secs(120));

    // A failure stands out: its outcome is drawn in red.
    let screen_state = screen.screen.screen();
    let failed_row = (0..SCREEN_ROWS.get())
        .find(|&row| screen_state.contents_between(row, 0, row, COLS).contains("FAILED"))
        .expect("a FAILED line");
    let column =
        screen_state.contents_between(failed_row, 0, failed_row, COLS).find("FAILED").expect("FAILED");
    let cell = screen_state.cell(failed_row, u16::try_from(column).expect("a column")).expect("a cell");
    assert_eq!(cell.fgcolor(), vt100::Color::Idx(1), "FAILED in red");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_says_what_the_stop_waits_for_and_what_a_second_one_costs() {
    let client = support::client().await;
    let queue = queue_pair(&client, "terminal-stop", false, 30, 5).await;
    let mut screen =
        OnScreen::start(&["--queue", &queue.url, "--wait-time-seconds", "3", "--shutdown-timeout", "7"]);
    screen.until(Duration::from_secs(60), "the status line", |s| s.shows("msg/s"), &no_row_runs_together);

    screen.keys.write_all(b"\x03").expect("Ctrl-C");
    screen.keys.flush().expect("flush");
    screen.until(Duration::from_secs(60), "the run to end", OnScreen::ended, &no_row_runs_together);
    assert_eq!(screen.exit_code(), 0);
    let text = screen.text();
    assert!(
        text.contains("Ctrl-C: stopping. Letting the long polls in flight return (up to 3 s) and started messages finish (up to 7 s)"),
        "{text}"
    );
    assert!(text.contains("Ctrl-C again quits at once"), "{text}");
    assert!(text.contains(&format!("summary {}: 0 received", queue.name)), "{text}");
}
