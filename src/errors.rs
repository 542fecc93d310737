//! Errors of the Rust core, and their mapping onto the Python exception
//! hierarchy defined in `noisy_neighbor/errors.py` (one hierarchy, rooted at
//! `NoisyNeighborError`, whose messages say what to do next). Each variant is
//! one kind of failure and becomes its own Python class.

use std::fmt;

use pyo3::exceptions::PyValueError;
use pyo3::import_exception;
use pyo3::PyErr;

import_exception!(noisy_neighbor.errors, PrivilegeError);
import_exception!(noisy_neighbor.errors, BtfUnavailableError);
import_exception!(noisy_neighbor.errors, KernelTooOldError);
import_exception!(noisy_neighbor.errors, ProbeLoadError);
import_exception!(noisy_neighbor.errors, AttachError);
import_exception!(noisy_neighbor.errors, MapAccessError);
import_exception!(noisy_neighbor.errors, RingBufferError);
import_exception!(noisy_neighbor.errors, ProbeStateError);
import_exception!(noisy_neighbor.errors, PluginObjectError);
import_exception!(noisy_neighbor.errors, UnsupportedSectionError);

/// What can go wrong between describing an object and reading its maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// Missing root or CAP_BPF+CAP_PERFMON.
    Privilege(String),
    /// The kernel exposes no BTF at /sys/kernel/btf/vmlinux.
    BtfUnavailable(String),
    /// A kernel feature a probe needs (a kfunc, a field) is missing.
    KernelTooOld(String),
    /// The verifier (or libbpf while loading) rejected the object.
    Load(String),
    /// A program loaded but could not be attached.
    Attach(String),
    /// The kernel refused to read or write a map (or run a program on demand).
    MapAccess(String),
    /// Setting up or polling a ring buffer failed.
    RingBuffer(String),
    /// The probe is not in a state that allows the call.
    State(String),
    /// The object is not usable as asked: not a BPF object, no BTF, or no
    /// map, section, ring buffer or program of the given name.
    Object(String),
    /// A program's section names no hook the host can attach.
    Section(String),
    /// An argument is out of its range (a Python `ValueError`).
    Argument(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match self {
            Self::Privilege(m)
            | Self::BtfUnavailable(m)
            | Self::KernelTooOld(m)
            | Self::Load(m)
            | Self::Attach(m)
            | Self::MapAccess(m)
            | Self::RingBuffer(m)
            | Self::State(m)
            | Self::Object(m)
            | Self::Section(m)
            | Self::Argument(m) => m,
        };
        f.write_str(message)
    }
}

impl std::error::Error for HostError {}

impl From<HostError> for PyErr {
    fn from(err: HostError) -> Self {
        let message = err.to_string();
        match err {
            HostError::Privilege(_) => PrivilegeError::new_err(message),
            HostError::BtfUnavailable(_) => BtfUnavailableError::new_err(message),
            HostError::KernelTooOld(_) => KernelTooOldError::new_err(message),
            HostError::Load(_) => ProbeLoadError::new_err(message),
            HostError::Attach(_) => AttachError::new_err(message),
            HostError::MapAccess(_) => MapAccessError::new_err(message),
            HostError::RingBuffer(_) => RingBufferError::new_err(message),
            HostError::State(_) => ProbeStateError::new_err(message),
            HostError::Object(_) => PluginObjectError::new_err(message),
            HostError::Section(_) => UnsupportedSectionError::new_err(message),
            HostError::Argument(_) => PyValueError::new_err(message),
        }
    }
}
