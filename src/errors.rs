//! Errors of the Rust core, and their mapping onto the Python exception
//! hierarchy defined in `noisy_neighbor/errors.py` (one hierarchy, rooted at
//! `NoisyNeighborError`, whose messages say what to do next).

use std::fmt;

use pyo3::import_exception;
use pyo3::PyErr;

import_exception!(noisy_neighbor.errors, NoisyNeighborError);
import_exception!(noisy_neighbor.errors, PrivilegeError);
import_exception!(noisy_neighbor.errors, BtfUnavailableError);
import_exception!(noisy_neighbor.errors, KernelTooOldError);
import_exception!(noisy_neighbor.errors, ProbeLoadError);
import_exception!(noisy_neighbor.errors, AttachError);
import_exception!(noisy_neighbor.errors, ProbeStateError);
import_exception!(noisy_neighbor.errors, PluginObjectError);
import_exception!(noisy_neighbor.errors, UnsupportedSectionError);

/// What can go wrong between asking for a probe and reading its maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// Missing root or CAP_BPF+CAP_PERFMON.
    Privilege(String),
    /// The kernel exposes no BTF at /sys/kernel/btf/vmlinux.
    BtfUnavailable(String),
    /// A kernel feature the probe needs (a kfunc, a field) is missing.
    KernelTooOld(String),
    /// Opening the object or the verifier rejected it.
    Load(String),
    /// A program loaded but could not be attached.
    Attach(String),
    /// Reading or writing a map failed.
    Map(String),
    /// The probe is not in a state that allows the call.
    State(String),
    /// A plugin's object file is not a usable BPF object.
    Object(String),
    /// A plugin program's section names no hook the host can attach.
    Section(String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match self {
            Self::Privilege(m)
            | Self::BtfUnavailable(m)
            | Self::KernelTooOld(m)
            | Self::Load(m)
            | Self::Attach(m)
            | Self::Map(m)
            | Self::State(m)
            | Self::Object(m)
            | Self::Section(m) => m,
        };
        f.write_str(message)
    }
}

impl std::error::Error for ProbeError {}

impl From<ProbeError> for PyErr {
    fn from(err: ProbeError) -> Self {
        let message = err.to_string();
        match err {
            ProbeError::Privilege(_) => PrivilegeError::new_err(message),
            ProbeError::BtfUnavailable(_) => BtfUnavailableError::new_err(message),
            ProbeError::KernelTooOld(_) => KernelTooOldError::new_err(message),
            ProbeError::Load(_) => ProbeLoadError::new_err(message),
            ProbeError::Attach(_) => AttachError::new_err(message),
            ProbeError::Map(_) => NoisyNeighborError::new_err(message),
            ProbeError::State(_) => ProbeStateError::new_err(message),
            ProbeError::Object(_) => PluginObjectError::new_err(message),
            ProbeError::Section(_) => UnsupportedSectionError::new_err(message),
        }
    }
}
