//! What `klachtpost run` sets up in the process itself: logging, the CPU its threads run
//! on, and the signals that stop it.

/// Logs go to stderr; `KLACHTPOST_LOG` sets the filter (default `info`). At info and
/// above nothing of a complaint's content, names or addresses is logged.
/// `default` is the filter when the variable is not set.
pub fn init_tracing(default: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KLACHTPOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Keep every thread of the process, and every thread it starts later, on the CPU this
/// one runs on (`[run] cpus = "one"`, the default).
///
/// Each mail passed between threads dozens of times: the runtime's workers, and the
/// database's connection threads (sqlx runs each SQLite statement on the connection's own
/// thread; since `store::direct` only a pool's queries and a transaction's begin and
/// commit still do). Spread over CPUs, every pass wakes another CPU (in a virtual machine, an
/// interrupt to a halted virtual CPU); on one CPU it is a context switch. Measured with
/// `scripts/bench-backlog` on a 2-CPU VM: 2,000 mails in 22.2 s spread, 9.4 s on one CPU,
/// with a fifth of the system time. The work itself is small, so one CPU is enough; a
/// failure to pin is logged and changes nothing else.
///
/// The threads also run as batch work (`SCHED_BATCH`): a thread woken by another does not
/// take the CPU from it at once, so the connection thread sends all the results of a query
/// before the runtime's thread takes them, instead of a pair of context switches per
/// result. 3,000 mails (`scripts/bench-cpu`): context
/// switches 130,000 → 70,000, CPU −11 %. Nothing waits longer for it: an idle process's
/// thread still runs at once when woken.
#[cfg(target_os = "linux")]
pub(super) fn keep_to_one_cpu() {
    // SAFETY: plain system calls on a zeroed cpu_set_t of our own.
    let cpu = unsafe { libc::sched_getcpu() };
    let Ok(cpu) = usize::try_from(cpu) else {
        return;
    };
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // The runtime's threads exist already: each is moved (new ones inherit the mask).
    let tasks = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut failed = 0;
    let batch = libc::sched_param { sched_priority: 0 };
    for tid in &tasks {
        // SAFETY: `set` is a valid cpu_set_t of the size given, `batch` a valid
        // sched_param (priority 0, as SCHED_BATCH requires); new threads inherit both.
        let r = unsafe {
            if libc::sched_setaffinity(*tid, std::mem::size_of_val(&set), &set) != 0 {
                -1
            } else {
                libc::sched_setscheduler(*tid, libc::SCHED_BATCH, &batch)
            }
        };
        if r != 0 {
            failed += 1;
        }
    }
    if failed == 0 {
        tracing::info!(
            event = "run.one_cpu",
            cpu,
            threads = tasks.len(),
            "threads kept to one CPU, as batch work ([run] cpus = \"one\")"
        );
    } else {
        tracing::warn!(event = "run.one_cpu_failed", cpu, failed, error = %std::io::Error::last_os_error(), "cannot keep every thread to one CPU as batch work; running as placed");
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn keep_to_one_cpu() {}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM in between (right after start-up, while the store
/// is opened) would otherwise kill the process instead of stopping it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                    only.recv().await;
                }
                (Err(_), Err(_)) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
