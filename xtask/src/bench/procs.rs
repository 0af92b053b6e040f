//! The processes a benchmark drives: the mock upstream, the gateway in each configuration, and
//! nginx; starting them on free loopback ports, waiting until they answer, reading their memory
//! and CPU time from `/proc`, and stopping them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Proc {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    child: Child,
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process: SIGTERM, up to 5 s to exit, then SIGKILL.
    pub(crate) fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Fails when the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!("{} exited: {status}", self.name)),
            _ => Ok(()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A free port on 127.0.0.1 (bound and released: another process could take it in between,
/// which on a quiet benchmark machine does not happen).
pub(crate) fn free_port() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map_err(|e| e.to_string())
}

/// Starts the benchmark mock (`xtask bench mock`) and reads its address from its first line.
pub(crate) fn start_mock(xtask: &Path, threads: usize, log: &Path) -> Result<Proc, String> {
    let threads = threads.to_string();
    let args = ["mock", "--listen", "127.0.0.1:0", "--threads", &threads];
    start_xtask("mock", xtask, &args, log)
}

/// Starts the floor proxy (`xtask bench floor`) in front of `upstream` on a free port, with as
/// many threads as the gateway has workers (one per core).
pub(crate) fn start_floor(xtask: &Path, upstream: SocketAddr, log: &Path) -> Result<Proc, String> {
    let (listen, upstream) = (free_port()?.to_string(), upstream.to_string());
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let args = [
        "floor",
        "--listen",
        &listen,
        "--upstream",
        &upstream,
        "--threads",
        &threads,
    ];
    start_xtask("floor", xtask, &args, log)
}

/// Starts `xtask bench <args>`, a server that prints `listening on http://ADDR` first, and reads
/// its address from that line.
fn start_xtask(name: &str, xtask: &Path, args: &[&str], log: &Path) -> Result<Proc, String> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(xtask)
        .arg("bench")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start the {name} ({}): {e}", xtask.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| format!("the {name} has no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the {name}'s address: {e}"))?;
    let addr = line
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.strip_prefix("http://"))
        .and_then(|a| a.trim_end_matches(',').parse().ok())
        .ok_or_else(|| format!("the {name} said {line:?}, not its address"))?;
    Ok(Proc {
        name: name.into(),
        addr,
        child,
    })
}

/// Starts `gateway --config CONFIG` listening on `addr`, logging to `log`, and waits until
/// `/healthz` answers.
pub(crate) fn start_gateway(
    name: &str,
    gateway: &Path,
    config: &Path,
    addr: SocketAddr,
    log: &Path,
) -> Result<Proc, String> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(gateway);
    command
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        // The gateway's own defaults (log level info), whatever this shell has set.
        .env_remove("RUST_LOG")
        .env_remove("GATEWAY_CONFIG");
    for (key, _) in std::env::vars() {
        if key.starts_with("GATEWAY__") {
            command.env_remove(key);
        }
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {} ({}): {e}", name, gateway.display()))?;
    let mut proc = Proc {
        name: name.into(),
        addr,
        child,
    };
    wait_healthy(&mut proc, "/healthz", log)?;
    Ok(proc)
}

/// Starts nginx as a `proxy_pass` to `upstream` with a keep-alive upstream pool, in `dir`.
pub(crate) fn start_nginx(
    nginx: &Path,
    dir: &Path,
    addr: SocketAddr,
    upstream: SocketAddr,
) -> Result<Proc, String> {
    std::fs::create_dir_all(dir.join("temp")).map_err(|e| e.to_string())?;
    let d = dir.display();
    // Two workers like the gateway's two runtime threads; one access-log line per request like
    // the gateway's one log line per request; no response buffering, so streams pass as they come.
    let conf = format!(
        r#"daemon off;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/temp/body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    keepalive_requests 1000000;
    upstream mock {{
        server {upstream};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen {addr};
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
        location = /healthz {{ return 200 "ok"; }}
    }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    let log = dir.join("stderr.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let child = Command::new(nginx)
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start nginx ({}): {e}", nginx.display()))?;
    let mut proc = Proc {
        name: "nginx".into(),
        addr,
        child,
    };
    wait_healthy(&mut proc, "/healthz", &log)?;
    Ok(proc)
}

fn wait_healthy(proc: &mut Proc, path: &str, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Err(e) = proc.check_alive() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: String = tail.lines().rev().take(10).collect::<Vec<_>>().join("\n");
            return Err(format!("{e}; its log ends:\n{tail}"));
        }
        if get_ok(proc.addr, path) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not answer {path} within 30 s (log: {})",
                proc.name,
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `GET path` on `addr` answers 200.
fn get_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
pub(crate) fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// The user plus system CPU time of `pid` and of its children processes (nginx's workers).
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let mut ticks = own_ticks(pid).unwrap_or(0);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if parent_of(child) == Some(pid) {
                ticks += own_ticks(child).unwrap_or(0);
            }
        }
    }
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

/// Fields after the `(comm)` of `/proc/PID/stat`, which may itself hold spaces.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn own_ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(pid)?;
    // After `(comm)`: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// `name` on the `PATH` (or in /usr/sbin, where Debian puts nginx).
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
