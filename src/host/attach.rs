//! Attaching every loaded program by its section; each `perf_event` program
//! gets the perf event named for it, or by default a CPU-clock sampling event
//! on every online CPU. What is attached stays attached until the
//! `Attachments` are dropped.

use std::os::fd::AsRawFd as _;
use std::os::fd::IntoRawFd as _;

use libbpf_rs::Link;
use libbpf_rs::Object;

use crate::errors::HostError;
use crate::host::config::HostConfig;
use crate::host::perf_events::PerfEventSpec;
use crate::host::perf_sampling;
use crate::host::sections::attach_hint;
use crate::host::sections::classify_section;
use crate::host::sections::Attach;

/// What stays attached until dropped. A perf event's descriptor belongs to
/// its link (libbpf closes it on detach).
pub struct Attachments {
    links: Vec<Link>,
}

/// Attaches every loaded program; on error, what was attached is detached
/// again (dropped).
pub fn attach_all(object: &Object, config: &HostConfig) -> Result<Attachments, HostError> {
    let mut attachments = Attachments { links: Vec::new() };
    for prog in object.progs_mut() {
        if !prog.autoload() {
            continue;
        }
        let name = prog.name().to_string_lossy().into_owned();
        let section = prog.section().to_string_lossy().into_owned();
        let failed = |err: libbpf_rs::Error| {
            HostError::Attach(format!(
                "attaching program {name:?} (SEC(\"{section}\")) failed: {err}{}",
                attach_hint(&section)
            ))
        };
        match classify_section(&section) {
            Attach::Auto => attachments.links.push(prog.attach().map_err(failed)?),
            Attach::PerfEvent => {
                let spec = config
                    .perf_events
                    .iter()
                    .find(|(program, _)| *program == name)
                    .map_or_else(
                        || PerfEventSpec::cpu_clock_hz(config.perf_hz),
                        |(_, s)| s.clone(),
                    );
                for fd in perf_sampling::open(&spec, &name)? {
                    // On failure the OwnedFd still closes it; on success the
                    // link owns it, so it must not be closed here as well.
                    let link = prog.attach_perf_event(fd.as_raw_fd()).map_err(failed)?;
                    let _owned_by_link = fd.into_raw_fd();
                    attachments.links.push(link);
                }
            }
            Attach::LoadOnly => {}
            Attach::Unsupported(why) => {
                return Err(HostError::Section(format!("program {name:?}: {why}")))
            }
        }
    }
    Ok(attachments)
}
