//! Workbooks are parsed in a separate process: this program started again
//! as `edgeprobe read-workbook` (a hidden command), confined to
//! [`READER_MEMORY_BYTES`] of memory and [`READER_SECONDS`] of time.
//!
//! The spreadsheet library trusts what a file declares. A few hundred bytes
//! of `.xls` or `.ods` can make it allocate gigabytes, loop forever or
//! abort, and neither an abort nor the kernel's out-of-memory killer can be
//! caught inside a process. Outside it they become one clear message. The
//! reader also gives up every capability first: it parses untrusted bytes
//! and needs none. The caller waits for it (the monitor's loop at most
//! [`READER_SECONDS`]; rounds in flight, the LEDs and the dashboard go on).
//!
//! The protocol: the request as one JSON line, then the file's bytes, on
//! the reader's stdin; the answer, the target list itself (or why there is
//! none), as JSON on its stdout. Its addresses are checked again as they
//! are decoded.

use std::io::{BufRead, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::targets::limits::{human_bytes, SheetLimits, READER_MEMORY_BYTES, READER_SECONDS};
use crate::targets::workbook::{self, WorkbookError};
use crate::targets::{Format, TargetList};

/// The hidden command that runs [`serve_reader`].
pub const READER_COMMAND: &str = "read-workbook";

#[derive(Serialize, Deserialize)]
struct Request {
    /// The file as messages name it.
    file: String,
    formats: Vec<Format>,
    sheet: Option<String>,
    limits: SheetLimits,
}

type Answer = Result<TargetList, WorkbookError>;

/// Parse a workbook in a confined child process running `exe`. Blocking.
/// The outer error: the process could not be started at all.
pub fn read(
    exe: &Path,
    file: &str,
    formats: &[Format],
    bytes: &[u8],
    sheet: Option<&str>,
    limits: &SheetLimits,
) -> std::io::Result<Answer> {
    let format = formats.first().copied().unwrap_or(Format::Xlsx);
    let failed = |detail: String| WorkbookError::Unreadable { format, detail };
    let request = Request {
        file: file.to_owned(),
        formats: formats.to_vec(),
        sheet: sheet.map(str::to_owned),
        limits: *limits,
    };
    let mut line = serde_json::to_vec(&request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut child = Command::new(exe)
        .arg(READER_COMMAND)
        // Nothing of the caller's environment (a MongoDB URI, a token
        // file's path, the socket hand-over variables) reaches it.
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(std::io::Error::other("the workbook reader has no pipes"));
    };
    let deadline = Instant::now() + Duration::from_secs(READER_SECONDS);
    let (status, out, err) = std::thread::scope(|s| {
        // The reader may stop reading early (it died): a failed write is
        // then explained by its exit status.
        s.spawn(move || {
            let _ = stdin.write_all(&line).and_then(|()| stdin.write_all(bytes));
        });
        // The answer is bounded by the reader's own caps (cells, text);
        // this bound only keeps a misbehaving reader from filling memory.
        let most = limits.max_unzipped_bytes.saturating_mul(2) + (64 << 20);
        let out = s.spawn(move || read_all(stdout, most));
        let err = s.spawn(move || read_all(stderr, 64 * 1024));
        let status = wait_until(&mut child, deadline);
        let out = out.join().unwrap_or_default();
        let err = err.join().unwrap_or_default();
        (status, out, err)
    });
    let exit_code = match &status {
        Ended::Exited(s) => s.code(),
        Ended::OutOfTime { .. } => None,
    };
    if exit_code == Some(127) && out.is_empty() && err.is_empty() {
        // posix_spawn's exit code when the exec itself failed, which is how
        // it shows under qemu-user (it reports no error to the parent).
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} could not be executed", exe.display()),
        ));
    }
    let err = String::from_utf8_lossy(&err);
    Ok(match status {
        Ended::Exited(s) if s.success() => {
            serde_json::from_slice::<Answer>(&out).unwrap_or_else(|e| {
                Err(failed(format!(
                    "the workbook reader's answer was garbled: {e}"
                )))
            })
        }
        Ended::Exited(s) => Err(explain_failure(s, &err, format)),
        Ended::OutOfTime { cpu } => Err(explain_timeout(cpu)),
    })
}

/// How a reader process ended.
enum Ended {
    Exited(ExitStatus),
    /// Killed at the wall-time deadline, having used `cpu` of processor
    /// time (`None`: unknown).
    OutOfTime {
        cpu: Option<Duration>,
    },
}

/// The program to start as the reader: this very binary. `/proc/self/exe`
/// stays right when a package upgrade has replaced the file since start.
pub fn this_program() -> Option<std::path::PathBuf> {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Some(proc_exe.to_path_buf());
    }
    std::env::current_exe().ok()
}

/// Whether a failure to start the reader means it cannot be started here
/// at all (the program is missing, or the machine cannot run it, as under
/// qemu-user without binfmt support), rather than a passing shortage.
pub fn cannot_start_here(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOEXEC)
}

/// Wait for `child` until `deadline`; then note the processor time it
/// used and kill it.
fn wait_until(child: &mut std::process::Child, deadline: Instant) -> Ended {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ended::Exited(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let cpu = cpu_time_of(child.id());
                let _ = child.kill();
                let _ = child.wait();
                return Ended::OutOfTime { cpu };
            }
        }
    }
}

/// User and system time a running process has used, from
/// `/proc/PID/stat` (fields 14 and 15, in clock ticks).
fn cpu_time_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = crate::sandbox::clock_ticks_per_second()?;
    Some(Duration::from_millis((utime + stime) * 1000 / ticks))
}

/// A reader killed at the wall-time deadline: the file's doing if it
/// spent that time computing, the board's if it hardly ran at all (a slow
/// boot, a stopped or starved process), which is then worth another try.
fn explain_timeout(cpu: Option<Duration>) -> WorkbookError {
    let busy_enough = Duration::from_secs(READER_SECONDS) / 2;
    match cpu {
        Some(cpu) if cpu < busy_enough => WorkbookError::Interrupted {
            detail: format!(
                "the workbook reader did not finish within {READER_SECONDS} s but ran for only                  {:.1} s of it: the board was too busy (or the reader was stopped)",
                cpu.as_secs_f64()
            ),
        },
        _ => too_slow(),
    }
}

/// Up to `max` bytes of `pipe`; the rest is read and dropped, so the
/// writer never blocks on a full pipe.
fn read_all(mut pipe: impl Read, max: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = (&mut pipe).take(max).read_to_end(&mut buf);
    let _ = std::io::copy(&mut pipe, &mut std::io::sink());
    buf
}

fn too_slow() -> WorkbookError {
    WorkbookError::OverLimit {
        detail: format!(
            "reading it took more than {READER_SECONDS} s; a target list takes well under a second, \
             so the file is damaged or built to stall readers: save it again from a spreadsheet program"
        ),
    }
}

/// What a reader that did not answer went through.
fn explain_failure(status: ExitStatus, stderr: &str, format: Format) -> WorkbookError {
    // Rust reports a failed allocation before it aborts, which is the
    // reader's own memory limit: the file's doing.
    let out_of_memory = stderr.contains("memory allocation of");
    if status.signal() == Some(libc::SIGXCPU) {
        return too_slow();
    }
    if status.signal() == Some(libc::SIGKILL) && !out_of_memory {
        // Not ours (our kill is the timeout, above): the kernel's
        // out-of-memory killer, with the whole board short of memory.
        return WorkbookError::Interrupted {
            detail: "the workbook reader was killed (SIGKILL), most likely by the kernel's                      out-of-memory killer while the board was short of memory"
                .to_string(),
        };
    }
    if out_of_memory {
        return WorkbookError::OverLimit {
            detail: format!(
                "reading it needs more than {} of memory; a target list needs a few, so the file \
                 declares a far larger sheet than it holds (damaged or crafted): save it again \
                 from a spreadsheet program",
                human_bytes(READER_MEMORY_BYTES)
            ),
        };
    }
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    WorkbookError::Unreadable {
        format,
        detail: format!("the workbook reader failed on it ({status}): {last}"),
    }
}

/// The reader process: confine it, read the request and the bytes from
/// stdin, parse, answer on stdout. Returns the exit code.
pub fn serve_reader() -> u8 {
    if let Err(e) = crate::sandbox::confine(READER_MEMORY_BYTES, READER_SECONDS) {
        eprintln!("edgeprobe {READER_COMMAND}: cannot confine itself: {e}");
        return 2;
    }
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    let request: Request = match input
        .read_until(b'\n', &mut line)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice(&line).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("edgeprobe {READER_COMMAND}: bad request: {e}");
            return 2;
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = input
        .take(request.limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
    {
        eprintln!("edgeprobe {READER_COMMAND}: cannot read the file: {e}");
        return 2;
    }
    let answer = workbook::read_targets(
        &request.file,
        &request.formats,
        &bytes,
        request.sheet.as_deref(),
        &request.limits,
    );
    drop(bytes);
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &answer)
        .map_err(std::io::Error::from)
        .and_then(|()| out.flush());
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("edgeprobe {READER_COMMAND}: cannot answer: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_that_ran_out_of_memory_or_time_is_explained() {
        let segv = ExitStatus::from_raw(libc::SIGSEGV);
        let e = explain_failure(segv, "", Format::Xls);
        assert!(matches!(&e, WorkbookError::Unreadable { .. }), "{e:?}");
        let abort = ExitStatus::from_raw(libc::SIGABRT);
        let e = explain_failure(abort, "memory allocation of 1 bytes failed\n", Format::Xls);
        assert!(
            matches!(&e, WorkbookError::OverLimit { detail } if detail.contains("384 MiB")),
            "{e:?}"
        );
        let cpu = ExitStatus::from_raw(libc::SIGXCPU);
        assert_eq!(explain_failure(cpu, "", Format::Ods), too_slow());
        let oom_killer = ExitStatus::from_raw(libc::SIGKILL);
        let e = explain_failure(oom_killer, "", Format::Xlsx);
        assert!(matches!(&e, WorkbookError::Interrupted { .. }), "{e:?}");
        let code = ExitStatus::from_raw(101 << 8);
        let e = explain_failure(code, "thread 'main' panicked at x\nboom\n", Format::Xls);
        assert!(
            matches!(&e, WorkbookError::Unreadable { detail, .. } if detail.ends_with("boom")),
            "{e:?}"
        );
    }

    #[test]
    fn a_reader_out_of_time_is_the_files_doing_only_if_it_was_computing() {
        assert_eq!(explain_timeout(Some(Duration::from_secs(29))), too_slow());
        assert_eq!(explain_timeout(None), too_slow());
        let starved = explain_timeout(Some(Duration::from_millis(300)));
        assert!(
            matches!(&starved, WorkbookError::Interrupted { detail } if detail.contains("0.3 s")),
            "{starved:?}"
        );
    }

    #[test]
    fn the_processor_time_of_a_process_is_read_from_proc() {
        let mine = cpu_time_of(std::process::id()).expect("this process's /proc stat");
        assert!(mine < Duration::from_secs(24 * 3600), "{mine:?}");
        assert_eq!(cpu_time_of(u32::MAX), None);
    }
}
