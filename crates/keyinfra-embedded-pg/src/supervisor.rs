//! Owning the postmaster process.
//!
//! The postmaster must die with us even when we are SIGKILLed, which only the kernel can
//! arrange: `PR_SET_PDEATHSIG`. That signal fires when the *thread* that forked the child
//! exits, not the process, so the postmaster is spawned from a dedicated thread that lives
//! exactly as long as the postmaster (it blocks in `wait`). Spawning from a caller's thread,
//! which may be a short-lived tokio blocking-pool thread, would kill the server at random.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

/// Arranges for the child spawned by `command` to receive `signal` when the spawning
/// thread exits, and for it to give up if we died before it got that far.
///
/// Call this after `CommandExt::uid`/`gid`: std switches credentials before it runs
/// `pre_exec` closures, and a credential change clears the parent-death signal, so it has
/// to be set afterwards, which is what a `pre_exec` closure guarantees.
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(command: &mut Command, signal: Signal) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe operations are allowed. It makes two system calls (prctl and
    // getppid) and converts an errno into io::Error with `from_raw_os_error`, which does
    // not allocate; it takes no locks and touches no shared state.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(signal).map_err(io::Error::from)?;
            // If we died between fork and prctl, the signal will never come; the child
            // has already been reparented, so give up instead of running unsupervised.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from(Errno::ESRCH));
            }
            Ok(())
        });
    }
}

/// How the child ended, as text for error messages; `None` while it runs.
#[derive(Debug, Default)]
struct ExitState {
    exit: Mutex<Option<String>>,
    changed: Condvar,
}

impl ExitState {
    fn lock(&self) -> MutexGuard<'_, Option<String>> {
        self.exit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A child process owned by a dedicated thread.
#[derive(Debug)]
pub(crate) struct Supervisor {
    pid: Pid,
    state: Arc<ExitState>,
    thread: Option<JoinHandle<()>>,
}

/// Why [`Supervisor::spawn`] failed.
pub(crate) enum SpawnError {
    /// The thread could not be created.
    Thread(io::Error),
    /// The program could not be executed.
    Spawn(io::Error),
}

impl Supervisor {
    /// Spawns `command` from a new thread named `name`, which then waits for it.
    pub(crate) fn spawn(name: &str, mut command: Command) -> Result<Self, SpawnError> {
        let state = Arc::new(ExitState::default());
        let (started_tx, started_rx) = mpsc::channel();
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut child = match command.spawn() {
                    Ok(child) => child,
                    Err(error) => {
                        let _ = started_tx.send(Err(error));
                        return;
                    }
                };
                // Linux PIDs fit comfortably in i32 (pid_max is at most 2^22).
                let pid = Pid::from_raw(child.id() as i32);
                let _ = started_tx.send(Ok(pid));
                // Wait without reaping first: until the exit is recorded under the lock,
                // the PID cannot be recycled, so `signal` never hits a stranger.
                while let Err(Errno::EINTR) =
                    waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
                {
                }
                let mut exit = thread_state.lock();
                *exit = Some(match child.wait() {
                    Ok(status) => status.to_string(),
                    Err(error) => format!("could not wait for it: {error}"),
                });
                thread_state.changed.notify_all();
            })
            .map_err(SpawnError::Thread)?;
        match started_rx.recv() {
            Ok(Ok(pid)) => Ok(Self {
                pid,
                state,
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(SpawnError::Spawn(error))
            }
            Err(mpsc::RecvError) => {
                let _ = thread.join();
                Err(SpawnError::Thread(io::Error::other(
                    "the supervisor thread died",
                )))
            }
        }
    }

    /// The child's PID (possibly exited, see [`exit`](Self::exit)).
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// How the child ended, or `None` while it is running.
    pub(crate) fn exit(&self) -> Option<String> {
        self.state.lock().clone()
    }

    /// Sends `signal` unless the child has already exited; returns whether it was sent.
    pub(crate) fn signal(&self, signal: Signal) -> Result<bool, Errno> {
        let exit = self.state.lock();
        if exit.is_some() {
            return Ok(false);
        }
        // Holding the lock keeps the supervisor thread from reaping the PID meanwhile.
        match kill(self.pid, signal) {
            Ok(()) => Ok(true),
            Err(Errno::ESRCH) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Waits up to `timeout` for the child to exit; returns how it ended, if it did.
    pub(crate) fn wait_exit(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut exit = self.state.lock();
        while exit.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            exit = self
                .state
                .changed
                .wait_timeout(exit, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        exit.clone()
    }

    /// Joins the thread once the child has exited, so that no thread outlives the cluster.
    pub(crate) fn join(&mut self) {
        if self.exit().is_some()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}
