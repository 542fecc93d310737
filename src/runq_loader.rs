//! Opening, configuring, loading and attaching the run-queue probe's skeleton.

use std::mem::MaybeUninit;

use libbpf_rs::skel::OpenSkel as _;
use libbpf_rs::skel::Skel as _;
use libbpf_rs::skel::SkelBuilder as _;
use libbpf_rs::MapCore as _;
use libbpf_rs::MapFlags;
use libbpf_rs::OpenObject;

use crate::errors::ProbeError;
use crate::kernel;
use crate::libbpf_log;
use crate::runq_probe::Method;
use crate::runq_probe::RunqConfig;
use crate::runq_skel::RunqSkel;
use crate::runq_skel::RunqSkelBuilder;

/// Wake the reader once a quarter of the ring holds unread data: early enough
/// that a burst never fills it between two timed polls.
const WAKEUP_FRACTION: u64 = 4;

/// Loads the programs `method` needs, sized and configured from `config`, and
/// attaches them. `method` must already be resolved (not `Auto`).
pub fn load_and_attach<'obj>(
    config: &RunqConfig,
    method: Method,
    storage: &'obj mut MaybeUninit<OpenObject>,
) -> Result<RunqSkel<'obj>, ProbeError> {
    libbpf_log::start_capture();
    let mut open = RunqSkelBuilder::default()
        .open(storage)
        .map_err(|err| ProbeError::Load(format!("opening the runq probe: {err}")))?;

    let sched_info = method == Method::SchedInfo;
    let percpu_rq = sched_info && kernel::kallsyms_has("runqueues");
    open.progs
        .nn_switch_si
        .set_autoload(sched_info && !percpu_rq);
    open.progs.nn_switch_si_pc.set_autoload(percpu_rq);
    open.progs.nn_switch_wk.set_autoload(!sched_info);
    open.progs.nn_wakeup.set_autoload(!sched_info);
    open.progs.nn_wakeup_new.set_autoload(!sched_info);
    open.progs
        .nn_synthetic
        .set_autoload(config.stream.as_ref().is_some_and(|s| s.synthetic));

    let sizing =
        |what: &str, err: libbpf_rs::Error| ProbeError::Load(format!("sizing {what}: {err}"));
    open.maps
        .runq_hists
        .set_max_entries(config.max_cgroups)
        .map_err(|err| sizing("runq_hists", err))?;
    open.maps
        .last_event_ns
        .set_max_entries(config.max_cgroups)
        .map_err(|err| sizing("last_event_ns", err))?;
    open.maps
        .runq_blame
        .set_max_entries(config.max_cgroups.saturating_mul(4))
        .map_err(|err| sizing("runq_blame", err))?;
    open.maps
        .switch_outs
        .set_max_entries(config.max_cgroups)
        .map_err(|err| sizing("switch_outs", err))?;
    if let Some(filter) = &config.cgroup_filter {
        let capacity = u32::try_from(filter.len().max(1)).unwrap_or(u32::MAX);
        open.maps
            .cgroup_filter
            .set_max_entries(capacity)
            .map_err(|err| sizing("cgroup_filter", err))?;
    }
    if let Some(stream) = &config.stream {
        open.maps
            .events
            .set_max_entries(stream.ring_buffer_bytes)
            .map_err(|err| sizing("the events ring buffer", err))?;
    }
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .ok_or_else(|| ProbeError::Load("the probe has no rodata".to_string()))?;
    rodata.filter_cgroups = config.cgroup_filter.is_some();
    rodata.attribute_waits = config.attribution;
    rodata.system_slice_id = config.system_slice_id;
    if let Some(stream) = &config.stream {
        rodata.stream_events = true;
        rodata.rate_limit_ns = stream.rate_limit_ns;
        rodata.wakeup_bytes = u64::from(stream.ring_buffer_bytes) / WAKEUP_FRACTION;
    }

    let mut skel = open
        .load()
        .map_err(|err| libbpf_log::load_error(&err, "the runq probe"))?;
    for cgroup_id in config.cgroup_filter.iter().flatten() {
        skel.maps
            .cgroup_filter
            .update(&cgroup_id.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(|err| ProbeError::Map(format!("filling cgroup_filter: {err}")))?;
    }
    skel.attach().map_err(|err| {
        ProbeError::Attach(format!(
            "attaching the runq probe to sched tracepoints failed: {err}; \
             the kernel needs tp_btf support (Linux >= 5.5 with BTF)"
        ))
    })?;
    Ok(skel)
}
