//! glibc malloc settings that keep a long-running server's memory flat.
//!
//! With the defaults, glibc gives threads up to eight arenas per core and raises its
//! mmap threshold after every large free, so the large transient buffers of reads
//! (search candidates, pages of messages) end up inside arenas that never shrink: in a
//! 3-minute mixed load on 2 cores, RSS kept climbing from 168 MB to 186 MB across 14
//! arenas. Two arenas, a fixed 256 kB mmap threshold (large buffers go straight back
//! to the system) and a 1 MB trim threshold, with SQLite's heap capped, held it between
//! 128 and 141 MB from 30 s on (`engram-bench --scenarios soak`, README "Load and soak").

/// Environment variables with which an operator sets these by hand; an explicit
/// setting wins over engram's.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TUNABLES: [(&str, libc::c_int, libc::c_int); 3] = [
    ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2),
    ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 256 * 1024),
    (
        "MALLOC_TRIM_THRESHOLD_",
        libc::M_TRIM_THRESHOLD,
        1024 * 1024,
    ),
];

/// Applies the settings; call before any thread is started, since arenas are
/// handed out as threads first allocate.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune() {
    for (env, param, value) in TUNABLES {
        if std::env::var_os(env).is_none() {
            // SAFETY: mallopt only changes allocator parameters; it is called before
            // any other thread exists, and a refused value leaves the default.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}

/// Other allocators manage their own memory.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}
