//! The Lambda side: an SQS event in, a partial batch response out, and the function's `main`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

use std::io::Write as _;
use std::time::Instant;

use crate::batch::{Records, Run, process_batch};
use crate::error::{BatchError, BoxError};
use crate::handler::Handler;
use crate::options::Options;
use crate::requeue::{Requeued, Requeuer};
use crate::runtime::emf::Emf;
use crate::runtime::telemetry;
use crate::runtime::telemetry::function;
use crate::trace::TraceContext;

/// Handles one Lambda invocation from an SQS event source mapping.
///
/// Returns the partial batch response that `ReportBatchItemFailures` expects: Lambda deletes
/// every message not listed and leaves the listed ones on the queue. Messages still unstarted
/// when the deadline reserve is reached are listed, rather than letting the invocation time out.
///
/// # Errors
/// [`BatchError::UnidentifiedRecord`] when a record that failed has no `messageId`, and
/// [`BatchError::AllFailed`] when every message failed and `options` ask for that to fail the
/// invocation: the whole batch is redelivered.
pub async fn handle_event<H: Handler>(
    handler: &Arc<H>,
    options: &Options,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, BatchError> {
    invoke(handler, options, event, None, None).await
}

/// [`handle_event`], then the failed messages' visibility when `requeuer` is given, and the
/// invocation's metrics line when `emf` is.
async fn invoke<H: Handler>(
    handler: &Arc<H>,
    options: &Options,
    event: LambdaEvent<SqsEvent>,
    emf: Option<&Emf>,
    requeuer: Option<&Requeuer>,
) -> Result<SqsBatchResponse, BatchError> {
    let LambdaEvent { payload, context } = event;
    let batch = Records::new(payload.records);
    let records = Arc::clone(batch.records());
    // The invocation's own trace, from its context (one process serves many invocations, so
    // `_X_AMZN_TRACE_ID` is not read).
    let invocation_trace = context.xray_trace_id.as_deref().and_then(TraceContext::from_xray);
    let mut run = Run::new(options).request_id(&context.request_id).invocation_trace(invocation_trace);
    // A deadline of 0 means none was given (a hand-made context): no limit.
    if context.deadline > 0 {
        run = run.deadline(UNIX_EPOCH + Duration::from_millis(context.deadline));
    }
    let started = Instant::now();
    let sampled = function::invocation_started();
    let report = process_batch(handler, batch, &run).await;
    let counts = report.counts();
    let requeued = match requeuer {
        // Inside what is left of the reserve, with a little kept for the response itself.
        Some(requeuer) => requeuer.apply(&records, &report, options, time_left(run.deadline)).await,
        None => Requeued::default(),
    };
    if let Some(emf) = emf {
        // Its own lines on stdout, where CloudWatch Logs finds them; nowhere to report a failed
        // write. Before the `batch done` line, so a reader of the log (`local-runner --lambda`)
        // has the invocation's metrics once it has that line.
        let invocation = crate::runtime::emf::Invocation {
            records: &records,
            counts,
            took: started.elapsed(),
            request_id: &context.request_id,
            cold_start: telemetry::function::cold_start(),
            metrics: &report.metrics,
        };
        let mut out = std::io::stdout().lock();
        for line in emf.lines(&invocation) {
            let _ = writeln!(out, "{line}");
        }
    }
    tracing::info!(
        request_id = %context.request_id,
        records = records.len(),
        ok = counts.succeeded,
        duplicate = counts.duplicate,
        ignored = counts.ignored,
        failed = counts.failed,
        skipped = counts.not_started,
        requeued = requeued.changed,
        requeue_failed = requeued.failed,
        "batch done"
    );
    function::invocation_ended(sampled);
    #[cfg(feature = "opentelemetry")]
    {
        // Before Lambda may freeze the environment: the spans of this invocation go out now.
        let _ = tokio::task::spawn_blocking(crate::otel::flush).await;
    }
    report.respond(&records, options)
}

/// Time left before `deadline`, less a margin for the response; unlimited (the caller's own
/// cap) without one.
fn time_left(deadline: Option<std::time::SystemTime>) -> Duration {
    const MARGIN: Duration = Duration::from_millis(100);
    deadline.map_or(Duration::MAX, |deadline| {
        deadline.duration_since(std::time::SystemTime::now()).unwrap_or_default().saturating_sub(MARGIN)
    })
}

/// The function as a tower [`Service`](lambda_runtime::tower::Service) of invocations, for a
/// `main` of one's own: `lambda_runtime::Runtime::new(service(handler, options)).layer(..)`
/// adds the runtime's own layers. [`run`] is this service run with the defaults.
///
/// Before each response it sets the visibility of the messages that did not succeed, by
/// `options.retry` ([`crate::runtime::retry`]): failures come back at their back-off, messages never
/// started at once. The function's role needs `sqs:ChangeMessageVisibility` (SAM's
/// `SQSPollerPolicy` grants it) and, for permanent failures, `sqs:GetQueueAttributes`.
/// `RETRY_BACKOFF_SECS=0` turns this off: no SQS call is made, and everything that did not
/// succeed comes back after the queue's visibility timeout.
pub fn service<H: Handler>(
    handler: H,
    options: Options,
) -> impl lambda_runtime::tower::Service<
    LambdaEvent<SqsEvent>,
    Response = SqsBatchResponse,
    Error = BatchError,
    Future = impl Future<Output = Result<SqsBatchResponse, BatchError>> + Send,
> + Clone
+ Send {
    service_with(handler, options, None)
}

/// [`service`] that prints each invocation's metrics as an Embedded Metric Format line
/// ([`Emf::from_vars`] reads Powertools' variables).
pub fn service_with<H: Handler>(
    handler: H,
    options: Options,
    emf: Option<Emf>,
) -> impl lambda_runtime::tower::Service<
    LambdaEvent<SqsEvent>,
    Response = SqsBatchResponse,
    Error = BatchError,
    Future = impl Future<Output = Result<SqsBatchResponse, BatchError>> + Send,
> + Clone
+ Send {
    let handler = Arc::new(handler);
    let emf = Arc::new(emf);
    let requeuer = Arc::new(Requeuer::default());
    service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (handler, emf, requeuer) = (Arc::clone(&handler), Arc::clone(&emf), Arc::clone(&requeuer));
        async move { invoke(&handler, &options, event, emf.as_ref().as_ref(), Some(&requeuer)).await }
    })
}

/// The whole `main` of a Lambda function behind an SQS event source mapping: builds the handler
/// once with `build` (SDK clients, pools), then answers invocations until Lambda stops the
/// process.
///
/// As the process's entry point it reads Lambda's environment: the advanced logging controls
/// (`AWS_LAMBDA_LOG_FORMAT`: `JSON`, the default here, or `Text`; the level from
/// `AWS_LAMBDA_LOG_LEVEL`, else `POWERTOOLS_LOG_LEVEL`, else `RUST_LOG`), Powertools' debug
/// sampling (`POWERTOOLS_LOGGER_SAMPLE_RATE`, [`telemetry::function`]) and the function's fields
/// on every JSON line (`cold_start`, `function_name`, `function_memory_size`,
/// `function_version`), Powertools' metrics variables (one Embedded Metric Format line per
/// invocation, [`Emf`]) and the [`Options`] variables (`HANDLER_CONCURRENCY`,
/// `DEADLINE_RESERVE_MS`, `FAIL_ON_FULL_BATCH_FAILURE`, `FIFO_ON_FAILURE`, the `RETRY_BACKOFF_*`
/// back-off, applied as [`service`] says). Every line logged while a message is
/// handled carries its correlation fields, the request id among them; a panic is logged as one
/// event. On glibc it holds malloc's mmap threshold at its default, so that the memory of a large
/// event is given back after its invocation (unless `MALLOC_MMAP_THRESHOLD_` is set).
///
/// ```no_run
/// # async fn build() -> Result<sqs_batch::HandlerFn<String, fn(String, sqs_batch::Context) -> std::future::Ready<Result<(), sqs_batch::Error>>>, sqs_batch::BoxError> { unimplemented!() }
/// #[tokio::main]
/// async fn main() -> Result<(), sqs_batch::BoxError> {
///     sqs_batch::lambda::run(build).await
/// }
/// ```
///
/// # Errors
/// When an option variable is unusable, when `build` fails (Lambda reports it as an init
/// failure), or when the Runtime API cannot be reached.
pub async fn run<B, Fut, H>(build: B) -> Result<(), BoxError>
where
    B: FnOnce() -> Fut,
    Fut: Future<Output = Result<H, BoxError>>,
    H: Handler,
{
    // The log level, first found: Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`),
    // Powertools' `POWERTOOLS_LOG_LEVEL`, then `RUST_LOG` (a whole filter directive).
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    let powertools = var(function::LOG_LEVEL_VAR).map(|level| function::powertools_level(&level));
    let function = function::Function::from_vars(var);
    let format = telemetry::lambda_log_format(var("AWS_LAMBDA_LOG_FORMAT").as_deref());
    if let Ok(function) = &function {
        function::install(function.clone());
    }
    let filter = match var("AWS_LAMBDA_LOG_LEVEL") {
        Some(level) => Some(telemetry::lambda_log_level(&level)),
        None => {
            powertools.as_ref().and_then(|level| level.as_ref().ok().cloned()).or_else(|| var("RUST_LOG"))
        }
    };
    telemetry::init(format, filter.as_deref());
    telemetry::log_panics();
    hold_mmap_threshold();
    let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let emf = Emf::from_vars(|name| std::env::var(name).ok(), &function_name);
    let logging = match (function, powertools) {
        (Err(error), _) | (_, Some(Err(error))) => Err(error),
        _ => Ok(()),
    };
    let options = logging.and_then(|()| {
        Options::from_vars(|name| std::env::var(name).ok()).map_err(|error| error.to_string())
    });
    let options = match options {
        Ok(options) => options,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            report_init_error("Runtime.InvalidOptions", &error).await;
            return Err(error.into());
        }
    };
    let handler = match build().await {
        Ok(handler) => handler,
        Err(error) => {
            tracing::error!(error = %error, "the handler could not be built");
            report_init_error("Runtime.HandlerBuildFailed", &error.to_string()).await;
            return Err(error);
        }
    };
    lambda_runtime::run(service_with(handler, options, emf)).await
}

/// Keeps glibc's malloc from holding on to the memory of large events.
///
/// glibc raises its mmap threshold to the size of each large block freed (up to 32 MB), and its
/// trim threshold to twice that, so after one large invocation the next event's text (up to
/// 6 MB) and its records' array come from the heap instead of mappings of their own, and the
/// heap keeps that memory, fragmented around small blocks, after the invocation. With Lambda's
/// largest batch (8,500 records of 100-byte bodies) the process's peak over five invocations was
/// 43 MB, and 31 MB with the threshold held (BENCHMARKS.md, the guards). Holding it at glibc's
/// default (128 KiB) keeps both: a large block the heap has no free room for gets a mapping of
/// its own, given back when it is freed, and free memory at the heap's top is given back; small
/// batches never reach it. A function that sets `MALLOC_MMAP_THRESHOLD_` (which glibc reads at
/// start) keeps its own; other allocators ignore it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn hold_mmap_threshold() {
    const GLIBC_DEFAULT: libc::c_int = 128 * 1024;
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt sets one parameter of glibc's allocator under the allocator's own lock;
        // any thread may call it at any time, and a refused value changes nothing.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, GLIBC_DEFAULT) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn hold_mmap_threshold() {}

/// Tells Lambda why the function cannot start (`/runtime/init/error`), as AWS's runtimes do, so
/// that the init failure names its cause; the process then exits. Lambda's event source mapping
/// backs off from a function that fails its init, and no message is received for it. Best
/// effort: the process exits with an error either way.
async fn report_init_error(error_type: &str, message: &str) {
    use lambda_runtime_api_client::{Client, body::Body, build_request};
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    let request = build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", error_type)
        .body(Body::from(body));
    let (Ok(client), Ok(request)) = (Client::builder().build(), request) else { return };
    if let Err(error) = client.call(request).await {
        tracing::warn!(%error, "cannot report the init error to the Runtime API");
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::time::SystemTime;

    use aws_lambda_events::sqs::SqsMessage;
    use lambda_runtime::Context as LambdaContext;

    use super::*;
    use crate::context::Context;
    use crate::error::Error;

    /// Sleeps for the number of milliseconds in the body; `fail` fails.
    struct Sleepy;

    impl Handler for Sleepy {
        type Message = String;
        fn parse(&self, body: String, _context: &Context) -> Result<String, Error> {
            Ok(body)
        }
        async fn handle(&self, body: String, context: Context) -> Result<(), Error> {
            assert!(context.deadline().is_some(), "the invocation's deadline reaches the handler");
            if body == "fail" {
                return Err(Error::permanent("asked to fail"));
            }
            tokio::time::sleep(Duration::from_millis(body.parse().unwrap_or(0))).await;
            Ok(())
        }
    }

    fn event(bodies: &[&str], deadline_in: Duration) -> LambdaEvent<SqsEvent> {
        let mut payload = SqsEvent::default();
        for (i, body) in bodies.iter().enumerate() {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = Some((*body).to_owned());
            payload.records.push(record);
        }
        let mut context = LambdaContext::default();
        let deadline = SystemTime::now() + deadline_in;
        context.deadline = u64::try_from(deadline.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
        LambdaEvent::new(payload, context)
    }

    fn one_at_a_time(reserve_ms: u64) -> Options {
        Options {
            concurrency: NonZeroUsize::MIN,
            deadline_reserve: Duration::from_millis(reserve_ms),
            ..Options::default()
        }
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn messages_not_started_before_the_reserve_are_reported_failed() {
        // One at a time, 150 ms each; the deadline is 10 s away with a 9.8 s reserve: m0 starts
        // at 0, m1 at 150 ms (before the stop at ~200 ms) and finishes, m2 would start at 300 ms.
        let event = event(&["150", "150", "150"], Duration::from_secs(10));
        let response = handle_event(&Arc::new(Sleepy), &one_at_a_time(9_800), event).await.unwrap();
        assert_eq!(failed(&response), ["m2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_that_fits_before_the_reserve_succeeds_whole() {
        let event = event(&["10", "10", "10"], Duration::from_secs(10));
        let response = handle_event(&Arc::new(Sleepy), &one_at_a_time(1_000), event).await.unwrap();
        assert!(failed(&response).is_empty());
    }

    #[tokio::test]
    async fn a_full_batch_failure_fails_the_invocation_only_when_asked_to() {
        let options = Options { fail_on_full_batch_failure: true, ..Options::default() };
        let all_failed =
            handle_event(&Arc::new(Sleepy), &options, event(&["fail", "fail"], Duration::from_secs(10)))
                .await;
        assert!(matches!(all_failed, Err(BatchError::AllFailed { failed: 2, not_started: 0 })));
        let one_ok =
            handle_event(&Arc::new(Sleepy), &options, event(&["fail", "0"], Duration::from_secs(10))).await;
        assert_eq!(failed(&one_ok.unwrap()), ["m0"]);
        let not_asked =
            handle_event(&Arc::new(Sleepy), &Options::default(), event(&["fail"], Duration::from_secs(10)))
                .await;
        assert_eq!(failed(&not_asked.unwrap()), ["m0"]);
    }

    #[tokio::test]
    async fn a_full_batch_failure_counts_the_failures_and_the_messages_held_back_apart() {
        let options = Options { fail_on_full_batch_failure: true, ..Options::default() };
        let mut fifo = event(&["fail", "0", "0"], Duration::from_secs(10));
        for record in &mut fifo.payload.records {
            record.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:q.fifo".into());
            record.attributes.insert("MessageGroupId".into(), "g".into());
        }
        let error = handle_event(&Arc::new(Sleepy), &options, fifo).await.unwrap_err();
        assert!(matches!(error, BatchError::AllFailed { failed: 1, not_started: 2 }), "{error:?}");
        assert_eq!(error.to_string(), "no message of the batch succeeded: 1 failed, 2 not started");
    }

    /// Whether glibc gave `block` a mapping of its own: such a block is whole pages less glibc's
    /// 16-byte header, where a block from the heap has at most 24 bytes beyond what was asked.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    fn mapped_on_its_own(block: &[u8]) -> bool {
        // SAFETY: `block` is a live allocation of the system allocator (glibc's malloc), which
        // the test binary uses; malloc_usable_size only reads its size.
        let usable = unsafe { libc::malloc_usable_size(block.as_ptr().cast_mut().cast()) };
        usable > block.len() + 64
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_large_block_gets_a_mapping_of_its_own_after_a_larger_one_was_freed() {
        const NAME: &str =
            "lambda::tests::a_large_block_gets_a_mapping_of_its_own_after_a_larger_one_was_freed";
        // glibc maps a block of its own only when the heap has no room for it, and the other
        // tests of this process leave room: the test runs again alone, in a process of its own.
        if std::env::var_os("SQS_BATCH_TEST_ALONE").is_none() {
            let exe = std::env::current_exe().expect("the test binary has a path");
            let alone = std::process::Command::new(exe)
                .args(["--exact", NAME, "--test-threads=1"])
                .env("SQS_BATCH_TEST_ALONE", "1")
                .output()
                .expect("the test binary runs again");
            let output = String::from_utf8_lossy(&alone.stdout);
            // A name that matched nothing would pass with no test run.
            assert!(alone.status.success() && output.contains("1 passed"), "the test alone: {output}");
            return;
        }
        hold_mmap_threshold();
        // Without the held threshold, freeing this block raises glibc's threshold to 2 MB...
        drop(std::hint::black_box(vec![1_u8; 2 << 20]));
        // ...and this one would come from the heap.
        let block = std::hint::black_box(vec![1_u8; 512 << 10]);
        assert!(mapped_on_its_own(&block), "a 512 KiB block has a mapping of its own");
    }
}
