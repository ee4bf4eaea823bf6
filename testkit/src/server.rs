use std::ffi::OsString;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Conn, Flavor, Reply};

/// How long a server may take to start answering before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1, as the OS hands it out.
///
/// Another process may take it before it is used; [`ServerBuilder::start`] retries with a
/// new port when the server cannot bind.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Configures a server before starting it: extra arguments for TLS ports, ACL users,
/// cluster mode, encodings and so on.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    flavor: Flavor,
    args: Vec<OsString>,
    password: Option<(Option<String>, String)>,
    modules: bool,
    /// Picks the port of each start attempt (cluster nodes need port + 10000 free too).
    pick_port: fn() -> u16,
}

impl ServerBuilder {
    /// A builder for `flavor` with the harness defaults (no persistence, loopback only).
    pub fn new(flavor: Flavor) -> ServerBuilder {
        ServerBuilder {
            flavor,
            args: Vec::new(),
            password: None,
            modules: true,
            pick_port: free_port,
        }
    }

    /// Uses `pick` to choose the port of each start attempt instead of [`free_port`].
    pub(crate) fn pick_port(mut self, pick: fn() -> u16) -> ServerBuilder {
        self.pick_port = pick;
        self
    }

    /// Starts the server without the modules its flavour loads by default
    /// ([`Flavor::modules`]; only Redis 7.4 has any).
    pub fn no_modules(mut self) -> ServerBuilder {
        self.modules = false;
        self
    }

    /// Appends one raw command-line argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> ServerBuilder {
        self.args.push(arg.into());
        self
    }

    /// Sets a config directive, as `--name value...` on the command line.
    pub fn config(mut self, name: &str, value: impl AsRef<str>) -> ServerBuilder {
        self.args.push(format!("--{name}").into());
        for part in value.as_ref().split(' ') {
            self.args.push(part.into());
        }
        self
    }

    /// Requires this password for the default user (`requirepass`) and makes
    /// [`Server::connect`] authenticate with it.
    pub fn password(mut self, password: &str) -> ServerBuilder {
        self.args.push("--requirepass".into());
        self.args.push(password.into());
        self.password = Some((None, password.to_string()));
        self
    }

    /// Makes [`Server::connect`] authenticate as this ACL user (which the arguments must
    /// create, e.g. `.config("user", "admin on >secret ~* &* +@all")`).
    pub fn login(mut self, user: &str, password: &str) -> ServerBuilder {
        self.password = Some((Some(user.to_string()), password.to_string()));
        self
    }

    /// Starts the server and waits until it answers.
    ///
    /// # Panics
    /// When the binary is missing (the message names `scripts/install-test-servers.sh`), or
    /// the server does not come up within 20 s (the message includes its log).
    pub fn start(self) -> Server {
        let bin = self.flavor.server_path();
        if !bin.is_file() {
            panic!(
                "{} is not installed (expected {}): run scripts/install-test-servers.sh \
                 (or set TEST_SERVERS_DIR / REDIS_7_0_SERVER)",
                self.flavor,
                bin.display()
            );
        }
        let mut modules = Vec::new();
        if self.modules {
            if let Some(dir) = self.flavor.module_dir() {
                for (_, file) in self.flavor.modules() {
                    let path = dir.join(file);
                    if !path.is_file() {
                        panic!(
                            "{}: module {} is not installed: run scripts/install-test-servers.sh",
                            self.flavor,
                            path.display()
                        );
                    }
                    modules.push(path);
                }
            }
        }
        let mut last_log = String::new();
        for _attempt in 0..5 {
            match self.try_start(&bin, &modules) {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("{} did not start; last log:\n{last_log}", self.flavor);
    }

    fn try_start(&self, bin: &Path, modules: &[PathBuf]) -> Result<Server, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("testkit-{}-", self.flavor))
            .tempdir()
            .expect("cannot create a temp dir");
        let port = (self.pick_port)();
        let log = dir.path().join("server.log");
        let mut cmd = Command::new(bin);
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(dir.path())
            .arg("--dbfilename")
            .arg("dump.rdb")
            .arg("--logfile")
            .arg(&log)
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"]);
        if self.flavor.has_protected_mode() {
            cmd.args(["--protected-mode", "no"]);
        }
        if let Some(lib) = self.flavor.library_path() {
            cmd.env("LD_LIBRARY_PATH", lib);
        }
        for module in modules {
            cmd.arg("--loadmodule").arg(module);
        }
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let mut server = Server {
            flavor: self.flavor,
            port,
            child,
            dir,
            password: self.password.clone(),
            modules: !modules.is_empty(),
            command: cmd,
        };
        server.wait_up().map(|()| server)
    }
}

/// A running server, killed when dropped (its temp dir is removed with it).
#[derive(Debug)]
pub struct Server {
    flavor: Flavor,
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
    password: Option<(Option<String>, String)>,
    modules: bool,
    /// How it was started, for [`Server::crash_and_restart`].
    command: Command,
}

impl Server {
    /// Waits until the server answers anything but `-LOADING`; `Err` with its log when it
    /// exited or did not come up within 20 s.
    fn wait_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(_status)) = self.child.try_wait() {
                return Err(self.log());
            }
            if let Ok(mut conn) = Conn::connect(self.port) {
                match conn.send(["PING"]).and_then(|()| conn.read_reply()) {
                    // Any answer but LOADING means the server is up (an auth error too).
                    Ok(Reply::Error(e)) if e.starts_with("LOADING") => {}
                    Ok(_) => return Ok(()),
                    Err(_) => {}
                }
            }
            if Instant::now() > deadline {
                return Err(self.log());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL (a crash: nothing is saved on the way out) and starts
    /// it again on the same port and directory, with the same arguments: it comes back with
    /// whatever its own persistence kept (`--appendonly yes`, or an RDB it saved).
    ///
    /// # Panics
    /// When it does not come up again (the message includes its log).
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.child = self
            .command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot restart {}: {e}", self.flavor));
        if let Err(log) = self.wait_up() {
            panic!("{} did not come back; log:\n{log}", self.flavor);
        }
    }

    /// Starts `flavor` with the harness defaults; see [`ServerBuilder::start`].
    pub fn start(flavor: Flavor) -> Server {
        ServerBuilder::new(flavor).start()
    }

    /// A builder for a server with extra arguments.
    pub fn builder(flavor: Flavor) -> ServerBuilder {
        ServerBuilder::new(flavor)
    }

    /// The flavour running.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Whether this server runs with its flavour's modules loaded.
    pub fn has_modules(&self) -> bool {
        self.modules
    }

    /// The plain-text port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://[user:password@]127.0.0.1:<port>`, with the credentials given to the builder.
    pub fn url(&self) -> String {
        match &self.password {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some((user, pass)) => format!(
                "redis://{}:{pass}@127.0.0.1:{}",
                user.as_deref().unwrap_or(""),
                self.port
            ),
        }
    }

    /// The server's working directory (where `dump.rdb` is written).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of the RDB file `SAVE` writes.
    pub fn rdb_path(&self) -> PathBuf {
        self.dir.path().join("dump.rdb")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A new connection, authenticated when the builder set credentials.
    pub fn connect(&self) -> Conn {
        let mut conn = Conn::connect(self.port)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.flavor));
        if let Some((user, pass)) = &self.password {
            match user {
                Some(user) => conn.ok(["AUTH", user, pass]),
                None => conn.ok(["AUTH", pass]),
            }
        }
        conn
    }

    /// Runs `SAVE` and returns the RDB file it wrote. A fork still busy (the RDB of a full
    /// sync that just ended: a replica may be done with it before the server reaped its
    /// child) is waited for, 30 s at most.
    pub fn save(&self) -> Vec<u8> {
        let mut conn = self.connect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match conn.cmd(["SAVE"]) {
                Reply::Status(s) if s == "OK" => break,
                Reply::Error(e) if e.contains("in progress") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => panic!("SAVE: {other:?}"),
            }
        }
        fs::read(self.rdb_path()).expect("SAVE wrote no dump.rdb")
    }

    /// Stops the server now (it is also stopped on drop).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
