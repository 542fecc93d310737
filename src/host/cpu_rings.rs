//! One ring buffer per CPU. Two CPUs reserving records in one ring buffer pay
//! twice per record (its lock, its producer position, and the cache lines the
//! reader's CPU has just read: BENCHMARKS.md), so an object may declare its
//! stream as an `ARRAY_OF_MAPS` of ring buffers, one per CPU, each program
//! writing to its own CPU's ring:
//!
//! ```c
//! struct {
//!     __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
//!     __uint(max_entries, 1); /* the host sets one per possible CPU */
//!     __type(key, __u32);
//!     __array(values, struct { __uint(type, BPF_MAP_TYPE_RINGBUF);
//!                              __uint(max_entries, 4096); });
//! } events SEC(".maps");
//! ```
//!
//! Before load the host makes CPU 0's ring, the template the array is
//! created with, and sizes the array; after load it makes the other rings
//! and puts them all in. The reader drains them all into the
//! one batcher of the stream, so Python sees one stream, as for one ring.

use std::collections::HashMap;
use std::os::fd::AsFd as _;
use std::os::fd::AsRawFd as _;

use libbpf_rs::libbpf_sys;
use libbpf_rs::AsRawLibbpf;
use libbpf_rs::MapCore as _;
use libbpf_rs::MapFlags;
use libbpf_rs::MapHandle;
use libbpf_rs::MapType;
use libbpf_rs::Object;
use libbpf_rs::OpenMapMut;

use crate::errors::HostError;

/// The rings of each per-CPU stream, by the array's map name, index = CPU.
pub type CpuRings = HashMap<String, Vec<MapHandle>>;

/// Whether an (open) map is an array of ring buffers.
pub fn is_cpu_rings(map: &impl AsRawLibbpf<LibbpfType = libbpf_sys::bpf_map>) -> bool {
    let raw = map.as_libbpf_object().as_ptr();
    // SAFETY: the map pointer is valid while its object lives; the inner map,
    // when there is one, too.
    unsafe {
        if libbpf_sys::bpf_map__type(raw) != libbpf_sys::BPF_MAP_TYPE_ARRAY_OF_MAPS {
            return false;
        }
        let inner = libbpf_sys::bpf_map__inner_map(raw);
        !inner.is_null() && libbpf_sys::bpf_map__type(inner) == libbpf_sys::BPF_MAP_TYPE_RINGBUF
    }
}

/// CPU 0's ring of a per-CPU stream, made before load: its size is the
/// template libbpf creates the array with (the kernel takes only rings of
/// that size in it).
pub struct FirstRing {
    bytes: u32,
    ring: MapHandle,
}

/// Sizes a per-CPU stream before load: `ring_bytes` for each CPU's ring (the
/// declared size when None), one slot per possible CPU.
pub fn size(map: &mut OpenMapMut, ring_bytes: Option<u32>) -> Result<FirstRing, HostError> {
    let name = map.name().to_string_lossy().into_owned();
    let cpus = libbpf_rs::num_possible_cpus()
        .map_err(|err| HostError::Object(format!("counting the possible CPUs: {err}")))?;
    let raw = map.as_libbpf_object().as_ptr();
    // SAFETY: `is_cpu_rings` found the inner map, which lives with the object
    // until replaced below. Its definition may be read, not changed: libbpf's
    // setters assume a map of an object, which an inner map is not.
    let declared = unsafe { libbpf_sys::bpf_map__max_entries(libbpf_sys::bpf_map__inner_map(raw)) };
    let bytes = ring_bytes.unwrap_or(declared);
    let ring = create_ring(&name, 0, bytes)?;
    // SAFETY: as above; libbpf now creates the array with this ring as its
    // template (and drops its own inner definition).
    let err = unsafe { libbpf_sys::bpf_map__set_inner_map_fd(raw, ring.as_fd().as_raw_fd()) };
    if err != 0 {
        return Err(HostError::Object(format!(
            "setting the rings of {name:?} to {bytes} bytes failed ({err})"
        )));
    }
    let slots = u32::try_from(cpus).map_err(|_| HostError::Object(format!("{cpus} CPUs")))?;
    map.set_max_entries(slots)
        .map_err(|err| HostError::Object(format!("sizing {name:?} to {slots} CPUs: {err}")))?;
    Ok(FirstRing { bytes, ring })
}

fn create_ring(name: &str, cpu: u32, bytes: u32) -> Result<MapHandle, HostError> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as libbpf_sys::size_t,
        ..Default::default()
    };
    MapHandle::create(MapType::RingBuf, Some(name), 0, 0, bytes, &opts).map_err(|err| {
        HostError::RingBuffer(format!(
            "creating CPU {cpu}'s ring of {name:?} ({bytes} bytes, a power of two and at \
             least a page): {err}"
        ))
    })
}

/// Creates each CPU's ring of every per-CPU stream (`first`: CPU 0's, by map
/// name) and puts it in its slot.
pub fn fill(object: &Object, first: HashMap<String, FirstRing>) -> Result<CpuRings, HostError> {
    let mut rings = CpuRings::new();
    for (name, FirstRing { bytes, ring }) in first {
        let map = object
            .maps()
            .find(|m| m.name() == name.as_str())
            .ok_or_else(|| HostError::Object(format!("the object lost its map {name:?}")))?;
        let mut per_cpu = vec![ring];
        for cpu in 1..map.max_entries() {
            per_cpu.push(create_ring(&name, cpu, bytes)?);
        }
        for (cpu, ring) in (0u32..).zip(&per_cpu) {
            let fd = ring.as_fd().as_raw_fd();
            map.update(&cpu.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
                .map_err(|err| {
                    HostError::RingBuffer(format!("putting CPU {cpu}'s ring in {name:?}: {err}"))
                })?;
        }
        rings.insert(name, per_cpu);
    }
    Ok(rings)
}
