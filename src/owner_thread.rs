//! The handle on a thread that owns a loaded BPF object (the run-queue probe's
//! or a plugin's): it runs until told to stop, and stopping waits for it to
//! detach, drain and see the programs freed. Stoppable from any thread, also
//! while another one waits for a batch.

use std::sync::Mutex;
use std::sync::MutexGuard;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

/// Locks, whether or not another thread panicked holding the lock (the data
/// are plain handles, valid either way).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

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
