//! Benchmarks: `raw-drain` (the emulator's ceiling with no handler at all), the heap counters
//! (`heap-per-message`, `heap-largest-batch`) and the criterion benches of the batch core
//! (`cargo bench -p bench`). The drain benchmark that compares consumers side by side is
//! `bench/run.sh`.

pub mod heap;
