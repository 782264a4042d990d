//! Pure decisions made *inside* a daemon process, with the clock passed in:
//! `queue-timeout` at pickup, the `startup-timeout` timer, the
//! `deadlock-timeout` watch, graceful draining (SIGUSR1 with
//! `eviction-timeout`, `cpu-time-limit`), the resource limits to set after
//! the fork, and the `script-user`/`script-group` ownership check.
//!
//! `daemon::worker` (and `daemon::client` for the ownership check) carries
//! these out; [`super::supervisor`] decides what the *parent* does about a
//! process. Keeping the decisions here, free of threads, signals and
//! clocks, lets every rule and log sentence be unit-tested below. The
//! sentences are mod_wsgi's own where mod_wsgi has one.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// Whether a request that Apache's child handed over at `queued_at_us`
/// (µs since the epoch, the request head's `queue_start_us`) has waited
/// longer than `queue-timeout` by `now_us`, so that it must be answered 504
/// without running. mod_wsgi checks at pickup, not while the request waits
/// in the listen backlog: the backlog is the buffer, the timeout decides
/// which of its requests are still worth serving when a thread frees up.
pub fn queue_timed_out(queued_at_us: u64, now_us: i64, limit: Option<Duration>) -> bool {
    let Some(limit) = limit.filter(|l| !l.is_zero()) else {
        return false;
    };
    let waited = (now_us.max(0) as u64).saturating_sub(queued_at_us);
    u128::from(waited) > limit.as_micros()
}

/// mod_wsgi's log sentence for a request dropped by `queue-timeout`.
pub fn queue_timeout_message(group: &str) -> String {
    format!("Queue timeout expired for WSGI daemon process '{group}'.")
}

/// The `startup-timeout` timer: armed by the first attempt to load the
/// WSGI script, cancelled for good by the first successful load. If it
/// expires first, the process is restarted, because some frameworks
/// (Django) cannot retry a failed start-up in the same process, so a later
/// fix would never be picked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupTimer {
    /// No load attempted yet (or no `startup-timeout`).
    Idle,
    /// A load was attempted; restart at `deadline` unless one succeeds.
    Armed { deadline: Instant },
    /// A load succeeded: the timer never runs again in this process.
    Cancelled,
}

impl StartupTimer {
    /// A load is about to be attempted. Returns the sentence to log when
    /// this arms the timer.
    pub fn on_attempt(
        &mut self,
        now: Instant,
        timeout: Option<Duration>,
        group: &str,
    ) -> Option<String> {
        let timeout = timeout.filter(|t| !t.is_zero())?;
        if *self != StartupTimer::Idle {
            return None;
        }
        *self = StartupTimer::Armed {
            deadline: now + timeout,
        };
        Some(format!(
            "Application startup timer started for daemon process '{group}'."
        ))
    }

    /// The script loaded. Returns the sentence to log when this cancels a
    /// running timer.
    pub fn on_loaded(&mut self, group: &str) -> Option<String> {
        let was_armed = matches!(self, StartupTimer::Armed { .. });
        *self = StartupTimer::Cancelled;
        was_armed
            .then(|| format!("Application startup timer cancelled for daemon process '{group}'."))
    }

    /// Whether the timer has expired at `now`: restart the process.
    pub fn expired(&self, now: Instant) -> bool {
        matches!(self, StartupTimer::Armed { deadline } if now >= *deadline)
    }
}

/// mod_wsgi's sentence when `startup-timeout` expires.
pub fn startup_expired_message(group: &str) -> String {
    format!("Application startup timer expired, stopping process '{group}'.")
}

/// Whether the Python GIL, last acquired by the watch thread at
/// `last_acquired`, looks deadlocked at `now`: a C extension holding it
/// for `deadlock-timeout` stops every Python thread of the process, and
/// only a restart recovers.
pub fn deadlocked(last_acquired: Instant, now: Instant, timeout: Option<Duration>) -> bool {
    match timeout.filter(|t| !t.is_zero()) {
        Some(t) => now.saturating_duration_since(last_acquired) >= t,
        None => false,
    }
}

/// mod_wsgi's sentence when `deadlock-timeout` expires.
pub fn deadlock_message(group: &str) -> String {
    format!("Daemon process deadlock timer expired, stopping process '{group}'.")
}

/// Why a daemon process drains before it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainCause {
    /// SIGUSR1 sent to the daemon (mod_wsgi's "eviction").
    Eviction,
    /// `cpu-time-limit` reached (SIGXCPU).
    CpuTimeLimit,
}

/// A graceful drain: the process keeps accepting requests while it waits
/// to become idle, and stops as soon as it is idle or the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    pub cause: DrainCause,
    pub deadline: Instant,
}

/// What to do now about a drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainStep {
    /// Keep serving; check again later.
    Wait { log: Option<String> },
    /// Stop now (then the usual shutdown, bounded by `shutdown-timeout`).
    Stop { log: String },
}

impl Drain {
    /// The drain window for `cause`: `eviction-timeout`, else
    /// `graceful-timeout`, for SIGUSR1; `graceful-timeout` for the CPU
    /// limit. No window means stop at once.
    pub fn window(
        cause: DrainCause,
        graceful: Option<Duration>,
        eviction: Option<Duration>,
    ) -> Duration {
        let w = match cause {
            DrainCause::Eviction => eviction.or(graceful),
            DrainCause::CpuTimeLimit => graceful,
        };
        w.unwrap_or_default()
    }

    /// Starts a drain at `now` with `active` requests in flight: returns the
    /// drain to keep (None when stopping at once) and the step.
    pub fn begin(
        cause: DrainCause,
        now: Instant,
        window: Duration,
        active: usize,
        group: &str,
    ) -> (Option<Drain>, DrainStep) {
        let what = match cause {
            DrainCause::Eviction => "Process eviction requested",
            DrainCause::CpuTimeLimit => "Exceeded CPU time limit",
        };
        if active == 0 || window.is_zero() {
            return (
                None,
                DrainStep::Stop {
                    log: format!("{what}, triggering immediate shutdown '{group}'."),
                },
            );
        }
        (
            Some(Drain {
                cause,
                deadline: now + window,
            }),
            DrainStep::Wait {
                log: Some(format!(
                    "{what}, waiting for requests to complete '{group}'."
                )),
            },
        )
    }

    /// A later check, with `active` requests in flight.
    pub fn check(&self, now: Instant, active: usize, group: &str) -> DrainStep {
        if active == 0 {
            DrainStep::Stop {
                log: format!("Requests have completed, triggering immediate shutdown '{group}'."),
            }
        } else if now >= self.deadline {
            DrainStep::Stop {
                log: format!("Daemon process graceful timer expired '{group}'."),
            }
        } else {
            DrainStep::Wait { log: None }
        }
    }
}

/// A resource limit a daemon process sets on itself after the fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `RLIMIT_CPU` (seconds): `cpu-time-limit`.
    Cpu,
    /// `RLIMIT_DATA` (bytes): `memory-limit`.
    Data,
    /// `RLIMIT_AS` (bytes): `virtual-memory-limit`.
    AddressSpace,
}

impl Resource {
    /// The option that asks for it, for log sentences.
    pub const fn option(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu-time-limit",
            Resource::Data => "memory-limit",
            Resource::AddressSpace => "virtual-memory-limit",
        }
    }
}

/// One `setrlimit` to make. `hard` None leaves the hard limit as it is
/// (usually unlimited): for the CPU limit the soft limit sends SIGXCPU,
/// which the daemon answers with a graceful restart, and keeping the hard
/// limit out of the way lets the requests in flight finish; for memory
/// there is nothing to gain from a hard limit the process could not raise
/// anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub resource: Resource,
    pub soft: u64,
}

/// The limits for `cpu-time-limit`, `memory-limit` and
/// `virtual-memory-limit` (None or zero: not set).
pub fn resource_limits(
    cpu: Option<Duration>,
    memory: Option<u64>,
    virtual_memory: Option<u64>,
) -> Vec<Limit> {
    let mut out = Vec::new();
    if let Some(c) = cpu.filter(|c| !c.is_zero()) {
        // RLIMIT_CPU counts whole seconds; round a fraction up.
        let secs = c.as_secs() + u64::from(c.subsec_nanos() > 0);
        out.push(Limit {
            resource: Resource::Cpu,
            soft: secs,
        });
    }
    if let Some(m) = memory.filter(|m| *m > 0) {
        out.push(Limit {
            resource: Resource::Data,
            soft: m,
        });
    }
    if let Some(v) = virtual_memory.filter(|v| *v > 0) {
        out.push(Limit {
            resource: Resource::AddressSpace,
            soft: v,
        });
    }
    out
}

/// Who must own a WSGI script delegated to a daemon group with
/// `script-user=` or `script-group=`, as resolved ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOwner {
    User(u32),
    Group(u32),
}

/// Whether a script file owned by `uid`:`gid` may run under `rule`.
pub fn script_owner_allowed(rule: ScriptOwner, uid: u32, gid: u32) -> bool {
    match rule {
        ScriptOwner::User(u) => u == uid,
        ScriptOwner::Group(g) => g == gid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn queue_timeout_is_measured_from_queue_start() {
        let limit = Some(Duration::from_secs(2));
        let start = 1_700_000_000 * S;
        assert!(!queue_timed_out(start, (start + S) as i64, limit));
        assert!(!queue_timed_out(start, (start + 2 * S) as i64, limit));
        assert!(queue_timed_out(start, (start + 2 * S + 1) as i64, limit));
        // No queue-timeout (or 0) never expires.
        assert!(!queue_timed_out(start, (start + 1000 * S) as i64, None));
        assert!(!queue_timed_out(
            start,
            (start + 1000 * S) as i64,
            Some(Duration::ZERO)
        ));
        // A clock that went backwards, or a missing start, is not a wait.
        assert!(!queue_timed_out(start, (start - S) as i64, limit));
        assert!(!queue_timed_out(start, -5, limit));
        assert!(queue_timed_out(0, (3 * S) as i64, limit));
        assert_eq!(
            queue_timeout_message("site"),
            "Queue timeout expired for WSGI daemon process 'site'."
        );
    }

    #[test]
    fn startup_timer_arms_once_and_is_cancelled_for_good() {
        let t0 = Instant::now();
        let to = Some(Duration::from_secs(5));
        let mut t = StartupTimer::Idle;
        assert!(!t.expired(t0 + Duration::from_secs(100)));
        assert_eq!(
            t.on_attempt(t0, to, "site").as_deref(),
            Some("Application startup timer started for daemon process 'site'.")
        );
        // Later failing attempts do not move the deadline.
        assert_eq!(t.on_attempt(t0 + Duration::from_secs(3), to, "site"), None);
        assert!(!t.expired(t0 + Duration::from_secs(4)));
        assert!(t.expired(t0 + Duration::from_secs(5)));
        assert_eq!(
            startup_expired_message("site"),
            "Application startup timer expired, stopping process 'site'."
        );
        // A success cancels it, and it never runs again.
        let mut t = StartupTimer::Idle;
        t.on_attempt(t0, to, "site");
        assert_eq!(
            t.on_loaded("site").as_deref(),
            Some("Application startup timer cancelled for daemon process 'site'.")
        );
        assert!(!t.expired(t0 + Duration::from_secs(100)));
        assert_eq!(
            t.on_attempt(t0 + Duration::from_secs(200), to, "site"),
            None
        );
        assert!(!t.expired(t0 + Duration::from_secs(300)));
        assert_eq!(t.on_loaded("site"), None);
        // Without startup-timeout nothing is armed, and a first success
        // before any failure cancels silently.
        let mut t = StartupTimer::Idle;
        assert_eq!(t.on_attempt(t0, None, "site"), None);
        assert_eq!(t.on_attempt(t0, Some(Duration::ZERO), "site"), None);
        assert_eq!(t, StartupTimer::Idle);
        assert_eq!(t.on_loaded("site"), None);
        assert_eq!(t, StartupTimer::Cancelled);
    }

    #[test]
    fn deadlock_watch() {
        let t0 = Instant::now();
        let to = Some(Duration::from_secs(300));
        assert!(!deadlocked(t0, t0 + Duration::from_secs(299), to));
        assert!(deadlocked(t0, t0 + Duration::from_secs(300), to));
        assert!(!deadlocked(t0, t0 + Duration::from_secs(9999), None));
        // A last acquisition after `now` (a race between threads) is fine.
        assert!(!deadlocked(t0 + Duration::from_secs(1), t0, to));
        assert_eq!(
            deadlock_message("site"),
            "Daemon process deadlock timer expired, stopping process 'site'."
        );
    }

    #[test]
    fn drain_windows() {
        let g = Some(Duration::from_secs(15));
        let e = Some(Duration::from_secs(60));
        assert_eq!(
            Drain::window(DrainCause::Eviction, g, e),
            Duration::from_secs(60)
        );
        assert_eq!(
            Drain::window(DrainCause::Eviction, g, None),
            Duration::from_secs(15)
        );
        assert_eq!(
            Drain::window(DrainCause::Eviction, None, None),
            Duration::ZERO
        );
        assert_eq!(
            Drain::window(DrainCause::CpuTimeLimit, g, e),
            Duration::from_secs(15)
        );
        assert_eq!(
            Drain::window(DrainCause::CpuTimeLimit, None, e),
            Duration::ZERO
        );
    }

    #[test]
    fn drain_stops_at_once_when_idle_or_without_a_window() {
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let (d, step) = Drain::begin(DrainCause::Eviction, t0, w, 0, "site");
        assert_eq!(d, None);
        assert_eq!(
            step,
            DrainStep::Stop {
                log: "Process eviction requested, triggering immediate shutdown 'site'.".into()
            }
        );
        let (d, step) = Drain::begin(DrainCause::CpuTimeLimit, t0, Duration::ZERO, 3, "site");
        assert_eq!(d, None);
        assert_eq!(
            step,
            DrainStep::Stop {
                log: "Exceeded CPU time limit, triggering immediate shutdown 'site'.".into()
            }
        );
    }

    #[test]
    fn drain_waits_for_requests_then_stops() {
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let (d, step) = Drain::begin(DrainCause::CpuTimeLimit, t0, w, 2, "site");
        let d = d.unwrap();
        assert_eq!(
            step,
            DrainStep::Wait {
                log: Some(
                    "Exceeded CPU time limit, waiting for requests to complete 'site'.".into()
                )
            }
        );
        assert_eq!(
            d.check(t0 + Duration::from_secs(5), 1, "site"),
            DrainStep::Wait { log: None }
        );
        assert_eq!(
            d.check(t0 + Duration::from_secs(6), 0, "site"),
            DrainStep::Stop {
                log: "Requests have completed, triggering immediate shutdown 'site'.".into()
            }
        );
        assert_eq!(
            d.check(t0 + Duration::from_secs(10), 4, "site"),
            DrainStep::Stop {
                log: "Daemon process graceful timer expired 'site'.".into()
            }
        );
        let (_, step) = Drain::begin(DrainCause::Eviction, t0, w, 1, "site");
        assert_eq!(
            step,
            DrainStep::Wait {
                log: Some(
                    "Process eviction requested, waiting for requests to complete 'site'.".into()
                )
            }
        );
    }

    #[test]
    fn resource_limits_from_options() {
        assert!(resource_limits(None, None, None).is_empty());
        assert!(resource_limits(Some(Duration::ZERO), Some(0), Some(0)).is_empty());
        let l = resource_limits(Some(Duration::from_secs(2)), Some(256 << 20), Some(2 << 30));
        assert_eq!(
            l,
            [
                Limit {
                    resource: Resource::Cpu,
                    soft: 2
                },
                Limit {
                    resource: Resource::Data,
                    soft: 256 << 20
                },
                Limit {
                    resource: Resource::AddressSpace,
                    soft: 2 << 30
                },
            ]
        );
        assert_eq!(
            resource_limits(Some(Duration::from_millis(1500)), None, None)[0].soft,
            2
        );
        assert_eq!(Resource::Data.option(), "memory-limit");
        assert_eq!(Resource::AddressSpace.option(), "virtual-memory-limit");
        assert_eq!(Resource::Cpu.option(), "cpu-time-limit");
    }

    #[test]
    fn script_ownership() {
        assert!(script_owner_allowed(ScriptOwner::User(1000), 1000, 5));
        assert!(!script_owner_allowed(ScriptOwner::User(1000), 0, 1000));
        assert!(script_owner_allowed(ScriptOwner::Group(33), 0, 33));
        assert!(!script_owner_allowed(ScriptOwner::Group(33), 33, 0));
    }
}
