//! The syscall seam: facts that come from syscalls rather than files. `RealSys` asks the
//! kernel (netlink, the NVMe admin ioctl, adjtimex); `FixtureSys` answers from files in a
//! fixture tree's `_fixture/` folder, captured in the shape the tools print them
//! (`ip -j …`, the raw 512-byte SMART log page, adjtimex's fields as TOML).

use super::bounded_read::{MAX_FILE_BYTES, read_bounded};
use super::error::CollectError;
use super::{iproute_json, netlink};
use crate::model::cpuset::CpuSet;
use std::path::PathBuf;

// The seam's answers are plain model data; named here too, where the trait returns them.
pub use crate::model::clock::ClockState;
pub use crate::model::net::RoutingFacts;

/// Fills `buf` from the kernel's random number generator (getrandom(2)): probe nonces
/// here, agent tokens above.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: getrandom writes at most len bytes into the valid buffer slice.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(())
}

pub trait SysAccess: Send + Sync {
    fn routing(&self) -> Result<RoutingFacts, CollectError>;
    /// The SMART / Health Information log page (log id 02h) of controller `ctrl` (`nvme0`).
    fn nvme_smart_log(&self, ctrl: &str) -> Result<Vec<u8>, CollectError>;
    fn clock(&self) -> Result<ClockState, CollectError>;
    /// The CPUs thread `tid` may run on (sched_getaffinity(2)), where the threads under
    /// the host root's /proc are this kernel's own (the root is /): the pinning walk then
    /// needs no `status` file per thread. None: read `Cpus_allowed_list` instead.
    fn thread_affinity(&self, _tid: u32) -> Option<std::io::Result<CpuSet>> {
        None
    }
}

/// sched_getaffinity(2) of one thread, for up to 8,192 CPUs.
pub fn sched_affinity(tid: u32) -> std::io::Result<CpuSet> {
    let mut mask = [0u64; 128];
    let tid = libc::pid_t::try_from(tid)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: the kernel writes at most size_of_val(&mask) bytes into the mask buffer.
    let n = unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            tid,
            std::mem::size_of_val(&mask),
            mask.as_mut_ptr(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The syscall returns how many bytes of the mask it filled.
    let words = (n as usize).div_ceil(8).min(mask.len());
    Ok(CpuSet::from_ids(mask[..words].iter().enumerate().flat_map(
        |(w, bits)| {
            (0..64u32)
                .filter(move |b| bits >> b & 1 == 1)
                .map(move |b| w as u32 * 64 + b)
        },
    )))
}

/// The real kernel. NVMe device nodes are opened under the host root, so an agent in a
/// container with the host's / mounted at /host still reaches them. Syscalls answer for
/// the machine axon runs on: under another root they are asked only when that root is
/// this machine (the same boot, and for netlink the same network namespace), so a copied
/// tree or another host's disk never gets this machine's clock or routes.
pub struct RealSys {
    root: PathBuf,
    /// Why adjtimex does not answer for the root (None: it does).
    clock_foreign: Option<String>,
    /// Why netlink does not answer for the root (None: it does).
    net_foreign: Option<String>,
}

impl RealSys {
    pub fn new(root: PathBuf) -> Self {
        let (clock_foreign, net_foreign) = foreign(&root);
        RealSys {
            root,
            clock_foreign,
            net_foreign,
        }
    }
}

/// Whether the syscalls of this machine answer for `root`: `/` itself, or a mount of this
/// machine's root (its `proc/sys/kernel/random/boot_id` is ours; for netlink also its
/// init's network namespace).
fn foreign(root: &std::path::Path) -> (Option<String>, Option<String>) {
    if std::fs::canonicalize(root).is_ok_and(|r| r == std::path::Path::new("/")) {
        return (None, None);
    }
    let remedy = format!(
        "run axon on that host, or record its answers in {}/_fixture/ (with profile.toml) as the fixture trees do",
        root.display()
    );
    let boot = |r: &std::path::Path| {
        std::fs::read_to_string(r.join("proc/sys/kernel/random/boot_id"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let same_boot = boot(root).is_some_and(|b| Some(b) == boot(std::path::Path::new("/")));
    if !same_boot {
        let why = format!(
            "the host root {} is not this machine (its proc/sys/kernel/random/boot_id is not ours), so this machine's answer would be wrong — {remedy}",
            root.display()
        );
        return (Some(why.clone()), Some(why));
    }
    let ns = |p: &std::path::Path| std::fs::read_link(p).ok();
    let same_net = ns(&root.join("proc/1/ns/net"))
        .is_some_and(|n| Some(n) == ns(std::path::Path::new("/proc/self/ns/net")));
    let net = (!same_net).then(|| {
        format!(
            "this process is not in the network namespace of {}'s init (proc/1/ns/net differs), so netlink would list other routes — run the agent in the host's network namespace, or {remedy}",
            root.display()
        )
    });
    (None, net)
}

impl SysAccess for RealSys {
    fn routing(&self) -> Result<RoutingFacts, CollectError> {
        if let Some(why) = &self.net_foreign {
            return Err(CollectError::Invalid {
                what: "netlink (addresses, rules, routes)".into(),
                detail: why.clone(),
            });
        }
        netlink::dump_routing()
    }

    fn nvme_smart_log(&self, ctrl: &str) -> Result<Vec<u8>, CollectError> {
        if !ctrl.starts_with("nvme") || !ctrl[4..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(CollectError::Invalid {
                what: format!("NVMe controller name `{ctrl}`"),
                detail: "expected nvme<N>".into(),
            });
        }
        nvme_ioctl::smart_log(&self.root.join("dev").join(ctrl))
    }

    fn clock(&self) -> Result<ClockState, CollectError> {
        if let Some(why) = &self.clock_foreign {
            return Err(CollectError::Invalid {
                what: "adjtimex(2)".into(),
                detail: why.clone(),
            });
        }
        // SAFETY: adjtimex with modes = 0 only reads; `tx` is a valid, zeroed timex.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        let state = unsafe { libc::adjtimex(&mut tx) };
        if state < 0 {
            return Err(CollectError::Syscall {
                what: "adjtimex(2)".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        let nano = tx.status & libc::STA_NANO != 0;
        Ok(ClockState {
            state,
            status: tx.status,
            offset_ns: if nano { tx.offset } else { tx.offset * 1000 },
            maxerror_us: tx.maxerror,
            esterror_us: tx.esterror,
        })
    }

    fn thread_affinity(&self, tid: u32) -> Option<std::io::Result<CpuSet>> {
        // Under another root (a host's / mounted in a container) its /proc may count
        // threads in another PID namespace: only the files tell.
        (self.root == std::path::Path::new("/")).then(|| sched_affinity(tid))
    }
}

/// Answers from a fixture tree's `_fixture/` folder.
pub struct FixtureSys {
    dir: PathBuf,
}

impl FixtureSys {
    pub fn new(dir: PathBuf) -> Self {
        FixtureSys { dir }
    }

    /// Emulates a syscall that does not return (a netlink dump or an NVMe admin command
    /// stuck in a driver, adjtimex behind a wedged clock source): while
    /// `_fixture/hang/<call>` exists (`routing`, `nvme-smart-log`, `clock`), the call
    /// blocks; removing the file releases it. Host files cannot stand in for a hung read
    /// any more (a FIFO is refused, see `read_bounded`), so this is how tests hang a
    /// collector and check its deadline.
    fn wait_while_hung(&self, call: &str) {
        let flag = self.dir.join("hang").join(call);
        while std::fs::symlink_metadata(&flag).is_ok() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, CollectError> {
        let path = self.dir.join(name);
        read_bounded(&path, &path, MAX_FILE_BYTES)
    }

    fn read_text(&self, name: &str) -> Result<String, CollectError> {
        let bytes = self.read(name)?;
        String::from_utf8(bytes)
            .map_err(|_| CollectError::malformed(self.dir.join(name), "not valid UTF-8 text"))
    }
}

impl SysAccess for FixtureSys {
    fn routing(&self) -> Result<RoutingFacts, CollectError> {
        self.wait_while_hung("routing");
        let parse = |name: &str| -> Result<serde_json::Value, CollectError> {
            serde_json::from_str(&self.read_text(name)?)
                .map_err(|e| CollectError::malformed(self.dir.join(name), e.to_string()))
        };
        let addr = parse("ip-addr.json")?;
        let rule = parse("ip-rule.json")?;
        let route = parse("ip-route.json")?;
        iproute_json::routing_from_ip_json(&addr, &rule, &route)
            .map_err(|(file, detail)| CollectError::malformed(self.dir.join(file), detail))
    }

    fn nvme_smart_log(&self, ctrl: &str) -> Result<Vec<u8>, CollectError> {
        if ctrl.contains('/') || ctrl.contains("..") {
            return Err(CollectError::Invalid {
                what: format!("NVMe controller name `{ctrl}`"),
                detail: "expected nvme<N>".into(),
            });
        }
        self.wait_while_hung("nvme-smart-log");
        self.read(&format!("nvme/{ctrl}/smart-log.bin"))
    }

    fn clock(&self) -> Result<ClockState, CollectError> {
        self.wait_while_hung("clock");
        let text = self.read_text("adjtimex.toml")?;
        toml::from_str(&text).map_err(|e| {
            CollectError::malformed(self.dir.join("adjtimex.toml"), e.message().to_string())
        })
    }
}

mod nvme_ioctl {
    //! NVME_IOCTL_ADMIN_CMD with Get Log Page (opcode 02h), as `nvme smart-log` does.
    use super::CollectError;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    /// `struct nvme_passthru_cmd` from <linux/nvme_ioctl.h>.
    #[repr(C)]
    #[derive(Default)]
    struct PassthruCmd {
        opcode: u8,
        flags: u8,
        rsvd1: u16,
        nsid: u32,
        cdw2: u32,
        cdw3: u32,
        metadata: u64,
        addr: u64,
        metadata_len: u32,
        data_len: u32,
        cdw10: u32,
        cdw11: u32,
        cdw12: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        timeout_ms: u32,
        result: u32,
    }

    const _: () = assert!(std::mem::size_of::<PassthruCmd>() == 72);

    /// _IOWR('N', 0x41, struct nvme_admin_cmd)
    const NVME_IOCTL_ADMIN_CMD: libc::c_ulong =
        (3 << 30) | (72 << 16) | ((b'N' as libc::c_ulong) << 8) | 0x41;
    const GET_LOG_PAGE: u8 = 0x02;
    const LID_SMART: u32 = 0x02;
    const LEN: usize = 512;

    pub fn smart_log(dev: &Path) -> Result<Vec<u8>, CollectError> {
        let file = std::fs::File::open(dev).map_err(|source| CollectError::Unreadable {
            path: dev.to_path_buf(),
            source,
        })?;
        let mut buf = vec![0u8; LEN];
        let numdl = (LEN / 4 - 1) as u32;
        let mut cmd = PassthruCmd {
            opcode: GET_LOG_PAGE,
            nsid: 0xFFFF_FFFF,
            addr: buf.as_mut_ptr() as u64,
            data_len: LEN as u32,
            cdw10: LID_SMART | (numdl << 16),
            timeout_ms: 2000,
            ..Default::default()
        };
        // SAFETY: cmd is a correctly laid out nvme_passthru_cmd whose addr points at a
        // live buffer of data_len bytes, which outlives the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), NVME_IOCTL_ADMIN_CMD as _, &mut cmd) };
        if rc < 0 {
            return Err(CollectError::Syscall {
                what: format!("NVMe Get Log Page (SMART) on {}", dev.display()),
                source: std::io::Error::last_os_error(),
            });
        }
        if rc > 0 {
            return Err(CollectError::Invalid {
                what: format!("NVMe Get Log Page (SMART) on {}", dev.display()),
                detail: format!("controller returned status {rc:#x}"),
            });
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscalls_answer_only_for_this_machine() {
        assert_eq!(foreign(std::path::Path::new("/")), (None, None));
        let dir = tempfile::tempdir().unwrap();
        let (clock, net) = foreign(dir.path());
        assert!(
            clock
                .as_deref()
                .is_some_and(|w| w.contains("is not this machine")),
            "{clock:?}"
        );
        assert!(net.is_some());
        let e = RealSys::new(dir.path().into())
            .clock()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("adjtimex(2): the host root"), "{e}");
        // A mount of this machine's root (same boot): the clock is this machine's.
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        let p = dir.path().join("proc/sys/kernel/random");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("boot_id"), boot).unwrap();
        let (clock, net) = foreign(dir.path());
        assert_eq!(clock, None);
        assert!(
            net.as_deref()
                .is_some_and(|w| w.contains("network namespace")),
            "no proc/1/ns/net to compare: {net:?}"
        );
    }
}
