//! A stand-in for LocalStack's Lambda init (its fork of AWS's Runtime Interface Emulator), for
//! machines that cannot download it. LocalStack starts it as `/var/rapid/init` in each function
//! container; it:
//! - runs the function's `bootstrap` with the Lambda Runtime API on 127.0.0.1:9001;
//! - takes invocations from LocalStack (`POST /invoke` on port 9563, on the container's own
//!   address) and hands them to the bootstrap's `invocation/next`;
//! - posts back to LocalStack's executor endpoint (`LOCALSTACK_RUNTIME_ENDPOINT`): `ready` once the
//!   bootstrap asks for its first invocation, `error` if it fails before, and each invocation's
//!   `logs` and `response` or `error`;
//! - fails an invocation that runs past `AWS_LAMBDA_FUNCTION_TIMEOUT` and starts the bootstrap
//!   again, as Lambda does.
//!
//! Only the deploy check (`scripts/deploy-localstack.sh`) uses it; on a machine that can reach the
//! internet, LocalStack fetches its own init and this is not needed.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::process::Command;
use tokio::sync::{Notify, mpsc};

/// Where the bootstrap finds the Runtime API, inside the container.
const RUNTIME_API: &str = "127.0.0.1:9001";
/// Where LocalStack sends invocations (its `INVOCATION_PORT`).
const INVOKE_PORT: u16 = 9563;
/// Where a `provided` runtime's bootstrap may be, in the order Lambda looks.
const BOOTSTRAPS: [&str; 3] = ["/var/task/bootstrap", "/var/runtime/bootstrap", "/opt/bootstrap"];

/// An invocation as LocalStack sends it.
#[derive(Debug, Deserialize)]
struct Invocation {
    #[serde(rename = "invoke-id")]
    id: String,
    #[serde(rename = "invoked-function-arn", default)]
    arn: String,
    payload: String,
    #[serde(rename = "trace-id", default)]
    trace: String,
}

struct Init {
    /// LocalStack's executor endpoint for this environment.
    endpoint: String,
    runtime_id: String,
    timeout: Duration,
    queue: mpsc::Sender<Invocation>,
    waiting: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    /// The invocation the bootstrap has taken and not answered.
    current: Mutex<Option<String>>,
    ready: AtomicBool,
    /// Tells the supervisor to kill the bootstrap (a timeout).
    kill: Notify,
    /// What the bootstrap wrote since the last answer: the invocation's logs for LocalStack.
    logs: Mutex<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Init {
    async fn post(&self, path: &str, body: Bytes) {
        let request = Request::post(format!("{}{path}", self.endpoint))
            .header("content-type", "application/json")
            .body(Full::new(body));
        let Ok(request) = request else { return };
        if let Err(err) = self.client.request(request).await {
            eprintln!("localstack-init: cannot reach LocalStack at {}{path}: {err}", self.endpoint);
        }
    }

    /// Tells LocalStack the environment is up, once.
    async fn ready(&self) {
        if !self.ready.swap(true, Ordering::SeqCst) {
            self.post(&format!("/status/{}/ready", self.runtime_id), Bytes::new()).await;
        }
    }

    /// Tells LocalStack the environment could not start.
    async fn failed_to_start(&self, body: Bytes) {
        self.post(&format!("/status/{}/error", self.runtime_id), body).await;
    }

    /// Hands LocalStack the answer to invocation `id` (`response` or `error`); false if that is
    /// not the invocation in flight.
    async fn answer(&self, id: &str, kind: &str, body: Bytes) -> bool {
        {
            let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            if current.as_deref() != Some(id) {
                return false;
            }
            *current = None;
        }
        // Give the bootstrap's last lines a moment to arrive through its pipe.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let logs = std::mem::take(&mut *self.logs.lock().unwrap_or_else(PoisonError::into_inner));
        let logs = serde_json::json!({ "logs": logs }).to_string();
        self.post(&format!("/invocations/{id}/logs"), Bytes::from(logs)).await;
        self.post(&format!("/invocations/{id}/{kind}"), body).await;
        true
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(endpoint), Some(runtime_id)) =
        (var("LOCALSTACK_RUNTIME_ENDPOINT"), var("LOCALSTACK_RUNTIME_ID"))
    else {
        eprintln!(
            "localstack-init: LOCALSTACK_RUNTIME_ENDPOINT and LOCALSTACK_RUNTIME_ID must be set (LocalStack sets them)"
        );
        return ExitCode::from(2);
    };
    let timeout =
        Duration::from_secs(var("AWS_LAMBDA_FUNCTION_TIMEOUT").and_then(|t| t.parse().ok()).unwrap_or(3));
    let (queue, waiting) = mpsc::channel(1);
    let client = Client::builder(TokioExecutor::new()).build_http();
    let init = Arc::new(Init {
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        runtime_id,
        timeout,
        queue,
        waiting: tokio::sync::Mutex::new(waiting),
        current: Mutex::new(None),
        ready: AtomicBool::new(false),
        kill: Notify::new(),
        logs: Mutex::new(String::new()),
        client,
    });

    // LocalStack reaches the container at its address on the network they share: listen there.
    let own = own_address(&init.endpoint).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let (runtime_api, invoke) = match (
        tokio::net::TcpListener::bind(RUNTIME_API).await,
        tokio::net::TcpListener::bind(SocketAddr::new(own, INVOKE_PORT)).await,
    ) {
        (Ok(api), Ok(invoke)) => (api, invoke),
        (Err(err), _) | (_, Err(err)) => {
            init.failed_to_start(Bytes::from(format!(r#"{{"errorMessage":"cannot listen: {err}"}}"#))).await;
            return ExitCode::FAILURE;
        }
    };
    let api_routes = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(Arc::clone(&init));
    let invoke_routes = Router::new().route("/invoke", post(invoked)).with_state(Arc::clone(&init));
    tokio::spawn(async move { axum::serve(runtime_api, api_routes).await });
    tokio::spawn(async move { axum::serve(invoke, invoke_routes).await });

    let Some(bootstrap) = BOOTSTRAPS.iter().find(|p| std::path::Path::new(p).is_file()) else {
        init.failed_to_start(Bytes::from_static(br#"{"errorMessage":"no bootstrap in /var/task, /var/runtime or /opt","errorType":"Runtime.InvalidEntrypoint"}"#)).await;
        return ExitCode::FAILURE;
    };
    supervise(&init, bootstrap).await
}

/// Runs the bootstrap, and again after it exits or is killed for a timeout. A bootstrap that
/// exits before it asked for an invocation failed to start: LocalStack is told, and this ends.
async fn supervise(init: &Arc<Init>, bootstrap: &str) -> ExitCode {
    loop {
        let child = Command::new(bootstrap)
            .env("AWS_LAMBDA_RUNTIME_API", RUNTIME_API)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(err) => {
                init.failed_to_start(Bytes::from(format!(r#"{{"errorMessage":"cannot start {bootstrap}: {err}","errorType":"Runtime.InvalidEntrypoint"}}"#))).await;
                return ExitCode::FAILURE;
            }
        };
        // The bootstrap's output goes to the container's log, and to the invocation's logs.
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward(out, Arc::clone(init)));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward(err, Arc::clone(init)));
        }
        let status = tokio::select! {
            status = child.wait() => status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            () = init.kill.notified() => {
                let _ = child.kill().await;
                continue;
            }
        };
        if !init.ready.load(Ordering::SeqCst) {
            let body = format!(
                r#"{{"errorMessage":"the runtime exited before it took an invocation ({status})","errorType":"Runtime.ExitError"}}"#
            );
            init.failed_to_start(Bytes::from(body)).await;
            return ExitCode::FAILURE;
        }
        let current = init.current.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(id) = current {
            let body = format!(
                r#"{{"errorMessage":"the runtime exited ({status})","errorType":"Runtime.ExitError"}}"#
            );
            init.answer(&id, "error", Bytes::from(body)).await;
        }
    }
}

/// Copies the bootstrap's lines to this process's stdout and to the logs of the invocation
/// in flight.
async fn forward(pipe: impl tokio::io::AsyncRead + Unpin, init: Arc<Init>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{line}");
        let mut logs = init.logs.lock().unwrap_or_else(PoisonError::into_inner);
        logs.push_str(&line);
        logs.push('\n');
    }
}

/// The address this container uses to reach `endpoint`.
fn own_address(endpoint: &str) -> Option<IpAddr> {
    let authority = endpoint.split("://").nth(1)?.split('/').next()?;
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    let port_given = authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    let target = if port_given { authority.to_owned() } else { format!("{authority}:80") };
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// LocalStack's invocation: queued for the bootstrap's next `invocation/next`.
async fn invoked(State(init): State<Arc<Init>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Invocation>(&body) {
        Ok(invocation) => match init.queue.send(invocation).await {
            Ok(()) => StatusCode::OK.into_response(),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}

async fn next(State(init): State<Arc<Init>>) -> Response {
    init.ready().await;
    let invocation = init.waiting.lock().await.recv().await;
    let Some(invocation) = invocation else { return StatusCode::GONE.into_response() };
    *init.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(invocation.id.clone());
    let deadline = SystemTime::now() + init.timeout;
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json");
    set("lambda-runtime-aws-request-id", &invocation.id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &invocation.arn);
    set("lambda-runtime-trace-id", &invocation.trace);
    let watchdog = Arc::clone(&init);
    let id = invocation.id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(watchdog.timeout).await;
        let body = format!(
            r#"{{"errorMessage":"Task timed out after {:.2} seconds","errorType":"Sandbox.Timedout"}}"#,
            watchdog.timeout.as_secs_f64()
        );
        if watchdog.answer(&id, "error", Bytes::from(body)).await {
            watchdog.kill.notify_one();
        }
    });
    (StatusCode::OK, headers, invocation.payload).into_response()
}

async fn response(State(init): State<Arc<Init>>, Path(id): Path<String>, body: Bytes) -> Response {
    accepted(init.answer(&id, "response", body).await)
}

async fn error(State(init): State<Arc<Init>>, Path(id): Path<String>, body: Bytes) -> Response {
    accepted(init.answer(&id, "error", body).await)
}

async fn init_error(State(init): State<Arc<Init>>, body: Bytes) -> Response {
    init.failed_to_start(body).await;
    accepted(true)
}

fn accepted(known: bool) -> Response {
    if known {
        (StatusCode::ACCEPTED, [("content-type", "application/json")], r#"{"status":"OK"}"#).into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            r#"{"errorType":"InvalidRequestID"}"#,
        )
            .into_response()
    }
}
