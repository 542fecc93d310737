//! The thread that owns a loaded BPF object (programs, links, perf events)
//! for as long as it runs: it loads and attaches, hands out duplicated map
//! descriptors, drains the ring buffers into batches until told to stop, then
//! detaches, drains what is left and waits for the kernel to free the
//! programs. Its handle stops it from any thread, also while another one
//! waits for a batch.

use std::collections::HashMap;
use std::os::fd::AsFd as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;
use crossbeam_channel::Sender;
use crossbeam_channel::TryRecvError;
use libbpf_rs::MapCore as _;
use libbpf_rs::MapHandle;
use libbpf_rs::Object;
use libbpf_rs::ProgramHandle;

use crate::errors::HostError;
use crate::host::attach::attach_all;
use crate::host::attach::Attachments;
use crate::host::config::HostConfig;
use crate::host::config::RingSpec;
use crate::host::cpu_rings::CpuRings;
use crate::host::load::load;
use crate::host::object::is_internal;
use crate::host::sections::classify_section;
use crate::host::sections::Attach;
use crate::host::test_run::run_syscall_program;
use crate::host::unload;
use crate::stream::batch::Batcher;
use crate::stream::batch::DrainStats;
use crate::stream::batch::RawRecords;
use crate::stream::ring_reader::CountingSink;
use crate::stream::ring_reader::RecordSink;
use crate::stream::ring_reader::RingReader;
use crate::stream::ring_reader::Stream;

/// How long stop() waits for the kernel to free the programs (it takes tens of
/// milliseconds; the bound only keeps a wedged kernel from hanging Python).
const UNLOAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest sleep between ring-buffer polls; the kernel wakes us earlier when
/// a ring fills past its wakeup mark. Also bounds how long stop() waits.
const MAX_POLL: Duration = Duration::from_millis(10);

/// Locks, whether or not another thread panicked holding the lock (the data
/// are plain handles, valid either way).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the owner thread hands out once the programs run: duplicated
/// descriptors, valid after the object is gone.
pub struct Handles {
    pub maps: HashMap<String, MapHandle>,
    /// `SEC("syscall")` programs, run on demand.
    pub on_demand: HashMap<String, ProgramHandle>,
    /// The maps behind `.bss`, `.data` and `.rodata`, by libbpf's map name
    /// (which ends with the section's name).
    pub data_sections: Vec<(String, MapHandle)>,
}

/// Where one ring's batches go.
pub struct RingSender {
    pub spec: RingSpec,
    pub sender: Sender<RawRecords>,
    pub stats: Arc<DrainStats>,
}

pub type Ready = Result<Handles, HostError>;

/// Duplicates a handle of every map, and of every on-demand program.
fn handles(object: &Object) -> Result<Handles, HostError> {
    let duplicate_failed =
        |err: libbpf_rs::Error| HostError::MapAccess(format!("duplicating a handle: {err}"));
    let mut maps = HashMap::new();
    let mut data_sections = Vec::new();
    for map in object.maps() {
        if !map.autocreate() {
            continue;
        }
        let handle = MapHandle::try_from(&map).map_err(duplicate_failed)?;
        let name = map.name().to_string_lossy().into_owned();
        if is_internal(&map) {
            data_sections.push((name, handle));
        } else {
            maps.insert(name, handle);
        }
    }
    let mut on_demand = HashMap::new();
    for prog in object.progs_mut() {
        let section = prog.section().to_string_lossy().into_owned();
        if prog.autoload() && classify_section(&section) == Attach::LoadOnly {
            let handle = ProgramHandle::try_from(&prog).map_err(duplicate_failed)?;
            on_demand.insert(prog.name().to_string_lossy().into_owned(), handle);
        }
    }
    Ok(Handles {
        maps,
        on_demand,
        data_sections,
    })
}

/// One reader over every stream to drain, each into its own batcher: a
/// stream is one ring buffer, or one per CPU (`cpu_rings`).
fn ring_reader(
    maps: &HashMap<String, MapHandle>,
    cpu_rings: &CpuRings,
    config: &HostConfig,
    senders: Vec<RingSender>,
) -> Result<Option<RingReader>, HostError> {
    let Some(first) = senders.first() else {
        return Ok(None);
    };
    let errors = Arc::clone(&first.stats);
    let mut streams = Vec::new();
    for ring in senders {
        let rings: Vec<&dyn libbpf_rs::MapCore> = match cpu_rings.get(&ring.spec.map) {
            Some(per_cpu) => per_cpu
                .iter()
                .map(|r| r as &dyn libbpf_rs::MapCore)
                .collect(),
            None => vec![maps.get(&ring.spec.map).ok_or_else(|| {
                HostError::Object(format!(
                    "the object has no ring buffer named {:?}",
                    ring.spec.map
                ))
            })?],
        };
        let sink: Box<dyn RecordSink> = match ring.spec.record_size {
            Some(size) => Box::new(Batcher::new(config.policy, size, ring.sender, ring.stats)),
            None => Box::new(CountingSink(ring.stats)),
        };
        streams.push(Stream { rings, sink });
    }
    RingReader::open(streams, errors, MAX_POLL.min(config.policy.max_age)).map(Some)
}

/// Hands out handles, opens the ring reader and attaches the programs.
fn connect(
    object: &Object,
    cpu_rings: &CpuRings,
    config: &HostConfig,
    senders: Vec<RingSender>,
) -> Result<(Attachments, Option<RingReader>, Handles), HostError> {
    let handles = handles(object)?;
    let reader = ring_reader(&handles.maps, cpu_rings, config, senders)?;
    for name in &config.run_before_attach {
        let program = object
            .progs()
            .find(|p| p.name().to_string_lossy() == name.as_str())
            .ok_or_else(|| {
                HostError::Object(format!("no program named {name:?} to run before attaching"))
            })?;
        run_syscall_program(program.as_fd(), &[])?;
    }
    // Their records first, ahead of any from the probes about to attach
    // (which other CPUs' rings could otherwise hold before them).
    if let Some(reader) = &reader {
        reader.take_ready();
    }
    let attachments = attach_all(object, config)?;
    Ok((attachments, reader, handles))
}

/// Body of the owner thread. Reports the outcome of setting up on `ready`,
/// then runs until `stop` receives (or is dropped with the handle).
pub fn own_object(
    config: &HostConfig,
    senders: Vec<RingSender>,
    ready: &Sender<Ready>,
    stop: &Receiver<()>,
) {
    // The rings outlive the reader (dropped after it, at the end).
    let (object, cpu_rings) = match load(config) {
        Ok(loaded) => loaded,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let program_ids = unload::loaded_program_ids(&object);
    let (attachments, reader, handles) = match connect(&object, &cpu_rings, config, senders) {
        Ok(parts) => parts,
        Err(err) => {
            // Some programs may have attached before the failure: they are
            // detached already; unload and wait, so none outlives the error.
            drop(object);
            unload::wait_until_unloaded(&program_ids, UNLOAD_TIMEOUT);
            let _ = ready.send(Err(err));
            return;
        }
    };
    if ready.send(Ok(handles)).is_err() {
        return;
    }
    match reader {
        Some(reader) => {
            while matches!(stop.try_recv(), Err(TryRecvError::Empty)) {
                reader.drain_once();
            }
            // Detach first, so that nothing arrives after the last drain.
            drop(attachments);
            reader.drain_rest();
        }
        None => {
            let _ = stop.recv();
            drop(attachments);
        }
    }
    // Dropping the object unloads the programs; the kernel frees them after
    // a grace period, which stop() waits out.
    drop(object);
    unload::wait_until_unloaded(&program_ids, UNLOAD_TIMEOUT);
}

/// The handle on the owner thread.
pub struct OwnerThread {
    stop: Mutex<Option<Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl OwnerThread {
    /// `stop` is the channel the thread's body waits on.
    pub fn new(stop: Sender<()>, thread: JoinHandle<()>) -> Self {
        Self {
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn is_running(&self) -> bool {
        lock(&self.thread).is_some()
    }

    /// Tells the thread to stop and waits until it has finished.
    pub fn stop(&self) {
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for OwnerThread {
    fn drop(&mut self) {
        self.stop();
    }
}
