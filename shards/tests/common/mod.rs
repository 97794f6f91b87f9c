//! Shared by the integration tests: every runtime runs under a deadline, so a bug that
//! hangs fails its test instead of the whole run.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// Run `f` on its own thread and return its result, failing the test if it takes
/// longer than `secs` seconds or panics.
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out,
        Err(RecvTimeoutError::Timeout) => panic!("the runtime did not finish within {secs} s"),
        Err(RecvTimeoutError::Disconnected) => panic!("the runtime thread panicked"),
    }
}
