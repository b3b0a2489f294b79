//! Support for the unit tests and the integration tests (tests/ cannot reach
//! a `#[cfg(test)]` item): a deterministic random stream for the fuzz runs
//! and scratch paths. Never used by the agent itself.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// xorshift64*: deterministic and dependency-free, so a fixed seed makes a
/// failure reproducible.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)] // an endless stream: no Option to unwrap
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n`; `n` must not be 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A path in this process's scratch directory; whatever of ours was there
/// is removed. The directory goes when the test binary exits.
pub fn scratch(name: &str) -> PathBuf {
    let p = scratch_dir().join(name);
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// The temp directory's `kestrel-test-UID-PID`, made on first use (sticky
/// and world-writable like /tmp: tests run the agent as nobody there) and
/// removed at exit. The uid is part of the name: a directory another user's
/// run left under a reused pid cannot be removed from a sticky /tmp.
fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let uid = rustix::process::getuid().as_raw();
        let d = std::env::temp_dir().join(format!("kestrel-test-{uid}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).expect("temp directory is writable");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777))
            .expect("own directory");
        // SAFETY: registers a plain extern "C" function with no arguments.
        unsafe { libc::atexit(remove_scratch_dir) };
        d
    })
}

/// Runs at exit: the harness exits normally after the last test, passed or
/// failed. A forked child that exits names its own pid, so removes nothing.
/// Stale leftovers go here too, where no test counts this process's syscalls.
extern "C" fn remove_scratch_dir() {
    let uid = rustix::process::getuid().as_raw();
    let prefix = format!("kestrel-test-{uid}-");
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("{prefix}{}", std::process::id())),
    );
    remove_stale(&prefix);
}

/// What this user's runs left when killed before exit: a dead pid's, and an
/// hour old (a run in another pid namespace may share the temp directory).
fn remove_stale(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let hour_old = |e: &std::fs::DirEntry| {
        let age = e.metadata().and_then(|m| m.modified()).map(|t| t.elapsed());
        age.is_ok_and(|a| a.is_ok_and(|a| a.as_secs() > 3600))
    };
    for e in entries.flatten() {
        let name = e.file_name();
        // Older runs named files PREFIX-PID-NAME: the pid is the first part.
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix)?.split('-').next());
        if pid.is_some_and(|p| !Path::new("/proc").join(p).exists()) && hour_old(&e) {
            let p = e.path();
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
}

/// A kernel UAPI header the syscall tables are checked against, or None
/// when this host lacks it (another arch's, or the armhf cross headers not
/// installed): the check says it skipped. Under CI=true a missing header
/// fails instead.
pub fn uapi_header(path: &str) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: {path}: {e} (scripts/install-build-deps.sh installs it)");
            None
        }
        Err(e) => panic!("{path}: {e} (scripts/install-build-deps.sh installs it)"),
    }
}

/// Certificates made with openssl in a scratch directory, removed on drop:
/// a CA, a server certificate for localhost / 127.0.0.1, a client
/// certificate from that CA and one from a second, unrelated CA.
pub struct Certs {
    pub dir: std::path::PathBuf,
}

impl Certs {
    pub fn make(name: &str) -> Certs {
        let dir = scratch(name);
        std::fs::create_dir_all(&dir).unwrap();
        let c = Certs { dir };
        let ssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&c.dir)
                .output()
                .expect("openssl (Debian's openssl package) makes the test certificates");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "rogue-ca"] {
            let subj = format!("/CN=kestrel test {ca}");
            let (key, crt) = (format!("{ca}.key"), format!("{ca}.crt"));
            let mut a = vec![
                "req", "-x509", "-days", "2", "-subj", &subj, "-keyout", &key, "-out", &crt,
            ];
            a.extend(ec);
            ssl(&a);
        }
        std::fs::write(
            c.dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(
            c.dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        for (name, ca, ext) in [
            ("server", "ca", "server.ext"),
            ("client", "ca", "client.ext"),
            ("rogue-client", "rogue-ca", "client.ext"),
        ] {
            let (key, csr, crt) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
            );
            let subj = format!("/CN={name}");
            let mut a = vec!["req", "-subj", &subj, "-keyout", &key, "-out", &csr];
            a.extend(ec);
            ssl(&a);
            let (cacrt, cakey) = (format!("{ca}.crt"), format!("{ca}.key"));
            ssl(&[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                &cacrt,
                "-CAkey",
                &cakey,
                "-CAcreateserial",
                "-extfile",
                ext,
                "-out",
                &crt,
            ]);
        }
        c
    }

    /// A file in the directory, as a string.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A path under the repository's tests/ (this crate is core/, one level
/// down), resolved: no `core/..` in it, whose extra bytes count against
/// fixed-size path buffers (ProcRoot's ROOT_MAX) in a deep clone.
pub fn repo_tests_path(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests")
        .join(rel);
    let p = std::fs::canonicalize(&p).unwrap_or(p);
    p.to_string_lossy().into_owned()
}
