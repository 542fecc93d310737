//! Reading every entry of a map through a duplicated descriptor (valid after
//! the programs are gone): keys and values back to back, for Python to split
//! by their BTF layouts.

use std::collections::HashSet;

use libbpf_rs::MapCore;
use libbpf_rs::MapFlags;
use libbpf_rs::MapHandle;
use libbpf_rs::MapType;

use crate::errors::HostError;

/// A map's entries, keys and values back to back; per-CPU maps hold `cpus`
/// values per key.
#[derive(Debug, Default)]
pub struct MapEntries {
    pub keys: Vec<u8>,
    pub values: Vec<u8>,
    pub count: usize,
    pub cpus: usize,
}

/// The keys of a map that holds entries: every index of an array, the keys
/// present of a hash or trie, the stack ids a stack-trace map holds.
pub fn list_keys<M: MapCore + ?Sized>(map: &M) -> Result<Vec<Vec<u8>>, HostError> {
    match map.map_type() {
        MapType::Array | MapType::PercpuArray => Ok((0..map.max_entries())
            .map(|i| i.to_ne_bytes().to_vec())
            .collect()),
        MapType::Hash
        | MapType::LruHash
        | MapType::PercpuHash
        | MapType::LruPercpuHash
        | MapType::LpmTrie
        | MapType::StackTrace => {
            // get_next_key restarts from the first key when the current one
            // was deleted meanwhile: a busy map can list a key twice.
            let mut seen = HashSet::new();
            Ok(map.keys().filter(|key| seen.insert(key.clone())).collect())
        }
        other => Err(HostError::Object(format!(
            "map {:?} is a {other:?} map, which holds no readable entries{}",
            map.name(),
            if other == MapType::RingBuf {
                ": read its records with batches()"
            } else {
                ""
            }
        ))),
    }
}

pub fn read_entries(map: &MapHandle) -> Result<MapEntries, HostError> {
    let map_type = map.map_type();
    let keys = list_keys(map)?;
    let failed = |err: libbpf_rs::Error| {
        HostError::MapAccess(format!("reading map {:?}: {err}", map.name()))
    };
    let mut entries = MapEntries {
        cpus: 1,
        ..MapEntries::default()
    };
    for key in keys {
        if map_type.is_percpu() {
            // A key deleted since it was listed has no value: skip it.
            let Some(values) = map.lookup_percpu(&key, MapFlags::ANY).map_err(failed)? else {
                continue;
            };
            entries.cpus = values.len();
            entries.values.extend(values.iter().flatten());
        } else {
            let Some(value) = map.lookup(&key, MapFlags::ANY).map_err(failed)? else {
                continue;
            };
            entries.values.extend(value);
        }
        entries.keys.extend(key);
        entries.count += 1;
    }
    Ok(entries)
}
