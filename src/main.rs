//! The `klachtpost` command. Everything is in the library; see `src/lib.rs` for the map.

fn main() -> std::process::ExitCode {
    fixed_mmap_threshold();
    klachtpost::cli::main()
}

/// glibc raises its mmap threshold each time a large buffer is freed (up to 32 MiB), so
/// after the first mail with a 20 MB attachment the next ones come from the heap, whose
/// memory is not given back: peak RSS grew by half again (issue 8: 159 → 103 MiB for three
/// such mails). A fixed threshold keeps every buffer of 1 MiB or more in its own mapping,
/// returned to the system when freed.
///
/// Two arenas instead of glibc's eight per CPU: every thread (the runtime's, each database
/// connection's) would otherwise keep freed memory in an arena of its own; the threads share
/// one CPU anyway (`[run] cpus`). Peak RSS of the 10,000-mail backlog with 20 MB attachments:
/// 61.7 → 58.7 MiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fixed_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; called first thing in main, before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fixed_mmap_threshold() {}
