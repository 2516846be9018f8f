//! The line tests/tests/watch.rs rewrites (and puts back) while a watched run is draining.

/// Which build handled a message.
pub const VERSION: u32 = 1;
