//! Pure restart decisions for daemon processes: one state machine per
//! process slot (group name, slot index), with the clock passed in.
//!
//! This module owns *when* to start, signal and restart a daemon process and
//! the sentence the error log gets about it. It never forks, signals, sleeps
//! or reads a clock: the parent's glue (`daemon::sys` and the
//! `apr_proc_other_child` callbacks) feeds it [`Event`]s with the current
//! [`Instant`] and carries out the [`Decision`] it returns: spawn, send a
//! signal, log a line, and call back with [`Event::Tick`] no later than
//! `wake_at`. Because of that, every decision and sentence is unit-tested
//! below with a fake clock.
//!
//! # Policy
//!
//! * **Never give up.** A slot keeps trying for as long as Apache runs; users
//!   hate daemon processes that never come back.
//! * **A process that served normally and then died is replaced at once**,
//!   so the next request is answered within a second or two of a `kill -9`.
//! * **A process that dies while starting** (Python cannot initialise, the
//!   start-up script fails to import, or it crashes within `stable_after` of
//!   being started) is replaced after an exponential backoff: 1 s, 2 s, 4 s,
//!   ... capped at 30 s. A process that was ready before dying gets one step
//!   less (its first quick death is replaced at once). The count resets once
//!   a process stays up for `stable_after` (60 s), and on an Apache graceful
//!   restart, so a fixed script is retried immediately.
//! * **Planned restarts are immediate**: `maximum-requests`,
//!   `restart-interval`, `inactivity-timeout`, `request-timeout`,
//!   `memory-limit` and friends, whether the parent asked ([`Event::Restart`])
//!   or the daemon decided and exited with the reason's exit code
//!   ([`RestartReason::exit_code`]).
//! * **Stopping escalates**: SIGUSR1 (finish in-flight requests) when
//!   `graceful_timeout` is set, then SIGTERM, then SIGKILL after
//!   `shutdown_timeout`, as mod_wsgi does.
//!
//! Exit codes are a contract with the daemon side (`daemon::worker`): it
//! leaves with `_exit(reason.exit_code())` when it restarts itself, and with
//! [`STARTUP_FAILED_EXIT_CODE`] when Python or the start-up script failed, so
//! the parent can say why without guessing.

#![forbid(unsafe_code)]

use std::fmt;
use std::time::{Duration, Instant};

/// Exit code of a daemon process whose start-up failed (Python could not be
/// initialised, or a `WSGIImportScript` raised). Treated as a start-up
/// failure: respawned with backoff.
pub const STARTUP_FAILED_EXIT_CODE: i32 = 109;

/// Timing policy for one process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorConfig {
    /// `shutdown-timeout`: how long after SIGTERM before SIGKILL (5 s).
    pub shutdown_timeout: Duration,
    /// `graceful-timeout` (`eviction-timeout` for an Apache graceful restart):
    /// how long after SIGUSR1 before SIGTERM. Zero skips SIGUSR1.
    pub graceful_timeout: Duration,
    /// First backoff delay after a start-up failure (1 s).
    pub backoff_initial: Duration,
    /// Largest backoff delay (30 s).
    pub backoff_max: Duration,
    /// A process up this long counts as healthy; its death resets the
    /// backoff (60 s).
    pub stable_after: Duration,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            shutdown_timeout: Duration::from_secs(5),
            graceful_timeout: Duration::ZERO,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
        }
    }
}

/// How a process ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit`/`_exit` with this code.
    Code(i32),
    /// A signal ended it.
    Signal { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    /// Decode a raw `waitpid` status (the `WIFEXITED`/`WTERMSIG` encoding
    /// shared by Linux and the BSDs).
    pub fn from_wait_status(raw: i32) -> ExitStatus {
        let low = raw & 0x7f;
        if low == 0 {
            ExitStatus::Code((raw >> 8) & 0xff)
        } else if low == 0x7f {
            // Stopped, not ended; report the stop signal.
            ExitStatus::Signal {
                signal: (raw >> 8) & 0xff,
                core_dumped: false,
            }
        } else {
            ExitStatus::Signal {
                signal: low,
                core_dumped: raw & 0x80 != 0,
            }
        }
    }
}

/// Why a daemon process is being restarted on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestartReason {
    /// Apache is doing a graceful restart.
    GracefulRestart,
    /// `maximum-requests` was reached.
    MaximumRequests,
    /// `restart-interval` elapsed.
    RestartInterval,
    /// No request arrived for `inactivity-timeout`.
    InactivityTimeout,
    /// A request ran past `request-timeout`.
    RequestTimeout,
    /// The process grew past `memory-limit`.
    MemoryLimit,
    /// The process used up `cpu-time-limit`.
    CpuTimeLimit,
    /// The GIL looked stuck for `deadlock-timeout`.
    DeadlockTimeout,
    /// The WSGI script did not load within `startup-timeout`.
    StartupTimeout,
    /// The WSGI script file changed (daemon-mode script reloading).
    ScriptReloaded,
    /// The daemon was sent SIGUSR1 (mod_wsgi's "eviction").
    Eviction,
}

impl RestartReason {
    const ALL: [RestartReason; 11] = [
        RestartReason::GracefulRestart,
        RestartReason::MaximumRequests,
        RestartReason::RestartInterval,
        RestartReason::InactivityTimeout,
        RestartReason::RequestTimeout,
        RestartReason::MemoryLimit,
        RestartReason::CpuTimeLimit,
        RestartReason::DeadlockTimeout,
        RestartReason::StartupTimeout,
        RestartReason::ScriptReloaded,
        RestartReason::Eviction,
    ];

    /// The code a daemon process exits with when it restarts itself for this
    /// reason (110-120; clear of shell conventions and of small codes Python
    /// code might use with `sys.exit`).
    pub const fn exit_code(self) -> i32 {
        match self {
            RestartReason::GracefulRestart => 110,
            RestartReason::MaximumRequests => 111,
            RestartReason::RestartInterval => 112,
            RestartReason::InactivityTimeout => 113,
            RestartReason::RequestTimeout => 114,
            RestartReason::MemoryLimit => 115,
            RestartReason::CpuTimeLimit => 116,
            RestartReason::DeadlockTimeout => 117,
            RestartReason::StartupTimeout => 118,
            RestartReason::ScriptReloaded => 119,
            RestartReason::Eviction => 120,
        }
    }

    /// The reason a daemon process's exit code stands for, if any.
    pub fn from_exit_code(code: i32) -> Option<RestartReason> {
        RestartReason::ALL
            .into_iter()
            .find(|r| r.exit_code() == code)
    }

    /// Completes "... because {reason}".
    pub const fn describe(self) -> &'static str {
        match self {
            RestartReason::GracefulRestart => "Apache is doing a graceful restart",
            RestartReason::MaximumRequests => "it reached maximum-requests",
            RestartReason::RestartInterval => "restart-interval elapsed",
            RestartReason::InactivityTimeout => "it was idle for inactivity-timeout",
            RestartReason::RequestTimeout => "a request ran past request-timeout",
            RestartReason::MemoryLimit => "it grew past memory-limit",
            RestartReason::CpuTimeLimit => "it used up cpu-time-limit",
            RestartReason::DeadlockTimeout => {
                "the Python GIL looked deadlocked for deadlock-timeout"
            }
            RestartReason::StartupTimeout => "its WSGI script did not load within startup-timeout",
            RestartReason::ScriptReloaded => "its WSGI script file changed",
            RestartReason::Eviction => "it was sent SIGUSR1 (eviction)",
        }
    }

    /// Whether this restart means the process never got going, so that
    /// repeating it must back off.
    const fn is_startup_failure(self) -> bool {
        matches!(self, RestartReason::StartupTimeout)
    }
}

/// What happened to a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Apache is up: start the slot's first process.
    Start,
    /// The fork the last [`Action::Spawn`] asked for succeeded.
    Spawned { pid: u32 },
    /// The fork failed; `error` completes "Could not start ...: {error}".
    SpawnFailed { error: String },
    /// The process finished start-up (Python initialised, start-up scripts
    /// imported) and accepts requests.
    Ready { pid: u32 },
    /// `waitpid` reported the process gone.
    Exited { pid: u32, status: ExitStatus },
    /// Restart the process on purpose.
    Restart { reason: RestartReason },
    /// Apache is stopping: stop the process and do not replace it.
    Shutdown,
    /// Time passed; `wake_at` of an earlier decision is due.
    Tick,
}

/// Signals the parent may send. The glue maps them to `libc` constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGUSR1: finish in-flight requests, then exit.
    Graceful,
    /// SIGTERM: exit now, running Python's exit handlers.
    Terminate,
    /// SIGKILL.
    Kill,
}

impl Signal {
    /// The signal's name, e.g. `SIGTERM`.
    pub const fn name(self) -> &'static str {
        match self {
            Signal::Graceful => "SIGUSR1",
            Signal::Terminate => "SIGTERM",
            Signal::Kill => "SIGKILL",
        }
    }
}

/// What the glue must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    Nothing,
    /// Fork a new daemon process for this slot, then report
    /// [`Event::Spawned`] or [`Event::SpawnFailed`].
    Spawn,
    /// Send `signal` to `pid`.
    Signal { pid: u32, signal: Signal },
}

/// Log levels, mapped by the glue onto `APLOG_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
}

/// One sentence for the error log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
}

/// The supervisor's answer to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do now.
    pub action: Action,
    /// Deliver [`Event::Tick`] no later than this.
    pub wake_at: Option<Instant>,
    /// What to log, if anything.
    pub log: Option<LogLine>,
}

impl Decision {
    fn nothing() -> Decision {
        Decision {
            action: Action::Nothing,
            wake_at: None,
            log: None,
        }
    }

    fn act(action: Action) -> Decision {
        Decision {
            action,
            wake_at: None,
            log: None,
        }
    }

    fn log(mut self, level: Level, message: String) -> Decision {
        self.log = Some(LogLine { level, message });
        self
    }
}

/// Why a slot is stopping its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Apache is stopping; no replacement.
    Shutdown,
    /// A planned restart; a replacement follows at once.
    Restart(RestartReason),
}

/// How far a stop has escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPhase {
    /// SIGUSR1 sent; SIGTERM at the deadline.
    Graceful,
    /// SIGTERM sent; SIGKILL at the deadline.
    Terminating,
    /// SIGKILL sent; only waiting now.
    Killed,
}

/// Where a slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Not started yet.
    Idle,
    /// A fork was asked for; `shutdown` if Apache began stopping meanwhile.
    Spawning { shutdown: bool },
    /// Forked, not ready yet.
    Starting { pid: u32, since: Instant },
    /// Ready and serving.
    Running { pid: u32, since: Instant },
    /// Being stopped.
    Stopping {
        pid: u32,
        since: Instant,
        ready: bool,
        reason: StopReason,
        phase: StopPhase,
        deadline: Instant,
    },
    /// Backing off before the next fork.
    Waiting { until: Instant },
    /// Apache stopped; nothing more happens.
    Stopped,
}

/// The state machine for one daemon process slot.
#[derive(Debug, Clone)]
pub struct Slot {
    group: String,
    index: u32,
    config: SupervisorConfig,
    state: SlotState,
    failures: u32,
}

impl Slot {
    /// Slot `index` of process group `group`.
    pub fn new(group: impl Into<String>, index: u32, config: SupervisorConfig) -> Slot {
        Slot {
            group: group.into(),
            index,
            config,
            state: SlotState::Idle,
            failures: 0,
        }
    }

    /// Where the slot is.
    pub fn state(&self) -> SlotState {
        self.state
    }

    /// The live process's pid, if there is one.
    pub fn pid(&self) -> Option<u32> {
        match self.state {
            SlotState::Starting { pid, .. }
            | SlotState::Running { pid, .. }
            | SlotState::Stopping { pid, .. } => Some(pid),
            _ => None,
        }
    }

    /// Quick deaths in a row, which set the backoff.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Whether Apache's shutdown has completed for this slot.
    pub fn is_stopped(&self) -> bool {
        self.state == SlotState::Stopped
    }

    /// Decide what to do about `event`, which happened at `now`.
    pub fn handle(&mut self, event: Event, now: Instant) -> Decision {
        let mut decision = match event {
            Event::Start => self.on_start(),
            Event::Spawned { pid } => self.on_spawned(pid, now),
            Event::SpawnFailed { error } => self.on_spawn_failed(&error, now),
            Event::Ready { pid } => self.on_ready(pid),
            Event::Exited { pid, status } => self.on_exited(pid, status, now),
            Event::Restart { reason } => self.on_restart(reason, now),
            Event::Shutdown => self.on_shutdown(now),
            Event::Tick => self.on_tick(now),
        };
        decision.wake_at = match self.state {
            SlotState::Waiting { until } => Some(until),
            SlotState::Stopping { deadline, .. } => Some(deadline),
            _ => None,
        };
        decision
    }

    fn on_start(&mut self) -> Decision {
        if self.state != SlotState::Idle {
            return Decision::nothing();
        }
        self.state = SlotState::Spawning { shutdown: false };
        Decision::act(Action::Spawn)
    }

    fn on_spawned(&mut self, pid: u32, now: Instant) -> Decision {
        match self.state {
            SlotState::Spawning { shutdown: false } => {
                self.state = SlotState::Starting { pid, since: now };
                Decision::nothing().log(
                    Level::Info,
                    format!("Started {} as pid {pid}.", self.name()),
                )
            }
            SlotState::Spawning { shutdown: true } => {
                // Apache began stopping while we forked: stop the newcomer.
                self.begin_stop(pid, now, false, StopReason::Shutdown, now)
            }
            _ => Decision::nothing().log(
                Level::Debug,
                format!(
                    "Ignoring the start of pid {pid}, which {} did not ask for.",
                    self.name()
                ),
            ),
        }
    }

    fn on_spawn_failed(&mut self, error: &str, now: Instant) -> Decision {
        match self.state {
            SlotState::Spawning { shutdown: false } => {
                self.failures = self.failures.saturating_add(1);
                let delay = self.backoff(self.failures);
                self.state = SlotState::Waiting { until: now + delay };
                let plan = self.retry_plan(delay);
                Decision::nothing().log(
                    Level::Error,
                    format!("Could not start {}: {error}; {plan}.", self.name()),
                )
            }
            SlotState::Spawning { shutdown: true } => {
                self.state = SlotState::Stopped;
                Decision::nothing()
            }
            _ => Decision::nothing(),
        }
    }

    fn on_ready(&mut self, pid: u32) -> Decision {
        match &mut self.state {
            SlotState::Starting { pid: p, since } if *p == pid => {
                self.state = SlotState::Running { pid, since: *since };
            }
            SlotState::Stopping { pid: p, ready, .. } if *p == pid => *ready = true,
            _ => {}
        }
        Decision::nothing()
    }

    fn on_exited(&mut self, pid: u32, status: ExitStatus, now: Instant) -> Decision {
        if self.pid() != Some(pid) {
            let current = match self.pid() {
                Some(p) => format!("pid {p}"),
                None => "no process".to_owned(),
            };
            return Decision::nothing().log(
                Level::Debug,
                format!(
                    "Ignoring the exit of pid {pid}: {} has {current}.",
                    self.name()
                ),
            );
        }
        let who = capitalize(&self.name_with_pid(pid));
        match self.state {
            SlotState::Starting { since, .. } => self.on_died(&who, status, since, false, now),
            SlotState::Running { since, .. } => self.on_died(&who, status, since, true, now),
            SlotState::Stopping {
                since,
                ready,
                reason,
                phase,
                ..
            } => {
                let uptime = now.saturating_duration_since(since);
                let (level, how) = if phase == StopPhase::Killed {
                    (
                        Level::Warning,
                        format!(
                            "was killed with SIGKILL after it did not exit within shutdown-timeout ({})",
                            fmt_duration(self.config.shutdown_timeout)
                        ),
                    )
                } else {
                    (Level::Info, "has stopped".to_owned())
                };
                match reason {
                    StopReason::Shutdown => {
                        self.state = SlotState::Stopped;
                        Decision::nothing().log(level, format!("{who} {how}."))
                    }
                    StopReason::Restart(r) if r.is_startup_failure() && !ready => {
                        self.failures = self.failures.saturating_add(1);
                        let delay = self.backoff(self.failures);
                        self.respawn_after(delay, now).log(
                            Level::Error,
                            format!(
                                "{who} {how}, restarted because {}; {}.",
                                r.describe(),
                                self.failure_plan(delay)
                            ),
                        )
                    }
                    StopReason::Restart(r) => {
                        if ready && uptime >= self.config.stable_after {
                            self.failures = 0;
                        }
                        self.respawn_after(Duration::ZERO, now).log(
                            level,
                            format!(
                                "{who} {how} for a restart because {}; starting a new one now.",
                                r.describe()
                            ),
                        )
                    }
                }
            }
            _ => Decision::nothing(),
        }
    }

    /// An exit nobody here asked for: a crash, a kill from outside, a failed
    /// start-up, or the daemon restarting itself for a planned reason.
    fn on_died(
        &mut self,
        who: &str,
        status: ExitStatus,
        since: Instant,
        ready: bool,
        now: Instant,
    ) -> Decision {
        let uptime = now.saturating_duration_since(since);
        let ran = if ready {
            format!("after running for {}", fmt_duration(uptime))
        } else {
            format!(
                "before it finished starting up ({} after it was started)",
                fmt_duration(uptime)
            )
        };

        let planned = match status {
            ExitStatus::Code(code) => {
                RestartReason::from_exit_code(code).filter(|r| !r.is_startup_failure())
            }
            ExitStatus::Signal { .. } => None,
        };
        if let Some(reason) = planned {
            if ready && uptime >= self.config.stable_after {
                self.failures = 0;
            }
            return self.respawn_after(Duration::ZERO, now).log(
                Level::Info,
                format!(
                    "{who} exited to restart because {} {ran}; starting a new one now.",
                    reason.describe()
                ),
            );
        }

        let startup_failed = status == ExitStatus::Code(STARTUP_FAILED_EXIT_CODE)
            || matches!(status, ExitStatus::Code(c) if RestartReason::from_exit_code(c).is_some());
        let quick = startup_failed || uptime < self.config.stable_after;
        let delay = if quick {
            self.failures = self.failures.saturating_add(1);
            let steps = if ready && !startup_failed {
                self.failures - 1
            } else {
                self.failures
            };
            self.backoff(steps)
        } else {
            self.failures = 0;
            Duration::ZERO
        };
        let how = describe_status(status);
        let hint = if !ready || startup_failed {
            " Look above for a Python traceback or a message from the daemon process."
        } else {
            ""
        };
        let plan = if quick {
            self.failure_plan(delay)
        } else {
            self.retry_plan(delay)
        };
        self.respawn_after(delay, now)
            .log(Level::Error, format!("{who} {how} {ran}; {plan}.{hint}"))
    }

    fn on_restart(&mut self, reason: RestartReason, now: Instant) -> Decision {
        match self.state {
            SlotState::Starting { pid, since } => {
                self.begin_stop(pid, since, false, StopReason::Restart(reason), now)
            }
            SlotState::Running { pid, since } => {
                self.begin_stop(pid, since, true, StopReason::Restart(reason), now)
            }
            SlotState::Waiting { .. } if reason == RestartReason::GracefulRestart => {
                // The configuration or script may have been fixed: try now.
                self.failures = 0;
                self.state = SlotState::Spawning { shutdown: false };
                Decision::act(Action::Spawn).log(
                    Level::Info,
                    format!(
                        "Starting {} now, without waiting, because {}.",
                        self.name(),
                        reason.describe()
                    ),
                )
            }
            _ => Decision::nothing(),
        }
    }

    fn begin_stop(
        &mut self,
        pid: u32,
        since: Instant,
        ready: bool,
        reason: StopReason,
        now: Instant,
    ) -> Decision {
        let graceful = self.config.graceful_timeout;
        let (signal, phase, deadline) = match reason {
            StopReason::Restart(_) if !graceful.is_zero() => {
                (Signal::Graceful, StopPhase::Graceful, now + graceful)
            }
            _ => (
                Signal::Terminate,
                StopPhase::Terminating,
                now + self.config.shutdown_timeout,
            ),
        };
        self.state = SlotState::Stopping {
            pid,
            since,
            ready,
            reason,
            phase,
            deadline,
        };
        let who = self.name_with_pid(pid);
        let message = match reason {
            StopReason::Shutdown => {
                format!("Stopping {who} with SIGTERM because Apache is stopping.")
            }
            StopReason::Restart(r) => format!(
                "Restarting {who} because {}; sending {}.",
                r.describe(),
                signal.name()
            ),
        };
        Decision::act(Action::Signal { pid, signal }).log(Level::Info, message)
    }

    fn on_shutdown(&mut self, now: Instant) -> Decision {
        match self.state {
            SlotState::Idle | SlotState::Waiting { .. } => {
                self.state = SlotState::Stopped;
                Decision::nothing()
            }
            SlotState::Spawning { .. } => {
                self.state = SlotState::Spawning { shutdown: true };
                Decision::nothing()
            }
            SlotState::Starting { pid, since } => {
                self.begin_stop(pid, since, false, StopReason::Shutdown, now)
            }
            SlotState::Running { pid, since } => {
                self.begin_stop(pid, since, true, StopReason::Shutdown, now)
            }
            SlotState::Stopping {
                pid,
                since,
                ready,
                phase,
                deadline,
                ..
            } => {
                if phase == StopPhase::Graceful {
                    // Apache will not wait for a graceful drain: SIGTERM now.
                    self.begin_stop(pid, since, ready, StopReason::Shutdown, now)
                } else {
                    self.state = SlotState::Stopping {
                        pid,
                        since,
                        ready,
                        reason: StopReason::Shutdown,
                        phase,
                        deadline,
                    };
                    Decision::nothing()
                }
            }
            SlotState::Stopped => Decision::nothing(),
        }
    }

    fn on_tick(&mut self, now: Instant) -> Decision {
        match self.state {
            SlotState::Waiting { until } if now >= until => {
                self.state = SlotState::Spawning { shutdown: false };
                Decision::act(Action::Spawn)
            }
            SlotState::Stopping {
                pid,
                since,
                ready,
                reason,
                phase,
                deadline,
            } if now >= deadline => {
                let who = capitalize(&self.name_with_pid(pid));
                let shutdown = self.config.shutdown_timeout;
                let (signal, next, level, message) = match phase {
                    StopPhase::Graceful => (
                        Signal::Terminate,
                        StopPhase::Terminating,
                        Level::Info,
                        format!(
                            "{who} did not finish its requests within graceful-timeout ({}); sending SIGTERM.",
                            fmt_duration(self.config.graceful_timeout)
                        ),
                    ),
                    StopPhase::Terminating => (
                        Signal::Kill,
                        StopPhase::Killed,
                        Level::Warning,
                        format!(
                            "{who} did not exit within shutdown-timeout ({}) of SIGTERM; sending SIGKILL.",
                            fmt_duration(shutdown)
                        ),
                    ),
                    StopPhase::Killed => (
                        Signal::Kill,
                        StopPhase::Killed,
                        Level::Error,
                        format!(
                            "{who} still has not exited {} after SIGKILL; it may be stuck in the kernel \
                             (uninterruptible I/O). Still waiting.",
                            fmt_duration(shutdown)
                        ),
                    ),
                };
                self.state = SlotState::Stopping {
                    pid,
                    since,
                    ready,
                    reason,
                    phase: next,
                    deadline: now + shutdown,
                };
                Decision::act(Action::Signal { pid, signal }).log(level, message)
            }
            _ => Decision::nothing(),
        }
    }

    fn respawn_after(&mut self, delay: Duration, now: Instant) -> Decision {
        if delay.is_zero() {
            self.state = SlotState::Spawning { shutdown: false };
            Decision::act(Action::Spawn)
        } else {
            self.state = SlotState::Waiting { until: now + delay };
            Decision::nothing()
        }
    }

    /// Delay before the next fork after `steps` quick deaths: 0, then 1 s,
    /// 2 s, 4 s, ... up to `backoff_max`.
    fn backoff(&self, steps: u32) -> Duration {
        if steps == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(steps - 1).unwrap_or(u32::MAX);
        self.config
            .backoff_initial
            .saturating_mul(factor)
            .min(self.config.backoff_max)
    }

    fn retry_plan(&self, delay: Duration) -> String {
        if delay.is_zero() {
            "starting a new one now".to_owned()
        } else {
            format!("trying again in {}", fmt_duration(delay))
        }
    }

    fn failure_plan(&self, delay: Duration) -> String {
        let when = if delay.is_zero() {
            "starting a new one now".to_owned()
        } else {
            format!("starting a new one in {}", fmt_duration(delay))
        };
        format!(
            "{when} (failure {} in a row soon after start-up; the wait doubles up to {} and resets once a \
             process stays up for {})",
            self.failures,
            fmt_duration(self.config.backoff_max),
            fmt_duration(self.config.stable_after)
        )
    }

    fn name(&self) -> String {
        format!("daemon process '{}' slot {}", self.group, self.index)
    }

    fn name_with_pid(&self, pid: u32) -> String {
        format!(
            "daemon process '{}' slot {} (pid {pid})",
            self.group, self.index
        )
    }
}

/// `s` with its first letter in upper case, to start a sentence.
fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// "was killed by signal SIGKILL (9)", "exited with status 1", ...
fn describe_status(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(0) => "exited with status 0 although nobody asked it to stop".to_owned(),
        ExitStatus::Code(STARTUP_FAILED_EXIT_CODE) => {
            format!(
                "could not start up (exit status {STARTUP_FAILED_EXIT_CODE}: Python or a start-up script failed)"
            )
        }
        ExitStatus::Code(code) => match RestartReason::from_exit_code(code) {
            Some(reason) => format!("exited because {} (exit status {code})", reason.describe()),
            None => format!("exited with status {code}"),
        },
        ExitStatus::Signal {
            signal,
            core_dumped,
        } => {
            let name = match signal_name(signal) {
                Some(name) => format!("{name} ({signal})"),
                None => format!("{signal}"),
            };
            let core = if core_dumped { " and dumped core" } else { "" };
            let hint = match signal_name(signal) {
                Some("SIGKILL") => {
                    " (sent by an administrator or by the kernel's out-of-memory killer)"
                }
                Some("SIGSEGV" | "SIGBUS" | "SIGILL" | "SIGFPE" | "SIGABRT") => {
                    " (a crash, usually in a C extension module)"
                }
                Some("SIGXCPU") => " (it used up cpu-time-limit)",
                _ => "",
            };
            format!("was killed by signal {name}{core}{hint}")
        }
    }
}

/// The name of signal number `signal` on this platform, e.g. `SIGSEGV`.
pub fn signal_name(signal: i32) -> Option<&'static str> {
    // Numbers 1-6, 8, 9, 11, 13-15 are the same on every Unix.
    let common = match signal {
        1 => Some("SIGHUP"),
        2 => Some("SIGINT"),
        3 => Some("SIGQUIT"),
        4 => Some("SIGILL"),
        5 => Some("SIGTRAP"),
        6 => Some("SIGABRT"),
        8 => Some("SIGFPE"),
        9 => Some("SIGKILL"),
        11 => Some("SIGSEGV"),
        13 => Some("SIGPIPE"),
        14 => Some("SIGALRM"),
        15 => Some("SIGTERM"),
        _ => None,
    };
    common.or_else(|| platform_signal_name(signal))
}

#[cfg(all(
    target_os = "linux",
    not(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))
))]
fn platform_signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        7 => "SIGBUS",
        10 => "SIGUSR1",
        12 => "SIGUSR2",
        16 => "SIGSTKFLT",
        17 => "SIGCHLD",
        18 => "SIGCONT",
        19 => "SIGSTOP",
        20 => "SIGTSTP",
        21 => "SIGTTIN",
        22 => "SIGTTOU",
        23 => "SIGURG",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        28 => "SIGWINCH",
        29 => "SIGIO",
        30 => "SIGPWR",
        31 => "SIGSYS",
        _ => return None,
    })
}

#[cfg(not(all(
    target_os = "linux",
    not(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))
)))]
fn platform_signal_name(_signal: i32) -> Option<&'static str> {
    None
}

/// "400 ms", "2.5 s", "12 s", "3 min 12 s", "2 h 5 min", "3 d 4 h".
fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms} ms")
    } else if s < 10 && !ms.is_multiple_of(1000) {
        format!("{}.{} s", s, (ms % 1000) / 100)
    } else if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        match s % 60 {
            0 => format!("{} min", s / 60),
            r => format!("{} min {r} s", s / 60),
        }
    } else if s < 86400 {
        match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        }
    } else {
        match (s % 86400) / 3600 {
            0 => format!("{} d", s / 86400),
            h => format!("{} d {h} h", s / 86400),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe_status(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake clock: seconds since an arbitrary start.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, secs: f64) -> Instant {
            self.0 + Duration::from_secs_f64(secs)
        }
    }

    fn clock() -> Clock {
        Clock(Instant::now())
    }

    fn slot() -> Slot {
        Slot::new("django", 0, SupervisorConfig::default())
    }

    const KILL: ExitStatus = ExitStatus::Signal {
        signal: 9,
        core_dumped: false,
    };

    fn message(d: &Decision) -> &str {
        &d.log.as_ref().expect("a log line").message
    }

    /// Start a slot and bring pid `pid` to ready at `t` seconds.
    fn running(s: &mut Slot, c: &Clock, pid: u32, t: f64) {
        if s.state() == SlotState::Idle {
            assert_eq!(s.handle(Event::Start, c.at(t)).action, Action::Spawn);
        }
        let d = s.handle(Event::Spawned { pid }, c.at(t));
        assert_eq!(d.action, Action::Nothing);
        s.handle(Event::Ready { pid }, c.at(t));
        assert!(matches!(s.state(), SlotState::Running { pid: p, .. } if p == pid));
    }

    #[test]
    fn start_spawns_once_and_logs_the_pid() {
        let c = clock();
        let mut s = slot();
        assert_eq!(
            s.handle(Event::Start, c.at(0.0)),
            Decision::act(Action::Spawn)
        );
        assert_eq!(s.handle(Event::Start, c.at(0.0)).action, Action::Nothing);
        let d = s.handle(Event::Spawned { pid: 100 }, c.at(0.1));
        assert_eq!(
            d.log,
            Some(LogLine {
                level: Level::Info,
                message: "Started daemon process 'django' slot 0 as pid 100.".into()
            })
        );
        assert_eq!(s.pid(), Some(100));
        assert!(matches!(s.state(), SlotState::Starting { pid: 100, .. }));
    }

    #[test]
    fn kill_dash_nine_after_serving_respawns_at_once() {
        let c = clock();
        let mut s = slot();
        running(&mut s, &c, 100, 0.0);
        let d = s.handle(
            Event::Exited {
                pid: 100,
                status: KILL,
            },
            c.at(192.0),
        );
        assert_eq!(d.action, Action::Spawn);
        assert_eq!(d.wake_at, None);
        let log = d.log.unwrap();
        assert_eq!(log.level, Level::Error);
        assert_eq!(
            log.message,
            "Daemon process 'django' slot 0 (pid 100) was killed by signal SIGKILL (9) (sent by an administrator or \
             by the kernel's out-of-memory killer) after running for 3 min 12 s; starting a new one now."
        );
        assert_eq!(s.consecutive_failures(), 0);
        assert_eq!(s.state(), SlotState::Spawning { shutdown: false });
    }

    #[test]
    fn first_quick_death_after_ready_is_immediate_then_backs_off() {
        let c = clock();
        let mut s = slot();
        running(&mut s, &c, 100, 0.0);
        let d = s.handle(
            Event::Exited {
                pid: 100,
                status: KILL,
            },
            c.at(5.0),
        );
        assert_eq!(d.action, Action::Spawn);
        assert!(
            message(&d).contains("starting a new one now (failure 1 in a row"),
            "{}",
            message(&d)
        );
        running(&mut s, &c, 101, 5.0);
        let d = s.handle(
            Event::Exited {
                pid: 101,
                status: KILL,
            },
            c.at(8.0),
        );
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.wake_at, Some(c.at(9.0)));
        assert!(
            message(&d).contains("starting a new one in 1 s (failure 2 in a row"),
            "{}",
            message(&d)
        );
    }

    #[test]
    fn startup_failures_back_off_exponentially_to_a_cap_and_never_give_up() {
        let c = clock();
        let mut s = slot();
        assert_eq!(s.handle(Event::Start, c.at(0.0)).action, Action::Spawn);
        let mut t = 0.0;
        for (n, expected) in [1u64, 2, 4, 8, 16, 30, 30, 30].into_iter().enumerate() {
            let pid = 200 + n as u32;
            s.handle(Event::Spawned { pid }, c.at(t));
            t += 0.5;
            let d = s.handle(
                Event::Exited {
                    pid,
                    status: ExitStatus::Code(1),
                },
                c.at(t),
            );
            assert_eq!(d.action, Action::Nothing);
            assert_eq!(
                d.wake_at,
                Some(c.at(t + expected as f64)),
                "failure {}",
                n + 1
            );
            assert_eq!(s.consecutive_failures(), n as u32 + 1);
            if n == 2 {
                assert_eq!(
                    message(&d),
                    "Daemon process 'django' slot 0 (pid 202) exited with status 1 before it finished starting up \
                     (500 ms after it was started); starting a new one in 4 s (failure 3 in a row soon after \
                     start-up; the wait doubles up to 30 s and resets once a process stays up for 1 min). Look \
                     above for a Python traceback or a message from the daemon process."
                );
            }
            // Too early: nothing, and the same wake-up time.
            let early = s.handle(Event::Tick, c.at(t + expected as f64 - 0.1));
            assert_eq!(early.action, Action::Nothing);
            assert_eq!(early.wake_at, Some(c.at(t + expected as f64)));
            t += expected as f64;
            assert_eq!(s.handle(Event::Tick, c.at(t)).action, Action::Spawn);
        }
    }

    #[test]
    fn a_stable_run_resets_the_backoff() {
        let c = clock();
        let mut s = slot();
        s.handle(Event::Start, c.at(0.0));
        for (i, pid) in (300..303).enumerate() {
            s.handle(Event::Spawned { pid }, c.at(i as f64 * 100.0));
            s.handle(
                Event::Exited {
                    pid,
                    status: ExitStatus::Code(1),
                },
                c.at(i as f64 * 100.0 + 1.0),
            );
            s.handle(Event::Tick, c.at(i as f64 * 100.0 + 99.0));
        }
        assert_eq!(s.consecutive_failures(), 3);
        running(&mut s, &c, 303, 300.0);
        let d = s.handle(
            Event::Exited {
                pid: 303,
                status: ExitStatus::Signal {
                    signal: 11,
                    core_dumped: true,
                },
            },
            c.at(361.0),
        );
        assert_eq!(d.action, Action::Spawn);
        assert_eq!(s.consecutive_failures(), 0);
        assert_eq!(
            message(&d),
            "Daemon process 'django' slot 0 (pid 303) was killed by signal SIGSEGV (11) and dumped core (a crash, \
             usually in a C extension module) after running for 1 min 1 s; starting a new one now."
        );
    }

    #[test]
    fn a_long_lived_process_without_ready_counts_as_healthy() {
        let c = clock();
        let mut s = slot();
        s.handle(Event::Start, c.at(0.0));
        s.handle(Event::Spawned { pid: 10 }, c.at(0.0));
        let d = s.handle(
            Event::Exited {
                pid: 10,
                status: ExitStatus::Code(2),
            },
            c.at(3600.0),
        );
        assert_eq!(d.action, Action::Spawn);
        assert_eq!(s.consecutive_failures(), 0);
        assert!(message(&d).contains(
            "before it finished starting up (1 h after it was started); starting a new one now."
        ));
    }

    #[test]
    fn startup_failed_exit_code_backs_off_even_when_ready() {
        let c = clock();
        let mut s = slot();
        running(&mut s, &c, 400, 0.0);
        let d = s.handle(
            Event::Exited {
                pid: 400,
                status: ExitStatus::Code(STARTUP_FAILED_EXIT_CODE),
            },
            c.at(2.0),
        );
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.wake_at, Some(c.at(3.0)));
        assert!(
            message(&d).starts_with(
                "Daemon process 'django' slot 0 (pid 400) could not start up (exit status 109: Python or a start-up \
                 script failed) after running for 2 s; starting a new one in 1 s"
            ),
            "{}",
            message(&d)
        );
    }

    #[test]
    fn daemon_planned_exit_codes_respawn_at_once() {
        let c = clock();
        for reason in RestartReason::ALL {
            assert_eq!(
                RestartReason::from_exit_code(reason.exit_code()),
                Some(reason)
            );
            let mut s = slot();
            running(&mut s, &c, 500, 0.0);
            let d = s.handle(
                Event::Exited {
                    pid: 500,
                    status: ExitStatus::Code(reason.exit_code()),
                },
                c.at(30.0),
            );
            if reason == RestartReason::StartupTimeout {
                assert_eq!(d.action, Action::Nothing, "{reason:?}");
                assert_eq!(d.wake_at, Some(c.at(31.0)));
                assert_eq!(d.log.unwrap().level, Level::Error);
            } else {
                assert_eq!(d.action, Action::Spawn, "{reason:?}");
                assert_eq!(d.log.as_ref().unwrap().level, Level::Info);
                assert_eq!(s.consecutive_failures(), 0);
            }
        }
        let mut s = slot();
        running(&mut s, &c, 501, 0.0);
        let code = RestartReason::MaximumRequests.exit_code();
        let d = s.handle(
            Event::Exited {
                pid: 501,
                status: ExitStatus::Code(code),
            },
            c.at(754.0),
        );
        assert_eq!(
            message(&d),
            "Daemon process 'django' slot 0 (pid 501) exited to restart because it reached maximum-requests after \
             running for 12 min 34 s; starting a new one now."
        );
        assert_eq!(RestartReason::from_exit_code(0), None);
        assert_eq!(RestartReason::from_exit_code(1), None);
    }

    #[test]
    fn unasked_clean_exit_is_reported_as_such() {
        let c = clock();
        let mut s = slot();
        running(&mut s, &c, 600, 0.0);
        let d = s.handle(
            Event::Exited {
                pid: 600,
                status: ExitStatus::Code(0),
            },
            c.at(90.0),
        );
        assert_eq!(d.action, Action::Spawn);
        assert_eq!(
            message(&d),
            "Daemon process 'django' slot 0 (pid 600) exited with status 0 although nobody asked it to stop after \
             running for 1 min 30 s; starting a new one now."
        );
    }

    #[test]
    fn planned_restart_terminates_then_respawns_at_once() {
        let c = clock();
        let mut s = slot();
        running(&mut s, &c, 700, 0.0);
        let d = s.handle(
            Event::Restart {
                reason: RestartReason::MemoryLimit,
            },
            c.at(100.0),
        );
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 700,
                signal: Signal::Terminate
            }
        );
        assert_eq!(d.wake_at, Some(c.at(105.0)));
        assert_eq!(
            message(&d),
            "Restarting daemon process 'django' slot 0 (pid 700) because it grew past memory-limit; sending SIGTERM."
        );
        // A second request while stopping changes nothing.
        assert_eq!(
            s.handle(
                Event::Restart {
                    reason: RestartReason::MaximumRequests
                },
                c.at(101.0)
            )
            .action,
            Action::Nothing
        );
        let d = s.handle(
            Event::Exited {
                pid: 700,
                status: ExitStatus::Code(0),
            },
            c.at(101.5),
        );
        assert_eq!(d.action, Action::Spawn);
        assert_eq!(d.wake_at, None);
        assert_eq!(
            d.log,
            Some(LogLine {
                level: Level::Info,
                message: "Daemon process 'django' slot 0 (pid 700) has stopped for a restart because it grew past \
                          memory-limit; starting a new one now."
                    .into()
            })
        );
    }

    #[test]
    fn graceful_restart_escalates_usr1_term_kill() {
        let c = clock();
        let config = SupervisorConfig {
            graceful_timeout: Duration::from_secs(15),
            ..SupervisorConfig::default()
        };
        let mut s = Slot::new("app", 2, config);
        running(&mut s, &c, 800, 0.0);
        let d = s.handle(
            Event::Restart {
                reason: RestartReason::GracefulRestart,
            },
            c.at(10.0),
        );
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 800,
                signal: Signal::Graceful
            }
        );
        assert_eq!(d.wake_at, Some(c.at(25.0)));
        assert!(
            message(&d).ends_with("because Apache is doing a graceful restart; sending SIGUSR1.")
        );
        assert_eq!(s.handle(Event::Tick, c.at(24.9)).action, Action::Nothing);
        let d = s.handle(Event::Tick, c.at(25.0));
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 800,
                signal: Signal::Terminate
            }
        );
        assert_eq!(d.wake_at, Some(c.at(30.0)));
        assert_eq!(
            message(&d),
            "Daemon process 'app' slot 2 (pid 800) did not finish its requests within graceful-timeout (15 s); \
             sending SIGTERM."
        );
        let d = s.handle(Event::Tick, c.at(30.0));
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 800,
                signal: Signal::Kill
            }
        );
        assert_eq!(d.log.as_ref().unwrap().level, Level::Warning);
        assert_eq!(
            message(&d),
            "Daemon process 'app' slot 2 (pid 800) did not exit within shutdown-timeout (5 s) of SIGTERM; sending \
             SIGKILL."
        );
        let d = s.handle(Event::Tick, c.at(35.0));
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 800,
                signal: Signal::Kill
            }
        );
        assert_eq!(d.log.as_ref().unwrap().level, Level::Error);
        assert!(message(&d).contains("still has not exited 5 s after SIGKILL"));
        let d = s.handle(
            Event::Exited {
                pid: 800,
                status: KILL,
            },
            c.at(35.5),
        );
        assert_eq!(d.action, Action::Spawn);
        assert_eq!(
            d.log,
            Some(LogLine {
                level: Level::Warning,
                message: "Daemon process 'app' slot 2 (pid 800) was killed with SIGKILL after it did not exit within \
                          shutdown-timeout (5 s) for a restart because Apache is doing a graceful restart; starting \
                          a new one now."
                    .into()
            })
        );
    }

    #[test]
    fn graceful_restart_during_backoff_retries_now() {
        let c = clock();
        let mut s = slot();
        s.handle(Event::Start, c.at(0.0));
        s.handle(Event::Spawned { pid: 900 }, c.at(0.0));
        s.handle(
            Event::Exited {
                pid: 900,
                status: ExitStatus::Code(1),
            },
            c.at(0.2),
        );
        assert!(matches!(s.state(), SlotState::Waiting { .. }));
        // Other restart reasons do not cut the wait short.
        assert_eq!(
            s.handle(
                Event::Restart {
                    reason: RestartReason::MaximumRequests
                },
                c.at(0.3)
            )
            .action,
            Action::Nothing
        );
        let d = s.handle(
            Event::Restart {
                reason: RestartReason::GracefulRestart,
            },
            c.at(0.5),
        );
        assert_eq!(d.action, Action::Spawn);
        assert_eq!(s.consecutive_failures(), 0);
        assert_eq!(
            message(&d),
            "Starting daemon process 'django' slot 0 now, without waiting, because Apache is doing a graceful restart."
        );
    }

    #[test]
    fn startup_timeout_restart_counts_as_a_failure() {
        let c = clock();
        let mut s = slot();
        s.handle(Event::Start, c.at(0.0));
        s.handle(Event::Spawned { pid: 950 }, c.at(0.0));
        let d = s.handle(
            Event::Restart {
                reason: RestartReason::StartupTimeout,
            },
            c.at(15.0),
        );
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 950,
                signal: Signal::Terminate
            }
        );
        let d = s.handle(
            Event::Exited {
                pid: 950,
                status: ExitStatus::Code(0),
            },
            c.at(15.2),
        );
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.wake_at, Some(c.at(16.2)));
        assert_eq!(s.consecutive_failures(), 1);
        assert!(
            message(&d)
                .contains("restarted because its WSGI script did not load within startup-timeout")
        );
    }

    #[test]
    fn shutdown_stops_without_respawning() {
        let c = clock();
        let mut s = slot();
        running(&mut s, &c, 1000, 0.0);
        let d = s.handle(Event::Shutdown, c.at(50.0));
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 1000,
                signal: Signal::Terminate
            }
        );
        assert_eq!(d.wake_at, Some(c.at(55.0)));
        assert_eq!(
            message(&d),
            "Stopping daemon process 'django' slot 0 (pid 1000) with SIGTERM because Apache is stopping."
        );
        let d = s.handle(
            Event::Exited {
                pid: 1000,
                status: ExitStatus::Code(0),
            },
            c.at(51.0),
        );
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.wake_at, None);
        assert_eq!(
            message(&d),
            "Daemon process 'django' slot 0 (pid 1000) has stopped."
        );
        assert!(s.is_stopped());
        for e in [
            Event::Start,
            Event::Tick,
            Event::Restart {
                reason: RestartReason::GracefulRestart,
            },
            Event::Shutdown,
        ] {
            assert_eq!(s.handle(e, c.at(60.0)), Decision::nothing());
        }
    }

    #[test]
    fn shutdown_kills_a_process_that_ignores_sigterm() {
        let c = clock();
        let mut s = slot();
        running(&mut s, &c, 1100, 0.0);
        s.handle(Event::Shutdown, c.at(1.0));
        let d = s.handle(Event::Tick, c.at(6.0));
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 1100,
                signal: Signal::Kill
            }
        );
        let d = s.handle(
            Event::Exited {
                pid: 1100,
                status: KILL,
            },
            c.at(6.1),
        );
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(
            d.log,
            Some(LogLine {
                level: Level::Warning,
                message: "Daemon process 'django' slot 0 (pid 1100) was killed with SIGKILL after it did not exit \
                          within shutdown-timeout (5 s)."
                    .into()
            })
        );
        assert!(s.is_stopped());
    }

    #[test]
    fn shutdown_during_graceful_restart_sends_sigterm_now() {
        let c = clock();
        let config = SupervisorConfig {
            graceful_timeout: Duration::from_secs(60),
            ..SupervisorConfig::default()
        };
        let mut s = Slot::new("django", 0, config);
        running(&mut s, &c, 1200, 0.0);
        s.handle(
            Event::Restart {
                reason: RestartReason::RestartInterval,
            },
            c.at(1.0),
        );
        let d = s.handle(Event::Shutdown, c.at(2.0));
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 1200,
                signal: Signal::Terminate
            }
        );
        assert_eq!(d.wake_at, Some(c.at(7.0)));
        let d = s.handle(
            Event::Exited {
                pid: 1200,
                status: ExitStatus::Code(0),
            },
            c.at(3.0),
        );
        assert_eq!(d.action, Action::Nothing);
        assert!(s.is_stopped());
    }

    #[test]
    fn shutdown_while_waiting_spawning_or_idle() {
        let c = clock();
        // Waiting in backoff: stop at once.
        let mut s = slot();
        s.handle(Event::Start, c.at(0.0));
        s.handle(
            Event::SpawnFailed {
                error: "fork: Resource temporarily unavailable".into(),
            },
            c.at(0.0),
        );
        assert_eq!(s.handle(Event::Shutdown, c.at(0.5)), Decision::nothing());
        assert!(s.is_stopped());
        // Idle.
        let mut s = slot();
        s.handle(Event::Shutdown, c.at(0.0));
        assert!(s.is_stopped());
        // Mid-fork: the new process is stopped as soon as its pid is known.
        let mut s = slot();
        s.handle(Event::Start, c.at(0.0));
        assert_eq!(s.handle(Event::Shutdown, c.at(0.0)).action, Action::Nothing);
        let d = s.handle(Event::Spawned { pid: 1300 }, c.at(0.1));
        assert_eq!(
            d.action,
            Action::Signal {
                pid: 1300,
                signal: Signal::Terminate
            }
        );
        s.handle(
            Event::Exited {
                pid: 1300,
                status: ExitStatus::Code(0),
            },
            c.at(0.2),
        );
        assert!(s.is_stopped());
        // Mid-fork, and the fork failed.
        let mut s = slot();
        s.handle(Event::Start, c.at(0.0));
        s.handle(Event::Shutdown, c.at(0.0));
        s.handle(
            Event::SpawnFailed {
                error: "fork failed".into(),
            },
            c.at(0.1),
        );
        assert!(s.is_stopped());
    }

    #[test]
    fn spawn_failure_backs_off_and_says_why() {
        let c = clock();
        let mut s = slot();
        s.handle(Event::Start, c.at(0.0));
        let d = s.handle(
            Event::SpawnFailed {
                error: "fork: Resource temporarily unavailable".into(),
            },
            c.at(0.0),
        );
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.wake_at, Some(c.at(1.0)));
        assert_eq!(
            d.log,
            Some(LogLine {
                level: Level::Error,
                message: "Could not start daemon process 'django' slot 0: fork: Resource temporarily unavailable; \
                          trying again in 1 s."
                    .into()
            })
        );
        assert_eq!(s.handle(Event::Tick, c.at(1.0)).action, Action::Spawn);
    }

    #[test]
    fn stale_and_unexpected_events_are_ignored() {
        let c = clock();
        let mut s = slot();
        running(&mut s, &c, 1400, 0.0);
        let d = s.handle(
            Event::Exited {
                pid: 999,
                status: KILL,
            },
            c.at(1.0),
        );
        assert_eq!(d.action, Action::Nothing);
        assert_eq!(d.log.as_ref().unwrap().level, Level::Debug);
        assert_eq!(
            message(&d),
            "Ignoring the exit of pid 999: daemon process 'django' slot 0 has pid 1400."
        );
        assert_eq!(s.pid(), Some(1400));
        assert_eq!(
            s.handle(Event::Ready { pid: 999 }, c.at(1.0)),
            Decision::nothing()
        );
        assert_eq!(
            s.handle(Event::Spawned { pid: 5 }, c.at(1.0)).action,
            Action::Nothing
        );
        assert_eq!(
            s.handle(Event::SpawnFailed { error: "x".into() }, c.at(1.0)),
            Decision::nothing()
        );
        assert_eq!(s.handle(Event::Tick, c.at(2.0)), Decision::nothing());
        assert_eq!(s.pid(), Some(1400));
        // Ready while stopping is remembered (it decides the backoff).
        s.handle(Event::Shutdown, c.at(3.0));
        s.handle(Event::Ready { pid: 1400 }, c.at(3.0));
        assert!(matches!(s.state(), SlotState::Stopping { ready: true, .. }));
    }

    #[test]
    fn wait_status_decoding() {
        assert_eq!(ExitStatus::from_wait_status(0), ExitStatus::Code(0));
        assert_eq!(ExitStatus::from_wait_status(1 << 8), ExitStatus::Code(1));
        assert_eq!(
            ExitStatus::from_wait_status(111 << 8),
            ExitStatus::Code(111)
        );
        assert_eq!(
            ExitStatus::from_wait_status(9),
            ExitStatus::Signal {
                signal: 9,
                core_dumped: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(11 | 0x80),
            ExitStatus::Signal {
                signal: 11,
                core_dumped: true
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status((19 << 8) | 0x7f),
            ExitStatus::Signal {
                signal: 19,
                core_dumped: false
            }
        );
        assert_eq!(ExitStatus::Code(3).to_string(), "exited with status 3");
        assert_eq!(
            ExitStatus::Code(113).to_string(),
            "exited because it was idle for inactivity-timeout (exit status 113)"
        );
        assert_eq!(
            ExitStatus::Signal {
                signal: 64,
                core_dumped: false
            }
            .to_string(),
            "was killed by signal 64"
        );
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(signal_name(11), Some("SIGSEGV"));
        assert_eq!(signal_name(15), Some("SIGTERM"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(-1), None);
        #[cfg(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))]
        {
            assert_eq!(signal_name(7), Some("SIGBUS"));
            assert_eq!(signal_name(10), Some("SIGUSR1"));
            assert_eq!(signal_name(24), Some("SIGXCPU"));
            assert_eq!(
                ExitStatus::Signal {
                    signal: 24,
                    core_dumped: false
                }
                .to_string(),
                "was killed by signal SIGXCPU (24) (it used up cpu-time-limit)"
            );
        }
        assert_eq!(Signal::Graceful.name(), "SIGUSR1");
    }

    #[test]
    fn durations_read_naturally() {
        let f = |ms: u64| fmt_duration(Duration::from_millis(ms));
        assert_eq!(f(0), "0 ms");
        assert_eq!(f(400), "400 ms");
        assert_eq!(f(1000), "1 s");
        assert_eq!(f(2500), "2.5 s");
        assert_eq!(f(12_700), "12 s");
        assert_eq!(f(60_000), "1 min");
        assert_eq!(f(192_000), "3 min 12 s");
        assert_eq!(f(3_600_000), "1 h");
        assert_eq!(f(7_500_000), "2 h 5 min");
        assert_eq!(f(86_400_000 * 3 + 3_600_000 * 4), "3 d 4 h");
    }

    #[test]
    fn backoff_saturates() {
        let s = slot();
        assert_eq!(s.backoff(0), Duration::ZERO);
        assert_eq!(s.backoff(1), Duration::from_secs(1));
        assert_eq!(s.backoff(5), Duration::from_secs(16));
        assert_eq!(s.backoff(6), Duration::from_secs(30));
        assert_eq!(s.backoff(40), Duration::from_secs(30));
        assert_eq!(s.backoff(u32::MAX), Duration::from_secs(30));
    }
}
