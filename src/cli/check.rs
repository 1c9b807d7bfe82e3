//! `edgeprobe check FILE`: what a targets sheet would monitor, and every
//! problem with its row, as text or JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::targets::{self, Escaped, LoadError, Problem, TargetList};

use super::{exit, table};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The targets sheet (.xlsx, .xls, .ods or .csv).
    file: PathBuf,
    /// Sheet to read (default: the first visible sheet).
    #[arg(long, value_name = "NAME")]
    sheet: Option<String>,
    /// Print JSON: {file, sheet, targets, problems} or {file, error, problems}.
    #[arg(long)]
    json: bool,
}

/// The JSON printed when the file is unusable.
#[derive(Serialize)]
struct Unusable<'a> {
    file: String,
    error: String,
    problems: &'a [Problem],
}

pub fn run(args: &CheckArgs) -> u8 {
    match targets::Loader::isolated(targets::SheetLimits::default())
        .load(&args.file, args.sheet.as_deref())
    {
        Ok(list) => {
            if args.json {
                print_json(&list);
            } else {
                print!("{}", render(&list));
            }
            if list.problems.is_empty() {
                exit::OK
            } else {
                exit::PROBLEMS
            }
        }
        Err(e) => {
            if args.json {
                print_json(&Unusable {
                    file: args.file.display().to_string(),
                    error: e.to_string(),
                    problems: e.problems(),
                });
            } else {
                eprint!("{}", render_unusable(&e));
            }
            exit::UNUSABLE
        }
    }
}

fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(json) => println!("{json}"),
        // Serialising plain strings and numbers cannot fail; say so if it does.
        Err(e) => eprintln!("edgeprobe: cannot encode JSON: {e}"),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The text report: a summary line, the targets table, the problems.
pub fn render(list: &TargetList) -> String {
    let mut out = String::new();
    let sheet = list
        .sheet
        .as_deref()
        .map(|s| format!(" sheet {:?}", s))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}:{sheet}: {}, {}",
        list.file,
        plural(list.targets.len(), "target", "targets"),
        plural(list.problems.len(), "problem", "problems"),
    );
    let header = ["S.No", "Row", "Address", "Kind", "Name", "Group", "Notes"];
    let rows: Vec<[String; 7]> = list
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            [
                (i + 1).to_string(),
                t.row.to_string(),
                t.addr.to_string(),
                t.addr.kind().to_string(),
                printable(t.name.as_deref()),
                printable(t.group.as_deref()),
                printable(t.notes.as_deref()),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&header, &rows));
    if !list.problems.is_empty() {
        out.push_str("\nProblems:\n");
        for p in &list.problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}

/// The text shown when the file cannot be used at all.
fn render_unusable(e: &LoadError) -> String {
    let mut out = format!("edgeprobe: {e}\n");
    for p in e.problems() {
        let _ = writeln!(out, "  {p}");
    }
    out
}

/// A cell for a terminal: control characters escaped, `-` when empty.
fn printable(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => Escaped(s).to_string(),
        _ => "-".into(),
    }
}
