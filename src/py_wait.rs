//! Waiting for a batch from Python: without the GIL, in short slices, so that
//! Ctrl-C (checked between slices) ends the wait.

use std::time::Duration;
use std::time::Instant;

use crossbeam_channel::Receiver;
use crossbeam_channel::RecvTimeoutError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Longest time the GIL is released in one go.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// How a wait ended.
pub enum Received<T> {
    Batch(T),
    /// Nothing came within the timeout.
    TimedOut,
    /// The sender is gone and every batch has been taken.
    Finished,
}

/// Waits up to `timeout` seconds (None: as long as the stream lasts).
pub fn recv_batch<T: Send>(
    py: Python<'_>,
    receiver: &Receiver<T>,
    timeout: Option<f64>,
) -> PyResult<Received<T>> {
    let deadline = match timeout {
        Some(t) if t.is_finite() && t >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(PyValueError::new_err(format!(
                "timeout must be a non-negative number of seconds or None, got {t}"
            )))
        }
        None => None,
    };
    loop {
        let slice = deadline.map_or(WAIT_SLICE, |d| {
            d.saturating_duration_since(Instant::now()).min(WAIT_SLICE)
        });
        match py.detach(|| receiver.recv_timeout(slice)) {
            Ok(batch) => return Ok(Received::Batch(batch)),
            Err(RecvTimeoutError::Disconnected) => return Ok(Received::Finished),
            Err(RecvTimeoutError::Timeout) => {}
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Received::TimedOut);
        }
    }
}
