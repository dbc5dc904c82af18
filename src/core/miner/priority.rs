//! How the nonce search shares the cores with the rest of the node. A node mining on every core
//! at the normal priority makes its own applier, its HTTP admission and a broker on the same
//! machine wait for a time slice: block propagation then pays for the hashing. At the idle
//! priority the search only uses what nothing else wants, which on an otherwise idle machine is
//! every core.

use serde::{Deserialize, Serialize};

/// How the mining threads are scheduled against the node's other work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MinerPriority {
    /// Search only on cores no other thread wants (Linux `SCHED_IDLE`): applying blocks,
    /// admitting transfers and anything else on the machine run first.
    #[default]
    Idle,
    /// Leave the threads at the process's own scheduling: they compete for the cores on equal
    /// terms with every other thread.
    Normal,
}

impl MinerPriority {
    /// Its name in the configuration and in `/status`.
    pub fn name(self) -> &'static str {
        match self {
            MinerPriority::Idle => "idle",
            MinerPriority::Normal => "normal",
        }
    }

    /// Gives the calling thread this priority.
    pub(super) fn apply_to_this_thread(self) -> std::io::Result<()> {
        match self {
            MinerPriority::Idle => schedule_this_thread_when_idle(),
            MinerPriority::Normal => Ok(()),
        }
    }
}

#[cfg(target_os = "linux")]
fn schedule_this_thread_when_idle() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 names the calling thread; sched_setscheduler only reads `param`.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere than Linux there is no idle policy: the threads keep the normal priority.
#[cfg(not(target_os = "linux"))]
fn schedule_this_thread_when_idle() -> std::io::Result<()> {
    Ok(())
}

/// The calling thread's scheduling policy, as the kernel reports it.
#[cfg(all(test, target_os = "linux"))]
pub(super) fn this_thread_policy() -> i32 {
    // SAFETY: pid 0 names the calling thread; the call reads nothing from the caller.
    unsafe { libc::sched_getscheduler(0) }
}
