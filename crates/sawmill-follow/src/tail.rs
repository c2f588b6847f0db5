//! One followed file: reading what was appended to it, cutting the bytes into records (lines,
//! or with `--multiline-start` lines joined into records) and collecting the records into the
//! file's next batch, whose byte range `[start, end)` names it for the `Idempotency-Key`.
//!
//! Byte ranges stay contiguous: a batch starts where the previous one ended and ends where the
//! first byte not yet part of a complete record begins (an unfinished line, or a multi-line
//! record that may still grow), so committed offsets always fall on record boundaries and
//! re-reading a range after a restart yields the same records.

use crate::state::{FileEntry, Span};
use crate::{Format, Options};
use sawmill_core::fnv1a64;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

/// How many of a file's first bytes identify it, beside its device and inode.
pub const FINGERPRINT_BYTES: u64 = 256;
/// Bytes read from a file at once.
pub const READ_CHUNK: usize = 64 << 10;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A hash of a file's first `len` bytes (FNV-1a 64: persisted in the state file, so it never
/// changes; not a defence against forgery).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub len: u64,
    pub hash: u64,
}

impl Fingerprint {
    /// Nothing read yet: matches any content.
    pub const EMPTY: Fingerprint = Fingerprint {
        len: 0,
        // FNV-1a 64 of no bytes
        hash: 0xcbf2_9ce4_8422_2325,
    };

    /// Whether `file` still starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, file: &File) -> std::io::Result<bool> {
        if self.len == 0 {
            return Ok(true);
        }
        let mut buf = vec![0u8; self.len as usize];
        let n = read_full_at(file, &mut buf, 0)?;
        Ok(n == buf.len() && fnv1a64(&buf) == self.hash)
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A complete record: its first byte's offset in the file and its bytes (without the final
/// newline; the lines of a multi-line record joined by `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub start: u64,
    pub data: Vec<u8>,
}

/// What cutting produced from some bytes.
#[derive(Debug, Default)]
pub struct Output {
    pub records: Vec<Record>,
    /// Lines longer than `--max-line-bytes`: (offset, whether the line was dropped rather than
    /// cut).
    pub too_long: Vec<(u64, bool)>,
}

/// Cuts a file's bytes into records.
#[derive(Debug)]
pub struct Assembler {
    format: Option<Format>,
    /// The line being read (at most `max_line_bytes` of it).
    line: Vec<u8>,
    /// Where that line starts; `None` between lines.
    line_start: Option<u64>,
    /// The line is longer than `max_line_bytes`: the rest of it is skipped.
    line_cut: bool,
    /// The multi-line record being joined, and where it starts.
    record: Option<Record>,
}

impl Assembler {
    pub fn new(format: Option<Format>) -> Assembler {
        Assembler {
            format,
            line: Vec::new(),
            line_start: None,
            line_cut: false,
            record: None,
        }
    }

    /// The file's format: as given, or detected from its first non-blank line (NDJSON when
    /// it starts with `{`).
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// Cuts `bytes`, read at `offset`.
    pub fn push(&mut self, mut bytes: &[u8], mut offset: u64, o: &Options, out: &mut Output) {
        while !bytes.is_empty() {
            let start = *self.line_start.get_or_insert(offset);
            let newline = bytes.iter().position(|&b| b == b'\n');
            let piece = &bytes[..newline.unwrap_or(bytes.len())];
            let room = o.max_line_bytes.saturating_sub(self.line.len());
            if piece.len() > room {
                self.line.extend_from_slice(&piece[..room]);
                self.line_cut = true;
            } else {
                self.line.extend_from_slice(piece);
            }
            let consumed = piece.len() + usize::from(newline.is_some());
            offset += consumed as u64;
            bytes = &bytes[consumed..];
            if newline.is_some() {
                self.finish_line(start, o, out);
            }
        }
    }

    /// Treats the unfinished line, if any, as complete.
    pub fn flush_line(&mut self, o: &Options, out: &mut Output) {
        if let Some(start) = self.line_start {
            self.finish_line(start, o, out);
        }
    }

    /// Ends the multi-line record being joined, if any.
    pub fn flush_record(&mut self, out: &mut Output) {
        if let Some(r) = self.record.take() {
            out.records.push(r);
        }
    }

    /// Everything read so far becomes records.
    pub fn flush(&mut self, o: &Options, out: &mut Output) {
        self.flush_line(o, out);
        self.flush_record(out);
    }

    /// The offset of the first byte read but not yet part of a complete record.
    pub fn pending_start(&self) -> Option<u64> {
        self.record.as_ref().map(|r| r.start).or(self.line_start)
    }

    pub fn has_partial_line(&self) -> bool {
        self.line_start.is_some()
    }

    pub fn has_record(&self) -> bool {
        self.record.is_some()
    }

    fn finish_line(&mut self, start: u64, o: &Options, out: &mut Output) {
        let cut = std::mem::take(&mut self.line_cut);
        self.line_start = None;
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if start == 0 && line.starts_with(BOM) {
            line.drain(..BOM.len());
        }
        let blank = line.iter().all(u8::is_ascii_whitespace);
        let format = match self.format {
            Some(f) => f,
            None if blank => return,
            None => {
                let f = match line.iter().find(|b| !b.is_ascii_whitespace()) {
                    Some(b'{') => Format::Ndjson,
                    _ => Format::Text,
                };
                self.format = Some(f);
                f
            }
        };
        if cut {
            // A cut JSON object is no longer JSON: such lines are dropped.
            let dropped = format == Format::Ndjson;
            out.too_long.push((start, dropped));
            if dropped {
                return;
            }
        }
        match (&o.multiline, format) {
            (Some(ml), Format::Text) => {
                let continues = !ml.start.is_match(&line);
                match &mut self.record {
                    Some(r) if continues && r.data.len() + 1 + line.len() <= ml.max_bytes => {
                        r.data.push(b'\n');
                        r.data.extend_from_slice(&line);
                    }
                    _ => {
                        self.flush_record(out);
                        if !blank {
                            self.record = Some(Record { start, data: line });
                        }
                    }
                }
            }
            _ => {
                if !blank {
                    out.records.push(Record { start, data: line });
                }
            }
        }
    }
}

/// What [`Tailer::poll`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Polled {
    Read,
    /// The file shrank below what was read, or its first bytes changed: it was truncated
    /// (copytruncate) or rewritten in place, and is a new file from offset 0.
    Replaced,
}

/// The records of a file's next batch.
#[derive(Debug)]
struct Building {
    start: u64,
    end: u64,
    body: Vec<u8>,
    /// The file offset of each record of the body, in order.
    offsets: Vec<u64>,
    /// When the first record was added.
    since: Option<Instant>,
    /// Send as soon as nothing is in flight (replaying a batch after a restart, draining a
    /// file that is gone).
    force: bool,
}

impl Building {
    fn new(start: u64) -> Building {
        Building {
            start,
            end: start,
            body: Vec::new(),
            offsets: Vec::new(),
            since: None,
            force: false,
        }
    }
}

/// A batch ready to be sent.
#[derive(Debug)]
pub struct Outgoing {
    /// The [`Tailer::id`] of its file.
    pub file: u64,
    pub span: Span,
    pub key: String,
    /// The file's path, for messages.
    pub path: String,
    pub source: String,
    /// How the body is sent: plain text lines, or NDJSON.
    pub format: Format,
    pub body: Vec<u8>,
    /// The file offset of each line of the body.
    pub offsets: Vec<u64>,
}

/// What [`Tailer::take`] did.
#[derive(Debug)]
pub enum Taken {
    /// The bytes read held no record (blank or dropped lines): the offset moved on.
    Skipped,
    Batch(Outgoing),
}

/// One file being followed: an open handle (which keeps reading a file renamed away or
/// deleted), its identity, and its offsets.
#[derive(Debug)]
pub struct Tailer {
    /// Random, chosen when the file was first seen; starts every `Idempotency-Key`.
    pub id: u64,
    /// Where the file was found: the default `source`.
    pub path: String,
    /// The watched path it was last seen at.
    pub last_path: PathBuf,
    /// Not at any watched path since then (renamed away or deleted): read until it has been
    /// idle for `--rotate-wait`, then dropped.
    pub gone_since: Option<Instant>,
    /// The file that was at the same path before it (rotation): this one's batches wait until
    /// that one has sent what it had read.
    pub after: Option<u64>,
    /// Truncated or rewritten: only the records read before are still to be sent.
    pub retired: bool,
    /// Drained for good (gone and idle): only sending is left.
    pub drained: bool,
    file: Option<File>,
    pub dev: u64,
    pub ino: u64,
    pub fingerprint: Fingerprint,
    asm: Assembler,
    read_pos: u64,
    /// Size and modification time at the last poll (`None` before the first).
    seen: Option<(u64, Option<SystemTime>)>,
    /// Acknowledged by the server up to here.
    pub committed: u64,
    /// The batch in flight.
    pub sending: Option<Span>,
    building: Building,
    /// After a restart: the end of the batch that was being sent, to be sent again whole.
    resend_until: Option<u64>,
    /// When bytes were last read.
    last_data: Instant,
}

impl Tailer {
    /// A file seen for the first time, read from `start`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        path: String,
        at: PathBuf,
        file: File,
        start: u64,
        format: Option<Format>,
        now: Instant,
    ) -> std::io::Result<Tailer> {
        let meta = file.metadata()?;
        Ok(Tailer {
            id,
            path,
            last_path: at,
            gone_since: None,
            after: None,
            retired: false,
            drained: false,
            file: Some(file),
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint: Fingerprint::EMPTY,
            asm: Assembler::new(format),
            read_pos: start,
            seen: None,
            committed: start,
            sending: None,
            building: Building::new(start),
            resend_until: None,
            last_data: now,
        })
    }

    /// A file from the state file, found again (its identity already checked).
    pub fn resume(
        entry: &FileEntry,
        id: u64,
        fingerprint: Fingerprint,
        at: PathBuf,
        file: File,
        o: &Options,
        now: Instant,
    ) -> Tailer {
        let resend_until = entry
            .sending
            .filter(|s| s.start == entry.offset && s.end > s.start)
            .map(|s| s.end);
        Tailer {
            id,
            path: entry.path.clone(),
            last_path: at,
            gone_since: None,
            after: None,
            retired: false,
            drained: false,
            file: Some(file),
            dev: entry.dev,
            ino: entry.ino,
            fingerprint,
            asm: Assembler::new(o.format.or(entry.format)),
            read_pos: entry.offset,
            seen: None,
            committed: entry.offset,
            sending: None,
            building: Building::new(entry.offset),
            resend_until,
            last_data: now,
        }
    }

    /// Still read at its path (neither retired nor drained).
    pub fn live(&self) -> bool {
        !self.retired && !self.drained
    }

    /// Its line in the state file (`None` once retired: its content is gone).
    pub fn entry(&self) -> Option<FileEntry> {
        if self.retired {
            return None;
        }
        Some(FileEntry {
            id: format!("{:016x}", self.id),
            path: self.path.clone(),
            dev: self.dev,
            ino: self.ino,
            fingerprint_len: self.fingerprint.len,
            fingerprint: format!("{:016x}", self.fingerprint.hash),
            format: self.asm.format(),
            offset: self.committed,
            // A batch to be sent again after a restart stays recorded until it is.
            sending: self.sending.or(self.resend_until.map(|end| Span {
                start: self.committed,
                end,
            })),
        })
    }

    /// Reads what was appended since the last poll (up to the batch size when a batch is
    /// already in flight) and applies the idle timeouts.
    pub fn poll(&mut self, now: Instant, o: &Options, buf: &mut [u8]) -> std::io::Result<Polled> {
        let Some(file) = self.file.take() else {
            return Ok(Polled::Read);
        };
        let polled = self.poll_file(&file, now, o, buf);
        self.file = Some(file);
        polled
    }

    fn poll_file(
        &mut self,
        file: &File,
        now: Instant,
        o: &Options,
        buf: &mut [u8],
    ) -> std::io::Result<Polled> {
        let meta = file.metadata()?;
        let size = meta.len();
        if size < self.read_pos {
            return Ok(Polled::Replaced);
        }
        let stamp = (size, meta.modified().ok());
        if self.seen != Some(stamp) {
            if !self.refresh_fingerprint(file, size)? {
                return Ok(Polled::Replaced);
            }
            self.seen = Some(stamp);
        }
        let limit = self.resend_until.map_or(size, |e| e.min(size));
        let mut out = Output::default();
        while self.read_pos < limit
            && (self.resend_until.is_some() || self.building.body.len() < o.batch_bytes)
        {
            // Near the batch size, read little more than fits (a replayed batch is read whole).
            let room = match self.resend_until {
                Some(_) => buf.len(),
                None => o
                    .batch_bytes
                    .saturating_sub(self.building.body.len())
                    .max(4096),
            };
            let want = usize::try_from(limit - self.read_pos)
                .unwrap_or(usize::MAX)
                .min(buf.len())
                .min(room);
            let n = match file.read_at(&mut buf[..want], self.read_pos) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.asm.push(&buf[..n], self.read_pos, o, &mut out);
            self.read_pos += n as u64;
            self.last_data = now;
            self.add(&mut out, now, o);
        }
        if self.resend_until == Some(self.read_pos) {
            // The batch that was in flight when the shipper stopped: cut exactly where it
            // ended, so it is sent again with the same bounds and key.
            self.asm.flush(o, &mut out);
            self.building.force = true;
            self.resend_until = None;
        } else if self.resend_until.is_none() {
            let idle = now.saturating_duration_since(self.last_data);
            if self.asm.has_partial_line() && o.partial_line_timeout.is_some_and(|t| idle >= t) {
                self.asm.flush_line(o, &mut out);
            }
            if let Some(ml) = &o.multiline {
                if !self.asm.has_partial_line() && self.asm.has_record() && idle >= ml.timeout {
                    self.asm.flush_record(&mut out);
                }
            }
        }
        self.add(&mut out, now, o);
        Ok(Polled::Read)
    }

    /// Whether the file was read to its end the last time it was polled.
    pub fn caught_up(&self) -> bool {
        self.file.is_none() || self.seen.is_none_or(|(size, _)| self.read_pos >= size)
    }

    /// For a file that is gone: once it is read to its end and idle for `--rotate-wait`,
    /// everything read becomes records (a last line without a newline too) and is sent.
    pub fn drain_if_idle(&mut self, now: Instant, o: &Options) {
        if self.drained || self.resend_until.is_some() || !self.caught_up() {
            return;
        }
        if now.saturating_duration_since(self.last_data) < o.rotate_wait {
            return;
        }
        let mut out = Output::default();
        self.asm.flush(o, &mut out);
        self.add(&mut out, now, o);
        self.building.force = true;
        self.drained = true;
        self.file = None;
    }

    /// The content was replaced: what was read before becomes this tailer's last batch, and
    /// the open handle is handed over to the file's new incarnation.
    pub fn retire(&mut self, now: Instant, o: &Options) -> Option<File> {
        let mut out = Output::default();
        self.asm.flush(o, &mut out);
        self.add(&mut out, now, o);
        self.building.force = true;
        self.retired = true;
        self.resend_until = None;
        self.file.take()
    }

    /// Retired or drained, with everything sent and acknowledged.
    pub fn finished(&self) -> bool {
        (self.retired || self.drained)
            && self.sending.is_none()
            && self.building.end == self.building.start
    }

    /// Something read is not yet acknowledged, or not read yet: a successor at the same path
    /// waits.
    pub fn holds_unsent(&self) -> bool {
        self.sending.is_some() || !self.building.offsets.is_empty() || !self.caught_up()
    }

    /// The next batch when it is due: full, older than `--flush-interval`, or forced; `None`
    /// while a batch is in flight.
    pub fn take(&mut self, now: Instant, o: &Options) -> Option<Taken> {
        if self.sending.is_some()
            || self.resend_until.is_some()
            || self.building.end == self.building.start
        {
            return None;
        }
        if self.building.offsets.is_empty() {
            self.committed = self.building.end;
            self.building = Building::new(self.building.end);
            return Some(Taken::Skipped);
        }
        let due = self.building.force
            || self.building.body.len() >= o.batch_bytes
            || self
                .building
                .since
                .is_some_and(|t| now.saturating_duration_since(t) >= o.flush_interval);
        if !due {
            return None;
        }
        let end = self.building.end;
        let b = std::mem::replace(&mut self.building, Building::new(end));
        let span = Span {
            start: b.start,
            end: b.end,
        };
        self.sending = Some(span);
        // multi-line records travel as NDJSON objects (a record holds newlines)
        let format = match (self.asm.format(), &o.multiline) {
            (Some(Format::Text), None) => Format::Text,
            _ => Format::Ndjson,
        };
        Some(Taken::Batch(Outgoing {
            file: self.id,
            span,
            key: format!(
                "sawmill-follow-{:016x}-{}-{}",
                self.id, span.start, span.end
            ),
            path: self.path.clone(),
            source: o.source.clone().unwrap_or_else(|| self.path.clone()),
            format,
            body: b.body,
            offsets: b.offsets,
        }))
    }

    /// The server acknowledged the batch `span`.
    pub fn acknowledged(&mut self, span: Span) -> bool {
        if self.sending != Some(span) {
            return false;
        }
        self.sending = None;
        self.committed = span.end;
        true
    }

    /// Checks that the file still starts with the fingerprinted bytes, and extends the
    /// fingerprint to up to [`FINGERPRINT_BYTES`] as the file grows.
    fn refresh_fingerprint(&mut self, file: &File, size: u64) -> std::io::Result<bool> {
        let want = size.min(FINGERPRINT_BYTES);
        if want < self.fingerprint.len {
            return Ok(false);
        }
        let mut buf = vec![0u8; want as usize];
        let n = read_full_at(file, &mut buf, 0)?;
        if (n as u64) < self.fingerprint.len {
            return Ok(false);
        }
        buf.truncate(n);
        if fnv1a64(&buf[..self.fingerprint.len as usize]) != self.fingerprint.hash {
            return Ok(false);
        }
        self.fingerprint = Fingerprint {
            len: n as u64,
            hash: fnv1a64(&buf),
        };
        Ok(true)
    }

    /// Moves the records cut so far into the batch being built and moves its end to the
    /// first byte not yet part of a record.
    fn add(&mut self, out: &mut Output, now: Instant, o: &Options) {
        for (offset, dropped) in out.too_long.drain(..) {
            let what = if dropped {
                "a line too long was skipped (a cut JSON object would not parse)"
            } else {
                "a line too long was cut"
            };
            tracing::warn!(
                path = %self.path,
                offset,
                max_line_bytes = o.max_line_bytes,
                "{what}"
            );
        }
        let multiline = o.multiline.is_some();
        let format = self.asm.format();
        let b = &mut self.building;
        for r in out.records.drain(..) {
            match format {
                Some(Format::Text) if multiline => {
                    b.body.extend_from_slice(b"{\"message\":");
                    push_json_string(&mut b.body, &String::from_utf8_lossy(&r.data));
                    b.body.push(b'}');
                }
                Some(Format::Text) => {
                    b.body
                        .extend_from_slice(String::from_utf8_lossy(&r.data).as_bytes());
                }
                _ => b.body.extend_from_slice(&r.data),
            }
            b.body.push(b'\n');
            b.offsets.push(r.start);
            b.since.get_or_insert(now);
        }
        b.end = self.asm.pending_start().unwrap_or(self.read_pos);
    }
}

/// Appends `s` as a JSON string.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // serializing a string into a Vec cannot fail
    let _ = serde_json::to_writer(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn opts(multiline: Option<&str>) -> Options {
        let mut o = Options {
            batch_bytes: 1 << 20,
            ..Options::default()
        };
        o.max_line_bytes = 20;
        if let Some(re) = multiline {
            o.multiline = Some(crate::Multiline {
                start: regex::bytes::Regex::new(re).unwrap(),
                max_bytes: 40,
                timeout: Duration::from_secs(1),
            });
        }
        o
    }

    fn cut(a: &mut Assembler, chunks: &[&str], o: &Options) -> (Vec<(u64, String)>, Output) {
        let mut out = Output::default();
        let mut offset = 0;
        for c in chunks {
            a.push(c.as_bytes(), offset, o, &mut out);
            offset += c.len() as u64;
        }
        let recs = out
            .records
            .drain(..)
            .map(|r| (r.start, String::from_utf8(r.data).unwrap()))
            .collect();
        (recs, out)
    }

    #[test]
    fn lines_across_chunks_with_offsets() {
        let o = opts(None);
        let mut a = Assembler::new(None);
        let (recs, _) = cut(&mut a, &["\u{feff}one\r\ntw", "o\n\n  \nthr", "ee"], &o);
        assert_eq!(recs, [(0, "one".into()), (8, "two".into())]);
        assert_eq!(a.format(), Some(Format::Text));
        assert_eq!(a.pending_start(), Some(16));
        let mut out = Output::default();
        a.flush_line(&o, &mut out);
        assert_eq!(
            out.records,
            [Record {
                start: 16,
                data: b"three".to_vec()
            }]
        );
        assert_eq!(a.pending_start(), None);
    }

    #[test]
    fn format_detection_and_long_lines() {
        let o = opts(None);
        let mut a = Assembler::new(None);
        let long = format!("{{\"m\":\"{}\"}}\n", "x".repeat(30));
        let (recs, out) = cut(&mut a, &["\n  {\"a\":1}\n", &long, "{\"b\":2}\n"], &o);
        assert_eq!(a.format(), Some(Format::Ndjson));
        assert_eq!(
            recs,
            [
                (1, "  {\"a\":1}".into()),
                (11 + long.len() as u64, "{\"b\":2}".into())
            ]
        );
        assert_eq!(out.too_long, [(11, true)]);

        let mut a = Assembler::new(Some(Format::Text));
        let (recs, out) = cut(&mut a, &[&"y".repeat(50), "\nshort\n"], &o);
        assert_eq!(recs, [(0, "y".repeat(20)), (51, "short".into())]);
        assert_eq!(out.too_long, [(0, false)]);
    }

    #[test]
    fn multiline_records() {
        let o = opts(Some(r"^\d"));
        let mut a = Assembler::new(None);
        let (recs, _) = cut(
            &mut a,
            &[
                "  orphan\n1 start\n  at a\n",
                "  at b\n2 next\n3 long\n",
                "  aaaaaaaaaaaaaaaaaa\n  bbbbbbbbbbbbbbbbbb\n  c\n4 last\n  tail",
            ],
            &o,
        );
        assert_eq!(
            recs,
            [
                (0, "  orphan".into()),
                (9, "1 start\n  at a\n  at b".into()),
                (31, "2 next".into()),
                // at most 40 bytes: the continuation that does not fit starts a new record
                (38, "3 long\n  aaaaaaaaaaaaaaaaaa".into()),
                (66, "  bbbbbbbbbbbbbbbbbb\n  c".into()),
            ]
        );
        assert_eq!(a.pending_start(), Some(91));
        assert!(a.has_partial_line() && a.has_record());
        let mut out = Output::default();
        a.flush(&o, &mut out);
        let recs: Vec<String> = out
            .records
            .into_iter()
            .map(|r| String::from_utf8(r.data).unwrap())
            .collect();
        assert_eq!(recs, ["4 last\n  tail"]);
    }

    #[test]
    fn fingerprints_keep_their_persisted_values() {
        // values written to state files by earlier versions: they must read back the same
        assert_eq!(fnv1a64(b""), Fingerprint::EMPTY.hash);
        assert_eq!(fnv1a64(b"first line\n"), 0x23fcd45608a90049);
    }

    #[test]
    fn json_strings() {
        let mut out = Vec::new();
        push_json_string(&mut out, "a\"b\\c\nd\te\u{1}é");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\te\u{1}é");
    }

    fn tailer(path: &std::path::Path, now: Instant) -> Tailer {
        let file = File::open(path).unwrap();
        Tailer::new(
            7,
            path.display().to_string(),
            path.to_path_buf(),
            file,
            0,
            None,
            now,
        )
        .unwrap()
    }

    #[test]
    fn batches_are_contiguous_and_replayable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"alpha\nbeta\ngam").unwrap();
        let mut o = opts(None);
        o.partial_line_timeout = Some(Duration::from_secs(5));
        let now = Instant::now();
        let mut t = tailer(&path, now);
        let mut buf = vec![0u8; 4];
        assert_eq!(t.poll(now, &o, &mut buf).unwrap(), Polled::Read);
        assert!(
            t.take(now, &o).is_none(),
            "not due before the flush interval"
        );
        let later = now + o.flush_interval;
        let Some(Taken::Batch(b)) = t.take(later, &o) else {
            panic!("batch due")
        };
        assert_eq!(b.span, Span { start: 0, end: 11 });
        assert_eq!(b.body, b"alpha\nbeta\n");
        assert_eq!(b.offsets, [0, 6]);
        assert_eq!(b.key, "sawmill-follow-0000000000000007-0-11");
        assert_eq!(b.format, Format::Text);
        // the unfinished line waits for its newline
        f.write_all(b"ma\n").unwrap();
        t.poll(later, &o, &mut buf).unwrap();
        assert!(
            t.take(later + Duration::from_secs(9), &o).is_none(),
            "one batch in flight"
        );
        assert!(t.acknowledged(b.span));
        let Some(Taken::Batch(c)) = t.take(later + Duration::from_secs(9), &o) else {
            panic!("second batch")
        };
        assert_eq!(c.span, Span { start: 11, end: 17 });
        assert_eq!(c.body, b"gamma\n");
        let mut entry = t.entry().unwrap();
        assert_eq!(entry.offset, 11);
        assert_eq!(entry.sending, Some(c.span));

        // a restart while `c` was in flight sends exactly `c` again, even with more lines
        f.write_all(b"delta\nepsilon").unwrap();
        entry.format = Some(Format::Text);
        let fp = Fingerprint {
            len: entry.fingerprint_len,
            hash: u64::from_str_radix(&entry.fingerprint, 16).unwrap(),
        };
        let file = File::open(&path).unwrap();
        assert!(fp.matches(&file).unwrap());
        let mut r = Tailer::resume(&entry, 7, fp, path.clone(), file, &o, now);
        assert_eq!(
            r.entry().unwrap().sending,
            Some(c.span),
            "still recorded until sent again"
        );
        r.poll(now, &o, &mut buf).unwrap();
        let Some(Taken::Batch(again)) = r.take(now, &o) else {
            panic!("replayed batch")
        };
        assert_eq!((again.span, again.key, again.body), (c.span, c.key, c.body));
        assert!(r.acknowledged(again.span));
        r.poll(now, &o, &mut buf).unwrap();
        let Some(Taken::Batch(d)) = r.take(now + o.flush_interval, &o) else {
            panic!("next batch")
        };
        assert_eq!(d.span, Span { start: 17, end: 23 });
        assert_eq!(d.body, b"delta\n");
    }

    #[test]
    fn truncation_and_rewrites_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "first line\nsecond line\n").unwrap();
        let o = opts(None);
        let now = Instant::now();
        let mut t = tailer(&path, now);
        let mut buf = vec![0u8; READ_CHUNK];
        assert_eq!(t.poll(now, &o, &mut buf).unwrap(), Polled::Read);
        assert_eq!(t.fingerprint.len, 23);
        // copytruncate: shorter than what was read
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert_eq!(t.poll(now, &o, &mut buf).unwrap(), Polled::Replaced);
        // rewritten past the read offset between two polls: the first bytes differ
        let mut t = tailer(&path, now);
        std::fs::write(&path, "one\n").unwrap();
        t.poll(now, &o, &mut buf).unwrap();
        std::fs::write(&path, "two\nmore lines than before\n").unwrap();
        assert_eq!(t.poll(now, &o, &mut buf).unwrap(), Polled::Replaced);
        let file = t.retire(now, &o);
        assert!(file.is_some());
        assert!(t.entry().is_none());
        let Some(Taken::Batch(b)) = t.take(now, &o) else {
            panic!("last batch of the old content")
        };
        assert_eq!(b.body, b"one\n");
        assert!(t.acknowledged(b.span));
        assert!(t.finished());
    }

    #[test]
    fn a_file_that_is_gone_is_drained_after_the_rotate_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "a\nb").unwrap();
        let o = opts(None);
        let now = Instant::now();
        let mut t = tailer(&path, now);
        let mut buf = vec![0u8; READ_CHUNK];
        t.poll(now, &o, &mut buf).unwrap();
        std::fs::remove_file(&path).unwrap();
        t.drain_if_idle(now + Duration::from_secs(1), &o);
        assert!(!t.drained);
        t.drain_if_idle(now + o.rotate_wait, &o);
        assert!(t.drained);
        let Some(Taken::Batch(b)) = t.take(now + o.rotate_wait, &o) else {
            panic!("drained batch")
        };
        assert_eq!(b.body, b"a\nb\n");
        assert_eq!(b.span, Span { start: 0, end: 3 });
        assert!(!t.finished());
        t.acknowledged(b.span);
        assert!(t.finished());
    }
}
