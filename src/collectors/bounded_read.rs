//! Reading a file of outside data without trusting it: only regular files, at most a
//! capped number of bytes, never blocking on a FIFO or device. `HostRoot` reads every host
//! file through this, and the syscall seam's fixture answers too.

use super::error::CollectError;
use std::io;
use std::path::Path;

/// Most bytes read from one host file: far more than any kernel file a collector reads
/// (`/proc/mounts` of a node with thousands of mounts, `/proc/cpuinfo` of 512 CPUs, each
/// under 1 MiB), so a sparse or endless file costs at most this much memory.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Most bytes read from a one-value file (sysfs attributes, hostname, profile.toml).
pub const MAX_VALUE_BYTES: u64 = 64 * 1024;

/// What kind of file this is, for messages ("a FIFO", "a regular file", …).
pub fn kind_of(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Reads a file of outside data, bounded: only a regular file is read (a FIFO, socket or
/// device is refused before it is opened, and again by `fstat` after an `O_NONBLOCK` open,
/// so one swapped in between cannot block either), and at most `cap` bytes — a longer file
/// is an error naming it. procfs and sysfs files are regular files whose size says nothing
/// (0 or 4096), so the cap is enforced while reading, not from `st_size`. `shown` is the
/// path errors name. Time is bounded by the caller: collectors run under their deadline,
/// startup reads under `STARTUP_DEADLINE`.
pub fn read_bounded(path: &Path, shown: &Path, cap: u64) -> Result<Vec<u8>, CollectError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let unreadable = |source: io::Error| CollectError::Unreadable {
        path: shown.to_path_buf(),
        source,
    };
    let not_regular = |ft: &std::fs::FileType| {
        if ft.is_dir() {
            // What reading a directory always said: unreadable (is a directory).
            unreadable(io::Error::from_raw_os_error(libc::EISDIR))
        } else {
            CollectError::NotRegular {
                path: shown.to_path_buf(),
                kind: kind_of(ft),
            }
        }
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(not_regular(&meta.file_type()));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(not_regular(&meta.file_type()));
    }
    let mut buf = Vec::new();
    // One byte past the cap tells "exactly the cap" from "longer".
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(unreadable)?;
    if buf.len() as u64 > cap {
        return Err(CollectError::TooLarge {
            path: shown.to_path_buf(),
            limit: cap,
        });
    }
    Ok(buf)
}
