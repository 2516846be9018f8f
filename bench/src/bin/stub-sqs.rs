//! A stub SQS endpoint for the consumer-bound benchmark: one queue, canned answers in SQS's JSON
//! protocol, fast enough that the consumer, not the endpoint, is what a drain measures.
//!
//! `stub-sqs` listens on 127.0.0.1 (a free port, printed as its first line) and hands out
//! nothing until told how many messages to hand out:
//!
//! - `POST /control/start?messages=N`: start a round of N messages (counters reset);
//! - `GET /control/stats`: `{"receives", "handed_out", "deleted", "seconds"}`, where `seconds`
//!   runs from the first message handed out to the N-th deleted (or to now).
//!
//! It answers ReceiveMessage (up to MaxNumberOfMessages of the round's messages, with their
//! system attributes when asked, MD5OfBody included), DeleteMessage(Batch),
//! ChangeMessageVisibility(Batch), GetQueueUrl and GetQueueAttributes. A message handed out is
//! never handed out again: a delete is only counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use md5::{Digest, Md5};
use serde_json::{Value, json};

#[derive(Default)]
struct Round {
    messages: u64,
    first_handed_out: Option<Instant>,
    all_deleted: Option<Instant>,
}

#[derive(Default)]
struct Stub {
    url: String,
    round: Mutex<Round>,
    receives: AtomicU64,
    handed_out: AtomicU64,
    deleted: AtomicU64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let stub = Arc::new(Stub { url: format!("http://{address}/000000000000/stub"), ..Stub::default() });
    println!("listening http://{address}");
    let app = Router::new()
        .route("/control/start", post(start))
        .route("/control/stats", get(stats))
        .fallback(post(sqs))
        .with_state(stub);
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn start(State(stub): State<Arc<Stub>>, Query(query): Query<HashMap<String, u64>>) -> &'static str {
    let mut round = stub.round.lock().unwrap_or_else(PoisonError::into_inner);
    *round = Round { messages: query.get("messages").copied().unwrap_or(0), ..Round::default() };
    for counter in [&stub.receives, &stub.handed_out, &stub.deleted] {
        counter.store(0, Ordering::SeqCst);
    }
    "started\n"
}

async fn stats(State(stub): State<Arc<Stub>>) -> String {
    let round = stub.round.lock().unwrap_or_else(PoisonError::into_inner);
    let seconds = round.first_handed_out.map_or(0.0, |first| {
        round.all_deleted.unwrap_or_else(Instant::now).duration_since(first).as_secs_f64()
    });
    json!({
        "receives": stub.receives.load(Ordering::SeqCst),
        "handed_out": stub.handed_out.load(Ordering::SeqCst),
        "deleted": stub.deleted.load(Ordering::SeqCst),
        "seconds": seconds,
    })
    .to_string()
}

/// The SQS JSON protocol: the operation is named by `X-Amz-Target: AmazonSQS.<Operation>`.
async fn sqs(State(stub): State<Arc<Stub>>, headers: HeaderMap, body: Bytes) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("AmazonSQS."))
        .unwrap_or_default()
        .to_owned();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = match operation.as_str() {
        "ReceiveMessage" => receive(&stub, &request).await,
        "DeleteMessageBatch" => {
            let entries = request["Entries"].as_array().cloned().unwrap_or_default();
            stub.deleted_some(entries.len() as u64);
            json!({"Successful": entries.iter().map(|e| json!({"Id": e["Id"]})).collect::<Vec<_>>(), "Failed": []})
        }
        "DeleteMessage" => {
            stub.deleted_some(1);
            json!({})
        }
        "ChangeMessageVisibilityBatch" => {
            let entries = request["Entries"].as_array().cloned().unwrap_or_default();
            json!({"Successful": entries.iter().map(|e| json!({"Id": e["Id"]})).collect::<Vec<_>>(), "Failed": []})
        }
        "ChangeMessageVisibility" => json!({}),
        "GetQueueUrl" => json!({"QueueUrl": stub.url}),
        "GetQueueAttributes" => {
            let (messages, handed_out, deleted) = stub.counts();
            json!({"Attributes": {
                "QueueArn": "arn:aws:sqs:us-east-1:000000000000:stub",
                "VisibilityTimeout": "30",
                "ApproximateNumberOfMessages": messages.saturating_sub(handed_out).to_string(),
                "ApproximateNumberOfMessagesNotVisible": handed_out.saturating_sub(deleted).to_string(),
            }})
        }
        other => {
            let error = json!({"__type": "com.amazonaws.sqs#InvalidAction", "message": format!("not stubbed: {other}")});
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
                error.to_string(),
            )
                .into_response();
        }
    };
    ([(header::CONTENT_TYPE, "application/x-amz-json-1.0")], answer.to_string()).into_response()
}

async fn receive(stub: &Stub, request: &Value) -> Value {
    stub.receives.fetch_add(1, Ordering::Relaxed);
    let want = request["MaxNumberOfMessages"].as_u64().unwrap_or(1).clamp(1, 10);
    let (first, count) = stub.take(want);
    if count == 0 {
        // An empty long poll: wait a little, as SQS would, without holding a drain back.
        let wait = request["WaitTimeSeconds"].as_u64().unwrap_or(0);
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        return json!({});
    }
    let with_attributes = ["AttributeNames", "MessageSystemAttributeNames"]
        .iter()
        .any(|name| request[*name].as_array().is_some_and(|a| !a.is_empty()));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()).to_string();
    let messages: Vec<Value> = (first..first + count)
        .map(|n| {
            let body = json!({"id": format!("msg-{n:08}"), "kind": "bench", "payload": {"n": n, "note": "x".repeat(44)}})
                .to_string();
            let md5 = Md5::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>();
            let mut message = json!({
                "MessageId": format!("00000000-0000-4000-8000-{n:012}"),
                "ReceiptHandle": format!("stub-receipt-{n}"),
                "MD5OfBody": md5,
                "Body": body,
            });
            if with_attributes {
                message["Attributes"] = json!({
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "SentTimestamp": now,
                    "ApproximateReceiveCount": "1",
                    "ApproximateFirstReceiveTimestamp": now,
                });
            }
            message
        })
        .collect();
    json!({"Messages": messages})
}

impl Stub {
    /// Takes up to `want` of the round's messages: (the first one's number, how many).
    fn take(&self, want: u64) -> (u64, u64) {
        let mut round = self.round.lock().unwrap_or_else(PoisonError::into_inner);
        let handed_out = self.handed_out.load(Ordering::SeqCst);
        let count = want.min(round.messages.saturating_sub(handed_out));
        if count > 0 {
            round.first_handed_out.get_or_insert_with(Instant::now);
            self.handed_out.fetch_add(count, Ordering::SeqCst);
        }
        (handed_out, count)
    }

    fn deleted_some(&self, n: u64) {
        let deleted = self.deleted.fetch_add(n, Ordering::SeqCst) + n;
        let mut round = self.round.lock().unwrap_or_else(PoisonError::into_inner);
        if round.messages > 0 && deleted >= round.messages {
            round.all_deleted.get_or_insert_with(Instant::now);
        }
    }

    fn counts(&self) -> (u64, u64, u64) {
        let messages = self.round.lock().unwrap_or_else(PoisonError::into_inner).messages;
        (messages, self.handed_out.load(Ordering::SeqCst), self.deleted.load(Ordering::SeqCst))
    }
}
