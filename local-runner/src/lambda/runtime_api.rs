//! The Lambda Runtime API, served to one execution environment (one bootstrap process).
//!
//! The same protocol AWS serves a custom runtime: the runtime long-polls `invocation/next` for an
//! event, then posts the result to `invocation/{id}/response` or `invocation/{id}/error`; a
//! runtime that cannot start posts to `init/error`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

/// Lambda's limit on a synchronous response payload, plus room for framing.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024 + 64 * 1024;

/// An invocation waiting for the runtime to take it.
#[derive(Debug)]
pub(crate) struct Invocation {
    pub(crate) request_id: String,
    pub(crate) event: Bytes,
    pub(crate) deadline_ms: u64,
}

/// What the runtime answered.
#[derive(Debug)]
pub(crate) enum Reply {
    /// `invocation/{id}/response`.
    Response(Bytes),
    /// `invocation/{id}/error`: the function failed.
    Error(FunctionError),
}

/// The most characters of a function's error message kept: the rest of a runaway message is
/// cut, as Lambda cuts the logs it shows.
const MAX_ERROR_CHARS: usize = 4_096;

/// What a function posted to `invocation/{id}/error`, read as Lambda reads it: the
/// `{"errorType", "errorMessage"}` object every runtime sends; the type from the
/// `Lambda-Runtime-Function-Error-Type` header when the body has none; a body that is not that
/// object is the message as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct FunctionError {
    /// `errorType`, e.g. `Runtime.ExitError` or the handler's error type; `Unknown` when the
    /// function named none.
    pub error_type: String,
    /// `errorMessage`, or the whole body when it is not JSON.
    pub message: String,
}

impl FunctionError {
    /// Reads a posted error from its header and body.
    #[must_use]
    pub fn read(header: Option<&str>, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Posted {
            #[serde(rename = "errorType")]
            error_type: Option<String>,
            #[serde(rename = "errorMessage")]
            error_message: Option<String>,
        }
        let posted = serde_json::from_slice::<Posted>(body).ok();
        let (error_type, message) = match posted {
            Some(posted) => (posted.error_type, posted.error_message.unwrap_or_default()),
            None => (None, String::from_utf8_lossy(body).into_owned()),
        };
        let error_type =
            error_type.or_else(|| header.map(str::to_owned)).unwrap_or_else(|| "Unknown".to_owned());
        let message = match message.char_indices().nth(MAX_ERROR_CHARS) {
            Some((cut, _)) => format!("{}…", &message[..cut]),
            None => message,
        };
        Self { error_type, message }
    }
}

/// State shared between the server and the environment that owns it.
pub(crate) struct ApiState {
    pub(crate) function_arn: String,
    /// The queue of invocations for this environment: one at a time.
    pub(crate) next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    /// Invocations handed out and not yet answered.
    pub(crate) pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    /// What the runtime posted to `init/error`, if it did.
    pub(crate) init_error: Mutex<Option<String>>,
    /// Notified each time the runtime asks for an invocation: the first time, its init is done.
    pub(crate) asked: tokio::sync::Notify,
}

impl ApiState {
    pub(crate) fn take_pending(&self, id: &str) -> Option<oneshot::Sender<Reply>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(id)
    }
}

/// The routes of the Runtime API (version 2018-06-01).
pub(crate) fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD))
        .with_state(state)
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    state.asked.notify_one();
    let invocation = state.next.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return (StatusCode::GONE, "the environment is shutting down").into_response();
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json");
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set("lambda-runtime-deadline-ms", &invocation.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &state.function_arn);
    set("lambda-runtime-trace-id", &format!("Root=1-00000000-{};Sampled=0", invocation.request_id));
    (StatusCode::OK, headers, invocation.event).into_response()
}

async fn response(State(state): State<Arc<ApiState>>, Path(id): Path<String>, body: Bytes) -> Response {
    answer(&state, &id, Reply::Response(body))
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok());
    answer(&state, &id, Reply::Error(FunctionError::read(header, &body)))
}

async fn init_error(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Response {
    // Read as an invocation's error is: `errorType: errorMessage`, as Lambda shows an init error.
    let header = headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok());
    let text = FunctionError::read(header, &body).to_string();
    tracing::error!(error = %text, "the function failed to initialise");
    *state.init_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
    accepted()
}

fn answer(state: &ApiState, id: &str, reply: Reply) -> Response {
    match state.take_pending(id) {
        Some(sender) => {
            // The invoker may have given up (timeout); then nobody listens and that is fine.
            let _ = sender.send(reply);
            accepted()
        }
        None => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            r#"{"errorMessage":"unknown or already answered request id","errorType":"InvalidRequestID"}"#,
        )
            .into_response(),
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, [("content-type", "application/json")], r#"{"status":"OK"}"#).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posted_error_is_read_as_lambda_reads_it() {
        let posted = br#"{"errorType":"OrderRejected","errorMessage":"no stock"}"#;
        let error = FunctionError::read(Some("Unhandled"), posted);
        assert_eq!((error.error_type.as_str(), error.message.as_str()), ("OrderRejected", "no stock"));
        let untyped = FunctionError::read(Some("Runtime.ExitError"), br#"{"errorMessage":"exit 3"}"#);
        assert_eq!((untyped.error_type.as_str(), untyped.message.as_str()), ("Runtime.ExitError", "exit 3"));
        let text = FunctionError::read(None, b"segfault\n");
        assert_eq!((text.error_type.as_str(), text.message.as_str()), ("Unknown", "segfault\n"));
    }

    #[test]
    fn a_runaway_error_message_is_cut() {
        let long = format!(r#"{{"errorType":"E","errorMessage":"{}"}}"#, "é".repeat(MAX_ERROR_CHARS * 2));
        let error = FunctionError::read(None, long.as_bytes());
        assert_eq!(error.message.chars().count(), MAX_ERROR_CHARS + 1, "the limit and an ellipsis");
    }
}
