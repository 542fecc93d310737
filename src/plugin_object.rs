//! What a plugin's compiled BPF object holds, read from its ELF and BTF
//! without loading anything: programs and how each attaches, maps with the
//! layouts of their keys and values (and of ring-buffer records), and the
//! globals Python may set before load.

use std::collections::HashMap;
use std::ffi::CStr;
use std::path::Path;

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

use crate::btf_layout::layout_of;
use crate::btf_layout::Layout;
use crate::errors::ProbeError;
use crate::libbpf_log;

/// Prefix of the global that names a ring buffer's record type:
/// `NN_RECORD(events, struct event)` in the SDK's `nn.bpf.h` declares
/// `struct event *__nn_record_events`.
pub const RECORD_MARKER: &str = "__nn_record_";

/// How the host attaches a program, from its section name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// libbpf attaches it from the section alone.
    Auto,
    /// A `perf_event` program: the host samples CPU time on every CPU.
    PerfEvent,
    /// Loaded but attached to nothing (`syscall` programs, run on demand).
    LoadOnly,
    /// The host cannot attach it; the text says why.
    Unsupported(String),
}

impl Attach {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::PerfEvent => "perf_event",
            Self::LoadOnly => "load_only",
            Self::Unsupported(_) => "unsupported",
        }
    }
}

/// Sections libbpf attaches from the name alone, when a target follows the
/// slash (`tp_btf/sched_switch`, `kprobe/do_nanosleep`).
const AUTO_PREFIXES: &[&str] = &[
    "tp",
    "tracepoint",
    "tp_btf",
    "raw_tp",
    "raw_tracepoint",
    "raw_tp.w",
    "raw_tracepoint.w",
    "fentry",
    "fexit",
    "fmod_ret",
    "fentry.s",
    "fexit.s",
    "fmod_ret.s",
    "kprobe",
    "kretprobe",
    "ksyscall",
    "kretsyscall",
    "kprobe.multi",
    "kretprobe.multi",
    "kprobe.session",
    "uprobe",
    "uretprobe",
    "uprobe.s",
    "uretprobe.s",
    "uprobe.multi",
    "uretprobe.multi",
    "usdt",
    "lsm",
    "lsm.s",
];

/// Decides how a program in `section` is attached.
pub fn classify_section(section: &str) -> Attach {
    let (prefix, target) = match section.split_once('/') {
        Some((prefix, target)) => (prefix, target),
        None => (section, ""),
    };
    if AUTO_PREFIXES.contains(&prefix) {
        if target.is_empty() {
            return Attach::Unsupported(format!(
                "SEC(\"{section}\") names no target: write e.g. SEC(\"{prefix}/<name>\")"
            ));
        }
        return Attach::Auto;
    }
    match prefix {
        "perf_event" => Attach::PerfEvent,
        "syscall" => Attach::LoadOnly,
        _ => Attach::Unsupported(format!(
            "SEC(\"{section}\"): the host attaches tracing programs only (tracepoints, \
             tp_btf, raw_tp, fentry/fexit, kprobes, uprobes, lsm, perf_event); \
             attach this one yourself, or leave it out with programs=[...]"
        )),
    }
}

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
}

impl MapInfo {
    pub fn is_ring_buffer(&self) -> bool {
        self.map_type == "ringbuf"
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
}

#[derive(Debug, Clone, Default)]
pub struct ObjectInfo {
    pub programs: Vec<ProgramInfo>,
    pub maps: Vec<MapInfo>,
    pub globals: Vec<GlobalInfo>,
}

/// Opens (does not load) a BPF object file.
/// libbpf's messages are captured (not printed) and quoted in the error.
pub fn open_object(path: &Path) -> Result<OpenObject, ProbeError> {
    libbpf_log::start_capture();
    ObjectBuilder::default().open_file(path).map_err(|err| {
        ProbeError::Object(format!(
            "{} is not a BPF object libbpf can open ({err}): build it with \
             `clang -g -O2 -target bpf -c prog.bpf.c` (BTF, from -g, is required)\n\
             --- libbpf log (tail) ---\n{}",
            path.display(),
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
pub fn inspect(path: &Path, records: &HashMap<String, String>) -> Result<ObjectInfo, ProbeError> {
    let open = open_object(path)?;
    let btf = object_btf(&open).ok_or_else(|| {
        ProbeError::Object(format!(
            "{} has no BTF: compile it with -g (clang -g -O2 -target bpf ...)",
            path.display()
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
    let globals = globals(&btf);
    let rings = open
        .maps()
        .filter(|m| m.map_type() == MapType::RingBuf)
        .map(|m| m.name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    if let Some(unknown) = records.keys().find(|name| !rings.contains(name)) {
        return Err(ProbeError::Object(format!(
            "records names {unknown:?}, which is not a ring buffer of {} (its ring buffers: {})",
            path.display(),
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
        let record = if map_type == MapType::RingBuf {
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
fn globals(btf: &Btf<'_>) -> Vec<GlobalInfo> {
    data_vars(btf)
        .into_iter()
        .filter_map(|data| {
            let name = data.name.filter(|n| !n.starts_with(RECORD_MARKER))?;
            let layout = layout_of(btf, data.var.referenced_type_id())?;
            Some(GlobalInfo {
                name,
                section: data.section,
                offset: data.offset,
                layout,
            })
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
) -> Result<Option<Layout>, ProbeError> {
    if let Some(name) = named {
        let bare = name.strip_prefix("struct ").unwrap_or(name);
        let ty = btf.type_by_name::<types::Struct<'_>>(bare).ok_or_else(|| {
            ProbeError::Object(format!(
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
    fn tracing_sections_attach_automatically() {
        for section in [
            "tp_btf/sched_switch",
            "tp/sched/sched_process_exec",
            "fentry/do_nanosleep",
            "kprobe/do_nanosleep",
            "raw_tp/sched_wakeup",
        ] {
            assert_eq!(classify_section(section), Attach::Auto, "{section}");
        }
        assert_eq!(classify_section("perf_event"), Attach::PerfEvent);
        assert_eq!(classify_section("syscall"), Attach::LoadOnly);
    }

    #[test]
    fn other_sections_say_why_they_are_not_attached() {
        let Attach::Unsupported(why) = classify_section("xdp") else {
            panic!("xdp needs an interface");
        };
        assert!(why.contains("programs=["), "{why}");
        let Attach::Unsupported(why) = classify_section("kprobe") else {
            panic!("a kprobe needs a function");
        };
        assert!(why.contains("kprobe/<name>"), "{why}");
    }

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
