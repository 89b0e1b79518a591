//! A data-plane drive: a file or a block device holding a superblock, kept in two copies,
//! and fixed-size chunk slots aligned for O_DIRECT. Every chunk in a slot starts with a
//! header naming its stripe, index and generation, with a crc32c of its payload and of
//! itself, so a torn or misplaced chunk is caught when read.
//!
//! Layout (all little-endian):
//!
//! ```text
//! 0        superblock copy A (4 KiB block)
//! 4 KiB    superblock copy B
//! 1 MiB    slot 0: chunk header (4 KiB block), then chunk_size bytes of payload
//! …        slot n at 1 MiB + n × (4 KiB + chunk_size)
//! ```

use super::zeroes;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// On-disk format identifiers.
pub const MAGIC: [u8; 8] = *b"AXONDRV1";
pub const FORMAT_VERSION: u32 = 1;
/// O_DIRECT alignment, and the size of a superblock copy and of a chunk header.
pub const BLOCK: u64 = 4096;
/// Where the slots start.
pub const SLOTS_OFFSET: u64 = 1 << 20;
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;
/// Chunk sizes accepted: 4 KiB to 64 MiB, multiples of 4 KiB.
pub const MIN_CHUNK: u32 = 4096;
pub const MAX_CHUNK: u32 = 64 << 20;

/// A drive's state, in WEKA's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveState {
    Active,
    PhasingIn,
    PhasingOut,
    Inactive,
    Failed,
}

impl DriveState {
    pub fn as_str(self) -> &'static str {
        match self {
            DriveState::Active => "ACTIVE",
            DriveState::PhasingIn => "PHASING_IN",
            DriveState::PhasingOut => "PHASING_OUT",
            DriveState::Inactive => "INACTIVE",
            DriveState::Failed => "FAILED",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            DriveState::Active => 1,
            DriveState::PhasingIn => 2,
            DriveState::PhasingOut => 3,
            DriveState::Inactive => 4,
            DriveState::Failed => 5,
        }
    }

    pub fn from_code(c: u8) -> Option<DriveState> {
        Some(match c {
            1 => DriveState::Active,
            2 => DriveState::PhasingIn,
            3 => DriveState::PhasingOut,
            4 => DriveState::Inactive,
            5 => DriveState::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub version: u32,
    pub cluster: Uuid,
    pub drive: Uuid,
    pub chunk_size: u32,
    pub slots: u64,
    pub state: DriveState,
    /// Bumped on every superblock write; the newer valid copy wins.
    pub generation: u64,
}

/// Bytes of the superblock covered by its crc (the crc follows them).
const SB_LEN: usize = 8 + 4 + 16 + 16 + 4 + 8 + 1 + 8;

impl Superblock {
    pub fn encode(&self) -> [u8; BLOCK as usize] {
        let mut b = [0u8; BLOCK as usize];
        let mut w = 0;
        let mut put = |bytes: &[u8]| {
            b[w..w + bytes.len()].copy_from_slice(bytes);
            w += bytes.len();
        };
        put(&MAGIC);
        put(&self.version.to_le_bytes());
        put(self.cluster.as_bytes());
        put(self.drive.as_bytes());
        put(&self.chunk_size.to_le_bytes());
        put(&self.slots.to_le_bytes());
        put(&[self.state.code()]);
        put(&self.generation.to_le_bytes());
        let crc = crc32c::crc32c(&b[..SB_LEN]);
        b[SB_LEN..SB_LEN + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes one copy; the error says what is wrong with it.
    pub fn decode(b: &[u8]) -> Result<Superblock, String> {
        if b.len() < SB_LEN + 4 {
            return Err("shorter than a superblock".into());
        }
        if b[..8] != MAGIC {
            return Err("no axon drive magic".into());
        }
        let crc = u32::from_le_bytes(b[SB_LEN..SB_LEN + 4].try_into().expect("4 bytes"));
        if crc32c::crc32c(&b[..SB_LEN]) != crc {
            return Err("checksum mismatch (damaged)".into());
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let uuid_at = |o: usize| Uuid::from_bytes(b[o..o + 16].try_into().expect("16 bytes"));
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, this axon reads {FORMAT_VERSION}"
            ));
        }
        let state =
            DriveState::from_code(b[56]).ok_or_else(|| format!("unknown state {}", b[56]))?;
        Ok(Superblock {
            version,
            cluster: uuid_at(12),
            drive: uuid_at(28),
            chunk_size: u32_at(44),
            slots: u64_at(48),
            state,
            generation: u64_at(57),
        })
    }
}

/// Where slot `n`'s header starts.
pub fn slot_offset(chunk_size: u32, n: u64) -> u64 {
    SLOTS_OFFSET + n * (BLOCK + u64::from(chunk_size))
}

/// How many slots a drive of `size` bytes holds.
pub fn slots_for(size: u64, chunk_size: u32) -> u64 {
    size.saturating_sub(SLOTS_OFFSET) / (BLOCK + u64::from(chunk_size))
}

/// The header in front of every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub stripe: u64,
    pub index: u16,
    pub stripe_generation: u64,
    pub payload_len: u32,
    pub payload_crc: u32,
}

const CH_MAGIC: [u8; 4] = *b"AXCK";
const CH_LEN: usize = 4 + 8 + 2 + 8 + 4 + 4;

impl ChunkHeader {
    pub fn for_payload(stripe: u64, index: u16, stripe_generation: u64, payload: &[u8]) -> Self {
        ChunkHeader {
            stripe,
            index,
            stripe_generation,
            payload_len: payload.len() as u32,
            payload_crc: crc32c::crc32c(payload),
        }
    }

    pub fn encode(&self) -> [u8; BLOCK as usize] {
        let mut b = [0u8; BLOCK as usize];
        b[..4].copy_from_slice(&CH_MAGIC);
        b[4..12].copy_from_slice(&self.stripe.to_le_bytes());
        b[12..14].copy_from_slice(&self.index.to_le_bytes());
        b[14..22].copy_from_slice(&self.stripe_generation.to_le_bytes());
        b[22..26].copy_from_slice(&self.payload_len.to_le_bytes());
        b[26..30].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[..CH_LEN]);
        b[CH_LEN..CH_LEN + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header; None for a slot never written (all zero), an error for a damaged one.
    pub fn decode(b: &[u8]) -> Result<Option<ChunkHeader>, String> {
        if b.len() < CH_LEN + 4 {
            return Err("shorter than a chunk header".into());
        }
        if b[..CH_LEN + 4].iter().all(|x| *x == 0) {
            return Ok(None);
        }
        if b[..4] != CH_MAGIC {
            return Err("not a chunk header".into());
        }
        let crc = u32::from_le_bytes(b[CH_LEN..CH_LEN + 4].try_into().expect("4 bytes"));
        if crc32c::crc32c(&b[..CH_LEN]) != crc {
            return Err("chunk header checksum mismatch (torn or damaged)".into());
        }
        Ok(Some(ChunkHeader {
            stripe: u64::from_le_bytes(b[4..12].try_into().expect("8 bytes")),
            index: u16::from_le_bytes(b[12..14].try_into().expect("2 bytes")),
            stripe_generation: u64::from_le_bytes(b[14..22].try_into().expect("8 bytes")),
            payload_len: u32::from_le_bytes(b[22..26].try_into().expect("4 bytes")),
            payload_crc: u32::from_le_bytes(b[26..30].try_into().expect("4 bytes")),
        }))
    }

    /// Whether `payload` is the one this header describes.
    pub fn verify(&self, payload: &[u8]) -> Result<(), String> {
        if payload.len() != self.payload_len as usize {
            return Err(format!(
                "payload is {} bytes, the header says {}",
                payload.len(),
                self.payload_len
            ));
        }
        if crc32c::crc32c(payload) != self.payload_crc {
            return Err("payload checksum mismatch".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("{path}: {why} — {remedy}")]
    Refused {
        path: PathBuf,
        why: String,
        remedy: String,
    },
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> DriveError + 'a {
    move |source| DriveError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// What the start of a device or file holds, by the signatures of common formats.
pub fn recognise(head: &[u8]) -> Option<String> {
    let at = |o: usize, sig: &[u8]| head.len() >= o + sig.len() && &head[o..o + sig.len()] == sig;
    if at(0, &MAGIC) {
        return match Superblock::decode(&head[..BLOCK as usize]) {
            Ok(sb) => Some(format!(
                "an axon drive (cluster {}, drive {}, {})",
                sb.cluster,
                sb.drive,
                sb.state.as_str()
            )),
            Err(e) => Some(format!("a damaged axon drive superblock ({e})")),
        };
    }
    let found = [
        (0, &b"XFSB"[..], "an XFS filesystem"),
        (1080, &[0x53, 0xEF][..], "an ext2/3/4 filesystem"),
        (65600, &b"_BHRfS_M"[..], "a btrfs filesystem"),
        (512, &b"EFI PART"[..], "a GPT partition table"),
        (512, &b"LABELONE"[..], "an LVM physical volume"),
        (4086, &b"SWAPSPACE2"[..], "a swap area"),
        (0, &b"LUKS\xba\xbe"[..], "a LUKS encrypted volume"),
        (32769, &b"CD001"[..], "an ISO 9660 image"),
    ]
    .iter()
    .find(|(o, sig, _)| at(*o, sig))
    .map(|(_, _, what)| what.to_string());
    if found.is_some() {
        return found;
    }
    if at(510, &[0x55, 0xAA]) {
        return Some("an MBR partition table or boot sector".into());
    }
    if head.iter().any(|b| *b != 0) {
        return Some("data of an unknown kind (not all zero)".into());
    }
    None
}

/// What `format` makes.
#[derive(Debug, Clone, Copy)]
pub struct FormatOptions {
    /// Size of a new file (ignored for a block device or an existing file).
    pub size: Option<u64>,
    pub chunk_size: u32,
    pub cluster: Uuid,
    /// Overwrite whatever the start of the drive holds.
    pub force: bool,
}

/// Why `format` would refuse `path`, found without writing anything (a dry run asks it):
/// the chunk size, a path that does not exist without a size to create it with (or whose
/// directory is missing), neither a regular file nor a block device, holding anything (a
/// filesystem, a partition table, another axon drive, unknown data) unless `force`, no
/// room for one chunk. Otherwise the drive's size in bytes.
pub fn format_check(path: &Path, o: &FormatOptions) -> Result<u64, DriveError> {
    let refuse = |why: String, remedy: &str| DriveError::Refused {
        path: path.to_path_buf(),
        why,
        remedy: remedy.to_string(),
    };
    if o.chunk_size < MIN_CHUNK || o.chunk_size > MAX_CHUNK || o.chunk_size % MIN_CHUNK != 0 {
        return Err(refuse(
            format!("chunk size {} bytes", o.chunk_size),
            "give a multiple of 4 KiB from 4 KiB to 64 MiB (default 1 MiB)",
        ));
    }
    let size = if path.exists() {
        // The kind before opening: a FIFO opened to read would wait for a writer.
        let kind = std::fs::metadata(path)
            .map_err(io(path, "stat"))?
            .file_type();
        if !(kind.is_file() || kind.is_block_device()) {
            return Err(refuse(
                "is neither a regular file nor a block device".into(),
                "name a file or an NVMe block device",
            ));
        }
        let mut f = File::open(path).map_err(io(path, "open"))?;
        let size = f.seek(SeekFrom::End(0)).map_err(io(path, "size"))?;
        let mut head = vec![0u8; (size.min(128 << 10)) as usize];
        f.seek(SeekFrom::Start(0)).map_err(io(path, "seek"))?;
        f.read_exact(&mut head).map_err(io(path, "read"))?;
        if let Some(what) = recognise(&head)
            && !o.force
        {
            return Err(refuse(
                format!("holds {what}"),
                "format it only if that may be destroyed: pass --force",
            ));
        }
        size
    } else {
        let size = o.size.ok_or_else(|| {
            refuse(
                "does not exist".into(),
                "pass --size to create a file-backed drive, or name a block device",
            )
        })?;
        // The file is made in its directory, which must be there.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io(path, "create")(std::io::Error::from_raw_os_error(
                    libc::ENOTDIR,
                )));
            }
            Err(e) => return Err(io(path, "create")(e)),
        }
        size
    };
    if slots_for(size, o.chunk_size) == 0 {
        return Err(refuse(
            format!("{size} bytes hold no {}-byte chunk slot", o.chunk_size),
            "use a larger drive or a smaller --chunk-size",
        ));
    }
    Ok(size)
}

/// Formats `path`: a new sparse file of `size`, an existing file, or a block device.
/// Refuses what `format_check` refuses, naming what it found.
pub fn format(path: &Path, o: &FormatOptions) -> Result<Superblock, DriveError> {
    format_tracked(path, o).map(|f| f.superblock)
}

/// What `format_tracked` made.
#[derive(Debug, Clone, Copy)]
pub struct Formatted {
    pub superblock: Superblock,
    /// The new file's (device, inode) when this call created it; None when it formatted a
    /// file or device that was there before.
    pub created: Option<(u64, u64)>,
}

/// As `format`, saying whether it created the file, so that a caller whose later step
/// fails can take back the new file (`remove_created`) and never one that was there. A
/// file it creates is removed again if formatting it fails.
pub fn format_tracked(path: &Path, o: &FormatOptions) -> Result<Formatted, DriveError> {
    use std::os::unix::fs::MetadataExt;
    let size = format_check(path, o)?;
    let sb = Superblock {
        version: FORMAT_VERSION,
        cluster: o.cluster,
        drive: Uuid::new_v4(),
        chunk_size: o.chunk_size,
        slots: slots_for(size, o.chunk_size),
        state: DriveState::Inactive,
        generation: 1,
    };
    if path.exists() {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path, "open"))?;
        write_superblocks(&mut f, path, &sb)?;
        return Ok(Formatted {
            superblock: sb,
            created: None,
        });
    }
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path, "create"))?;
    let made = match f.metadata() {
        Ok(m) => (m.dev(), m.ino()),
        Err(e) => {
            // create_new made it a moment ago: nobody else's file.
            let _ = std::fs::remove_file(path);
            return Err(io(path, "stat")(e));
        }
    };
    let written = (|| {
        // Sparse: only the superblocks and written chunks take space.
        f.set_len(size).map_err(io(path, "set size"))?;
        write_superblocks(&mut f, path, &sb)?;
        sync_parent(path).map_err(io(path, "sync its directory"))
    })();
    match written {
        Ok(()) => Ok(Formatted {
            superblock: sb,
            created: Some(made),
        }),
        Err(e) => {
            drop(f);
            let _ = remove_created(path, made);
            Err(e)
        }
    }
}

/// Removes the file `format_tracked` created at `path` (`made`: its device and inode),
/// durably; whatever else the path names by now is left alone. Whether it removed it.
pub fn remove_created(path: &Path, made: (u64, u64)) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !m.is_file() || (m.dev(), m.ino()) != made {
        return Ok(false);
    }
    std::fs::remove_file(path)?;
    sync_parent(path)?;
    Ok(true)
}

/// Makes a new file's name durable: fsync of the directory holding it.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// Writes both superblock copies, each made durable before the other is touched: a power
/// loss while writing one leaves the other whole.
fn write_superblocks(f: &mut File, path: &Path, sb: &Superblock) -> Result<(), DriveError> {
    let block = sb.encode();
    for off in [0, BLOCK] {
        f.seek(SeekFrom::Start(off)).map_err(io(path, "seek"))?;
        f.write_all(&block).map_err(io(path, "write superblock"))?;
        f.sync_data().map_err(io(path, "sync"))?;
    }
    Ok(())
}

/// An opened drive's superblock, and what was wrong with a copy if one was.
#[derive(Debug, Clone)]
pub struct Opened {
    pub superblock: Superblock,
    /// "copy A: checksum mismatch (damaged); using copy B" when one copy is bad.
    pub warning: Option<String>,
    pub size: u64,
}

/// Reads a drive's superblocks: the newer valid copy wins; both bad is an error naming
/// what is wrong with each.
pub fn open(path: &Path) -> Result<Opened, DriveError> {
    let mut f = File::open(path).map_err(io(path, "open"))?;
    read_superblocks(&mut f, path)
}

/// `open`'s reading, on a handle already open (`path` names it in errors).
fn read_superblocks(f: &mut File, path: &Path) -> Result<Opened, DriveError> {
    let size = f.seek(SeekFrom::End(0)).map_err(io(path, "size"))?;
    let mut buf = vec![0u8; (2 * BLOCK) as usize];
    f.seek(SeekFrom::Start(0)).map_err(io(path, "seek"))?;
    let n = read_up_to(f, &mut buf).map_err(io(path, "read"))?;
    let a = Superblock::decode(&buf[..n.min(BLOCK as usize)]);
    let b = if n > BLOCK as usize {
        Superblock::decode(&buf[BLOCK as usize..n])
    } else {
        Err("missing (the file is too short)".into())
    };
    let (superblock, warning) = match (a, b) {
        (Ok(a), Ok(b)) => (if b.generation > a.generation { b } else { a }, None),
        (Ok(a), Err(e)) => (a, Some(format!("superblock copy B: {e}; using copy A"))),
        (Err(e), Ok(b)) => (b, Some(format!("superblock copy A: {e}; using copy B"))),
        (Err(ea), Err(eb)) => {
            let head = &buf[..n];
            let what = recognise(head)
                .filter(|w| !w.starts_with("a damaged axon"))
                .map(|w| format!("; it holds {w}"))
                .unwrap_or_default();
            return Err(DriveError::Refused {
                path: path.to_path_buf(),
                why: format!("not a readable axon drive (copy A: {ea}; copy B: {eb}){what}"),
                remedy:
                    "check the path, or format it with `axon drive format` (destroys what is on it)"
                        .into(),
            });
        }
    };
    let need = slot_offset(superblock.chunk_size, superblock.slots);
    if size < need {
        return Err(DriveError::Refused {
            path: path.to_path_buf(),
            why: format!(
                "is {size} bytes but its superblock says {} slots of {} bytes ({need} bytes): truncated",
                superblock.slots, superblock.chunk_size
            ),
            remedy:
                "restore the drive's full size, or replace it (its chunks are rebuilt from parity)"
                    .into(),
        });
    }
    Ok(Opened {
        superblock,
        warning,
        size,
    })
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A buffer whose start is aligned to `BLOCK`, as O_DIRECT wants, without unsafe code:
/// a Vec one block longer than asked, used from its first aligned byte.
pub struct AlignedBuf {
    v: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn zeroed(len: usize) -> AlignedBuf {
        let v = zeroes(len + BLOCK as usize);
        let off = v.as_ptr().align_offset(BLOCK as usize);
        AlignedBuf { v, off, len }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.v[self.off..self.off + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.v[self.off..self.off + self.len]
    }

    /// The buffer as `Bytes`, with no copy (the alignment's lead bytes are cut off).
    pub fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(self.v).slice(self.off..self.off + self.len)
    }
}

/// An opened drive for chunk I/O: O_DIRECT where the filesystem allows it (a tmpfs before
/// Linux 6.6 does not; then buffered I/O, and durability still comes from fdatasync).
pub struct DriveIo {
    file: File,
    pub path: PathBuf,
    pub chunk_size: u32,
    /// Whether the file is open with O_DIRECT.
    pub direct: bool,
}

impl DriveIo {
    pub fn open(path: &Path, chunk_size: u32) -> Result<DriveIo, DriveError> {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        let (file, direct) = match direct {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(io(path, "open"))?,
                false,
            ),
            Err(e) => return Err(io(path, "open")(e)),
        };
        Ok(DriveIo {
            file,
            path: path.to_path_buf(),
            chunk_size,
            direct,
        })
    }

    /// Writes a slot: `buf` is the header block followed by the payload (a multiple of
    /// `BLOCK`, at most the chunk size). Not durable until `sync`.
    /// `buf` must start on a `BLOCK` boundary (an `AlignedBuf`'s slice) for O_DIRECT.
    pub fn write_slot(&self, slot: u64, buf: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        debug_assert!(buf.len() as u64 <= BLOCK + u64::from(self.chunk_size));
        self.file
            .write_all_at(buf, slot_offset(self.chunk_size, slot))
    }

    /// Reads the first `buf.len()` bytes of a slot (header block, then payload); `buf`
    /// aligned as for `write_slot`.
    pub fn read_slot(&self, slot: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file
            .read_exact_at(buf, slot_offset(self.chunk_size, slot))
    }

    /// Makes what was written durable (fdatasync).
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

/// Opens a drive to read and rewrite its superblock through one handle.
fn open_rw(path: &Path) -> Result<File, DriveError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path, "open"))
}

/// Rewrites both superblock copies with a new state and the next generation. The
/// superblock is read through the handle it is written through.
pub fn set_state(path: &Path, state: DriveState) -> Result<Superblock, DriveError> {
    let mut f = open_rw(path)?;
    let mut sb = read_superblocks(&mut f, path)?.superblock;
    sb.state = state;
    sb.generation += 1;
    write_superblocks(&mut f, path, &sb)?;
    Ok(sb)
}

/// What `set_state_of` found, and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSet {
    /// The drive says the state now (written, or it said so already): its superblock.
    Set(Superblock),
    /// The drive there is another (another drive id or cluster): nothing written.
    Another(Superblock),
}

/// Sets drive `drive` of `cluster` to `state`, if that is the drive at `path`: its
/// superblock is checked and rewritten through one open handle, so a drive swapped in at
/// the path between a look and a write never receives this drive's state. Nothing is
/// written when the drive already says `state` in both copies; one damaged copy is
/// rewritten (with a new generation) from the other.
pub fn set_state_of(
    path: &Path,
    drive: Uuid,
    cluster: Uuid,
    state: DriveState,
) -> Result<StateSet, DriveError> {
    set_state_on(&mut open_rw(path)?, path, drive, cluster, state)
}

/// `set_state_of` on a handle already open (`path` names it in errors).
fn set_state_on(
    f: &mut File,
    path: &Path,
    drive: Uuid,
    cluster: Uuid,
    state: DriveState,
) -> Result<StateSet, DriveError> {
    let read = read_superblocks(f, path)?;
    let mut sb = read.superblock;
    if sb.drive != drive || sb.cluster != cluster {
        return Ok(StateSet::Another(sb));
    }
    // A damaged copy is rewritten from the good one even when the state is unchanged:
    // a drive the store takes on carries two good copies again.
    if sb.state != state || read.warning.is_some() {
        sb.state = state;
        sb.generation += 1;
        write_superblocks(f, path, &sb)?;
    }
    Ok(StateSet::Set(sb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb() -> Superblock {
        Superblock {
            version: FORMAT_VERSION,
            cluster: Uuid::from_u128(1),
            drive: Uuid::from_u128(2),
            chunk_size: DEFAULT_CHUNK_SIZE,
            slots: 100,
            state: DriveState::Active,
            generation: 7,
        }
    }

    #[test]
    fn a_superblock_round_trips_and_any_flipped_byte_is_caught() {
        let b = sb().encode();
        assert_eq!(Superblock::decode(&b).unwrap(), sb());
        for i in 0..SB_LEN + 4 {
            let mut c = b;
            c[i] ^= 0x40;
            assert!(
                Superblock::decode(&c).is_err(),
                "byte {i} flipped went unseen"
            );
        }
    }

    #[test]
    fn a_chunk_header_round_trips_and_detects_torn_and_wrong_payloads() {
        let payload = vec![7u8; 5000];
        let h = ChunkHeader::for_payload(42, 3, 9, &payload);
        let b = h.encode();
        assert_eq!(ChunkHeader::decode(&b).unwrap(), Some(h));
        assert_eq!(
            ChunkHeader::decode(&[0u8; 4096]).unwrap(),
            None,
            "never written"
        );
        h.verify(&payload).unwrap();
        let mut torn = payload.clone();
        torn[4000..].fill(0);
        assert!(h.verify(&torn).unwrap_err().contains("checksum"));
        assert!(
            h.verify(&payload[..100])
                .unwrap_err()
                .contains("header says 5000")
        );
        let mut bad = b;
        bad[13] ^= 1;
        assert!(
            ChunkHeader::decode(&bad)
                .unwrap_err()
                .contains("torn or damaged")
        );
    }

    #[test]
    fn slots_are_block_aligned() {
        for cs in [MIN_CHUNK, DEFAULT_CHUNK_SIZE, MAX_CHUNK] {
            for n in [0, 1, 7, 1000] {
                assert_eq!(slot_offset(cs, n) % BLOCK, 0);
            }
        }
        assert_eq!(slots_for(SLOTS_OFFSET, MIN_CHUNK), 0);
        assert_eq!(slots_for(SLOTS_OFFSET + 2 * (BLOCK + 4096), 4096), 2);
    }

    #[test]
    fn common_formats_are_recognised() {
        let mut ext4 = vec![0u8; 128 << 10];
        ext4[1080] = 0x53;
        ext4[1081] = 0xEF;
        assert_eq!(recognise(&ext4).unwrap(), "an ext2/3/4 filesystem");
        let mut xfs = vec![0u8; 8192];
        xfs[..4].copy_from_slice(b"XFSB");
        assert_eq!(recognise(&xfs).unwrap(), "an XFS filesystem");
        assert!(recognise(&vec![0u8; 8192]).is_none());
        assert!(
            recognise(&sb().encode())
                .unwrap()
                .starts_with("an axon drive (cluster 00000000-0000-0000-0000-000000000001")
        );
        assert!(recognise(&[1u8; 100]).unwrap().contains("unknown kind"));
    }

    #[test]
    fn a_state_is_set_only_on_the_drive_named_and_through_the_handle_that_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let o = |cluster| FormatOptions {
            size: Some(4 << 20),
            chunk_size: 64 << 10,
            cluster,
            force: false,
        };
        let (c1, c2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        // Both superblock copies as they are on disk.
        let copies = |p: &Path| {
            let b = std::fs::read(p).unwrap();
            (
                Superblock::decode(&b[..4096]).unwrap(),
                Superblock::decode(&b[4096..8192]).unwrap(),
            )
        };
        let a = dir.path().join("a");
        let a_sb = format(&a, &o(c1)).unwrap();
        // The drive named: set, both copies; again: nothing to write.
        let StateSet::Set(now) = set_state_of(&a, a_sb.drive, c1, DriveState::Failed).unwrap()
        else {
            panic!("not set")
        };
        assert_eq!(
            (now.state, now.generation),
            (DriveState::Failed, a_sb.generation + 1)
        );
        assert_eq!(copies(&a), (now, now));
        assert_eq!(
            set_state_of(&a, a_sb.drive, c1, DriveState::Failed).unwrap(),
            StateSet::Set(now)
        );
        assert_eq!(copies(&a), (now, now));
        // Another drive, or the same id in another cluster: nothing written.
        let b = dir.path().join("b");
        let b_sb = format(&b, &o(c1)).unwrap();
        assert_eq!(
            set_state_of(&b, a_sb.drive, c1, DriveState::Inactive).unwrap(),
            StateSet::Another(b_sb)
        );
        assert_eq!(
            set_state_of(&b, b_sb.drive, c2, DriveState::Inactive).unwrap(),
            StateSet::Another(b_sb)
        );
        assert_eq!(copies(&b), (b_sb, b_sb));
        // Drive b swapped in at a's path once a's handle is open: the state is read and
        // written through that handle (drive a, now unlinked), never at the path.
        let mut handle = open_rw(&a).unwrap();
        std::fs::rename(&b, &a).unwrap();
        let StateSet::Set(on_a) =
            set_state_on(&mut handle, &a, a_sb.drive, c1, DriveState::Inactive).unwrap()
        else {
            panic!("not set")
        };
        assert_eq!(on_a.drive, a_sb.drive);
        assert_eq!(on_a.state, DriveState::Inactive);
        assert_eq!(read_superblocks(&mut handle, &a).unwrap().superblock, on_a);
        assert_eq!(copies(&a), (b_sb, b_sb), "drive b was written");
        // And asked by path now, drive a's state is refused for drive b.
        assert_eq!(
            set_state_of(&a, a_sb.drive, c1, DriveState::Failed).unwrap(),
            StateSet::Another(b_sb)
        );
        assert_eq!(copies(&a), (b_sb, b_sb));
    }

    #[test]
    fn setting_the_same_state_rewrites_a_damaged_copy_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let o = FormatOptions {
            size: Some(4 << 20),
            chunk_size: 64 << 10,
            cluster: Uuid::from_u128(1),
            force: false,
        };
        let p = dir.path().join("d");
        let sb = format(&p, &o).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[16] ^= 0x40; // copy A damaged
        std::fs::write(&p, &bytes).unwrap();
        let warned = open(&p).unwrap().warning.unwrap();
        assert!(warned.contains("copy A"), "{warned}");
        let StateSet::Set(now) = set_state_of(&p, sb.drive, sb.cluster, sb.state).unwrap() else {
            panic!("not set")
        };
        assert_eq!((now.state, now.generation), (sb.state, sb.generation + 1));
        let opened = open(&p).unwrap();
        assert_eq!((opened.superblock, opened.warning), (now, None));
        // Both copies good: set again, nothing is written.
        let before = std::fs::read(&p).unwrap();
        set_state_of(&p, sb.drive, sb.cluster, sb.state).unwrap();
        assert!(std::fs::read(&p).unwrap() == before);
    }

    #[test]
    fn only_a_file_format_created_is_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let o = FormatOptions {
            size: Some(4 << 20),
            chunk_size: 64 << 10,
            cluster: Uuid::from_u128(1),
            force: true,
        };
        // Created: taken back on request.
        let p = dir.path().join("new");
        let made = format_tracked(&p, &o).unwrap().created.unwrap();
        assert!(remove_created(&p, made).unwrap());
        assert!(!p.exists());
        assert!(!remove_created(&p, made).unwrap());
        // There before: format says it created nothing.
        let before = dir.path().join("before");
        std::fs::write(&before, vec![0u8; 4 << 20]).unwrap();
        assert!(format_tracked(&before, &o).unwrap().created.is_none());
        // Another file now at the path the created one had: left alone.
        let made = format_tracked(&p, &o).unwrap().created.unwrap();
        std::fs::rename(&before, &p).unwrap();
        assert!(!remove_created(&p, made).unwrap());
        assert!(p.exists());
        // Formatting a new file that fails (no file can be this long) leaves nothing.
        let huge = dir.path().join("huge");
        let e = format_tracked(
            &huge,
            &FormatOptions {
                size: Some(u64::MAX - 1),
                ..o
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("set size"), "{e}");
        assert!(!huge.exists());
    }
}
