//! Decoding map values and ring-buffer records into the skeleton's generated
//! types (which are the single definition of each wire struct).

use crate::runq_skel::types::runq_blame;
use crate::runq_skel::types::runq_blame_key;
use crate::runq_skel::types::runq_counters;
use crate::runq_skel::types::runq_event;
use crate::runq_skel::types::runq_hist;
use crate::runq_skel::types::runq_switch_outs;

/// Plain-old-data wire types: repr(C), made only of integers and integer
/// arrays, so that every bit pattern is a valid value.
pub trait Pod: Copy {}
impl Pod for runq_hist {}
impl Pod for runq_counters {}
impl Pod for runq_event {}
impl Pod for runq_blame_key {}
impl Pod for runq_blame {}
impl Pod for runq_switch_outs {}
impl Pod for u64 {}

/// Decodes bytes into a wire type; None if there are too few.
pub fn decode_pod<T: Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the buffer holds at least size_of::<T>() bytes, read_unaligned has
    // no alignment requirement, and T: Pod accepts any bit pattern.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}
