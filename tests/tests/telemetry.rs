//! Telemetry as a user sees it, in both runtimes: a producer's trace context (X-Ray's
//! `AWSTraceHeader`, a W3C `traceparent` attribute) reaches each outcome line as its `trace_id`;
//! a handler's own lines carry the message's correlation fields (and Lambda's request id in the
//! bootstrap); and the bootstrap prints one Embedded Metric Format line per invocation whose
//! counts match what it answered.

mod support;

use std::time::Duration;

use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
};
use serde_json::Value;
use support::{RunningRunner, bootstrap_bin, queue_pair, template_path};

const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const XRAY_TRACE_ID: &str = "5759e988bd862e3fe1be46a994272793";
const W3C: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const W3C_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A queue with a message traced by X-Ray, one traced by W3C, and one that fails.
async fn traced_queue() -> String {
    let client = support::client().await;
    let queue = queue_pair(&client, "traced", false, 30, 3).await;
    let xray = MessageSystemAttributeValue::builder()
        .data_type("String")
        .string_value(XRAY)
        .build()
        .expect("a value");
    client
        .send_message()
        .queue_url(&queue.url)
        .message_body(r#"{"id":"xray-1","note":true}"#)
        .message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, xray)
        .send()
        .await
        .expect("send the X-Ray traced message");
    let w3c =
        MessageAttributeValue::builder().data_type("String").string_value(W3C).build().expect("a value");
    client
        .send_message()
        .queue_url(&queue.url)
        .message_body(r#"{"id":"w3c-1","note":true}"#)
        .message_attributes("traceparent", w3c)
        .send()
        .await
        .expect("send the W3C traced message");
    client
        .send_message()
        .queue_url(&queue.url)
        .message_body(r#"{"id":"bad-1","fail":"permanent"}"#)
        .send()
        .await
        .expect("send");
    queue.url
}

/// Runs the real binary over `queue_url` with `extra` flags until idle; returns its JSON lines.
async fn drained(queue_url: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--queue", queue_url, "--wait-time-seconds", "1", "--exit-when-idle", "2"];
    args.extend_from_slice(extra);
    let mut runner = RunningRunner::start(&args);
    let (code, stderr) = runner.exit(Duration::from_secs(90)).await;
    assert_eq!(code, Some(0), "{stderr}");
    runner.lines.lock().expect("lines").clone()
}

fn line(lines: &[Value], what: impl Fn(&Value) -> bool) -> &Value {
    lines.iter().find(|l| what(l)).unwrap_or_else(|| panic!("no such line among {} lines", lines.len()))
}

/// Outcome lines carry their trace ids; the handler's own `note` lines carry the message's
/// correlation fields (and, when `request_id` is asked for, Lambda's request id).
fn assert_correlated(lines: &[Value], request_id: bool) {
    for (id, trace_id) in [("xray-1", XRAY_TRACE_ID), ("w3c-1", W3C_TRACE_ID)] {
        let outcome = line(lines, |l| l["id"] == id && l["outcome"] == "ok");
        assert_eq!(outcome["trace_id"], trace_id, "{outcome}");
        let note = line(lines, |l| l["message"] == "note" && l["note_of"] == id);
        assert_eq!(note["trace_id"], trace_id, "{note}");
        assert_eq!(note["message_id"], outcome["message_id"], "{note}");
        assert_eq!(note["receive_count"], "1", "{note}");
        assert_eq!(note.get("request_id").is_some(), request_id, "{note}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_ids_and_correlation_fields_reach_the_lines_in_process() {
    let queue = traced_queue().await;
    let lines = drained(&queue, &["--no-template"]).await;
    assert_correlated(&lines, false);
    assert_handler_metrics(&lines);
}

/// The summary line's handler metrics: `OrdersStored` for the two that succeeded, and the
/// permanent failure's `OrdersRejected`, which it keeps on failure (once a delivery), with its
/// dimension.
fn assert_handler_metrics(lines: &[Value]) {
    let summary = line(lines, |l| l["message"] == "summary");
    let metrics: Value =
        serde_json::from_str(summary["metrics"].as_str().expect("the summary names the handler's metrics"))
            .expect("as JSON");
    assert_eq!(metrics["OrdersStored"]["sum"].as_f64(), Some(2.0), "{summary}");
    assert_eq!(
        metrics["OrdersRejected{kind=permanent}"]["sum"].as_f64(),
        summary["failed"].as_f64(),
        "{summary}"
    );
    assert_eq!(metrics["OrdersStored"]["unit"], "Count");
}

/// An Embedded Metric Format line as the specification requires it; returns it.
fn emf(line: &Value) -> &Value {
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    assert!(line["_aws"]["Timestamp"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "{line}");
    assert_eq!(directive["Namespace"], "sqs-batch", "{line}");
    for dimension in directive["Dimensions"][0].as_array().expect("a dimension set") {
        assert!(line[dimension.as_str().expect("a name")].is_string(), "{line}");
    }
    for metric in directive["Metrics"].as_array().expect("metrics") {
        assert!(line[metric["Name"].as_str().expect("a name")].is_number(), "{line}");
    }
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_correlates_its_lines_and_prints_one_metrics_line_per_invocation() {
    let queue = traced_queue().await;
    let bootstrap = bootstrap_bin().display().to_string();
    let template = template_path("standard").display().to_string();
    let lines = drained(
        &queue,
        &["--lambda", &bootstrap, "--template", &template, "--batching-window", "0", "--esm-batch-size", "1"],
    )
    .await;
    assert_correlated(&lines, true);
    let metrics: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).map(emf).collect();
    let invocations = lines.iter().filter(|l| l["message"] == "batch done").count();
    assert_eq!(metrics.len(), invocations, "one metrics line per invocation");
    let sum = |name: &str| metrics.iter().map(|m| m[name].as_f64().expect("a number")).sum::<f64>();
    let outcomes = |outcome: &str| lines.iter().filter(|l| l["outcome"] == outcome).count() as f64;
    assert_eq!(sum("MessagesSucceeded"), outcomes("ok"));
    assert_eq!(sum("MessagesFailed"), outcomes("failed"));
    assert_eq!(sum("BatchSize"), outcomes("ok") + outcomes("failed") + outcomes("skipped"));
    assert!(metrics.iter().all(|m| m["function_request_id"].is_string() && m["BatchDuration"].is_number()));
    let stored: f64 = metrics
        .iter()
        .filter_map(|m| m.get("OrdersStored"))
        .map(|v| {
            v.as_f64().or_else(|| Some(v.as_array()?.iter().filter_map(Value::as_f64).sum())).unwrap_or(0.0)
        })
        .sum();
    assert_eq!(stored, outcomes("ok"), "the handler's metric in the invocations' documents");
    // The runner reads the same from the function's EMF lines.
    assert_handler_metrics(&lines);
}
