//! A counting allocator for the heap tools: what a program holds, and the most it held, exact to
//! the byte, so two builds compare without noise. A binary installs it with
//! `#[global_allocator] static HEAP: bench::heap::Counting = bench::heap::Counting;`.

// A global allocator has no safe form: this one forwards every call to the system's, unchanged.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts the bytes and blocks the program holds, and the most bytes it held.
#[derive(Debug)]
pub struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = BYTES.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are only read.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size().cast_signed());
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size().cast_signed(), Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the allocator does it at worst: the new block beside the old one, then the
        // old one freed.
        grew(new_size.cast_signed());
        BYTES.fetch_sub(layout.size().cast_signed(), Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What the program holds now: bytes and blocks.
#[must_use]
pub fn held() -> (isize, isize) {
    (BYTES.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst))
}

/// The most bytes held since the last [`reset_peak`] (or the start).
#[must_use]
pub fn peak() -> isize {
    PEAK.load(Ordering::SeqCst)
}

/// Starts a new peak from what is held now.
pub fn reset_peak() {
    PEAK.store(BYTES.load(Ordering::SeqCst), Ordering::SeqCst);
}

/// `handler/`'s message type, as the heap tools hold it.
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // held, not read: what matters is what it keeps
pub struct Order {
    id: String,
    kind: String,
    #[serde(default)]
    payload: Option<serde_json::Value>,
    #[serde(default)]
    work_ms: Option<u64>,
}

/// A handler built like `handler/`'s around `work`: its message type, the `log_id`, a `from_fn`
/// layer, and the large-payload layer.
pub fn shaped_like_handler<F, Fut>(work: F) -> impl sqs_batch::Handler
where
    F: Fn(Order, sqs_batch::Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), sqs_batch::Error>> + Send,
{
    use sqs_batch::HandlerExt;
    sqs_batch::handler_fn(work)
        .log_id(|message: &Order| message.id.as_str())
        .layer(sqs_batch::from_fn(timed))
        .layer(sqs_batch::large_payload::LargePayloads::default())
}

/// `handler/`'s `from_fn` layer: the work timed.
async fn timed(
    message: Order,
    context: sqs_batch::Context,
    next: sqs_batch::Next<Order>,
) -> Result<(), sqs_batch::Error> {
    let started = std::time::Instant::now();
    let result = next.run(message, context).await;
    std::hint::black_box(started.elapsed());
    result
}

/// The tools' two arguments, a count (not 0) and a body size, each with its default.
///
/// # Errors
/// `usage` when an argument is not a number or the count is 0.
pub fn count_and_body_bytes(usage: &str, count: usize, body_bytes: usize) -> Result<(usize, usize), String> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(count), |n| n.parse()).map_err(|_| usage.to_owned())?;
    let body_bytes: usize =
        args.next().map_or(Ok(body_bytes), |n| n.parse()).map_err(|_| usage.to_owned())?;
    if count == 0 {
        return Err(usage.into());
    }
    Ok((count, body_bytes))
}

/// Tokio's multi-threaded runtime on 2 workers, as a consumer or `lambda_runtime` runs one here.
///
/// # Errors
/// When the runtime cannot start.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime: {e}"))
}
