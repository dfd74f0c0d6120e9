//! Named shared-memory segments: `shm_open` + `ftruncate` + `mmap(MAP_SHARED)`.
//!
//! A segment is created exclusively (`O_CREAT | O_EXCL`, mode 0600 unless the
//! caller asks otherwise) and sized once. The creator removes the name when
//! its handle drops, unless told to keep it; anyone may [`unlink`] a name. The
//! mapping itself lives until the last handle in each process drops, so a
//! peer that still has the segment mapped keeps working after the name goes.
//!
//! This module knows nothing of what the segment holds: the caller says how
//! many bytes an opened segment must have at least (its header's), the
//! header module validates them and the objects interpret the rest.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::{fallocate, fchmod, fstat, fstatvfs, ftruncate, FallocateFlags, Mode};
use rustix::io::Errno;
use rustix::shm;

use crate::error::{CreateError, OpenError};

/// Longest name POSIX shared memory accepts on Linux (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// A mapped named segment.
#[derive(Debug)]
pub(crate) struct Segment {
    name: String,
    map: MmapRaw,
    /// `(st_dev, st_ino)`: the file this handle created, so that dropping it
    /// never removes a newer segment someone made under the same name.
    unlink_on_drop: Option<(u64, u64)>,
}

/// Turns a user's name into the form `shm_open` wants: one leading `/`, no
/// other `/`, not empty, at most `NAME_MAX` bytes, no NUL.
pub(crate) fn normalize_name(name: &str) -> Result<String, &'static str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() {
        return Err("empty name");
    }
    if bare.contains('/') {
        return Err("a name may not contain '/' after its first character");
    }
    if bare.contains('\0') {
        return Err("a name may not contain NUL");
    }
    if bare == "." || bare == ".." {
        return Err("'.' and '..' are not names");
    }
    if bare.len() > NAME_MAX - 1 {
        return Err("longer than 254 bytes");
    }
    Ok(format!("/{bare}"))
}

impl Segment {
    /// Creates a segment of `len` bytes (zero-filled) under `name`.
    pub(crate) fn create(name: &str, len: usize, mode: u32) -> Result<Self, CreateError> {
        let name = normalize_name(name).map_err(|reason| CreateError::InvalidName { name: name.to_owned(), reason })?;
        let io_err = |op, e: Errno| CreateError::Io { name: name.clone(), op, source: io::Error::from(e) };
        let flags = shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR;
        let fd = shm::open(name.as_str(), flags, Mode::from_raw_mode(mode)).map_err(|e| match e {
            Errno::EXIST => CreateError::AlreadyExists(name.clone()),
            Errno::ACCESS | Errno::PERM => CreateError::PermissionDenied(name.clone()),
            Errno::INVAL | Errno::NAMETOOLONG => {
                CreateError::InvalidName { name: name.clone(), reason: "rejected by shm_open" }
            }
            e => io_err("shm_open", e),
        })?;
        // From here on the name exists: remove it again if we fail.
        let made = (|| {
            // The mode exactly as asked: `shm_open` applies the umask, which
            // would turn a 0o666 meant for other users into 0o644.
            fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| io_err("fchmod", e))?;
            reserve(&fd, len).map_err(|e| match e {
                Errno::NOSPC => CreateError::NoSpace { name: name.clone(), needed: len as u64, free: free_space(&fd) },
                e => io_err("fallocate", e),
            })?;
            let st = fstat(&fd).map_err(|e| io_err("fstat", e))?;
            let map = map(&fd, len).map_err(|e| CreateError::Io { name: name.clone(), op: "mmap", source: e })?;
            Ok((map, (st.st_dev, st.st_ino)))
        })();
        match made {
            Ok((map, id)) => Ok(Self { name, map, unlink_on_drop: Some(id) }),
            Err(e) => {
                let _ = shm::unlink(name.as_str());
                Err(e)
            }
        }
    }

    /// Opens an existing segment and maps all of it. Waits up to `timeout`
    /// for a creator that has made the name but not yet sized it to at
    /// least `min_len` bytes.
    pub(crate) fn open(name: &str, timeout: Duration, min_len: usize) -> Result<Self, OpenError> {
        Self::open_as(name, timeout, min_len, true)
    }

    /// Opens segment `name` for reading only (`procring ls`/`inspect`):
    /// nothing in it can be changed through this mapping.
    pub(crate) fn open_read_only(name: &str, timeout: Duration, min_len: usize) -> Result<Self, OpenError> {
        Self::open_as(name, timeout, min_len, false)
    }

    fn open_as(name: &str, timeout: Duration, min_len: usize, writable: bool) -> Result<Self, OpenError> {
        let name = normalize_name(name).map_err(|reason| OpenError::InvalidName { name: name.to_owned(), reason })?;
        let io_err = |op, e: io::Error| OpenError::Io { name: name.clone(), op, source: e };
        let flags = if writable { shm::OFlags::RDWR } else { shm::OFlags::RDONLY };
        let fd: OwnedFd = shm::open(name.as_str(), flags, Mode::empty()).map_err(|e| match e {
            Errno::NOENT => OpenError::NotFound(name.clone()),
            Errno::ACCESS | Errno::PERM => OpenError::PermissionDenied(name.clone()),
            Errno::INVAL | Errno::NAMETOOLONG => {
                OpenError::InvalidName { name: name.clone(), reason: "rejected by shm_open" }
            }
            e => io_err("shm_open", e.into()),
        })?;
        let start = Instant::now();
        let len = loop {
            let st = fstat(&fd).map_err(|e| io_err("fstat", e.into()))?;
            let len = usize::try_from(st.st_size).unwrap_or(0);
            if len >= min_len {
                break len;
            }
            if start.elapsed() >= timeout {
                return Err(if len == 0 {
                    OpenError::NotReady { name, waited: timeout }
                } else {
                    OpenError::Corrupt { name, what: format!("{len} bytes is smaller than a header") }
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let map = if writable { map(&fd, len) } else { MmapOptions::new().len(len).map_raw_read_only(&fd) };
        let map = map.map_err(|e| io_err("mmap", e))?;
        Ok(Self { name, map, unlink_on_drop: None })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The start of the mapping: page-aligned, `len()` bytes, valid for as
    /// long as `self` lives.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Keep the name after this handle drops (or not).
    pub(crate) fn set_keep(&mut self, keep: bool) {
        if keep {
            self.unlink_on_drop = None;
        }
    }
}

/// Sizes the file to `len` bytes with its pages allocated now: on a full
/// tmpfs a sparse file maps fine and then kills the first process that
/// touches a page it cannot have with SIGBUS. File systems without
/// `fallocate` get a sparse `ftruncate`.
fn reserve(fd: &OwnedFd, len: usize) -> Result<(), Errno> {
    match fallocate(fd, FallocateFlags::empty(), 0, len as u64) {
        Err(Errno::OPNOTSUPP | Errno::NOSYS) => ftruncate(fd, len as u64),
        other => other,
    }
}

/// Bytes an unprivileged user may still allocate on `fd`'s file system.
fn free_space(fd: &OwnedFd) -> u64 {
    fstatvfs(fd).map_or(0, |st| st.f_bavail.saturating_mul(st.f_frsize))
}

fn map(fd: &OwnedFd, len: usize) -> io::Result<MmapRaw> {
    MmapOptions::new().len(len).map_raw(fd)
}

impl Drop for Segment {
    fn drop(&mut self) {
        if let Some(id) = self.unlink_on_drop {
            // Only if the name still refers to the file this handle created.
            let same = shm::open(self.name.as_str(), shm::OFlags::RDONLY, Mode::empty())
                .and_then(|fd| fstat(&fd))
                .is_ok_and(|st| (st.st_dev, st.st_ino) == id);
            if same {
                let _ = shm::unlink(self.name.as_str());
            }
        }
    }
}

/// Removes a segment's name. Processes that have it mapped keep their
/// mapping; new `open`s fail with `NotFound`.
///
/// # Errors
/// [`OpenError::NotFound`] if there is no such segment,
/// [`OpenError::PermissionDenied`] if the caller may not remove it.
pub fn unlink(name: &str) -> Result<(), OpenError> {
    let name = normalize_name(name).map_err(|reason| OpenError::InvalidName { name: name.to_owned(), reason })?;
    shm::unlink(name.as_str()).map_err(|e| match e {
        Errno::NOENT => OpenError::NotFound(name.clone()),
        Errno::ACCESS | Errno::PERM => OpenError::PermissionDenied(name.clone()),
        e => OpenError::Io { name: name.clone(), op: "shm_unlink", source: e.into() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_and_bad_ones_refused() {
        assert_eq!(normalize_name("feed").unwrap(), "/feed");
        assert_eq!(normalize_name("/feed").unwrap(), "/feed");
        assert!(normalize_name("").is_err());
        assert!(normalize_name("/").is_err());
        assert!(normalize_name("/a/b").is_err());
        assert!(normalize_name("..").is_err());
        assert!(normalize_name(&"x".repeat(300)).is_err());
    }

    #[test]
    fn create_is_exclusive_and_the_creator_unlinks() {
        let name = format!("/procring-unit-seg-{}", std::process::id());
        let seg = Segment::create(&name, 4096, 0o600).unwrap();
        assert!(matches!(Segment::create(&name, 4096, 0o600), Err(CreateError::AlreadyExists(_))));
        let other = Segment::open(&name, Duration::ZERO, 1).unwrap();
        assert_eq!(other.len(), 4096);
        drop(seg);
        assert!(matches!(Segment::open(&name, Duration::ZERO, 1), Err(OpenError::NotFound(_))));
        assert!(matches!(unlink(&name), Err(OpenError::NotFound(_))));
        drop(other);
    }
}
