//! The summary for people at the end of a run.

use std::fmt::Write as _;

use console::Style;

use super::format::{MAX_REASON_CHARS, paint};
use crate::observe::user_metrics::labelled;
use crate::observe::{FailureGroup, Summary, printable};

/// Failure reasons the summary lists before it sums up the rest.
const REASONS_SHOWN: usize = 8;

/// The end of a run for people: counts, time and rate, and the failures by reason with where
/// their messages went.
#[must_use]
pub fn summary_text(summary: &Summary, colour: bool) -> String {
    let queue = printable(&summary.queue, MAX_REASON_CHARS);
    let bold = Style::new().bold();
    let secs = summary.elapsed.as_secs_f64();
    let handled = summary.succeeded + summary.failed;
    let rate = if secs > 0.0 { handled as f64 / secs } else { 0.0 };
    let mut text = format!(
        "\n{} {queue}: {} received in {secs:.1} s, {rate:.0} handled/s\n",
        paint(colour, &bold, "summary"),
        summary.received
    );
    let ok = paint(colour, &Style::new().green(), &format!("{:>7}", summary.succeeded));
    let _ = writeln!(text, "{ok} ok, {} deleted", summary.deleted);
    let failed_style = if summary.failed > 0 { Style::new().red().bold() } else { Style::new() };
    let failed = paint(colour, &failed_style, &format!("{:>7}", summary.failed));
    if summary.failed == 0 {
        let _ = writeln!(text, "{failed} failed");
    } else {
        let _ = writeln!(text, "{failed} failed, by reason:");
        for group in summary.failures.iter().take(REASONS_SHOWN) {
            let times = if group.failures == 1 {
                "1 failure".to_owned()
            } else {
                format!("{} failures", group.failures)
            };
            let messages = if group.messages == 1 {
                "1 message".to_owned()
            } else {
                format!("{} messages", group.messages)
            };
            let _ = writeln!(
                text,
                "          {}  ({times}, {messages})",
                paint(colour, &Style::new().red(), &printable(&group.reason, MAX_REASON_CHARS))
            );
            let _ = writeln!(text, "            -> {}", destinations(group, summary));
        }
        let more = &summary.failures[summary.failures.len().min(REASONS_SHOWN)..];
        if !more.is_empty() {
            let failures: u64 = more.iter().map(|g| g.failures).sum();
            let _ = writeln!(text, "          ... and {} more reasons ({failures} failures)", more.len());
        }
    }
    let others = [
        (
            summary.skipped,
            "skipped: held back behind a failure in their FIFO group, or not started at a stop",
        ),
        (summary.filtered, "filtered out: no filter matched; deleted without being handled"),
        (summary.released, "released at the stop: visible again at once"),
        (summary.requeue_failed, "back-off not set: these come back after the queue's visibility timeout"),
        (summary.abandoned, "abandoned: still running when the shutdown timeout ran out; delivered again"),
        (summary.delete_failed, "succeeded but not deleted: SQS delivers them again"),
        (summary.deleted_late, "deleted after their visibility timeout: SQS may have delivered them again"),
        (summary.receives_cut_off, "receives cut off: their messages come back after the visibility timeout"),
    ];
    for (count, what) in others.into_iter().filter(|(count, _)| *count > 0) {
        let _ = writeln!(text, "{count:>7} {what}");
    }
    if !summary.metrics.is_empty() {
        let _ = writeln!(text, "        the handler's metrics:");
        for (key, series) in summary.metrics.iter() {
            let name = printable(&labelled(&key.name, &key.dimensions), MAX_REASON_CHARS);
            let values =
                if series.count == 1 { "1 value".to_owned() } else { format!("{} values", series.count) };
            let _ = writeln!(text, "          {name} {} ({}, {values})", series.sum, series.unit.as_str());
        }
    }
    if summary.event_count_metrics {
        let counts: Vec<String> =
            summary.event_counts().iter().map(|(name, n)| format!("{name} {n}")).collect();
        let _ = writeln!(text, "        event source mapping: {}", counts.join(", "));
    }
    text
}

/// Where a group's messages went: `2 to the DLQ orders-dlq (after 5 receives); 1 succeeded later`.
fn destinations(group: &FailureGroup, summary: &Summary) -> String {
    let mut went = Vec::new();
    if group.dead_lettered > 0 {
        let (dlq, after) = summary
            .redrive
            .as_ref()
            .map_or(("?", 0), |r| (r.dead_letter_queue.as_str(), r.max_receive_count));
        went.push(format!("{} to the DLQ {dlq} (after {after} receives)", group.dead_lettered));
    }
    if group.retrying > 0 {
        let next = group.last_receive.saturating_add(1);
        went.push(match &summary.redrive {
            Some(redrive) => format!(
                "{} back on the queue for receive {next} (the DLQ after {})",
                group.retrying, redrive.max_receive_count
            ),
            None => format!(
                "{} back on the queue (no DLQ: retried until the retention period ends)",
                group.retrying
            ),
        });
    }
    if group.recovered > 0 {
        went.push(format!("{} succeeded on a later receive", group.recovered));
    }
    if group.unfollowed > 0 {
        went.push(format!("{} not followed (too many failing at once)", group.unfollowed));
    }
    went.join("; ")
}
