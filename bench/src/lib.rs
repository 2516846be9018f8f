//! Benchmarks: `raw-drain` (the emulator's ceiling with no handler at all) and the criterion
//! benches of the batch core (`cargo bench -p bench`). The drain benchmark that compares
//! consumers side by side is `bench/run.sh`.
