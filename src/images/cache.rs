//! The image files on disk: `<root>/<size>/<file>` (root `<data_dir>/cache/images/tmdb`) within
//! a byte budget, least recently used removed first.
//!
//! The index (name, length, last use, ETag) lives in memory; it is rebuilt from the directory
//! on first use after a start, the files' modification times giving the order of last use then.
//! A file is written to a temporary name and renamed, so a reader never sees half an image; the
//! rename, the index update and the removals of an insert happen under the index's lock, so two
//! inserts never remove each other's files. Every function here blocks (file system): callers run
//! them on the blocking pool. Nothing here knows HTTP or the image host.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Where temporary files are written, inside the root (same file system as the final names).
const TMP_DIR: &str = ".tmp";

/// One kept image.
#[derive(Debug, Clone)]
struct Entry {
    len: u64,
    last_use: u64,
    /// Computed when the bytes were last in memory (unknown after a restart until then).
    etag: Option<String>,
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<String, Entry>,
    total: u64,
    tick: u64,
}

impl Index {
    fn touch(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

/// The disk cache. `key` is always `<size>/<file>`, both already validated (no `/` in either,
/// no dot-only names), so it is a safe relative path.
#[derive(Debug)]
pub struct DiskCache {
    root: PathBuf,
    budget: u64,
    index: Mutex<Index>,
}

/// A cached image as read from disk.
#[derive(Debug, Clone)]
pub struct Cached {
    pub bytes: Vec<u8>,
    pub etag: String,
}

impl DiskCache {
    /// A cache under `root` holding at most `budget` bytes. Touches nothing until
    /// [`DiskCache::load`].
    pub fn new(root: PathBuf, budget: u64) -> Self {
        Self {
            root,
            budget,
            index: Mutex::new(Index::default()),
        }
    }

    /// The directory the files live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rebuilds the index from the directory (files of valid names under valid size folders;
    /// anything else, such as a left-over temporary file, is removed), oldest modification
    /// first, then trims to the budget.
    pub fn load(&self, is_valid: impl Fn(&str, &str) -> bool) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        let _ = std::fs::remove_dir_all(self.root.join(TMP_DIR));
        let mut found: Vec<(std::time::SystemTime, String, u64)> = Vec::new();
        for size_dir in std::fs::read_dir(&self.root)?.flatten() {
            let size = size_dir.file_name().to_string_lossy().into_owned();
            if !size_dir.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            for file in std::fs::read_dir(size_dir.path())?.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                let meta = match file.metadata() {
                    Ok(m) if m.is_file() && is_valid(&size, &name) => m,
                    _ => {
                        let _ = std::fs::remove_file(file.path());
                        continue;
                    }
                };
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((modified, format!("{size}/{name}"), meta.len()));
            }
        }
        found.sort();
        let mut index = self.lock();
        for (_, key, len) in found {
            let last_use = index.touch();
            index.total += len;
            index.entries.insert(
                key,
                Entry {
                    len,
                    last_use,
                    etag: None,
                },
            );
        }
        self.trim(&mut index);
        Ok(())
    }

    /// The image under `key`, marked as just used; `None` when it is not kept (or its file is
    /// gone, which forgets it).
    pub fn get(&self, key: &str) -> Option<Cached> {
        let known = {
            let mut index = self.lock();
            let tick = index.touch();
            let entry = index.entries.get_mut(key)?;
            entry.last_use = tick;
            entry.etag.clone()
        };
        let Ok(bytes) = std::fs::read(self.root.join(key)) else {
            self.forget(key);
            return None;
        };
        let etag = match known {
            Some(etag) => etag,
            None => {
                let etag = crate::http::strong_etag(&bytes);
                if let Some(entry) = self.lock().entries.get_mut(key) {
                    entry.etag = Some(etag.clone());
                }
                etag
            }
        };
        Some(Cached { bytes, etag })
    }

    /// Keeps `bytes` under `key` as the most recently used image, then removes the least
    /// recently used ones until the total is within the budget. Returns the ETag.
    pub fn insert(&self, key: &str, bytes: &[u8]) -> std::io::Result<String> {
        let etag = crate::http::strong_etag(bytes);
        let tmp_dir = self.root.join(TMP_DIR);
        std::fs::create_dir_all(&tmp_dir)?;
        let tmp = tmp_dir.join(uuid::Uuid::new_v4().simple().to_string());
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let target = self.root.join(key);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut index = self.lock();
        if let Err(e) = std::fs::rename(&tmp, &target) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let last_use = index.touch();
        let len = bytes.len() as u64;
        let old = index.entries.insert(
            key.to_owned(),
            Entry {
                len,
                last_use,
                etag: Some(etag.clone()),
            },
        );
        index.total = index.total - old.map_or(0, |e| e.len) + len;
        self.trim(&mut index);
        Ok(etag)
    }

    /// Bytes kept now, by the index.
    pub fn total_bytes(&self) -> u64 {
        self.lock().total
    }

    /// Drops `key` and its file (one that turned out not to be an image, e.g. cut short by a
    /// crash).
    pub fn remove(&self, key: &str) {
        let mut index = self.lock();
        if let Some(entry) = index.entries.remove(key) {
            index.total -= entry.len;
        }
        let _ = std::fs::remove_file(self.root.join(key));
    }

    fn forget(&self, key: &str) {
        let mut index = self.lock();
        if let Some(entry) = index.entries.remove(key) {
            index.total -= entry.len;
        }
    }

    /// Removes least recently used files until the total is within the budget.
    fn trim(&self, index: &mut Index) {
        while index.total > self.budget {
            let Some(oldest) = index
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_use)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(entry) = index.entries.remove(&oldest) {
                index.total -= entry.len;
            }
            if let Err(e) = std::fs::remove_file(self.root.join(&oldest))
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %oldest, error = %e, "cannot remove a cached image");
            }
            tracing::debug!(file = %oldest, "cached image evicted");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn valid(size: &str, file: &str) -> bool {
        size.starts_with('w') && file.ends_with(".jpg")
    }

    #[test]
    fn least_recently_used_goes_first_and_the_budget_holds() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path().join("tmdb"), 250);
        cache.load(valid).unwrap();
        cache.insert("w92/a.jpg", &[1; 100]).unwrap();
        cache.insert("w92/b.jpg", &[2; 100]).unwrap();
        // a is used again, so b is now the least recently used.
        assert_eq!(cache.get("w92/a.jpg").unwrap().bytes, vec![1; 100]);
        cache.insert("w92/c.jpg", &[3; 100]).unwrap();
        assert!(cache.get("w92/b.jpg").is_none());
        assert!(!dir.path().join("tmdb/w92/b.jpg").exists());
        assert!(cache.get("w92/a.jpg").is_some());
        assert!(cache.get("w92/c.jpg").is_some());
        assert_eq!(cache.total_bytes(), 200);
    }

    #[test]
    fn a_restart_finds_the_files_and_drops_strays() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tmdb");
        let first = DiskCache::new(root.clone(), 1000);
        first.load(valid).unwrap();
        let etag = first.insert("w185/x.jpg", b"xyz").unwrap();
        std::fs::write(root.join("w185/evil.svg"), b"<svg/>").unwrap();
        std::fs::create_dir_all(root.join(TMP_DIR)).unwrap();
        std::fs::write(root.join(TMP_DIR).join("half"), b"x").unwrap();

        let again = DiskCache::new(root.clone(), 1000);
        again.load(valid).unwrap();
        let cached = again.get("w185/x.jpg").unwrap();
        assert_eq!(cached.bytes, b"xyz");
        assert_eq!(cached.etag, etag);
        assert!(!root.join("w185/evil.svg").exists());
        assert!(!root.join(TMP_DIR).exists());
        assert_eq!(again.total_bytes(), 3);
        // A file removed behind the cache's back is forgotten, not an error.
        std::fs::remove_file(root.join("w185/x.jpg")).unwrap();
        assert!(again.get("w185/x.jpg").is_none());
        assert_eq!(again.total_bytes(), 0);
    }
}
