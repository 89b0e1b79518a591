//! The syscall seam: facts that come from syscalls rather than files. `RealSys` asks the
//! kernel (netlink, the NVMe admin ioctl, adjtimex); `FixtureSys` answers from files in a
//! fixture tree's `_fixture/` folder, captured in the shape the tools print them
//! (`ip -j …`, the raw 512-byte SMART log page, adjtimex's fields as TOML).

use super::error::CollectError;
use super::{iproute_json, netlink};
use crate::model::cpuset::CpuSet;
use crate::model::net::{IpAddress, Route, RoutingRule};
use std::path::PathBuf;

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

/// Addresses, policy rules and routes of every table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingFacts {
    /// (interface name, address)
    pub addresses: Vec<(String, IpAddress)>,
    pub rules: Vec<RoutingRule>,
    pub routes: Vec<Route>,
}

/// What adjtimex(2) reports about the kernel clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct ClockState {
    /// The syscall's return value: TIME_OK (0) … TIME_ERROR (5).
    pub state: i32,
    /// `timex.status` flags; STA_UNSYNC (0x40) means not synchronised.
    pub status: i32,
    #[serde(default)]
    pub offset_ns: i64,
    pub maxerror_us: i64,
    pub esterror_us: i64,
}

pub const STA_UNSYNC: i32 = 0x0040;
pub const TIME_ERROR: i32 = 5;

impl ClockState {
    pub fn synchronised(&self) -> bool {
        self.state != TIME_ERROR && self.status & STA_UNSYNC == 0
    }
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
/// container with the host's / mounted at /host still reaches them.
pub struct RealSys {
    root: PathBuf,
}

impl RealSys {
    pub fn new(root: PathBuf) -> Self {
        RealSys { root }
    }
}

impl SysAccess for RealSys {
    fn routing(&self) -> Result<RoutingFacts, CollectError> {
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

    fn read(&self, name: &str) -> Result<Vec<u8>, CollectError> {
        let path = self.dir.join(name);
        std::fs::read(&path).map_err(|source| CollectError::Unreadable { path, source })
    }

    fn read_text(&self, name: &str) -> Result<String, CollectError> {
        let bytes = self.read(name)?;
        String::from_utf8(bytes)
            .map_err(|_| CollectError::malformed(self.dir.join(name), "not valid UTF-8 text"))
    }
}

impl SysAccess for FixtureSys {
    fn routing(&self) -> Result<RoutingFacts, CollectError> {
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
        self.read(&format!("nvme/{ctrl}/smart-log.bin"))
    }

    fn clock(&self) -> Result<ClockState, CollectError> {
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
