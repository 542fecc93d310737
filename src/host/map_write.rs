//! Writing the maps of a running object through duplicated descriptors:
//! entries updated from Python (keys and values back to back; per-CPU maps
//! take one value per possible CPU per key, as `read_entries` gives them),
//! keys deleted, and whole maps cleared or zeroed, as bpftrace's `clear()`
//! and `zero()` do. Entries written before a failure stay written; the
//! error says how many there were.

use libbpf_rs::MapCore;
use libbpf_rs::MapFlags;
use libbpf_rs::MapType;

use crate::errors::HostError;
use crate::host::map_read::list_keys;

/// Key and value sizes of `map`, and values per key (the possible CPUs for a
/// per-CPU map, else one); refused for maps without both.
fn shape<M: MapCore + ?Sized>(map: &M) -> Result<(usize, usize, usize), HostError> {
    let (key_size, value_size) = (map.key_size() as usize, map.value_size() as usize);
    if key_size == 0 || value_size == 0 {
        return Err(HostError::Object(format!(
            "map {:?} is a {:?} map, which has no keyed entries to write",
            map.name(),
            map.map_type()
        )));
    }
    let values_per_key = if map.map_type().is_percpu() {
        libbpf_rs::num_possible_cpus()
            .map_err(|err| HostError::MapAccess(format!("counting the possible CPUs: {err}")))?
    } else {
        1
    };
    Ok((key_size, value_size, values_per_key))
}

/// Writes one entry; `value` holds `values_per_key` values back to back.
fn write<M: MapCore + ?Sized>(
    map: &M,
    key: &[u8],
    value: &[u8],
    flags: MapFlags,
) -> Result<(), libbpf_rs::Error> {
    if map.map_type().is_percpu() {
        // max(1): chunks(0) would panic; shape() refuses such maps first.
        let per_cpu = value
            .chunks(map.value_size().max(1) as usize)
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>();
        map.update_percpu(key, &per_cpu, flags)
    } else {
        map.update(key, value, flags)
    }
}

/// Why writing to `map` failed, with the kernel's reason and what to do.
fn write_failed<M: MapCore + ?Sized>(
    map: &M,
    done: usize,
    total: usize,
    err: &libbpf_rs::Error,
) -> HostError {
    let hint = match (err.kind(), map.map_type()) {
        (libbpf_rs::ErrorKind::TooBig, MapType::Array | MapType::PercpuArray) => format!(
            ": an array's keys are its indexes, 0 to {}",
            map.max_entries().saturating_sub(1)
        ),
        (libbpf_rs::ErrorKind::TooBig, _) => format!(
            ": the map is full ({} entries); raise max_entries, or delete entries first",
            map.max_entries()
        ),
        _ => String::new(),
    };
    let progress = if done > 0 {
        format!(" after writing {done} of {total} entries")
    } else {
        String::new()
    };
    HostError::MapAccess(format!(
        "writing map {:?} failed{progress}: {err}{hint}",
        map.name()
    ))
}

/// Writes the entries `keys` and `values` (back to back) into `map`; returns
/// how many.
pub fn update_entries<M: MapCore + ?Sized>(
    map: &M,
    keys: &[u8],
    values: &[u8],
) -> Result<usize, HostError> {
    let (key_size, value_size, values_per_key) = shape(map)?;
    let stride = value_size.saturating_mul(values_per_key);
    let count = keys.len() / key_size;
    if keys.len() % key_size != 0 || values.len() != count.saturating_mul(stride) {
        let per_cpu = if values_per_key > 1 {
            format!(" ({values_per_key} CPUs of {value_size} bytes)")
        } else {
            String::new()
        };
        return Err(HostError::Argument(format!(
            "map {:?} takes keys of {key_size} bytes and values of {stride} bytes{per_cpu} \
             each; got {} bytes of keys and {} of values",
            map.name(),
            keys.len(),
            values.len()
        )));
    }
    for (index, (key, value)) in keys
        .chunks_exact(key_size)
        .zip(values.chunks_exact(stride))
        .enumerate()
    {
        write(map, key, value, MapFlags::ANY)
            .map_err(|err| write_failed(map, index, count, &err))?;
    }
    Ok(count)
}

/// Deletes the entries of `map` under `keys` (back to back); returns how
/// many were there. Keys already gone are skipped.
pub fn delete_keys<M: MapCore + ?Sized>(map: &M, keys: &[u8]) -> Result<usize, HostError> {
    let key_size = map.key_size() as usize;
    if key_size == 0 || keys.len() % key_size != 0 {
        return Err(HostError::Argument(format!(
            "keys of map {:?} are {key_size} bytes each; got {} bytes",
            map.name(),
            keys.len()
        )));
    }
    let mut deleted = 0;
    for key in keys.chunks_exact(key_size) {
        match map.delete(key) {
            Ok(()) => deleted += 1,
            Err(err) if err.kind() == libbpf_rs::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(HostError::MapAccess(format!(
                    "deleting from map {:?}: {err}",
                    map.name()
                )))
            }
        }
    }
    Ok(deleted)
}

fn is_array<M: MapCore + ?Sized>(map: &M) -> bool {
    matches!(map.map_type(), MapType::Array | MapType::PercpuArray)
}

/// Sets the value of each of `keys` present in `map` to zero; returns how
/// many were. A key deleted meanwhile stays deleted (BPF_EXIST).
fn zero_keys<M: MapCore + ?Sized>(map: &M, keys: &[Vec<u8>]) -> Result<usize, HostError> {
    let (_, value_size, values_per_key) = shape(map)?;
    let zeroes = vec![0u8; value_size.saturating_mul(values_per_key)];
    let flags = if is_array(map) {
        MapFlags::ANY
    } else {
        MapFlags::EXIST
    };
    let mut zeroed = 0;
    for key in keys {
        match write(map, key, &zeroes, flags) {
            Ok(()) => zeroed += 1,
            Err(err) if err.kind() == libbpf_rs::ErrorKind::NotFound => {}
            Err(err) => return Err(write_failed(map, zeroed, keys.len(), &err)),
        }
    }
    Ok(zeroed)
}

/// Empties `map`: deletes every key, or, for an array (whose entries cannot
/// be deleted), zeroes every value. Returns how many entries it emptied.
pub fn clear<M: MapCore + ?Sized>(map: &M) -> Result<usize, HostError> {
    let keys = list_keys(map)?;
    if is_array(map) {
        return zero_keys(map, &keys);
    }
    delete_keys(map, &keys.concat())
}

/// Sets every value of `map` to zero, keeping its keys; returns how many.
pub fn zero<M: MapCore + ?Sized>(map: &M) -> Result<usize, HostError> {
    zero_keys(map, &list_keys(map)?)
}
