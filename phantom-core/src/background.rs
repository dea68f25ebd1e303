//! Background priority for snapshot writing.
//!
//! Writing a snapshot is mostly CPU work (encoding every row) followed by one large fsync. On a
//! machine with few cores the encoding thread competes with committing threads for the CPUs: a
//! committer woken by its fdatasync then waits in the run queue, and that wait — not the
//! snapshot's I/O — was most of a durable commit's extra tail latency while a snapshot ran
//! (`docs/performance.md`, W5). So [`run_at_background_priority`] runs the encoding and writing
//! on a helper thread whose nice value is [`BACKGROUND_NICE`]: a committer that wakes up gets a
//! CPU first. On Linux the nice value is per thread, and a thread whose I/O priority was never
//! set explicitly gets one derived from it (best effort, lowest level).
//!
//! The caller's own thread is never lowered: an unprivileged process cannot raise a priority
//! again, so lowering it for the duration of one call would lower it for good. Durability is
//! untouched: only who gets a CPU first changes, never what is written or synced.

use std::sync::Mutex;

/// The nice value of the snapshot writing thread: the lowest priority of the normal policy.
pub(crate) const BACKGROUND_NICE: i32 = 19;

/// Runs `f` on a new thread named `name` at background priority ([`BACKGROUND_NICE`]) and
/// waits for it; returns what `f` returns, and re-raises its panic. When the thread cannot be
/// started, `f` runs on the caller's thread instead (logged); when its priority cannot be
/// lowered, it runs at normal priority (logged).
pub(crate) fn run_at_background_priority<T, F>(name: &str, f: F) -> T
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    // `f` sits in a slot so that it can still run here if the thread cannot be started
    // (`spawn_scoped` consumes its closure even when it fails).
    let slot = Mutex::new(Some(f));
    let take = || {
        slot.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    };
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn_scoped(s, || {
                lower_current_thread_priority();
                take().map(|f| f())
            });
        let ran = match spawned {
            Ok(thread) => match thread.join() {
                Ok(ran) => ran,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(e) => {
                tracing::warn!(error = %e, thread = name, "could not start a background thread; running at normal priority on the caller's thread");
                None
            }
        };
        match ran {
            Some(out) => out,
            // The thread never started (or never took `f`): run it here.
            None => match take() {
                Some(f) => f(),
                None => unreachable!("the closure ran neither on the thread nor here"),
            },
        }
    })
}

/// Sets the calling thread's nice value to [`BACKGROUND_NICE`]; logs and carries on when that
/// is refused (it needs no privilege, but a sandbox may forbid the call).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn lower_current_thread_priority() {
    // Linux: PRIO_PROCESS with a thread id sets that thread's nice value only
    // (setpriority(2), "the nice value is a per-thread attribute").
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), BACKGROUND_NICE) {
        tracing::warn!(error = %e, "could not lower the snapshot thread's priority; it runs at normal priority");
    }
}

/// Elsewhere the nice value is per process, so it is left alone.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn lower_current_thread_priority() {
    tracing::debug!("thread priorities are per process on this platform; not lowered");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn current_nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).expect("getpriority")
    }

    #[test]
    fn returns_the_closure_result_from_another_thread() {
        let caller = std::thread::current().id();
        let (out, ran_on) =
            run_at_background_priority("phantom-test", || (21 * 2, std::thread::current().id()));
        assert_eq!(out, 42);
        assert_ne!(ran_on, caller);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_helper_runs_at_nice_19_and_the_caller_keeps_its_priority() {
        let before = current_nice();
        let inside = run_at_background_priority("phantom-test", current_nice);
        assert_eq!(inside, BACKGROUND_NICE);
        assert_eq!(current_nice(), before);
    }

    #[test]
    fn a_panic_in_the_closure_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            run_at_background_priority("phantom-test", || -> u32 { panic!("boom") })
        });
        assert!(caught.is_err());
    }
}
