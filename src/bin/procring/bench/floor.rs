//! The floor: words on their own cache lines of a shared file mapping.

use super::*;

/// Most line pairs the floor moves through: as many slots as the ping-pong
/// rings have.
pub(super) const FLOOR_LINES: u64 = 64;
/// Bytes between two of the floor's words: two lines, so that no two words
/// share the adjacent-line prefetcher's 128-byte pair.
pub(super) const FLOOR_STRIDE: usize = 128;
/// Where the pong words start, after the ping words.
pub(super) const FLOOR_PONGS: usize = FLOOR_LINES as usize * FLOOR_STRIDE;

/// Round trip `i` of the floor is a store of `i` to ping word `i % lines`
/// by the driver, and a store of `i` to pong word `i % lines` by the peer
/// once it sees it. Each side spins on one word at a time, and the next
/// round trip uses the next pair of lines, as a ring's next message uses its
/// next slot.
pub(super) struct FloorMap {
    file: SharedFile,
    lines: u64,
}

impl FloorMap {
    const LEN: usize = 2 * FLOOR_PONGS;

    pub(super) fn create(name: &str, lines: u64) -> Result<Self, Error> {
        Ok(Self { file: SharedFile::create(name, Self::LEN)?, lines })
    }

    pub(super) fn open(name: &str, lines: u64) -> Result<Self, Error> {
        Ok(Self { file: SharedFile::open(name, Self::LEN)?, lines })
    }

    /// The driver's word for round trip `i`.
    pub(super) fn ping(&self, i: u64) -> &AtomicU64 {
        self.word(0, i)
    }

    /// The peer's word for round trip `i`.
    pub(super) fn pong(&self, i: u64) -> &AtomicU64 {
        self.word(FLOOR_PONGS, i)
    }

    pub(super) fn word(&self, base: usize, i: u64) -> &AtomicU64 {
        // The index is below FLOOR_LINES, so the word is inside LEN.
        self.file.word(base + (i % self.lines.clamp(1, FLOOR_LINES)) as usize * FLOOR_STRIDE)
    }
}

/// A file in `/dev/shm` mapped shared, for the baselines: nothing of
/// procring's between the two processes. The creator removes it on drop.
pub(super) struct SharedFile {
    map: memmap2::MmapMut,
    /// `map`'s start, taken mutably: the other process writes it too.
    pub(super) base: *mut u8,
    path: Option<String>,
}

impl SharedFile {
    pub(super) fn create(name: &str, len: usize) -> Result<Self, Error> {
        let path = format!("/dev/shm/{name}");
        let f = File::options().read(true).write(true).create_new(true).open(&path)?;
        let mapped = f.set_len(len as u64).and_then(|()| {
            // SAFETY: a file of ours, mapped shared; the two processes share
            // it only through atomics and the accesses those order (see its
            // users).
            unsafe { memmap2::MmapMut::map_mut(&f) }
        });
        match mapped {
            Ok(mut map) => Ok(Self { base: map.as_mut_ptr(), map, path: Some(path) }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e.into())
            }
        }
    }

    pub(super) fn open(name: &str, len: usize) -> Result<Self, Error> {
        let f = File::options().read(true).write(true).open(format!("/dev/shm/{name}"))?;
        if f.metadata()?.len() != len as u64 {
            return Err(format!("the baseline's file /dev/shm/{name} has the wrong size").into());
        }
        // SAFETY: as in `create`.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&f)? };
        let base = map.as_mut_ptr();
        Ok(Self { map, base, path: None })
    }

    /// The 8-byte word at `offset`, which both processes only ever access
    /// atomically.
    pub(super) fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.map.len(), "word {offset} out of the mapping");
        // SAFETY: in bounds (checked above) and 8-byte aligned (the mapping
        // is page-aligned); every access to it, in both processes, is atomic.
        unsafe { &*self.base.add(offset).cast::<AtomicU64>() }
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}
