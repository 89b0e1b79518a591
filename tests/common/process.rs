//! Real `axon` processes for the CLI tests: agents on 127.0.0.1 (an emulated AMD host, TLS,
//! as deployed), the inventory an operator writes for them, and a verb run to its end.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `axon agent` process on 127.0.0.1 (an emulated AMD host), with TLS, as deployed.
pub struct Agent {
    pub child: Child,
    pub name: String,
    pub port: u16,
    pub fingerprint: String,
    /// host:port of its /metrics.
    pub metrics: String,
    pub reader_token: PathBuf,
    pub admin_token: PathBuf,
}

impl Agent {
    /// An agent probing 127.0.0.1 (nothing listens on the cluster ports there: closed,
    /// which passes a firewall), with `extra` flags appended.
    /// With `--host-root` among `extra`, that host instead (`/`: this machine).
    pub fn start(name: &str, dir: &Path, extra: &[&str]) -> Agent {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_axon"));
        cmd.arg("agent");
        if !extra.contains(&"--host-root") {
            cmd.arg("--host-root").arg(super::fixture("amd-epyc-4numa"));
        }
        let mut child = cmd
            .args([
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--node-name",
                name,
                "--peers",
                "127.0.0.1",
                "--control-socket",
            ])
            .arg(dir.join("control.sock"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("axon agent runs");
        // The agent says where it listens and which certificate it presents.
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        // Everything the agent logs goes to <dir>/<name>/agent.log too, for a failure's
        // post-mortem.
        let log_path = dir.join("agent.log");
        std::thread::spawn(move || {
            use std::io::Write;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .ok();
            let (mut port, mut fp, mut metrics) = (None, None, None);
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(f) = log.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                let line = line.trim().to_string();
                if let Some(rest) = line.strip_prefix("gRPC") {
                    port = rest
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.rsplit_once(':'))
                        .and_then(|(_, p)| p.parse::<u16>().ok());
                }
                if let Some((_, f)) = line.split_once("fingerprint = \"") {
                    fp = Some(f.trim_end_matches('"').to_string());
                }
                if let Some(rest) = line.strip_prefix("metrics     http://") {
                    metrics = Some(rest.trim_end_matches("/metrics").to_string());
                }
                if let (Some(p), Some(f), Some(m)) = (port, fp.clone(), metrics.clone()) {
                    let _ = tx.send((p, f, m));
                    port = None;
                }
            }
        });
        let Ok((port, fingerprint, metrics)) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("agent {name} did not come up within 30 s");
        };
        Agent {
            child,
            name: name.to_string(),
            port,
            fingerprint,
            metrics,
            reader_token: dir.join("state/reader.token"),
            admin_token: dir.join("state/admin.token"),
        }
    }

    /// SIGKILL, as a crash or the OOM killer would: nothing is closed politely.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET /metrics over plain HTTP, from a test without a runtime; the whole response.
pub fn scrape(addr: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

pub fn agents(dir: &Path, n: usize) -> Vec<Agent> {
    (1..=n)
        .map(|i| Agent::start(&format!("n{i}"), dir, &[]))
        .collect()
}

/// Which of its tokens each node's inventory entry names.
#[derive(Clone, Copy)]
pub enum Token {
    Reader,
    Admin,
}

/// The inventory an operator writes: each node's port, token and pinned certificate.
pub fn inventory_with(dir: &Path, agents: &[Agent], token: Token) -> PathBuf {
    let mut s = String::new();
    for a in agents {
        let t = match token {
            Token::Reader => &a.reader_token,
            Token::Admin => &a.admin_token,
        };
        s.push_str(&format!(
            "[[node]]\nname = \"{}\"\naddress = \"127.0.0.1\"\nport = {}\ntoken_file = \"{}\"\nfingerprint = \"{}\"\n\n",
            a.name,
            a.port,
            t.display(),
            a.fingerprint
        ));
    }
    let path = dir.join("inventory.toml");
    std::fs::write(&path, s).unwrap();
    path
}

pub fn inventory(dir: &Path, agents: &[Agent]) -> PathBuf {
    inventory_with(dir, agents, Token::Reader)
}

/// A verb started with its output captured: read it with `wait`.
pub struct Verb {
    pub child: Child,
    args: Vec<String>,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
}

/// Starts `axon ARGS` with stdout and stderr piped (not a terminal).
pub fn spawn(args: &[&str]) -> Verb {
    let mut child = Command::new(env!("CARGO_BIN_EXE_axon"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    Verb {
        child,
        args: args.iter().map(|s| s.to_string()).collect(),
        out,
        err,
    }
}

impl Verb {
    /// Waits for the end, failing the test past `limit`: (exit code, stdout, stderr).
    pub fn wait(mut self, limit: Duration) -> (i32, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("axon {:?} still running after {limit:?}", self.args);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.code().unwrap_or(-1),
            self.out.join().unwrap(),
            self.err.join().unwrap(),
        )
    }
}

/// Runs `axon ARGS` to its end, failing the test if it runs past `limit`.
pub fn run(args: &[&str], limit: Duration) -> (i32, String, String) {
    spawn(args).wait(limit)
}
