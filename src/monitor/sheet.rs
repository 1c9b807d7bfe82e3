//! Where the targets come from, and noticing that they changed: the
//! configured sheet (or one uploaded into the state directory), watched by
//! its size, time and inode, and uploads validated before they replace
//! anything.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::targets::{self, Loader, TargetList};
use crate::upstream::backoff::Backoff;

/// The first wait before a sheet that could not be read for a passing
/// reason is read again; each further failure doubles it, up to
/// [`RETRY_CAP`].
pub const RETRY_START: Duration = Duration::from_secs(2);
/// The longest wait between tries of a sheet that keeps failing so.
pub const RETRY_CAP: Duration = Duration::from_secs(5 * 60);

/// Extensions a sheet may have, in the order an existing uploaded sheet is
/// looked for in the state directory.
const SHEET_EXTENSIONS: [&str; 4] = ["xlsx", "xls", "ods", "csv"];

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: m.modified().ok(),
            len: m.len(),
            inode: m.ino(),
        })
    }
}

/// The targets sheet of a running monitor.
#[derive(Debug)]
pub struct SheetSource {
    configured: Option<PathBuf>,
    sheet: Option<String>,
    state_dir: PathBuf,
    /// The version last loaded (or rejected), so a change is seen once.
    loaded: Option<FileStamp>,
    /// A change seen at the last poll (`Some(None)`: the file vanished):
    /// loaded once it holds still for a poll, so a sheet being written is
    /// not read half-way.
    pending: Option<Option<FileStamp>>,
    /// Set while the last load failed for a passing reason
    /// ([`targets::LoadError::is_transient`]): when to read it again.
    retry_at: Option<Instant>,
    backoff: Backoff,
    /// The configured file as last seen, so that editing it takes over
    /// from an upload.
    configured_seen: Option<FileStamp>,
    loader: Loader,
}

/// A sheet that cannot be used, with every reason, one per line.
pub type Rejection = Vec<String>;

impl SheetSource {
    pub fn new(
        configured: Option<PathBuf>,
        sheet: Option<String>,
        state_dir: PathBuf,
    ) -> SheetSource {
        let configured_seen = configured.as_deref().and_then(FileStamp::of);
        SheetSource {
            configured_seen,
            configured,
            sheet,
            state_dir,
            loaded: None,
            pending: None,
            retry_at: None,
            backoff: Backoff::new(RETRY_START, 2, RETRY_CAP),
            loader: Loader::default(),
        }
    }

    /// Wait `start`, doubling up to `cap`, before reading a sheet again
    /// that failed for a passing reason (by default [`RETRY_START`] and
    /// [`RETRY_CAP`]).
    pub fn with_retry(mut self, start: Duration, cap: Duration) -> SheetSource {
        self.backoff = Backoff::new(start, 2, cap);
        self
    }

    /// How long until the sheet is read again by itself, after a failure
    /// of the moment; `None` when no such retry is due.
    pub fn retry_in(&self) -> Option<Duration> {
        self.retry_at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Read sheets with these limits, and where (by default: in this
    /// process, with the default limits).
    pub fn with_loader(mut self, loader: Loader) -> SheetSource {
        self.loader = loader;
        self
    }

    /// The file the targets are read from: a sheet uploaded into the
    /// state directory, or else the configured one.
    pub fn path(&self) -> Option<PathBuf> {
        self.uploaded().or_else(|| self.configured.clone())
    }

    /// The sheet uploaded into the state directory, if there is one.
    fn uploaded(&self) -> Option<PathBuf> {
        SHEET_EXTENSIONS
            .iter()
            .map(|ext| self.uploaded_path(ext))
            .find(|p| p.exists())
    }

    fn uploaded_path(&self, ext: &str) -> PathBuf {
        self.state_dir.join(format!("targets.{ext}"))
    }

    /// An upload stands in for the configured sheet until the configured
    /// file changes: then the upload is set aside as `targets.EXT.previous`
    /// and the configured file is read again. Returns whether it was.
    fn configured_changed_under_an_upload(&mut self) -> bool {
        let Some(configured) = &self.configured else {
            return false;
        };
        let now = FileStamp::of(configured);
        if now == self.configured_seen {
            return false;
        }
        self.configured_seen = now;
        let Some(upload) = self.uploaded() else {
            return false;
        };
        let aside = with_suffix(&upload, ".previous");
        match std::fs::rename(&upload, &aside) {
            Ok(()) => {
                eprintln!(
                    "edgeprobe: {} changed: it replaces the uploaded sheet, kept as {}",
                    configured.display(),
                    aside.display()
                );
                true
            }
            Err(e) => {
                eprintln!(
                    "edgeprobe: {} changed, but the uploaded sheet {} that stands in for it \
                     could not be set aside ({e}); remove it to use the configured file",
                    configured.display(),
                    upload.display()
                );
                false
            }
        }
    }

    /// Load the current sheet. Blocking (spreadsheets are parsed here).
    pub fn load(&mut self) -> Result<TargetList, Rejection> {
        let Some(path) = self.path() else {
            return Err(vec![
                "no targets sheet: set `targets` in the config (or --targets FILE), or upload one to /admin/targets".to_string(),
            ]);
        };
        self.loaded = FileStamp::of(&path);
        self.pending = None;
        let loaded = self.loader.load(&path, self.sheet.as_deref());
        self.retry_at = match &loaded {
            Err(e) if e.is_transient() => Some(Instant::now() + self.backoff.fail()),
            _ => {
                self.backoff.reset();
                None
            }
        };
        loaded.map_err(|e| rejection(&e))
    }

    /// Whether the sheet changed since it was last loaded and has held
    /// still since the previous poll, or a retry after a failure of the
    /// moment is due. Call every few seconds.
    pub fn poll_changed(&mut self) -> bool {
        if self.retry_at.is_some_and(|at| Instant::now() >= at) {
            return true;
        }
        if self.configured_changed_under_an_upload() {
            return true;
        }
        let Some(path) = self.path() else {
            return false;
        };
        let now = FileStamp::of(&path);
        if now == self.loaded {
            self.pending = None;
            return false;
        }
        if self.pending == Some(now) {
            // Also a deleted file: the load then reports it, and the old
            // list keeps running.
            return true;
        }
        self.pending = Some(now);
        false
    }

    /// Validate an uploaded sheet and, only if it is usable, save it as
    /// `targets.EXT` in the state directory, where it stands in for the
    /// configured sheet (which is never written: it may live where the
    /// service cannot write, such as `/etc/edgeprobe`). Blocking. Returns
    /// the new list.
    ///
    /// Crash-safe: the upload is flushed to disk before it is renamed into
    /// place, the directory is flushed after, and only then is the earlier
    /// upload set aside as `targets.EXT.previous`, so a power cut leaves
    /// the old sheet or the new one, never neither.
    pub fn accept_upload(
        &mut self,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<TargetList, Rejection> {
        let ext = Path::new(file_name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .filter(|e| SHEET_EXTENSIONS.contains(&e.as_str()))
            .ok_or_else(|| {
                vec![format!(
                    "{}: upload a .xlsx, .xls, .ods or .csv file (pass its name as ?filename=targets.xlsx)",
                    targets::Escaped(file_name)
                )]
            })?;
        let dir = self.state_dir.clone();
        let dest = self.uploaded_path(&ext);
        std::fs::create_dir_all(&dir)
            .map_err(|e| vec![format!("cannot create {}: {e}", dir.display())])?;
        // Written next to the destination, so the final rename is atomic.
        let temp = dir.join(format!(".edgeprobe-upload.{ext}"));
        write_flushed(&temp, bytes)
            .map_err(|e| vec![format!("cannot save the upload as {}: {e}", temp.display())])?;
        let checked = self.load_checked(&temp).map_err(|problems| {
            let _ = std::fs::remove_file(&temp);
            // Name the upload, not the temporary file.
            let temp_name = temp.display().to_string();
            problems
                .into_iter()
                .map(|p| p.replace(&temp_name, file_name))
                .collect::<Vec<_>>()
        })?;
        if dest.exists() {
            // The same name is replaced by the rename: keep the old one.
            let previous = with_suffix(&dest, ".previous");
            let _ = std::fs::remove_file(&previous);
            std::fs::hard_link(&dest, &previous).map_err(|e| {
                vec![format!(
                    "cannot keep the previous sheet as {}: {e}",
                    previous.display()
                )]
            })?;
        }
        std::fs::rename(&temp, &dest)
            .map_err(|e| vec![format!("cannot move the upload to {}: {e}", dest.display())])?;
        flush_dir(&dir)
            .map_err(|e| vec![format!("cannot flush {} to disk: {e}", dir.display())])?;
        // Only one uploaded sheet: the one just saved.
        for other in SHEET_EXTENSIONS.iter().filter(|e| **e != ext) {
            let earlier = self.uploaded_path(other);
            if earlier.exists() {
                let _ = std::fs::rename(&earlier, with_suffix(&earlier, ".previous"));
            }
        }
        self.loaded = FileStamp::of(&dest);
        self.pending = None;
        self.retry_at = None;
        let dest_name = dest.display().to_string();
        let temp_name = temp.display().to_string();
        let mut list = checked;
        list.file = dest_name.clone();
        for p in &mut list.problems {
            p.file = p.file.replace(&temp_name, &dest_name);
        }
        Ok(list)
    }

    /// Load a sheet; every reason it cannot be used becomes a line.
    fn load_checked(&self, path: &Path) -> Result<TargetList, Rejection> {
        self.loader
            .load(path, self.sheet.as_deref())
            .map_err(|e| rejection(&e))
    }
}

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Write `bytes` to a new file at `path` and flush it to the disk.
fn write_flushed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Flush a directory's entries (a rename into it) to the disk.
fn flush_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Every reason a sheet cannot be used, one per line.
fn rejection(e: &targets::LoadError) -> Rejection {
    let mut lines = vec![e.to_string()];
    lines.extend(e.problems().iter().map(|p| p.to_string()));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_validated_before_it_replaces_anything() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = SheetSource::new(None, None, dir.path().to_path_buf());
        assert!(src.load().unwrap_err()[0].contains("no targets sheet"));

        let list = src
            .accept_upload("t.csv", b"ip\n127.0.0.1\n127.0.0.2\n")
            .unwrap();
        assert_eq!(list.targets.len(), 2);
        assert_eq!(src.path(), Some(dir.path().join("targets.csv")));

        let bad = src.accept_upload("t.csv", b"ip\n300.1.1.1\n").unwrap_err();
        assert!(bad.iter().any(|l| l.contains("300.1.1.1")), "{bad:?}");
        assert!(
            bad.iter().all(|l| !l.contains(".edgeprobe-upload")),
            "{bad:?}"
        );
        // The good sheet is still there.
        assert_eq!(src.load().unwrap().targets.len(), 2);

        let wrong = src.accept_upload("t.exe", b"MZ").unwrap_err();
        assert!(wrong[0].contains(".xlsx"), "{wrong:?}");
    }

    #[test]
    fn an_upload_stands_in_for_the_configured_sheet_until_that_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let sheet = dir.path().join("closet.csv");
        std::fs::write(&sheet, "ip\n127.0.0.1\n").unwrap();
        let state = dir.path().join("state");
        let mut src = SheetSource::new(Some(sheet.clone()), None, state.clone());
        assert_eq!(src.load().unwrap().targets.len(), 1);

        let list = src
            .accept_upload("new.csv", b"ip\n127.0.0.3\n127.0.0.4\n")
            .unwrap();
        assert_eq!(list.file, state.join("targets.csv").display().to_string());
        assert_eq!(
            std::fs::read_to_string(&sheet).unwrap(),
            "ip\n127.0.0.1\n",
            "never written"
        );
        assert_eq!(src.path(), Some(state.join("targets.csv")));
        assert!(!src.poll_changed() && !src.poll_changed());

        // Another type replaces it; the earlier upload is kept aside.
        let ods = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sites.ods");
        src.accept_upload("newer.ods", &std::fs::read(ods).unwrap())
            .unwrap();
        assert_eq!(src.path(), Some(state.join("targets.ods")));
        assert!(state.join("targets.csv.previous").exists());
        assert!(!state.join("targets.csv").exists());

        // Editing the configured file takes over from the upload.
        std::fs::write(&sheet, "ip\n127.0.0.9\n127.0.0.8\n127.0.0.7\n").unwrap();
        assert!(src.poll_changed());
        assert_eq!(src.path(), Some(sheet.clone()));
        assert_eq!(src.load().unwrap().targets.len(), 3);
        assert!(state.join("targets.ods.previous").exists());
    }

    #[test]
    fn a_change_is_seen_once_it_holds_still() {
        let dir = tempfile::tempdir().unwrap();
        let sheet = dir.path().join("t.csv");
        std::fs::write(&sheet, "ip\n127.0.0.1\n").unwrap();
        let mut src = SheetSource::new(Some(sheet.clone()), None, dir.path().to_path_buf());
        src.load().unwrap();
        assert!(!src.poll_changed());
        std::fs::write(&sheet, "ip\n127.0.0.1\n127.0.0.2\n").unwrap();
        assert!(!src.poll_changed(), "first sight of a change waits a poll");
        assert!(src.poll_changed());
        src.load().unwrap();
        assert!(!src.poll_changed());
        std::fs::remove_file(&sheet).unwrap();
        assert!(!src.poll_changed());
        assert!(
            src.poll_changed(),
            "a deleted sheet is reported by the load"
        );
        assert!(src.load().is_err());
        assert!(!src.poll_changed(), "and only once");
    }

    #[test]
    fn a_sheet_that_failed_for_a_passing_reason_is_read_again_with_backoff() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the sheet should be: it cannot be read, and
        // nothing about it changes until it is fixed.
        let sheet = dir.path().join("t.csv");
        std::fs::create_dir(&sheet).unwrap();
        let start = Duration::from_millis(40);
        let mut src = SheetSource::new(Some(sheet.clone()), None, dir.path().join("state"))
            .with_retry(start, Duration::from_secs(60));
        assert!(src.load().is_err());
        let first = src.retry_in().expect("a retry is due");
        assert!(first <= start, "{first:?}");
        assert!(!src.poll_changed(), "not before its time");
        std::thread::sleep(start);
        assert!(src.poll_changed(), "due now, though the file is as it was");
        assert!(src.load().is_err());
        let second = src.retry_in().unwrap();
        assert!(
            second > first,
            "the wait doubles: {first:?} then {second:?}"
        );

        std::fs::remove_dir(&sheet).unwrap();
        std::fs::write(&sheet, "ip\n127.0.0.1\n").unwrap();
        assert_eq!(src.load().unwrap().targets.len(), 1);
        assert_eq!(src.retry_in(), None);

        // A sheet that is wrong in itself waits for a change, not a timer.
        std::fs::write(&sheet, "name\nx\n").unwrap();
        assert!(src.load().is_err());
        assert_eq!(src.retry_in(), None);
    }
}
