//! The probe host: runs one BPF object (a user's plugin, or the embedded
//! run-queue probe) on a thread that owns it, streams its ring buffers as
//! batches, one channel per ring, and reads and writes its maps and reads
//! its globals through duplicated descriptors, which stay valid after
//! `stop()`.

use std::collections::HashMap;
use std::os::fd::AsFd as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::thread;

use crossbeam_channel::bounded;
use crossbeam_channel::Receiver;
use libbpf_rs::MapCore as _;
use libbpf_rs::MapFlags;
use libbpf_rs::MapHandle;
use libbpf_rs::ProgramHandle;

use crate::errors::HostError;
use crate::host::config::HostConfig;
use crate::host::map_read::read_entries;
use crate::host::map_read::MapEntries;
use crate::host::map_write;
use crate::host::owner_thread::lock;
use crate::host::owner_thread::own_object;
use crate::host::owner_thread::OwnerThread;
use crate::host::owner_thread::Ready;
use crate::host::owner_thread::RingSender;
use crate::host::test_run::run_syscall_program;
use crate::stream::batch::DrainStats;
use crate::stream::batch::RawRecords;
use crate::sys::kernel;

/// One ring's stream of batches.
pub struct RingStream {
    pub batches: Receiver<RawRecords>,
    pub stats: Arc<DrainStats>,
}

/// A loaded, attached object.
pub struct ProbeHost {
    maps: HashMap<String, MapHandle>,
    /// `SEC("syscall")` programs, run on demand (until stop: these duplicated
    /// descriptors would keep them loaded).
    on_demand: Mutex<HashMap<String, ProgramHandle>>,
    data_sections: Vec<(String, MapHandle)>,
    streams: HashMap<String, RingStream>,
    owner: OwnerThread,
}

impl ProbeHost {
    /// Loads and attaches; returns once the programs run (or failed to).
    pub fn start(config: HostConfig) -> Result<Self, HostError> {
        kernel::check_privileges()?;
        let mut senders = Vec::new();
        let mut streams = HashMap::new();
        for ring in &config.rings {
            let (sender, batches) = bounded(config.pending_batches);
            let stats = Arc::new(DrainStats::default());
            senders.push(RingSender {
                spec: ring.clone(),
                sender,
                stats: Arc::clone(&stats),
            });
            streams.insert(ring.map.clone(), RingStream { batches, stats });
        }
        let (ready_tx, ready_rx) = bounded::<Ready>(1);
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let owner = thread::Builder::new()
            .name("nn-host".to_string())
            .spawn(move || own_object(&config, senders, &ready_tx, &stop_rx))
            .map_err(|err| HostError::Load(format!("starting the probe thread: {err}")))?;
        let handles = match ready_rx.recv() {
            Ok(Ok(handles)) => handles,
            Ok(Err(err)) => {
                let _ = owner.join();
                return Err(err);
            }
            Err(_) => {
                let _ = owner.join();
                return Err(HostError::Load(
                    "the probe thread ended before loading".to_string(),
                ));
            }
        };
        Ok(Self {
            maps: handles.maps,
            on_demand: Mutex::new(handles.on_demand),
            data_sections: handles.data_sections,
            streams,
            owner: OwnerThread::new(stop_tx, owner),
        })
    }

    pub fn is_running(&self) -> bool {
        self.owner.is_running()
    }

    /// Detaches and unloads; waits until the kernel has freed the programs and
    /// the last records have been shipped. Maps stay readable. Callable from
    /// any thread, also while another waits for a batch.
    pub fn stop(&self) {
        lock(&self.on_demand).clear();
        self.owner.stop();
    }

    pub fn stream(&self, map: &str) -> Result<&RingStream, HostError> {
        self.streams
            .get(map)
            .ok_or_else(|| HostError::Object(format!("no ring buffer named {map:?} is streamed")))
    }

    pub fn streams(&self) -> impl Iterator<Item = (&String, &RingStream)> {
        self.streams.iter()
    }

    /// Runs the `SEC("syscall")` program `name` once with `ctx`; returns its
    /// return value.
    pub fn run_program(&self, name: &str, ctx: &[u8]) -> Result<u32, HostError> {
        if !self.is_running() {
            return Err(HostError::State("the probe has stopped".to_string()));
        }
        let on_demand = lock(&self.on_demand);
        let program = on_demand.get(name).ok_or_else(|| {
            let mut known = on_demand.keys().cloned().collect::<Vec<_>>();
            known.sort();
            HostError::Object(format!(
                "no SEC(\"syscall\") program named {name:?} was loaded (those loaded: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        run_syscall_program(program.as_fd(), ctx)
    }

    /// The current bytes of data section `section` (".bss", ".data"...):
    /// the values the programs' globals hold now.
    pub fn read_section(&self, section: &str) -> Result<Vec<u8>, HostError> {
        let (_, map) = self
            .data_sections
            .iter()
            .find(|(name, _)| name.ends_with(section))
            .ok_or_else(|| {
                HostError::Object(format!("the object has no data section {section}"))
            })?;
        map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|err| HostError::MapAccess(format!("reading section {section}: {err}")))?
            .ok_or_else(|| HostError::MapAccess(format!("section {section} holds no value")))
    }

    fn map(&self, name: &str) -> Result<&MapHandle, HostError> {
        self.maps.get(name).ok_or_else(|| {
            let mut known = self.maps.keys().cloned().collect::<Vec<_>>();
            known.sort();
            HostError::Object(format!(
                "the object has no map named {name:?}; its maps are: {}",
                known.join(", ")
            ))
        })
    }

    /// Every entry of map `name`.
    pub fn read_map(&self, name: &str) -> Result<MapEntries, HostError> {
        read_entries(self.map(name)?)
    }

    /// Writes entries into map `name`: keys and values back to back, one
    /// value per possible CPU per key for a per-CPU map. Returns how many.
    pub fn update_entries(
        &self,
        name: &str,
        keys: &[u8],
        values: &[u8],
    ) -> Result<usize, HostError> {
        map_write::update_entries(self.map(name)?, keys, values)
    }

    /// Deletes the entries of map `name` under `keys` (key after key, back to
    /// back); returns how many were there. Keys already gone are skipped.
    pub fn delete_keys(&self, name: &str, keys: &[u8]) -> Result<usize, HostError> {
        map_write::delete_keys(self.map(name)?, keys)
    }

    /// Deletes every key of map `name` (zeroes every value of an array);
    /// returns how many entries it emptied.
    pub fn clear_map(&self, name: &str) -> Result<usize, HostError> {
        map_write::clear(self.map(name)?)
    }

    /// Sets every value of map `name` to zero, keeping its keys; returns how
    /// many.
    pub fn zero_map(&self, name: &str) -> Result<usize, HostError> {
        map_write::zero(self.map(name)?)
    }
}

impl Drop for ProbeHost {
    fn drop(&mut self) {
        self.stop();
    }
}
