//! The compact lines and the summary, as a person reads them.

use tracing::Level;

use super::format::{Fields, render};
use super::*;
use crate::aws::queue::Redrive;
use crate::observe::{FailureGroup, Summary};

fn fields(pairs: &[(&str, &str)]) -> Fields {
    let mut fields = Fields::default();
    for (name, value) in pairs {
        fields.put(name, (*value).to_owned());
    }
    fields
}

#[test]
fn an_outcome_line_leads_with_the_outcome_and_the_producers_id_and_ends_with_the_short_message_id() {
    let ok = render(
        Level::INFO,
        &fields(&[("message_id", "9e5b12ab-0000"), ("id", "order-1"), ("outcome", "ok")]),
        false,
    );
    let (_time, rest) = ok.split_once(' ').unwrap();
    assert_eq!(rest, "ok      order-1       9e5b12ab");
    let failed = render(
        Level::ERROR,
        &fields(&[
            ("message_id", "4c1d0000-1"),
            ("outcome", "failed"),
            ("error_kind", "invalid_body"),
            ("receive_count", "2"),
            ("retryable", "false"),
            ("error", "invalid body at `id`: must not be empty"),
        ]),
        false,
    );
    assert!(
        failed.ends_with(
            "FAILED  4c1d0000      invalid body at `id`: must not be empty  invalid_body receive 2"
        ),
        "{failed}"
    );
}

#[test]
fn other_lines_carry_level_message_and_fields_with_spaces_quoted() {
    let line = render(
        Level::WARN,
        &fields(&[("message", "receive failed"), ("error", "connection refused")]),
        false,
    );
    assert!(line.ends_with(r#"WARN  receive failed  error="connection refused""#), "{line}");
}

#[test]
fn a_producers_escape_sequences_and_line_breaks_cannot_forge_a_line() {
    let forged = "\u{1b}[31mRED\u{1b}[0m\r\n12:00:00 ok      FORGED";
    for line in [
        render(Level::INFO, &fields(&[("outcome", "ok"), ("id", forged)]), true),
        render(Level::ERROR, &fields(&[("outcome", "failed"), ("error", forged)]), false),
        render(Level::WARN, &fields(&[("message", "x"), (forged, forged)]), false),
    ] {
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        assert!(!line.contains("\u{1b}[31m") && line.contains(r"\x1b[31mRED"), "{line:?}");
    }
    let summary = Summary {
        queue: "q".into(),
        failed: 1,
        failures: vec![FailureGroup {
            reason: forged.into(),
            failures: 1,
            messages: 1,
            ..FailureGroup::default()
        }],
        ..Summary::default()
    };
    let text = summary_text(&summary, false);
    assert!(
        !text.contains('\u{1b}') && !text.contains("\nFORGED") && text.contains(r"\r\n12:00:00"),
        "{text}"
    );
}

#[test]
fn a_huge_id_or_error_is_echoed_only_in_part() {
    let huge = "i".repeat(200_000);
    let line =
        render(Level::ERROR, &fields(&[("outcome", "failed"), ("id", &huge), ("error", &huge)]), false);
    assert!(line.len() < 2_000, "{} bytes", line.len());
}

#[test]
fn colour_is_only_there_when_asked_for() {
    let plain = render(Level::INFO, &fields(&[("outcome", "ok"), ("id", "a")]), false);
    let coloured = render(Level::INFO, &fields(&[("outcome", "ok"), ("id", "a")]), true);
    assert!(!plain.contains('\x1b'));
    assert!(coloured.contains("\x1b[32m"), "{coloured:?}");
}

#[test]
fn the_summary_lists_the_handlers_metrics_by_their_names_with_escaped_dimensions() {
    use sqs_batch::metrics::{Metric, Metrics, Unit};
    let mut metrics = Metrics::default();
    metrics.add(&Metric::new("OrdersStored", Unit::Count, 1.0));
    metrics.add(&Metric::new("OrdersStored", Unit::Count, 1.0));
    metrics.add(&Metric::new("OrderValue", Unit::None, 9.5).dimension("tenant", "\u{1b}[31mRED"));
    let text = summary_text(&Summary { metrics, ..Summary::default() }, false);
    assert!(text.contains("OrdersStored 2 (Count, 2 values)"), "{text}");
    assert!(text.contains(r"OrderValue{tenant=\x1b[31mRED} 9.5 (None, 1 value)"), "{text}");
    assert!(!text.contains('\u{1b}'));
    let none = summary_text(&Summary::default(), false);
    assert!(!none.contains("the handler's metrics"), "{none}");
}

#[test]
fn with_the_mapping_s_event_count_metrics_the_summary_names_them_as_cloudwatch_does() {
    let summary = Summary {
        received: 12,
        invoked: 10,
        filtered: 2,
        failed_invoke: 1,
        deleted: 9,
        event_count_metrics: true,
        ..Summary::default()
    };
    let text = summary_text(&summary, false);
    assert!(
        text.contains(
            "event source mapping: PolledEventCount 12, InvokedEventCount 10, FilteredOutEventCount 2, \
             FailedInvokeEventCount 1, DeletedEventCount 9, DroppedEventCount 0"
        ),
        "{text}"
    );
    let off = summary_text(&Summary { event_count_metrics: false, ..summary }, false);
    assert!(!off.contains("PolledEventCount"), "only when the template asks for them");
}

#[test]
fn the_summary_groups_failures_by_reason_and_says_where_they_went() {
    let summary = Summary {
        received: 230,
        succeeded: 190,
        failed: 40,
        deleted: 190,
        elapsed: Duration::from_secs(10),
        redrive: Some(Redrive { dead_letter_queue: "orders-dlq".into(), max_receive_count: 3 }),
        failures: vec![
            FailureGroup {
                reason: "invalid body at `id`: missing field `id`".into(),
                failures: 30,
                messages: 10,
                dead_lettered: 10,
                last_receive: 3,
                ..FailureGroup::default()
            },
            FailureGroup {
                reason: "gateway timed out".into(),
                failures: 10,
                messages: 6,
                recovered: 5,
                retrying: 1,
                last_receive: 2,
                ..FailureGroup::default()
            },
        ],
        ..Summary::default()
    };
    let text = summary_text(&Summary { queue: "orders".into(), ..summary }, false);
    assert!(text.contains("orders: 230 received in 10.0 s, 23 handled/s"), "{text}");
    assert!(text.contains("    190 ok, 190 deleted"), "{text}");
    assert!(text.contains("invalid body at `id`: missing field `id`  (30 failures, 10 messages)"), "{text}");
    assert!(text.contains("-> 10 to the DLQ orders-dlq (after 3 receives)"), "{text}");
    assert!(
        text.contains(
            "-> 1 back on the queue for receive 3 (the DLQ after 3); 5 succeeded on a later receive"
        ),
        "{text}"
    );
    assert!(!text.contains("skipped"), "counts that are zero are left out: {text}");
}

#[test]
fn a_json_line_of_the_function_is_shown_like_one_of_ours_and_other_text_is_not_parsed() {
    let line = r#"{"timestamp":"2026-11-28T10:00:00Z","level":"WARN","message_id":"abcdef123","id":"o-1","outcome":"failed","error":"boom","receive_count":2}"#;
    let (level, fields) = function_fields(line).unwrap();
    assert_eq!(level, Level::WARN);
    assert!(render(level, &fields, false).ends_with("FAILED  o-1           boom  receive 2 abcdef12"));
    assert!(function_fields("thread 'main' panicked").is_none());
    assert!(function_fields("[1, 2]").is_none());
}
