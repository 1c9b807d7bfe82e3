//! The process heap on a small board: glibc's allocator, tuned so that
//! the monitor's resident memory follows what it holds, not what it once
//! held. Elsewhere (another libc) these do nothing.

/// One malloc arena for the whole process. glibc otherwise gives each
/// thread that allocates an arena of its own (up to eight per core), and
/// memory freed in one is never reused by another: on the board that was
/// a third of the monitor's RSS. Our threads allocate little and rarely
/// at once, so sharing one costs nothing measurable. The mmap threshold
/// is fixed too (below). Call it first thing.
#[allow(unsafe_code)]
pub fn use_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; it is called before any
    // other thread exists, and the values are in glibc's valid ranges.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        // A fixed threshold: glibc otherwise raises it to the size of the
        // largest block freed so far (a round's buffers at 10,000 targets
        // are megabytes), after which such buffers come from the heap and
        // leave it fragmented instead of going back to the kernel whole.
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD);
    }
}

/// Allocations from this size on get pages of their own, returned to the
/// kernel when freed (glibc's starting value, kept from rising).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

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
