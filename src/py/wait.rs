//! Batches as Python sees them: the options that shape them, checked once for
//! the run-queue probe and plugins alike, and waiting for one without the
//! GIL, in short slices, so that Ctrl-C (checked between slices) ends the wait.

use std::time::Duration;
use std::time::Instant;

use crossbeam_channel::Receiver;
use crossbeam_channel::RecvTimeoutError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::stream::batch::BatchPolicy;

/// Most records in one batch, and most batches waiting for Python (the
/// Python API checks the same bounds first, with the parameter's name).
const MAX_BATCH_EVENTS: usize = 1 << 24;
const MAX_PENDING_BATCHES: usize = 1 << 16;

/// Longest time the GIL is released in one go.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Checks the batching options of `HostCore`: at most
/// `batch_events` per batch, shipped after `batch_ms`, `pending_batches` of
/// them waiting for Python.
pub fn batch_policy(
    batch_events: usize,
    batch_ms: f64,
    pending_batches: usize,
) -> PyResult<BatchPolicy> {
    // A batch is one buffer: a bound keeps a typo from asking for terabytes.
    if !(1..=MAX_BATCH_EVENTS).contains(&batch_events) {
        return Err(PyValueError::new_err(format!(
            "batch_events must be in [1, {MAX_BATCH_EVENTS}], got {batch_events}"
        )));
    }
    // An hour bounds how long a partial batch may wait for Python.
    let max_age = Some(batch_ms)
        .filter(|ms| ms.is_finite() && *ms > 0.0 && *ms <= 3_600_000.0)
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "batch_ms must be a number of milliseconds in (0, 3600000], got {batch_ms}"
            ))
        })?;
    if !(1..=MAX_PENDING_BATCHES).contains(&pending_batches) {
        return Err(PyValueError::new_err(format!(
            "pending_batches must be in [1, {MAX_PENDING_BATCHES}], got {pending_batches}"
        )));
    }
    Ok(BatchPolicy {
        max_events: batch_events,
        max_age,
    })
}

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
        // A timeout too long to represent is no timeout at all.
        Some(t) if t >= 0.0 => Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|t| Instant::now().checked_add(t)),
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
