//! What a confined helper may still do once its limits are set: no file
//! opened (Landlock), no socket, no program started, no other process
//! traced or signalled (a seccomp filter). Both apply to the calling
//! thread and everything it starts later, need `PR_SET_NO_NEW_PRIVS`
//! first, and cannot be undone. A kernel without Landlock (before 5.13, or
//! not in its `lsm=` list) keeps the seccomp filter; one without seccomp
//! filters keeps the limits alone ([`Restricted`] says which applied).

/// The layers [`restrict_this_thread`] could apply on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restricted {
    /// The Landlock ABI version in force; `None`: the kernel has none.
    pub landlock: Option<u32>,
    /// Whether the seccomp filter is installed.
    pub seccomp: bool,
}

/// Forbid this thread, and whatever it starts, to open files, make
/// sockets, run programs, or trace or signal any process but its own.
/// Set `PR_SET_NO_NEW_PRIVS` first. Layers the kernel lacks are skipped;
/// an error means a layer the kernel has refused to apply.
pub fn restrict_this_thread() -> std::io::Result<Restricted> {
    let landlock = forbid_files()?;
    let seccomp = forbid_syscalls()?;
    Ok(Restricted { landlock, seccomp })
}

/// `struct landlock_ruleset_attr` of ABI 6 and later; earlier ABIs take
/// a prefix of it.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;

/// A Landlock ruleset that handles every file access right the kernel
/// knows (and, from ABI 4, TCP bind and connect; from ABI 6, signals and
/// abstract sockets outside the domain) and allows none of them.
#[allow(unsafe_code)]
fn forbid_files() -> std::io::Result<Option<u32>> {
    // SAFETY: asking for the ABI version passes no memory.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    let Ok(abi) = u32::try_from(abi) else {
        // ENOSYS or EOPNOTSUPP: no Landlock here.
        return Ok(None);
    };
    // Access rights by the ABI that added them: 13 in ABI 1, REFER in 2,
    // TRUNCATE in 3, IOCTL_DEV in 5.
    let fs_rights = match abi {
        1 => 13,
        2 => 14,
        3 | 4 => 15,
        _ => 16,
    };
    let attr = RulesetAttr {
        handled_access_fs: (1u64 << fs_rights) - 1,
        handled_access_net: if abi >= 4 { 0b11 } else { 0 },
        scoped: if abi >= 6 { 0b11 } else { 0 },
    };
    let size = match abi {
        1..=3 => 8,
        4 | 5 => 16,
        _ => std::mem::size_of::<RulesetAttr>(),
    };
    // SAFETY: the kernel reads `size` bytes of `attr`, a live struct of at
    // least that size; the descriptor it returns is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, &attr, size, 0u32) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: restrict_self takes the ruleset descriptor just made; close
    // releases it.
    let rc = unsafe {
        let rc = libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32);
        libc::close(fd as libc::c_int);
        rc
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Some(abi))
}

/// `AUDIT_ARCH_*` of the system calls this build makes; the filter
/// refuses every call made through another ABI (x32, or 32-bit calls on a
/// 64-bit kernel), whose numbers mean other things.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(target_arch = "arm")]
const AUDIT_ARCH: u32 = 0x4000_0028;

/// System calls refused outright, with EPERM.
const FORBIDDEN: [libc::c_long; 12] = [
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_connect,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_getfd,
    libc::SYS_tkill,
    libc::SYS_pidfd_send_signal,
];

/// System calls allowed only aimed at this process (its first argument is
/// its own pid): an abort signals itself.
const OWN_PROCESS_ONLY: [libc::c_long; 2] = [libc::SYS_kill, libc::SYS_tgkill];

/// Offsets into `struct seccomp_data`: `nr`, `arch`, and the two halves
/// of `args[0]` (little-endian, as on every target this builds for).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;
const ARG0_HIGH: u32 = 20;

fn load(offset: u32) -> libc::sock_filter {
    statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

fn statement(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump_if_equal(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// The filter program: pure, so it can be read and tested apart from the
/// kernel. The last two instructions are "allow" and "refuse".
fn filter_program(own_pid: u32) -> Vec<libc::sock_filter> {
    let allow = statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW);
    let refuse = statement(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA),
    );
    let mut body = Vec::new();
    // Each jump is counted forward from the instruction after it, to the
    // two final instructions, whose places are known once the body is.
    enum To {
        Refuse,
        Allow,
        Next,
    }
    let mut jumps: Vec<(usize, To, To)> = Vec::new();
    body.push(load(ARCH));
    jumps.push((body.len(), To::Next, To::Refuse));
    body.push(jump_if_equal(AUDIT_ARCH, 0, 0));
    body.push(load(NR));
    #[cfg(target_arch = "x86_64")]
    {
        // x32 calls: the same arch, numbers with bit 30 set.
        const X32_SYSCALL_BIT: u32 = 0x4000_0000;
        body.push(libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: X32_SYSCALL_BIT,
        });
        jumps.push((body.len() - 1, To::Refuse, To::Next));
    }
    for nr in FORBIDDEN {
        jumps.push((body.len(), To::Refuse, To::Next));
        body.push(jump_if_equal(nr as u32, 0, 0));
    }
    for nr in OWN_PROCESS_ONLY {
        // nr? then check args[0]; else on to the next test (four later).
        body.push(jump_if_equal(nr as u32, 0, 4));
        body.push(load(ARG0_LOW));
        jumps.push((body.len(), To::Next, To::Refuse));
        body.push(jump_if_equal(own_pid, 0, 0));
        body.push(load(ARG0_HIGH));
        jumps.push((body.len(), To::Allow, To::Refuse));
        body.push(jump_if_equal(0, 0, 0));
        // A call with another number needs `nr` loaded again.
        body.push(load(NR));
    }
    let allow_at = body.len();
    let refuse_at = allow_at + 1;
    for (at, jt, jf) in jumps {
        let offset = |to: To| -> u8 {
            let target = match to {
                To::Next => return 0,
                To::Allow => allow_at,
                To::Refuse => refuse_at,
            };
            u8::try_from(target - at - 1).expect("the filter is short enough for 8-bit jumps")
        };
        body[at].jt = offset(jt);
        body[at].jf = offset(jf);
    }
    body.push(allow);
    body.push(refuse);
    body
}

/// Install [`filter_program`] on this thread.
#[allow(unsafe_code)]
fn forbid_syscalls() -> std::io::Result<bool> {
    let program = filter_program(std::process::id());
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len()).expect("a short filter"),
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: the kernel copies the program `fprog` points to (alive for
    // the call) and installs it on this thread only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
            0,
            0,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    // EINVAL: a kernel built without seccomp filters.
    if e.raw_os_error() == Some(libc::EINVAL) {
        return Ok(false);
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(unsafe_code)]
    fn no_new_privs() {
        // SAFETY: prctl with integer arguments changes this thread's flag.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    }

    #[test]
    fn a_confined_thread_has_no_files_network_programs_or_other_processes() {
        // In a thread of its own: both layers bind the calling thread only.
        let outcome = std::thread::spawn(|| {
            no_new_privs();
            let restricted = restrict_this_thread().expect("the kernel applies what it has");
            let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
            let udp = std::net::UdpSocket::bind("127.0.0.1:0");
            let tcp = std::net::TcpStream::connect("127.0.0.1:9");
            let program = std::process::Command::new("/bin/true").status();
            // SAFETY: getppid has no arguments; kill with signal 0 only
            // checks whether a signal could be sent.
            #[allow(unsafe_code)]
            let (to_parent, to_self) = unsafe {
                (
                    libc::kill(libc::getppid(), 0),
                    libc::kill(libc::getpid(), 0),
                )
            };
            (
                restricted,
                file.is_err(),
                udp.is_err(),
                tcp.is_err(),
                program.is_err(),
                to_parent,
                to_self,
            )
        })
        .join()
        .unwrap();
        let (restricted, no_file, no_udp, no_tcp, no_program, to_parent, to_self) = outcome;
        assert!(restricted.seccomp, "{restricted:?}");
        assert!(no_udp && no_tcp, "no sockets");
        assert!(no_program, "no programs");
        assert_eq!(to_parent, -1, "no signal to another process");
        assert_eq!(to_self, 0, "its own signals still work");
        if restricted.landlock.is_some() {
            assert!(no_file, "no files under Landlock");
        }
        // The rest of the process is untouched.
        assert!(std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).is_ok());
        assert!(std::net::UdpSocket::bind("127.0.0.1:0").is_ok());
    }

    #[test]
    fn the_filter_ends_in_allow_and_refuse_and_every_jump_lands_inside() {
        let p = filter_program(1234);
        let n = p.len();
        assert_eq!(p[n - 2].k, libc::SECCOMP_RET_ALLOW);
        assert_eq!(
            p[n - 1].k & !libc::SECCOMP_RET_DATA,
            libc::SECCOMP_RET_ERRNO
        );
        for (i, ins) in p.iter().enumerate() {
            if ins.code & 0x07 == libc::BPF_JMP as u16 {
                assert!(
                    i + 1 + usize::from(ins.jt) < n && i + 1 + usize::from(ins.jf) < n,
                    "{i}"
                );
            }
        }
    }
}
