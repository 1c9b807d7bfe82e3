//! The test MongoDB: an `nx-27017` process (MongoDB wire protocol on
//! SQLite; scripts/test.sh installs it) on a free loopback port.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::monitor::free_port;

/// A running nx-27017, stopped when dropped.
pub struct TestMongo {
    child: Option<Child>,
    pub port: u16,
    /// The SQLite file behind it (`None`: in memory, gone on stop).
    db: Option<PathBuf>,
    run_dir: tempfile::TempDir,
}

impl TestMongo {
    /// A server whose data lives in memory.
    pub fn start() -> TestMongo {
        TestMongo::launch(None, free_port())
    }

    /// A server in memory on a given port (e.g. one a client was told to
    /// use while nothing listened there yet).
    pub fn start_on(port: u16) -> TestMongo {
        TestMongo::launch(None, port)
    }

    /// A server whose data lives in `db`, so it survives a restart.
    pub fn start_persistent(db: &Path) -> TestMongo {
        TestMongo::launch(Some(db.to_path_buf()), free_port())
    }

    fn launch(db: Option<PathBuf>, port: u16) -> TestMongo {
        let run_dir = tempfile::tempdir().unwrap();
        let mut m = TestMongo {
            child: None,
            port,
            db,
            run_dir,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let db = self
            .db
            .as_ref()
            .map_or_else(|| "memory".to_string(), |p| p.display().to_string());
        let child = Command::new("nx-27017")
            .args([
                "--db",
                &db,
                "--host",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .arg("--pid-file")
            .arg(self.run_dir.path().join("nx.pid"))
            .arg("--log-file")
            .arg(self.run_dir.path().join("nx.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nx-27017, the test MongoDB (scripts/test.sh installs it)");
        self.child = Some(child);
        let up = super::eventually(Duration::from_secs(30), Duration::from_millis(100), || {
            // Ours must be the one answering: if another process took the
            // port first, our server exits and a connect would fool us.
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "nx-27017 on port {} exited ({status}):\n{}",
                    self.port,
                    self.log()
                );
            }
            TcpStream::connect(("127.0.0.1", self.port)).ok()?;
            // A moment for a server that lost the race to fail its bind.
            std::thread::sleep(Duration::from_millis(100));
            matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None))).then_some(())
        });
        assert!(up.is_some(), "nx-27017 did not start on port {}", self.port);
    }

    /// `mongodb://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.run_dir.path().join("nx.log")).unwrap_or_default()
    }

    /// Kill the server (as a crash would); the port stays reserved for
    /// [`TestMongo::restart`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port (and file).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for TestMongo {
    fn drop(&mut self) {
        self.stop();
    }
}
