//! What a BPF object holds, as typed, frozen Python objects: `inspect_object()`
//! describes programs, maps and globals with the BTF layouts of their keys,
//! values, records and variables, without loading anything.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::host::btf_layout;
use crate::host::btf_layout::Scalar;
use crate::host::config::ObjectSource;
use crate::host::object;
use crate::host::sections::Attach;

/// One field of a flattened BTF type.
#[pyclass(module = "noisy_neighbor._native", frozen, get_all, from_py_object)]
#[derive(Debug, Clone)]
pub struct Field {
    /// Dotted path from the outer type; "" for a type that is not a struct.
    name: String,
    /// Bytes from the start of the outer type.
    offset: usize,
    /// int, uint, bool, char, float, enum, enum_signed or bytes.
    kind: String,
    /// Bytes per element.
    size: usize,
    /// Array dimensions, outermost first; empty for one element.
    shape: Vec<usize>,
    /// An enum's (name, value) pairs.
    enum_values: Option<Vec<(String, i128)>>,
}

#[pymethods]
impl Field {
    #[new]
    #[pyo3(signature = (name, offset, kind, size, shape = Vec::new(), enum_values = None))]
    fn new(
        name: String,
        offset: usize,
        kind: String,
        size: usize,
        shape: Vec<usize>,
        enum_values: Option<Vec<(String, i128)>>,
    ) -> Self {
        Self {
            name,
            offset,
            kind,
            size,
            shape,
            enum_values,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Field(name={:?}, offset={}, kind={:?}, size={}, shape={:?})",
            self.name, self.offset, self.kind, self.size, self.shape
        )
    }
}

impl From<&btf_layout::Field> for Field {
    fn from(field: &btf_layout::Field) -> Self {
        let kind = match field.scalar {
            Scalar::Enum { signed: true, .. } => "enum_signed",
            ref scalar => scalar.name(),
        };
        Self {
            name: field.name.clone(),
            offset: field.offset,
            kind: kind.to_string(),
            size: field.size,
            shape: field.shape.clone(),
            enum_values: match &field.scalar {
                Scalar::Enum { values, .. } => Some(values.clone()),
                _ => None,
            },
        }
    }
}

/// A BTF type flattened into fields at byte offsets.
#[pyclass(module = "noisy_neighbor._native", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct Layout {
    /// The C name (`struct event`, `u32`), or "(anon)".
    type_name: String,
    size: usize,
    fields: Vec<Field>,
}

#[pymethods]
impl Layout {
    #[new]
    fn new(type_name: String, size: usize, fields: Vec<Field>) -> Self {
        Self {
            type_name,
            size,
            fields,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Layout({:?}, size={}, {} fields)",
            self.type_name,
            self.size,
            self.fields.len()
        )
    }
}

impl From<&btf_layout::Layout> for Layout {
    fn from(layout: &btf_layout::Layout) -> Self {
        Self {
            type_name: layout.type_name.clone(),
            size: layout.size,
            fields: layout.fields.iter().map(Field::from).collect(),
        }
    }
}

/// A program of the object and how the host attaches it.
#[pyclass(module = "noisy_neighbor._native", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct ProgramInfo {
    name: String,
    section: String,
    /// auto, perf_event, load_only or unsupported.
    attach: String,
    /// Why the host cannot attach it (unsupported only).
    why: Option<String>,
}

/// A map of the object, with the layouts of its keys and values (and of a
/// ring buffer's records, when known).
#[pyclass(module = "noisy_neighbor._native", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct MapInfo {
    name: String,
    /// libbpf's name for the type: "hash", "percpu_array", "ringbuf"...
    #[pyo3(name = "type")]
    map_type: String,
    per_cpu: bool,
    ring_buffer: bool,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    key: Option<Layout>,
    value: Option<Layout>,
    record: Option<Layout>,
}

/// A global variable of a data section, with its value in the object file.
#[pyclass(module = "noisy_neighbor._native", frozen)]
#[derive(Debug, Clone)]
pub struct GlobalInfo {
    #[pyo3(get)]
    name: String,
    /// ".rodata", ".data", ".bss"...
    #[pyo3(get)]
    section: String,
    /// Byte offset in the section.
    #[pyo3(get)]
    offset: usize,
    #[pyo3(get)]
    layout: Layout,
    initial: Option<Vec<u8>>,
}

#[pymethods]
impl GlobalInfo {
    /// The value the object file gives it (zeros in .bss), None if unknown.
    #[getter]
    fn initial<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.initial.as_ref().map(|bytes| PyBytes::new(py, bytes))
    }
}

/// Everything `inspect_object` found.
#[pyclass(module = "noisy_neighbor._native", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    programs: Vec<ProgramInfo>,
    maps: Vec<MapInfo>,
    globals: Vec<GlobalInfo>,
}

/// A path, or the object's bytes.
#[derive(FromPyObject)]
pub enum SourceArg {
    Bytes(Vec<u8>),
    Path(std::path::PathBuf),
}

impl SourceArg {
    /// `name` names an object in memory (libbpf prefixes its sections' map
    /// names with it).
    pub fn into_source(self, name: Option<String>) -> ObjectSource {
        match self {
            Self::Path(path) => ObjectSource::File(path),
            Self::Bytes(bytes) => ObjectSource::Memory {
                name: name.unwrap_or_else(|| "plugin".to_string()),
                bytes: std::sync::Arc::new(bytes),
            },
        }
    }
}

/// Describes the object (a path, or its bytes) without loading it.
/// `records` names ring buffers' record structs by map name.
#[pyfunction]
#[pyo3(signature = (source, records = None, name = None))]
pub fn inspect_object(
    py: Python<'_>,
    source: SourceArg,
    records: Option<HashMap<String, String>>,
    name: Option<String>,
) -> PyResult<ObjectInfo> {
    let source = source.into_source(name);
    let records = records.unwrap_or_default();
    let info = py.detach(|| object::inspect(&source, &records))?;
    Ok(ObjectInfo {
        programs: info
            .programs
            .iter()
            .map(|prog| ProgramInfo {
                name: prog.name.clone(),
                section: prog.section.clone(),
                attach: prog.attach.name().to_string(),
                why: match &prog.attach {
                    Attach::Unsupported(why) => Some(why.clone()),
                    _ => None,
                },
            })
            .collect(),
        maps: info
            .maps
            .iter()
            .map(|map| MapInfo {
                name: map.name.clone(),
                map_type: map.map_type.clone(),
                per_cpu: map.per_cpu,
                ring_buffer: map.is_ring_buffer(),
                key_size: map.key_size,
                value_size: map.value_size,
                max_entries: map.max_entries,
                key: map.key.as_ref().map(Layout::from),
                value: map.value.as_ref().map(Layout::from),
                record: map.record.as_ref().map(Layout::from),
            })
            .collect(),
        globals: info
            .globals
            .iter()
            .map(|global| GlobalInfo {
                name: global.name.clone(),
                section: global.section.clone(),
                offset: global.offset,
                layout: Layout::from(&global.layout),
                initial: global.initial.clone(),
            })
            .collect(),
    })
}
