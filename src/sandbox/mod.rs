//! The sandbox of a short-lived helper process, such as the workbook
//! reader (`targets::isolate`): no inherited descriptor but its standard
//! three, resource limits (address space, CPU time, no core dumps), every
//! capability dropped with no way back (`PR_SET_NO_NEW_PRIVS`), first in
//! line for the out-of-memory killer, and then no files, sockets, programs
//! or other processes ([`restrict`]). Its parent starts it with an empty
//! environment. Linux only, through libc; each unsafe block says why it is
//! sound.

pub mod restrict;

/// Confine this process to `memory` bytes of address space and `cpu`
/// seconds of CPU time, with no core dumps, no capabilities (the monitor
/// may hold CAP_NET_RAW) and no way to regain any, and offer it first to
/// the kernel's out-of-memory killer. For a short-lived helper process
/// (the workbook reader): past the memory cap allocations fail and the
/// process aborts; past the CPU cap the kernel stops it with SIGXCPU.
/// Limits already lower (set by systemd, say) are kept. Every descriptor
/// above stderr is closed first (a socket the parent was handed, say), and
/// [`restrict::restrict_this_thread`] comes last: call it before the
/// process starts any thread.
#[allow(unsafe_code)]
pub fn confine(memory: u64, cpu_seconds: u64) -> std::io::Result<restrict::Restricted> {
    close_inherited_descriptors();
    let lower = |resource, limit: u64| {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read or fill the struct we pass
        // and change only this process's limits.
        unsafe {
            if libc::getrlimit(resource, &mut rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // rlim_t is 32 bits on armhf: a limit it cannot hold is more
            // than such a process can address, i.e. no limit, where a
            // plain cast would wrap it to a few bytes. (On 64-bit targets
            // it is u64 already, the conversion a no-op.)
            #[allow(clippy::useless_conversion)]
            let limit = libc::rlim_t::try_from(limit)
                .unwrap_or(libc::RLIM_INFINITY)
                .min(rl.rlim_max);
            rl.rlim_cur = limit;
            rl.rlim_max = limit;
            if libc::setrlimit(resource, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    lower(libc::RLIMIT_AS, memory)?;
    lower(libc::RLIMIT_CPU, cpu_seconds)?;
    lower(libc::RLIMIT_CORE, 0)?;
    drop_capabilities()?;
    // Best effort: a kernel without it still has the limits above.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    restrict::restrict_this_thread()
}

/// Close every descriptor but stdin, stdout and stderr.
#[allow(unsafe_code)]
fn close_inherited_descriptors() {
    // SAFETY: close_range and close only end descriptors; nothing in this
    // process holds one above 2 yet (the helper calls this first).
    unsafe {
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            // Before Linux 5.9: one by one, up to the descriptor limit.
            let most = libc::sysconf(libc::_SC_OPEN_MAX).clamp(3, 65_536) as libc::c_int;
            for fd in 3..most {
                libc::close(fd);
            }
        }
    }
}

/// The unit of the process times in `/proc/PID/stat` (`USER_HZ`).
#[allow(unsafe_code)]
pub fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0)
}

/// Clear every capability set of this process (ambient first, so nothing
/// comes back at the next exec) and forbid gaining privileges again.
#[allow(unsafe_code)]
fn drop_capabilities() -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let check = |rc: libc::c_long| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let none = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: prctl with these integer arguments only changes this
    // process's capability and privilege flags; capset reads the header
    // and the two data structs (version 3 takes two) we pass.
    unsafe {
        // Ambient capabilities exist since Linux 4.3; without them there is
        // nothing to clear.
        let _ = libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        check(libc::syscall(libc::SYS_capset, &header, none.as_ptr()))?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;
    }
    Ok(())
}
