//! Judges of the host's OS settings: swap, NUMA balancing, /tmp, cgroup v2, kernel
//! headers, the clock, rpcbind and the file systems. Their facts come from files and
//! syscalls (`collectors::checks` reads them into `OsFacts`).

use super::{plural, result, unknown};
use crate::model::checks::{CheckResult, CheckStatus};
use crate::model::clock::ClockState;
use humansize::{BINARY, format_size};
use std::collections::BTreeSet;

/// What the host checks read from files and syscalls, beyond the other collectors'
/// sections. Each `Err` says why that fact could not be read: its check is unknown.
#[derive(Debug, Clone)]
pub struct OsFacts {
    /// The active swap areas in /proc/swaps.
    pub swaps: Result<Vec<SwapArea>, String>,
    pub numa_balancing: NumaBalancing,
    /// /proc/mounts.
    pub mounts: Result<Vec<Mount>, String>,
    /// Whether /sys/fs/cgroup/cgroup.controllers exists.
    pub cgroup_controllers: Result<bool, String>,
    /// Err: the running kernel's release is unreadable.
    pub kernel_headers: Result<KernelHeaders, String>,
    /// Whether /sys/kernel/mm/hugepages exists (the kernel has HugeTLB); judged by
    /// `cpu::hugepages`.
    pub hugetlb: Result<bool, String>,
    /// adjtimex(2).
    pub clock: Result<ClockState, String>,
    pub rpcbind: Rpcbind,
    pub xfs: FsSupport,
    pub squashfs: FsSupport,
}

/// One active swap area (/proc/swaps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapArea {
    pub name: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct NumaBalancing {
    /// `kernel.numa_balancing` now; `Ok(None)` when this kernel has no such setting.
    pub runtime: Result<Option<i64>, String>,
    pub persisted: Persisted,
}

/// The running kernel's release, and what `/lib/modules/<release>/build` is.
#[derive(Debug, Clone)]
pub struct KernelHeaders {
    pub release: String,
    /// Err: whether it exists could not be read.
    pub build: Result<BuildLink, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildLink {
    /// Resolves (inside the host root) to this directory.
    Headers { target: String },
    /// Exists, but does not resolve to a directory.
    Dangling,
    /// Absent, while /lib/modules/<release> exists.
    Missing,
    /// /lib/modules/<release> itself is absent.
    NoModules,
}

/// rpcbind's systemd units.
#[derive(Debug, Clone)]
pub struct Rpcbind {
    /// Whether any systemd unit directory exists; Err when none is known to and some
    /// could not be looked at.
    pub unit_dirs: Result<bool, String>,
    /// rpcbind.service / rpcbind.socket unit files found.
    pub installed: Vec<String>,
    /// What could not be read while looking for them.
    pub install_errors: Vec<String>,
    /// /etc/systemd/system/rpcbind.service links to /dev/null.
    pub masked: bool,
    /// Enablement links (`rpcbind.socket (sockets.target.wants)`).
    pub enabled: Vec<String>,
    /// What could not be read while looking for those.
    pub enable_errors: Vec<String>,
}

/// Whether the kernel can mount a file system.
#[derive(Debug, Clone, Default)]
pub struct FsSupport {
    /// Listed in /proc/filesystems; None when that is unreadable.
    pub registered: Option<bool>,
    /// The running kernel's release; None when unreadable.
    pub release: Option<String>,
    /// A `<fs>.ko*` file in /lib/modules/<release>/kernel/fs/<fs>/.
    pub module: Option<String>,
    /// Listed in /lib/modules/<release>/modules.builtin.
    pub builtin: bool,
}

// ------------------------------------------------------------------ swap, sysctl, mounts

pub fn swap_off(swaps: &Result<Vec<SwapArea>, String>) -> CheckResult {
    const ID: &str = "swap.off";
    const EXP: &str = "no active swap";
    let swaps = match swaps {
        Ok(s) => s,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    let active: Vec<String> = swaps
        .iter()
        .map(|s| {
            format!(
                "{} ({}, {} used)",
                s.name,
                format_size(s.size_bytes, BINARY),
                format_size(s.used_bytes, BINARY)
            )
        })
        .collect();
    if active.is_empty() {
        result(ID, CheckStatus::Pass, "no active swap", EXP, "")
    } else {
        result(
            ID,
            CheckStatus::Fail,
            format!(
                "{} active: {}",
                plural(active.len(), "swap area"),
                active.join(", ")
            ),
            EXP,
            "swapoff -a; remove or comment out the swap entries in /etc/fstab (and `systemctl mask swap.target` where systemd activates swap)",
        )
    }
}

/// sysctl assignments of a key in the files systemd-sysctl and procps read, in the order
/// they apply (later wins), and the files or directories that could not be read.
#[derive(Debug, Clone, Default)]
pub struct Persisted {
    pub assignments: Vec<(String, String)>,
    pub unreadable: Vec<String>,
}

pub fn numa_balancing(f: &NumaBalancing) -> CheckResult {
    const ID: &str = "numa.balancing";
    const EXP: &str = "kernel.numa_balancing = 0, persisted in /etc/sysctl.conf or /etc/sysctl.d";
    // Appends: other remedies (ARP, rp_filter) write to the same file.
    const FIX: &str = "sysctl -w kernel.numa_balancing=0 && echo 'kernel.numa_balancing = 0' >> /etc/sysctl.d/99-axon.conf";
    let runtime = match &f.runtime {
        Ok(r) => *r,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    let persisted = &f.persisted;
    let last = persisted.assignments.last();
    let unread = persisted.unreadable.join("; ");
    // A file that sets another value and is read after 99-axon.conf would win over an
    // appended line: then that file is what to fix.
    let fix = match last {
        Some((f, v))
            if v != "0"
                && (f == "/etc/sysctl.conf"
                    || f.rsplit('/').next().is_some_and(|n| n > "99-axon.conf")) =>
        {
            format!(
                "sysctl -w kernel.numa_balancing=0, and change the line in {f} to `kernel.numa_balancing = 0` (it is read after 99-axon.conf and sets {v})"
            )
        }
        _ => FIX.to_string(),
    };
    match runtime {
        None => result(
            ID,
            CheckStatus::Pass,
            "not built into this kernel (no /proc/sys/kernel/numa_balancing)",
            EXP,
            "",
        ),
        Some(n) if n != 0 => result(
            ID,
            CheckStatus::Fail,
            format!(
                "kernel.numa_balancing = {n}{}",
                match last {
                    Some((f, v)) => format!(" ({f} sets {v})"),
                    None if unread.is_empty() => " (not set in any sysctl file)".into(),
                    None => format!(" (not set in any readable sysctl file; {unread})"),
                }
            ),
            EXP,
            fix,
        ),
        Some(_) => match last {
            Some((f, v)) if v == "0" => result(
                ID,
                CheckStatus::Pass,
                format!("0, persisted in {f}"),
                EXP,
                "",
            ),
            // The seed requires the setting persisted: one that reverts at boot fails.
            Some((f, v)) => result(
                ID,
                CheckStatus::Fail,
                format!("0 now, but {f} sets {v}: reverts at boot"),
                EXP,
                fix,
            ),
            // Nothing readable persists it, but an unreadable file may: that is unknown.
            None if !unread.is_empty() => unknown(
                ID,
                format!("0 now; whether it is persisted is unknown: {unread}"),
                EXP,
            ),
            None => result(
                ID,
                CheckStatus::Fail,
                "0 now, but not persisted in any sysctl file: reverts at boot",
                EXP,
                "echo 'kernel.numa_balancing = 0' >> /etc/sysctl.d/99-axon.conf",
            ),
        },
    }
}

#[derive(Debug, Clone)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub options: Vec<String>,
}

pub fn tmp_noexec(mounts: &Result<Vec<Mount>, String>) -> CheckResult {
    const ID: &str = "tmp.noexec";
    const EXP: &str = "/tmp is its own mount with the noexec option";
    let mounts = match mounts {
        Ok(m) => m,
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    // The last entry for a mount point is the one on top.
    match mounts.iter().rev().find(|m| m.target == "/tmp") {
        None => result(
            ID,
            CheckStatus::Fail,
            "no separate /tmp mount: /tmp lives on the root file system, executable",
            EXP,
            "add `tmpfs /tmp tmpfs defaults,noexec,nosuid,nodev 0 0` to /etc/fstab and `mount /tmp` (or enable tmp.mount with Options=…,noexec)",
        ),
        Some(m) if m.options.iter().any(|o| o == "noexec") => result(
            ID,
            CheckStatus::Pass,
            format!("{} on /tmp ({})", m.fstype, m.options.join(",")),
            EXP,
            "",
        ),
        Some(m) => result(
            ID,
            CheckStatus::Fail,
            format!(
                "{} on /tmp without noexec ({})",
                m.fstype,
                m.options.join(",")
            ),
            EXP,
            "mount -o remount,noexec /tmp, and add noexec to the /tmp options in /etc/fstab",
        ),
    }
}

pub fn cgroup_v2(
    controllers: &Result<bool, String>,
    mounts: &Result<Vec<Mount>, String>,
) -> CheckResult {
    const ID: &str = "cgroup.v2";
    const EXP: &str = "unified cgroup v2 mounted at /sys/fs/cgroup";
    const FIX: &str = "boot with systemd.unified_cgroup_hierarchy=1 (e.g. `grubby --update-kernel=ALL --args=systemd.unified_cgroup_hierarchy=1`, or add it to GRUB_CMDLINE_LINUX and update-grub), then reboot";
    // Err: whether cgroup.controllers exists is unknown (not that it is absent).
    let mounts = match (mounts, controllers) {
        (Ok(m), _) => m,
        (Err(e), Ok(true)) => {
            return result(
                ID,
                CheckStatus::Pass,
                format!("/sys/fs/cgroup/cgroup.controllers present (mount table unreadable: {e})"),
                EXP,
                "",
            );
        }
        (Err(e), Ok(false)) => return unknown(ID, e.clone(), EXP),
        (Err(e), Err(ce)) => return unknown(ID, format!("{ce}; {e}"), EXP),
    };
    let v2_at_root = mounts
        .iter()
        .any(|m| m.fstype == "cgroup2" && m.target == "/sys/fs/cgroup");
    let v1: BTreeSet<String> = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup")
        .flat_map(|m| m.target.rsplit('/').next().map(str::to_string))
        .collect();
    let v2_elsewhere = mounts
        .iter()
        .find(|m| m.fstype == "cgroup2" && m.target != "/sys/fs/cgroup");
    if v2_at_root || v1.is_empty() {
        match controllers {
            Ok(true) => {
                return result(
                    ID,
                    CheckStatus::Pass,
                    "unified: cgroup2 on /sys/fs/cgroup",
                    EXP,
                    "",
                );
            }
            // The mount table alone does not decide it: cgroup.controllers does.
            Err(ce) => return unknown(ID, ce.clone(), EXP),
            Ok(false) => {}
        }
    }
    let v1_list = v1.iter().cloned().collect::<Vec<_>>().join(", ");
    let observed = match (v1.is_empty(), v2_elsewhere) {
        (false, Some(m)) => format!(
            "hybrid: cgroup v1 controllers ({v1_list}) with cgroup2 only at {}",
            m.target
        ),
        (false, None) => format!("legacy cgroup v1 only ({v1_list})"),
        (true, Some(m)) => format!("cgroup2 mounted at {} instead of /sys/fs/cgroup", m.target),
        (true, None) => "no cgroup file system mounted".into(),
    };
    result(ID, CheckStatus::Fail, observed, EXP, FIX)
}

pub fn kernel_headers(h: &Result<KernelHeaders, String>) -> CheckResult {
    const ID: &str = "kernel.headers";
    const EXP: &str = "/lib/modules/<running kernel>/build points at installed headers";
    let (rel, state) = match h {
        Ok(h) => (&h.release, &h.build),
        Err(e) => return unknown(ID, e.clone(), EXP),
    };
    let build = format!("/lib/modules/{rel}/build");
    // Absent only when the file system says so; an unreadable path is unknown.
    let why = match state {
        Err(e) => return unknown(ID, e.clone(), EXP),
        Ok(BuildLink::Headers { target }) => {
            return result(
                ID,
                CheckStatus::Pass,
                format!("{build} → {target}"),
                EXP,
                "",
            );
        }
        Ok(BuildLink::Dangling) => {
            format!("{build} is a dangling link: headers for {rel} are not installed")
        }
        Ok(BuildLink::Missing) => format!("no {build}: headers for {rel} are not installed"),
        Ok(BuildLink::NoModules) => format!(
            "no /lib/modules/{rel}: neither modules nor headers of the running kernel {rel} are installed"
        ),
    };
    result(
        ID,
        CheckStatus::Fail,
        why,
        EXP,
        format!("apt install linux-headers-{rel}   (RHEL/Rocky: dnf install kernel-devel-{rel})"),
    )
}

// ------------------------------------------------------------------ services and file systems

pub fn ntp_sync(clock: &Result<ClockState, String>) -> CheckResult {
    const ID: &str = "ntp.sync";
    const EXP: &str = "kernel clock synchronised (adjtimex without STA_UNSYNC)";
    match clock {
        Err(e) => unknown(ID, e.clone(), EXP),
        Ok(c) if c.synchronised() => result(
            ID,
            CheckStatus::Pass,
            format!("synchronised, max error {} ms", c.maxerror_us / 1000),
            EXP,
            "",
        ),
        Ok(c) => result(
            ID,
            CheckStatus::Fail,
            format!(
                "not synchronised (adjtimex state {}, status {:#06x})",
                c.state, c.status
            ),
            EXP,
            "run an NTP client against the cluster's time source: `systemctl enable --now chrony` (check with `chronyc tracking`)",
        ),
    }
}

pub fn svc_rpcbind(f: &Rpcbind) -> CheckResult {
    const ID: &str = "svc.rpcbind";
    const EXP: &str = "rpcbind installed and enabled";
    const INSTALL: &str = "apt install rpcbind (RHEL/Rocky: dnf install rpcbind), then systemctl enable --now rpcbind.service rpcbind.socket";
    match &f.unit_dirs {
        Ok(true) => {}
        Ok(false) => {
            return unknown(
                ID,
                "no systemd unit directories: cannot tell how services are managed on this host",
                EXP,
            );
        }
        Err(e) => {
            return unknown(ID, format!("no systemd unit directory found: {e}"), EXP);
        }
    }
    // A unit file or directory that cannot be read is not evidence of absence.
    let (installed, enabled) = (&f.installed, &f.enabled);
    let errors: Vec<&str> = f
        .install_errors
        .iter()
        .chain(&f.enable_errors)
        .map(String::as_str)
        .collect();
    if installed.is_empty() {
        if !f.install_errors.is_empty() {
            return unknown(
                ID,
                format!("no rpcbind unit found, but {}", f.install_errors.join("; ")),
                EXP,
            );
        }
        return result(
            ID,
            CheckStatus::Fail,
            "rpcbind is not installed (no rpcbind.service or rpcbind.socket unit)",
            EXP,
            INSTALL,
        );
    }
    // A unit linked to /dev/null is masked.
    if f.masked {
        return result(
            ID,
            CheckStatus::Fail,
            "rpcbind.service is masked",
            EXP,
            "systemctl unmask rpcbind.service && systemctl enable --now rpcbind",
        );
    }
    match (enabled.is_empty(), errors.is_empty()) {
        (false, _) => result(
            ID,
            CheckStatus::Pass,
            format!("enabled: {}", enabled.join(", ")),
            EXP,
            "",
        ),
        (true, false) => unknown(
            ID,
            format!(
                "rpcbind installed; whether it is enabled is unknown: {}",
                errors.join("; ")
            ),
            EXP,
        ),
        (true, true) => result(
            ID,
            CheckStatus::Fail,
            "rpcbind installed but not enabled",
            EXP,
            "systemctl enable --now rpcbind.service rpcbind.socket",
        ),
    }
}

pub fn filesystem(f: &FsSupport, id: &str, fs: &str, pretty: &str) -> CheckResult {
    let exp = format!("{pretty} registered in /proc/filesystems or available as a kernel module");
    let registered = f.registered;
    if registered == Some(true) {
        return result(
            id,
            CheckStatus::Pass,
            format!("{fs} registered in /proc/filesystems"),
            &exp,
            "",
        );
    }
    let rel = f.release.clone();
    if let Some(rel) = &rel {
        let dir = format!("/lib/modules/{rel}/kernel/fs/{fs}");
        if let Some(m) = &f.module {
            return result(
                id,
                CheckStatus::Pass,
                format!("module {dir}/{m} (loads on first mount)"),
                &exp,
                "",
            );
        }
        if f.builtin {
            return result(
                id,
                CheckStatus::Pass,
                format!("{fs} built into the kernel"),
                &exp,
                "",
            );
        }
    }
    match (registered, rel) {
        (None, _) | (_, None) => unknown(
            id,
            "/proc/filesystems or the kernel release unreadable",
            &exp,
        ),
        (Some(false), Some(rel)) => result(
            id,
            CheckStatus::Fail,
            format!("{fs} neither registered nor found under /lib/modules/{rel}"),
            &exp,
            format!(
                "install the kernel's extra modules (Ubuntu: apt install linux-modules-extra-{rel}; RHEL: dnf install kernel-modules-{rel}), then `modprobe {fs}`"
            ),
        ),
        _ => unreachable!("registered handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(build: Result<BuildLink, String>) -> Result<KernelHeaders, String> {
        Ok(KernelHeaders {
            release: "6.8.0-49-generic".into(),
            build,
        })
    }

    #[test]
    fn kernel_headers_unreadable_is_unknown_not_fail() {
        let r = kernel_headers(&headers(Err(
            "/lib/modules/6.8.0-49-generic/build unreadable (permission denied) — run the agent as root".into(),
        )));
        assert_eq!(r.status, CheckStatus::Unknown, "{}", r.observed);
        assert!(r.observed.contains("permission denied"), "{}", r.observed);
        for absent in [
            BuildLink::Dangling,
            BuildLink::Missing,
            BuildLink::NoModules,
        ] {
            let r = kernel_headers(&headers(Ok(absent)));
            assert_eq!(r.status, CheckStatus::Fail, "{}", r.observed);
        }
        let target = "/usr/src/linux-headers-6.8.0-49-generic".to_string();
        let r = kernel_headers(&headers(Ok(BuildLink::Headers { target })));
        assert_eq!(r.status, CheckStatus::Pass, "{}", r.observed);
    }

    fn mount(fstype: &str, target: &str) -> Mount {
        Mount {
            source: fstype.into(),
            target: target.into(),
            fstype: fstype.into(),
            options: vec!["rw".into()],
        }
    }

    #[test]
    fn cgroup_v2_unreadable_is_unknown_unless_the_mount_table_fails_it() {
        let unified = Ok(vec![mount("cgroup2", "/sys/fs/cgroup")]);
        let hybrid = Ok(vec![
            mount("cgroup", "/sys/fs/cgroup/cpu"),
            mount("cgroup2", "/sys/fs/cgroup/unified"),
        ]);
        let unread: Result<bool, String> =
            Err("/sys/fs/cgroup/cgroup.controllers unreadable (permission denied)".into());
        let r = cgroup_v2(&unread, &unified);
        assert_eq!(r.status, CheckStatus::Unknown, "{}", r.observed);
        assert!(r.observed.contains("permission denied"), "{}", r.observed);
        assert_eq!(cgroup_v2(&unread, &hybrid).status, CheckStatus::Fail);
        assert_eq!(cgroup_v2(&Ok(true), &unified).status, CheckStatus::Pass);
        assert_eq!(cgroup_v2(&Ok(false), &unified).status, CheckStatus::Fail);
    }
}
