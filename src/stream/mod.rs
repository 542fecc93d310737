//! Ring-buffer records into batches for Python: the reader and the batcher.

pub mod batch;
pub mod ring_reader;
