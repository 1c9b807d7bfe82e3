//! Running `edgeprobe central`'s own helper commands from the tests:
//! `hash-password` (a password's hash for a config) and any other
//! subcommand fed on standard input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// `edgeprobe central ARGS` with `stdin` as its input, to the end.
pub fn central_command(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeprobe"))
        .arg("central")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgeprobe central");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A hash made by `edgeprobe central hash-password`.
pub fn hash_password(password: &str) -> String {
    let out = central_command(&["hash-password"], &format!("{password}\n"));
    assert!(out.status.success(), "hash-password: {}", stderr(&out));
    let hash = stdout(&out).trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    hash
}
