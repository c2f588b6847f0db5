//! The set of followed files. Every poll expands the watched paths again and tells files apart
//! by device and inode (plus a fingerprint of their first bytes, against inode reuse):
//!
//! - a new identity at a watched path is a new file, read from its beginning;
//! - a followed file no longer at any watched path was renamed away (rotation) or deleted: it
//!   is still read through its open handle until it has been idle for `--rotate-wait`, and
//!   the file that replaced it at the same path sends only once it has sent what it read;
//! - a file that shrank below what was read, or whose first bytes changed, was truncated
//!   (copytruncate) or rewritten: what was read before is sent, then it is read again from
//!   offset 0 as a new file, with a new id.
//!
//! At start the saved offsets are matched to the files by identity, also to files renamed in
//! the same folder while the shipper was stopped.

use crate::glob::Pattern;
use crate::state::{FileEntry, Span, StateFile};
use crate::tail::{read_full_at, Fingerprint, Outgoing, Polled, Tailer, Taken, READ_CHUNK};
use crate::Options;
use rand::Rng;
use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The followed files.
pub struct Follower {
    patterns: Vec<Pattern>,
    tailers: Vec<Tailer>,
    dirty: bool,
    /// Paths that could not be opened, each reported once.
    unreadable: HashSet<PathBuf>,
    /// Files whose reading failed, each reported once until it works again.
    failing: HashSet<u64>,
    buf: Vec<u8>,
}

impl Follower {
    /// Follows nothing (a placeholder while the follower works on the blocking pool).
    pub fn empty() -> Follower {
        Follower {
            patterns: Vec::new(),
            tailers: Vec::new(),
            dirty: false,
            unreadable: HashSet::new(),
            failing: HashSet::new(),
            buf: Vec::new(),
        }
    }

    /// Starts following: saved offsets are matched to the files found.
    pub fn start(patterns: Vec<Pattern>, saved: StateFile, o: &Options, now: Instant) -> Follower {
        let mut f = Follower {
            patterns,
            tailers: Vec::new(),
            dirty: true,
            unreadable: HashSet::new(),
            failing: HashSet::new(),
            buf: vec![0u8; READ_CHUNK],
        };
        let mut entries = saved.files;
        for (path, _) in f.scan() {
            f.start_found(path, &mut entries, o, now);
        }
        // Files renamed away while the shipper was stopped (rotated in the same folder):
        // their rest is read, then they are dropped like any file that is gone.
        for entry in entries {
            f.start_renamed(entry, o, now);
        }
        f.order_successors();
        f
    }

    /// A file found at a watched path at start: resumed from its saved entry when it is the
    /// same file, else followed from its beginning (or its end, with `start_at_end`).
    fn start_found(
        &mut self,
        path: PathBuf,
        entries: &mut Vec<FileEntry>,
        o: &Options,
        now: Instant,
    ) {
        let Some((file, meta)) = self.open_untracked(&path) else {
            return;
        };
        let shown = path.display().to_string();
        let found = entries
            .iter()
            .position(|e| e.dev == meta.dev() && e.ino == meta.ino())
            .map(|i| entries.swap_remove(i));
        let resumable = found
            .as_ref()
            .and_then(|e| same_file(e, &file).map(|(id, fp)| (e, id, fp)));
        let tailer = match resumable {
            Some((entry, id, fingerprint)) => {
                tracing::info!(path = %shown, offset = entry.offset, "following");
                Some(Tailer::resume(
                    entry,
                    id,
                    fingerprint,
                    path.clone(),
                    file,
                    o,
                    now,
                ))
            }
            None => {
                let start = if found.is_some() {
                    tracing::warn!(
                        path = %shown,
                        "truncated or replaced since the last run: following it from its beginning"
                    );
                    0
                } else if o.start_at_end {
                    end_of_last_line(&file, meta.len()).unwrap_or(meta.len())
                } else {
                    0
                };
                tracing::info!(path = %shown, offset = start, "following");
                self.new_tailer(&path, file, start, o, now)
            }
        };
        if let Some(t) = tailer {
            self.tailers.push(t);
        }
    }

    /// A saved file no longer at its path: read to its end when it was renamed in its folder,
    /// else forgotten.
    fn start_renamed(&mut self, entry: FileEntry, o: &Options, now: Instant) {
        match find_renamed(&entry) {
            Some((at, file, id, fingerprint)) if !self.tracked(entry.dev, entry.ino) => {
                tracing::info!(
                    path = %entry.path,
                    renamed_to = %at.display(),
                    offset = entry.offset,
                    "renamed while stopped: reading the rest of it"
                );
                let mut t = Tailer::resume(&entry, id, fingerprint, at, file, o, now);
                t.last_path = PathBuf::from(&entry.path);
                t.gone_since = Some(now);
                self.tailers.push(t);
            }
            _ => tracing::warn!(
                path = %entry.path,
                offset = entry.offset,
                "gone since the last run (read up to offset): forgetting it"
            ),
        }
    }

    /// A file at the path of one that is gone sends after it.
    fn order_successors(&mut self) {
        let gone: Vec<(u64, PathBuf)> = self
            .tailers
            .iter()
            .filter(|t| t.gone_since.is_some())
            .map(|t| (t.id, t.last_path.clone()))
            .collect();
        for (id, at) in gone {
            if let Some(t) = self
                .tailers
                .iter_mut()
                .find(|t| t.gone_since.is_none() && t.last_path == at)
            {
                t.after = Some(id);
            }
        }
    }

    /// Finds new, rotated and truncated files and reads what was appended.
    pub fn poll(&mut self, o: &Options, now: Instant) {
        let new = self.notice_moves(now);
        for path in new {
            self.follow_new(path, o, now);
        }
        let mut i = 0;
        while i < self.tailers.len() {
            self.read(i, o, now);
            if self.tailers[i].gone_since.is_some() {
                self.tailers[i].drain_if_idle(now, o);
            }
            i += 1;
        }
        let before = self.tailers.len();
        self.tailers.retain(|t| {
            let done = t.finished();
            if done && t.drained {
                tracing::info!(
                    path = %t.last_path.display(),
                    "renamed away or deleted, and read to its end"
                );
            }
            !done
        });
        if self.tailers.len() != before {
            self.dirty = true;
        }
    }

    /// Matches the files at the watched paths to the followed ones: records where each is
    /// now, marks those no longer at any watched path as gone, and returns the paths of
    /// files not followed yet.
    fn notice_moves(&mut self, now: Instant) -> Vec<PathBuf> {
        let found = self.scan();
        let mut seen = vec![false; self.tailers.len()];
        let mut new = Vec::new();
        for (path, meta) in found {
            let at = self
                .tailers
                .iter()
                .position(|t| t.live() && t.dev == meta.dev() && t.ino == meta.ino());
            match at {
                Some(i) => {
                    seen[i] = true;
                    let t = &mut self.tailers[i];
                    t.last_path = path;
                    t.gone_since = None;
                }
                None => new.push(path),
            }
        }
        for (t, seen) in self.tailers.iter_mut().zip(seen) {
            if !seen && t.live() && t.gone_since.is_none() {
                tracing::info!(
                    path = %t.last_path.display(),
                    "renamed away or deleted: reading the rest of it"
                );
                t.gone_since = Some(now);
            }
        }
        new
    }

    /// Starts following a file that appeared at a watched path, after the one it replaced.
    fn follow_new(&mut self, path: PathBuf, o: &Options, now: Instant) {
        let Some((file, _)) = self.open_untracked(&path) else {
            return;
        };
        tracing::info!(path = %path.display(), offset = 0, "following");
        let predecessor = self
            .tailers
            .iter()
            .rev()
            .find(|t| t.gone_since.is_some() && t.last_path == path)
            .map(|t| t.id);
        if let Some(mut t) = self.new_tailer(&path, file, 0, o, now) {
            t.after = predecessor;
            self.tailers.push(t);
        }
    }

    /// Reads what was appended to the `i`th file; a truncated or rewritten file is retired
    /// and followed again from its beginning as a new file.
    fn read(&mut self, i: usize, o: &Options, now: Instant) {
        let polled = self.tailers[i].poll(now, o, &mut self.buf);
        let id = self.tailers[i].id;
        match polled {
            Ok(Polled::Read) => {
                self.failing.remove(&id);
            }
            Ok(Polled::Replaced) => {
                let old = &mut self.tailers[i];
                tracing::warn!(
                    path = %old.last_path.display(),
                    "truncated or rewritten: following it again from its beginning"
                );
                let file = old.retire(now, o);
                let (path, at, gone_since) =
                    (old.path.clone(), old.last_path.clone(), old.gone_since);
                if let Some(file) = file {
                    if let Some(mut t) = self.new_tailer_named(path, at, file, 0, o, now) {
                        t.after = Some(id);
                        t.gone_since = gone_since;
                        self.tailers.push(t);
                    }
                }
                self.dirty = true;
            }
            Err(e) => {
                if self.failing.insert(id) {
                    tracing::warn!(
                        path = %self.tailers[i].last_path.display(),
                        error = %e,
                        "cannot read; trying again"
                    );
                }
            }
        }
    }

    /// The batches due now. A file that replaced another at the same path waits until the
    /// other has sent what it read, so the old lines go first.
    pub fn take_ready(&mut self, o: &Options, now: Instant) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for i in 0..self.tailers.len() {
            if let Some(before) = self.tailers[i].after {
                match self.tailers.iter().find(|t| t.id == before) {
                    Some(p) if p.holds_unsent() => continue,
                    Some(_) => {}
                    None => self.tailers[i].after = None,
                }
            }
            match self.tailers[i].take(now, o) {
                Some(Taken::Skipped) => self.dirty = true,
                Some(Taken::Batch(b)) => {
                    self.dirty = true;
                    out.push(b);
                }
                None => {}
            }
        }
        out
    }

    /// The server acknowledged a batch.
    pub fn acknowledged(&mut self, file: u64, span: Span) {
        if let Some(t) = self.tailers.iter_mut().find(|t| t.id == file) {
            if t.acknowledged(span) {
                self.dirty = true;
            }
        }
    }

    /// What the state file should hold now.
    pub fn snapshot(&self) -> StateFile {
        StateFile {
            files: self.tailers.iter().filter_map(Tailer::entry).collect(),
            ..StateFile::default()
        }
    }

    /// Whether the state changed since the last [`Follower::saved`].
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    pub fn saved(&mut self) {
        self.dirty = false;
    }

    /// The regular files at the watched paths, one path per identity.
    fn scan(&self) -> Vec<(PathBuf, Metadata)> {
        let mut ids = HashSet::new();
        let mut out = Vec::new();
        for p in &self.patterns {
            for path in p.expand() {
                if let Ok(meta) = std::fs::metadata(&path) {
                    if meta.is_file() && ids.insert((meta.dev(), meta.ino())) {
                        out.push((path, meta));
                    }
                }
            }
        }
        out
    }

    /// Whether a file with this identity is followed already.
    fn tracked(&self, dev: u64, ino: u64) -> bool {
        self.tailers
            .iter()
            .any(|t| t.live() && t.dev == dev && t.ino == ino)
    }

    /// Opens the file at `path` unless it is followed already.
    fn open_untracked(&mut self, path: &Path) -> Option<(File, Metadata)> {
        let file = self.open(path)?;
        let meta = file.metadata().ok()?;
        (!self.tracked(meta.dev(), meta.ino())).then_some((file, meta))
    }

    fn open(&mut self, path: &Path) -> Option<File> {
        match File::open(path) {
            Ok(f) => {
                self.unreadable.remove(path);
                Some(f)
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound
                    && self.unreadable.insert(path.to_path_buf())
                {
                    tracing::warn!(
                        path = %path.display(),
                        error = %e,
                        "cannot open; trying again"
                    );
                }
                None
            }
        }
    }

    fn new_tailer(
        &mut self,
        path: &Path,
        file: File,
        start: u64,
        o: &Options,
        now: Instant,
    ) -> Option<Tailer> {
        let name = path.to_string_lossy().into_owned();
        self.new_tailer_named(name, path.to_path_buf(), file, start, o, now)
    }

    fn new_tailer_named(
        &mut self,
        name: String,
        at: PathBuf,
        file: File,
        start: u64,
        o: &Options,
        now: Instant,
    ) -> Option<Tailer> {
        let mut rng = rand::thread_rng();
        let id = loop {
            let id: u64 = rng.gen();
            if !self.tailers.iter().any(|t| t.id == id) {
                break id;
            }
        };
        self.dirty = true;
        match Tailer::new(id, name, at.clone(), file, start, o.format, now) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(path = %at.display(), error = %e, "cannot read");
                None
            }
        }
    }
}

/// The saved entry's id and fingerprint when `file` is still the file it describes (same
/// first bytes, at least as long as what was read and sent).
fn same_file(entry: &FileEntry, file: &File) -> Option<(u64, Fingerprint)> {
    let id = u64::from_str_radix(&entry.id, 16).ok()?;
    let fingerprint = Fingerprint {
        len: entry.fingerprint_len,
        hash: u64::from_str_radix(&entry.fingerprint, 16).ok()?,
    };
    let size = file.metadata().ok()?.len();
    let needed = entry
        .sending
        .map_or(entry.offset, |s| s.end.max(entry.offset));
    if size < needed || !fingerprint.matches(file).ok()? {
        return None;
    }
    Some((id, fingerprint))
}

/// Looks for the saved file in its folder under another name (rotated while stopped).
fn find_renamed(entry: &FileEntry) -> Option<(PathBuf, File, u64, Fingerprint)> {
    let dir = Path::new(&entry.path).parent()?;
    for dirent in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = dirent.metadata() else {
            continue;
        };
        if !meta.is_file() || meta.dev() != entry.dev || meta.ino() != entry.ino {
            continue;
        }
        let path = dirent.path();
        let file = File::open(&path).ok()?;
        let (id, fingerprint) = same_file(entry, &file)?;
        return Some((path, file, id, fingerprint));
    }
    None
}

/// The offset just after the last newline in the last 64 KiB of the file (so following from
/// the end does not start in the middle of a line); `None` when there is none.
fn end_of_last_line(file: &File, size: u64) -> Option<u64> {
    let from = size.saturating_sub(64 << 10);
    let mut buf = vec![0u8; (size - from) as usize];
    let done = read_full_at(file, &mut buf, from).ok()?;
    buf[..done]
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| from + i as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn follower(dir: &Path, pattern: &str, saved: StateFile, now: Instant) -> Follower {
        let p = Pattern::new(&dir.join(pattern).to_string_lossy()).unwrap();
        Follower::start(vec![p], saved, &Options::default(), now)
    }

    /// Polls at `now`, then takes and acknowledges every batch due a flush interval later;
    /// returns the bodies sent, in order.
    fn step(f: &mut Follower, now: Instant) -> Vec<String> {
        let o = Options::default();
        f.poll(&o, now);
        let mut bodies = Vec::new();
        loop {
            let ready = f.take_ready(&o, now + o.flush_interval);
            if ready.is_empty() {
                return bodies;
            }
            for b in ready {
                bodies.push(String::from_utf8(b.body).unwrap());
                f.acknowledged(b.file, b.span);
            }
        }
    }

    #[test]
    fn rotation_by_rename_reads_the_old_file_to_its_end_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut old = File::create(&path).unwrap();
        old.write_all(b"1\n2\n").unwrap();
        let t0 = Instant::now();
        let mut f = follower(dir.path(), "app.log", StateFile::default(), t0);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(step(&mut f, t1), ["1\n2\n"]);
        // rename, a late write to the old file, then the new file
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        old.write_all(b"3\n").unwrap();
        std::fs::write(&path, "4\n").unwrap();
        let t2 = t1 + Duration::from_millis(250);
        f.poll(&Options::default(), t2);
        let t3 = t2 + Duration::from_secs(1);
        assert_eq!(
            step(&mut f, t3),
            ["3\n", "4\n"],
            "the new file waits for the old one"
        );
        assert_eq!(f.snapshot().files.len(), 2);
        let t4 = t3 + Duration::from_secs(6);
        assert!(step(&mut f, t4).is_empty());
        let files = f.snapshot().files;
        assert_eq!(
            files.len(),
            1,
            "the old file is dropped once idle: {files:?}"
        );
        assert_eq!(files[0].offset, 2);
    }

    #[test]
    fn restart_resumes_at_the_acknowledged_offset_even_after_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "a\nb\n").unwrap();
        let t0 = Instant::now();
        let mut f = follower(dir.path(), "app.log", StateFile::default(), t0);
        assert_eq!(step(&mut f, t0 + Duration::from_secs(1)), ["a\nb\n"]);
        let saved = f.snapshot();
        drop(f);
        // while stopped: more lines, then rotation
        let mut old = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        old.write_all(b"c\n").unwrap();
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        std::fs::write(&path, "d\n").unwrap();
        let mut f = follower(dir.path(), "app.log", saved, t0);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(step(&mut f, t1), ["c\n", "d\n"]);
    }

    #[test]
    fn a_copytruncated_file_starts_again_with_a_new_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "first\nsecond\n").unwrap();
        let t0 = Instant::now();
        let mut f = follower(dir.path(), "*.log", StateFile::default(), t0);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(step(&mut f, t1), ["first\nsecond\n"]);
        let id = f.snapshot().files[0].id.clone();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        log.write_all(b"third\n").unwrap();
        let t2 = t1 + Duration::from_secs(1);
        f.poll(&Options::default(), t2);
        assert_eq!(step(&mut f, t2 + Duration::from_secs(1)), ["third\n"]);
        let files = f.snapshot().files;
        assert_eq!(files.len(), 1);
        assert_ne!(files[0].id, id);
        assert_eq!(files[0].offset, 6);
    }

    #[test]
    fn start_at_end_skips_to_after_the_last_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "old\nolder\npart").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(end_of_last_line(&file, 14), Some(10));
        std::fs::write(&path, "no newline").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(end_of_last_line(&file, 10), None);
    }
}
