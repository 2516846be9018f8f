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
