//! Opening, configuring and loading an object, and filling its maps before
//! anything is attached: the steps between `open` and `attach` that every
//! plugin (the run-queue probe included) goes through.

use std::collections::HashMap;

use libbpf_rs::MapCore as _;
use libbpf_rs::Object;
use libbpf_rs::OpenObject;

use crate::errors::HostError;
use crate::host::config::GlobalPatch;
use crate::host::config::HostConfig;
use crate::host::config::MapEntry;
use crate::host::cpu_rings;
use crate::host::cpu_rings::CpuRings;
use crate::host::map_write;
use crate::host::object::is_internal;
use crate::host::object::open_object;
use crate::host::sections::classify_section;
use crate::host::sections::Attach;
use crate::sys::libbpf_log;

/// Opens, configures and loads the object, fills the maps named in
/// `config.initial_entries` and puts each CPU's ring in the per-CPU streams
/// (nothing is attached yet).
pub fn load(config: &HostConfig) -> Result<(Object, CpuRings), HostError> {
    let mut open = open_object(&config.source)?;
    choose_programs(&mut open, config)?;
    apply_patches(&mut open, &config.patches)?;
    let first_rings = resize_maps(&mut open, &config.max_entries)?;
    let what = config.source.describe();
    let object = open
        .load()
        .map_err(|err| libbpf_log::load_error(&err, &what))?;
    fill_maps(&object, &config.initial_entries)?;
    let rings = cpu_rings::fill(&object, first_rings)?;
    Ok((object, rings))
}

/// Sets autoload from `config.programs` and checks every loaded program can
/// be attached.
fn choose_programs(open: &mut OpenObject, config: &HostConfig) -> Result<(), HostError> {
    let names = open
        .progs()
        .map(|p| p.name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    if let Some(wanted) = &config.programs {
        if let Some(missing) = wanted.iter().find(|w| !names.contains(w)) {
            return Err(HostError::Object(format!(
                "the object has no program named {missing:?}; its programs are: {}",
                names.join(", ")
            )));
        }
    }
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let load = config.programs.as_ref().is_none_or(|w| w.contains(&name));
        prog.set_autoload(load);
        let section = prog.section().to_string_lossy().into_owned();
        if let (true, Attach::Unsupported(why)) = (load, classify_section(&section)) {
            return Err(HostError::Section(format!("program {name:?}: {why}")));
        }
    }
    check_perf_events(open, config)
}

/// Every program given a perf event is a loaded `perf_event` program: an
/// event named for any other would silently never fire.
fn check_perf_events(open: &OpenObject, config: &HostConfig) -> Result<(), HostError> {
    for (program, spec) in &config.perf_events {
        let prog = open
            .progs()
            .find(|p| p.name() == program.as_str())
            .ok_or_else(|| {
                HostError::Object(format!(
                    "perf_events names {program:?}, which is not a program of the object"
                ))
            })?;
        let section = prog.section().to_string_lossy().into_owned();
        if classify_section(&section) != Attach::PerfEvent {
            return Err(HostError::Object(format!(
                "perf_events names {program:?}, whose SEC(\"{section}\") is not \
                 SEC(\"perf_event\"): only perf_event programs run on perf events"
            )));
        }
        if !prog.autoload() {
            return Err(HostError::Object(format!(
                "perf_events names {program:?} ({}), which programs=[...] leaves out",
                spec.describe()
            )));
        }
    }
    Ok(())
}

/// Writes the globals set from Python into the data sections' initial values.
fn apply_patches(open: &mut OpenObject, patches: &[GlobalPatch]) -> Result<(), HostError> {
    for patch in patches {
        let mut map = open
            .maps_mut()
            .find(|map| is_internal(map) && map.name().to_string_lossy().ends_with(&patch.section))
            .ok_or_else(|| {
                HostError::Object(format!("the object has no data section {}", patch.section))
            })?;
        let data = map.initial_value_mut().ok_or_else(|| {
            HostError::Object(format!("section {} has no initial value", patch.section))
        })?;
        let size = data.len();
        let end = patch.offset.saturating_add(patch.bytes.len());
        let slot = data.get_mut(patch.offset..end).ok_or_else(|| {
            HostError::Object(format!(
                "bytes {}..{end} lie outside section {} ({size} bytes)",
                patch.offset, patch.section
            ))
        })?;
        slot.copy_from_slice(&patch.bytes);
    }
    Ok(())
}

/// Sets map capacities before load; for a per-CPU stream, the size given is
/// each CPU ring's. Returns the first ring of every per-CPU stream.
fn resize_maps(
    open: &mut OpenObject,
    sizes: &[(String, u32)],
) -> Result<HashMap<String, cpu_rings::FirstRing>, HostError> {
    for (name, _) in sizes {
        if !open.maps().any(|m| m.name() == name.as_str()) {
            return Err(HostError::Object(format!(
                "max_entries: the object has no map {name:?}"
            )));
        }
    }
    let mut ring_sizes = HashMap::new();
    for mut map in open.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        let wanted = sizes.iter().find(|(n, _)| *n == name).map(|(_, e)| *e);
        if cpu_rings::is_cpu_rings(&map) {
            ring_sizes.insert(name, cpu_rings::size(&mut map, wanted)?);
        } else if let Some(entries) = wanted {
            map.set_max_entries(entries).map_err(|err| {
                HostError::Object(format!("sizing map {name:?} to {entries}: {err}"))
            })?;
        }
    }
    Ok(ring_sizes)
}

/// Writes `entries` into their maps of the loaded object (a per-CPU map's
/// value holds one value per possible CPU).
fn fill_maps(object: &Object, entries: &[MapEntry]) -> Result<(), HostError> {
    for entry in entries {
        let map = object
            .maps()
            .find(|m| m.name() == entry.map.as_str())
            .ok_or_else(|| {
                HostError::Object(format!(
                    "initial entries: the object has no map {:?}",
                    entry.map
                ))
            })?;
        map_write::update_entries(&map, &entry.key, &entry.value).map_err(|err| match err {
            HostError::MapAccess(why) => {
                HostError::MapAccess(format!("filling a map before attach: {why}"))
            }
            other => other,
        })?;
    }
    Ok(())
}
