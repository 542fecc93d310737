//! What a compiled BPF object holds, read from its ELF and BTF
//! without loading anything: programs and how each attaches, maps with the
//! layouts of their keys and values (and of ring-buffer records), and the
//! globals Python may set before load.

use std::collections::HashMap;
use std::ffi::CStr;

use libbpf_rs::btf::types;
use libbpf_rs::btf::types::Linkage;
use libbpf_rs::btf::BtfKind;
use libbpf_rs::btf::BtfType;
use libbpf_rs::btf::ReferencesType as _;
use libbpf_rs::libbpf_sys;
use libbpf_rs::AsRawLibbpf;
use libbpf_rs::Btf;
use libbpf_rs::MapType;
use libbpf_rs::ObjectBuilder;
use libbpf_rs::OpenObject;

use crate::errors::HostError;
use crate::host::btf_layout::layout_of;
use crate::host::btf_layout::Layout;
use crate::host::config::ObjectSource;
use crate::host::cpu_rings::is_cpu_rings;
use crate::host::sections::classify_section;
use crate::host::sections::Attach;
use crate::sys::libbpf_log;

/// Prefix of the global that names a ring buffer's record type:
/// `NN_RECORD(events, struct event)` in the SDK's `nn.bpf.h` declares
/// `struct event *__nn_record_events`.
pub const RECORD_MARKER: &str = "__nn_record_";

#[derive(Debug, Clone)]
pub struct ProgramInfo {
    pub name: String,
    pub section: String,
    pub attach: Attach,
}

#[derive(Debug, Clone)]
pub struct MapInfo {
    pub name: String,
    /// libbpf's name for the type: "hash", "percpu_array", "ringbuf"...
    pub map_type: String,
    pub per_cpu: bool,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub key: Option<Layout>,
    pub value: Option<Layout>,
    /// For a ring buffer: the layout of its records, when known.
    pub record: Option<Layout>,
    /// An array of ring buffers, one per CPU (see `cpu_rings`): a stream
    /// like one ring buffer.
    pub cpu_rings: bool,
}

impl MapInfo {
    pub fn is_ring_buffer(&self) -> bool {
        self.map_type == "ringbuf" || self.cpu_rings
    }
}

/// A global variable of a data section (`const volatile` ones in `.rodata`).
#[derive(Debug, Clone)]
pub struct GlobalInfo {
    pub name: String,
    /// The ELF section: ".rodata", ".data", ".bss"...
    pub section: String,
    /// Byte offset in the section.
    pub offset: usize,
    pub layout: Layout,
    /// The value the object file gives it (zeros in .bss).
    pub initial: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
pub struct ObjectInfo {
    pub programs: Vec<ProgramInfo>,
    pub maps: Vec<MapInfo>,
    pub globals: Vec<GlobalInfo>,
}

/// Opens (does not load) a BPF object.
/// libbpf's messages are captured (not printed) and quoted in the error.
pub fn open_object(source: &ObjectSource) -> Result<OpenObject, HostError> {
    libbpf_log::start_capture();
    let mut builder = ObjectBuilder::default();
    let opened = match source {
        ObjectSource::File(path) => builder.open_file(path),
        ObjectSource::Memory { name, bytes } => builder
            .name(name)
            .and_then(|builder| builder.open_memory(bytes)),
    };
    opened.map_err(|err| {
        HostError::Object(format!(
            "{} is not a BPF object libbpf can open ({err}): build it with \
             `clang -g -O2 -target bpf -c prog.bpf.c` (BTF, from -g, is required)\n\
             --- libbpf log (tail) ---\n{}",
            source.describe(),
            libbpf_log::tail(5)
        ))
    })
}

/// The BTF of an opened object.
pub fn object_btf(open: &OpenObject) -> Option<Btf<'_>> {
    // SAFETY: the pointer comes from a live OpenObject, which outlives the Btf.
    let obj = unsafe { open.as_libbpf_object().as_ref() };
    Btf::from_bpf_object(obj).ok().flatten()
}

fn map_type_name(map_type: MapType) -> String {
    // SAFETY: libbpf returns a static string or NULL.
    let name = unsafe { libbpf_sys::libbpf_bpf_map_type_str(map_type.into()) };
    if name.is_null() {
        return format!("{map_type:?}");
    }
    // SAFETY: checked non-null; libbpf's strings are NUL-terminated.
    unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

/// Whether libbpf made `map` for a data section (.rodata, .data, .bss,
/// .kconfig) rather than the program declaring it.
pub fn is_internal(map: &impl AsRawLibbpf<LibbpfType = libbpf_sys::bpf_map>) -> bool {
    // SAFETY: the pointer comes from a live map wrapper, borrowed for the call.
    unsafe { libbpf_sys::bpf_map__is_internal(map.as_libbpf_object().as_ptr()) }
}

/// Reads programs, maps and globals. `records` names record types of ring
/// buffers by map name (overriding what the object declares).
pub fn inspect(
    source: &ObjectSource,
    records: &HashMap<String, String>,
) -> Result<ObjectInfo, HostError> {
    let open = open_object(source)?;
    let btf = object_btf(&open).ok_or_else(|| {
        HostError::Object(format!(
            "{} has no BTF: compile it with -g (clang -g -O2 -target bpf ...)",
            source.describe()
        ))
    })?;
    let programs = open
        .progs()
        .map(|prog| {
            let section = prog.section().to_string_lossy().into_owned();
            ProgramInfo {
                name: prog.name().to_string_lossy().into_owned(),
                attach: classify_section(&section),
                section,
            }
        })
        .collect::<Vec<_>>();
    let globals = globals(&btf, &section_images(&open));
    let rings = open
        .maps()
        .filter(|m| m.map_type() == MapType::RingBuf || is_cpu_rings(m))
        .map(|m| m.name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    if let Some(unknown) = records.keys().find(|name| !rings.contains(name)) {
        return Err(HostError::Object(format!(
            "records names {unknown:?}, which is not a ring buffer of {} (its ring buffers: {})",
            source.describe(),
            if rings.is_empty() {
                "none".to_string()
            } else {
                rings.join(", ")
            }
        )));
    }
    let mut maps = Vec::new();
    for map in open.maps() {
        if is_internal(&map) {
            continue; // .rodata/.data/.bss: exposed as globals
        }
        let raw = map.as_libbpf_object().as_ptr();
        let name = map.name().to_string_lossy().into_owned();
        // SAFETY: the map pointer is valid while `open` lives.
        let (key_id, value_id) = unsafe {
            (
                libbpf_sys::bpf_map__btf_key_type_id(raw),
                libbpf_sys::bpf_map__btf_value_type_id(raw),
            )
        };
        let map_type = map.map_type();
        let cpu_rings = is_cpu_rings(&map);
        let record = if map_type == MapType::RingBuf || cpu_rings {
            record_layout(&btf, &name, records.get(&name), rings.len() == 1)?
        } else {
            None
        };
        maps.push(MapInfo {
            per_cpu: map_type.is_percpu(),
            map_type: map_type_name(map_type),
            key_size: map.key_size(),
            value_size: map.value_size(),
            max_entries: map.max_entries(),
            key: (key_id != 0)
                .then(|| layout_of(&btf, key_id.into()))
                .flatten(),
            value: (value_id != 0)
                .then(|| layout_of(&btf, value_id.into()))
                .flatten(),
            record,
            cpu_rings,
            name,
        });
    }
    Ok(ObjectInfo {
        programs,
        maps,
        globals,
    })
}

/// Whether a data section holds settable globals.
fn is_global_section(name: &str) -> bool {
    [".rodata", ".data", ".bss"]
        .iter()
        .any(|s| name == *s || name.starts_with(&format!("{s}.")))
}

/// A variable of a data section (".rodata", ".data", ".bss"...), never of
/// ".maps", whose variables are map definitions.
struct DataVar<'btf> {
    section: String,
    offset: usize,
    name: Option<String>,
    var: types::Var<'btf>,
}

fn data_vars<'btf>(btf: &'btf Btf<'_>) -> Vec<DataVar<'btf>> {
    let mut out = Vec::new();
    for sec in btf.type_by_kind::<types::DataSec<'_>>() {
        let section = sec
            .name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_global_section(&section) {
            continue;
        }
        for info in sec.iter() {
            if let Some(var) = btf.type_by_id::<types::Var<'_>>(info.ty) {
                out.push(DataVar {
                    section: section.clone(),
                    offset: info.offset as usize,
                    name: var.name().map(|n| n.to_string_lossy().into_owned()),
                    var,
                });
            }
        }
    }
    out
}

/// Every variable of the object's data sections but the record markers.
/// `images` holds the data sections' contents by libbpf's map name (which
/// ends with the section's name), for the globals' initial values.
fn globals(btf: &Btf<'_>, images: &[(String, Vec<u8>)]) -> Vec<GlobalInfo> {
    data_vars(btf)
        .into_iter()
        .filter_map(|data| {
            let name = data.name.filter(|n| !n.starts_with(RECORD_MARKER))?;
            let layout = layout_of(btf, data.var.referenced_type_id())?;
            let initial = images
                .iter()
                .find(|(map, _)| map.ends_with(&data.section))
                .and_then(|(_, image)| image.get(data.offset..data.offset + layout.size))
                .map(<[u8]>::to_vec);
            Some(GlobalInfo {
                name,
                section: data.section,
                offset: data.offset,
                layout,
                initial,
            })
        })
        .collect()
}

/// The contents of the object's data sections, by libbpf's map name.
fn section_images(open: &OpenObject) -> Vec<(String, Vec<u8>)> {
    open.maps()
        .filter(is_internal)
        .filter_map(|map| {
            let image = map.initial_value()?.to_vec();
            Some((map.name().to_string_lossy().into_owned(), image))
        })
        .collect()
}

/// The struct a type is or points to.
fn struct_behind(ty: BtfType<'_>) -> Option<BtfType<'_>> {
    let ty = ty.skip_mods_and_typedefs();
    let ty = if ty.kind() == BtfKind::Ptr {
        ty.next_type()?.skip_mods_and_typedefs()
    } else {
        ty
    };
    (ty.kind() == BtfKind::Struct).then_some(ty)
}

/// The record layout of ring buffer `map`: named by the caller, declared with
/// NN_RECORD, or (for an object's only ring buffer) the one struct-typed global,
/// as libbpf-bootstrap's `struct event _event = {0};` idiom leaves.
fn record_layout(
    btf: &Btf<'_>,
    map: &str,
    named: Option<&String>,
    only_ring: bool,
) -> Result<Option<Layout>, HostError> {
    if let Some(name) = named {
        let bare = name.strip_prefix("struct ").unwrap_or(name);
        let ty = btf.type_by_name::<types::Struct<'_>>(bare).ok_or_else(|| {
            HostError::Object(format!(
                "record type 'struct {bare}' for ring buffer '{map}' is not in the object's \
                     BTF: clang emits only types that globals or maps use, so declare \
                     NN_RECORD({map}, struct {bare}) (from nn.bpf.h) in the program"
            ))
        })?;
        return Ok(layout_of(btf, ty.type_id()));
    }
    let mut lone = Vec::new();
    for data in data_vars(btf) {
        let Some(target) = struct_behind(data.var.referenced_type()) else {
            continue;
        };
        if data.name.as_deref() == Some(&format!("{RECORD_MARKER}{map}")) {
            return Ok(layout_of(btf, target.type_id()));
        }
        // libbpf-bootstrap's idiom: a non-static, zeroed struct global
        // (`struct event _event = {0};`, in .bss). A static one (`static
        // struct hist zero;`) is a program's own scratch, not a record.
        let is_marker = data.name.is_some_and(|n| n.starts_with(RECORD_MARKER));
        let is_struct =
            data.var.referenced_type().skip_mods_and_typedefs().kind() == BtfKind::Struct;
        if !is_marker
            && is_struct
            && data.section == ".bss"
            && data.var.linkage() == Linkage::Global
        {
            lone.push(target.type_id());
        }
    }
    Ok(match lone.as_slice() {
        [id] if only_ring => layout_of(btf, *id),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_sections_hold_globals_but_maps_and_license_do_not() {
        assert!(is_global_section(".rodata"));
        assert!(is_global_section(".data.counters"));
        assert!(is_global_section(".bss"));
        assert!(!is_global_section(".maps"));
        assert!(!is_global_section("license"));
        assert!(!is_global_section(".rodatax"));
    }
}
