//! The thread that owns the loaded run-queue probe: it loads and attaches the
//! skeleton, hands out map handles, and, when streaming, drains the ring buffer
//! into batches until told to stop; then it detaches, drains what is left, and
//! waits for the kernel to free the programs.

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use crossbeam_channel::Sender;
use crossbeam_channel::TryRecvError;
use libbpf_rs::skel::Skel as _;
use libbpf_rs::MapHandle;
use libbpf_rs::OpenObject;
use libbpf_rs::ProgramHandle;

use crate::errors::ProbeError;
use crate::event_batch::BatchPolicy;
use crate::event_batch::Batcher;
use crate::event_batch::DrainStats;
use crate::event_batch::EventColumns;
use crate::ring_reader::RingReader;
use crate::runq_loader::load_and_attach;
use crate::runq_probe::Method;
use crate::runq_probe::RunqConfig;
use crate::runq_skel::RunqLinks;
use crate::runq_skel::RunqSkel;
use crate::unload;

/// How long stop() waits for the kernel to free the programs (it takes tens of
/// milliseconds; the bound only keeps a wedged kernel from hanging Python).
const UNLOAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest sleep between ring-buffer polls; the kernel wakes us earlier when
/// the ring fills past its wakeup mark. Also bounds how long stop() waits.
const MAX_POLL: Duration = Duration::from_millis(10);

/// The maps of wait attribution.
pub struct AttributionMaps {
    pub blame: MapHandle,
    pub switch_outs: MapHandle,
}

/// Handles the owner thread hands out once the probe is attached: duplicated
/// descriptors, valid after the skeleton is gone.
pub struct MapHandles {
    pub hists: MapHandle,
    pub counters: MapHandle,
    /// When the probe attributes waits.
    pub attribution: Option<AttributionMaps>,
    /// The benchmark-only synthetic source, when loaded.
    pub synthetic: Option<ProgramHandle>,
}

/// Where the streamed batches go.
pub struct StreamSink {
    pub sender: Sender<EventColumns>,
    pub stats: Arc<DrainStats>,
}

fn open_stream(
    skel: &RunqSkel<'_>,
    sink: StreamSink,
    policy: BatchPolicy,
) -> Result<RingReader, ProbeError> {
    let batcher = Batcher::new(
        policy,
        &EventColumns::default(),
        sink.sender,
        Arc::clone(&sink.stats),
    );
    RingReader::open(
        vec![(&skel.maps.events, Box::new(batcher))],
        sink.stats,
        MAX_POLL.min(policy.max_age),
    )
}

fn set_up<'obj>(
    config: &RunqConfig,
    method: Method,
    sink: Option<StreamSink>,
    storage: &'obj mut MaybeUninit<OpenObject>,
) -> Result<(RunqSkel<'obj>, MapHandles, Option<RingReader>), ProbeError> {
    let skel = load_and_attach(config, method, storage)?;
    let duplicate = |map| {
        MapHandle::try_from(map)
            .map_err(|err| ProbeError::Map(format!("duplicating a map handle: {err}")))
    };
    let synthetic = match &config.stream {
        Some(stream) if stream.synthetic => Some(
            ProgramHandle::try_from(&skel.progs.nn_synthetic).map_err(|err| {
                ProbeError::Map(format!("duplicating the synthetic program: {err}"))
            })?,
        ),
        _ => None,
    };
    let attribution = if config.attribution {
        Some(AttributionMaps {
            blame: duplicate(&skel.maps.runq_blame)?,
            switch_outs: duplicate(&skel.maps.switch_outs)?,
        })
    } else {
        None
    };
    let handles = MapHandles {
        hists: duplicate(&skel.maps.runq_hists)?,
        counters: duplicate(&skel.maps.counters)?,
        attribution,
        synthetic,
    };
    let stream = match (sink, &config.stream) {
        (Some(sink), Some(stream)) => Some(open_stream(&skel, sink, stream.policy)?),
        _ => None,
    };
    Ok((skel, handles, stream))
}

/// Body of the owner thread. Reports the outcome of setting up on `ready`, then
/// runs until `stop` receives (or is dropped with the probe).
pub fn own_probe(
    config: &RunqConfig,
    method: Method,
    sink: Option<StreamSink>,
    ready: &Sender<Result<MapHandles, ProbeError>>,
    stop: &Receiver<()>,
) {
    let mut storage = MaybeUninit::uninit();
    let (mut skel, handles, stream) = match set_up(config, method, sink, &mut storage) {
        Ok(parts) => parts,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    if ready.send(Ok(handles)).is_err() {
        return;
    }
    let program_ids = unload::loaded_program_ids(skel.object());
    match stream {
        Some(stream) => {
            while matches!(stop.try_recv(), Err(TryRecvError::Empty)) {
                stream.drain_once();
            }
            // Detach first, so that nothing arrives after the last drain.
            skel.links = RunqLinks::default();
            stream.drain_rest();
        }
        None => {
            let _ = stop.recv();
        }
    }
    // Dropping the skeleton unloads the programs; the kernel frees them after
    // a grace period, which stop() waits out.
    drop(skel);
    unload::wait_until_unloaded(&program_ids, UNLOAD_TIMEOUT);
}
