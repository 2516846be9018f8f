//! The end-to-end tests live in `tests/`; they run the framework's own test handler
//! (`e2e-function`), in process and as the binaries `e2e-runner` and `e2e-bootstrap`.

pub use e2e_function::*;
