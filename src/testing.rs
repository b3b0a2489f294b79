//! Support for the unit tests and the integration tests (tests/ cannot reach
//! a `#[cfg(test)]` item): a deterministic random stream for the fuzz runs
//! and scratch paths. Never used by the agent itself.

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

/// A path under the temp directory unique to this user and this process;
/// whatever of ours was there is removed. The uid is part of the name: a
/// file another user's run left under a reused pid cannot be removed from a
/// sticky /tmp, and an unprivileged test run failed on exactly that.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let uid = rustix::process::getuid().as_raw();
    let p = std::env::temp_dir().join(format!("kestrel-test-{uid}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_dir_all(&p);
    p
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
