//! The process heap on a small board: glibc's allocator, tuned so that
//! the monitor's resident memory follows what it holds, not what it once
//! held. Elsewhere (another libc) these do nothing.

/// One malloc arena for the whole process. glibc otherwise gives each
/// thread that allocates an arena of its own (up to eight per core), and
/// memory freed in one is never reused by another: on the board that was
/// a third of the monitor's RSS. Our threads allocate little and rarely
/// at once, so sharing one costs nothing measurable. Call it first thing.
#[allow(unsafe_code)]
pub fn use_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; it is called before any
    // other thread exists, and 1 is a valid M_ARENA_MAX.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hand the pages freed since the last call back to the kernel. A round
/// allocates and frees megabytes (its probes, the new snapshot, the batch
/// for the store); glibc keeps freed pages in the middle of the heap
/// resident until told otherwise.
#[allow(unsafe_code)]
pub fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists and
    // advises the kernel about free pages; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}
