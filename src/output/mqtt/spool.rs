//! The on-disk spool: messages the broker could not take while it was
//! unreachable, in segment files appended sequentially (flash-friendly: no
//! rewrite in place, nothing written while connected). A record is
//! `len u32 LE | crc32 u32 LE | kind u8 | payload`, len counting kind and
//! payload; a record cut by a crash or power loss fails its length or CRC
//! and is skipped with the rest of its segment, never delivered half.
//! A segment is deleted once every record in it has been PUBACKed; when the
//! spool is full the oldest segment goes, its records counted as dropped.
//! No fsync: a SIGKILL keeps what was written (the page cache survives the
//! process); a power loss may cost the last seconds.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use super::crc::crc32;

const HDR: usize = 8;
/// Segments per spool: what goes when full is at most an eighth of it.
const SEGMENTS: u64 = 8;
/// The largest record accepted back from disk.
pub const MAX_RECORD: usize = 1 << 20;

/// A record's place: segment id, byte offset, index within the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub seg: u32,
    pub off: u64,
    pub idx: u32,
}

struct Seg {
    id: u32,
    bytes: u64,
    records: u32,
}

pub struct Spool {
    dir: PathBuf,
    max: u64,
    seg_max: u64,
    segs: VecDeque<Seg>,
    total: u64,
    tail: Option<File>,
    reader: Option<(u32, File)>,
    /// The next record to load for sending.
    cursor: Pos,
    /// Everything before this is delivered.
    acked: Pos,
    hdr: Vec<u8>,
}

fn seg_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.spool"))
}

impl Spool {
    /// Opens (or creates) the spool directory and checks what is there.
    /// Returns the spool and lines to log (torn records found).
    pub fn open(dir: &Path, max: u64) -> Result<(Spool, Vec<String>), String> {
        let shown = dir.display();
        fs::create_dir_all(dir).map_err(|e| format!("spool directory {shown}: {e}"))?;
        let mut ids: Vec<u32> = fs::read_dir(dir)
            .map_err(|e| format!("spool directory {shown}: {e}"))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name();
                let n = n.to_str()?.strip_suffix(".spool")?;
                (n.len() == 8).then(|| n.parse().ok())?
            })
            .collect();
        ids.sort_unstable();
        let mut log = Vec::new();
        let mut segs = VecDeque::new();
        let mut total = 0;
        for id in ids {
            let p = seg_path(dir, id);
            let (bytes, records, torn) =
                scan(&p).map_err(|e| format!("spool {}: {e}", p.display()))?;
            if let Some(at) = torn {
                log.push(format!(
                    "spool {}: torn record at byte {at}: it and what follows are skipped",
                    p.display()
                ));
                // Cut there, so appends after it stay readable.
                let f = OpenOptions::new().write(true).open(&p);
                let _ = f.and_then(|f| f.set_len(bytes));
            }
            if records == 0 {
                let _ = fs::remove_file(&p);
                continue;
            }
            total += bytes;
            segs.push_back(Seg { id, bytes, records });
        }
        let first = segs.front().map_or(0, |s| s.id);
        let start = Pos {
            seg: first,
            off: 0,
            idx: 0,
        };
        Ok((
            Spool {
                dir: dir.to_path_buf(),
                max,
                seg_max: (max / SEGMENTS).max(4096),
                segs,
                total,
                tail: None,
                reader: None,
                cursor: start,
                acked: start,
                hdr: Vec::with_capacity(HDR + 1),
            },
            log,
        ))
    }

    /// Records not yet delivered (loaded ones included).
    pub fn pending(&self) -> u64 {
        let acked_in_first = self
            .segs
            .front()
            .filter(|s| s.id == self.acked.seg)
            .map_or(0, |_| u64::from(self.acked.idx));
        self.segs.iter().map(|s| u64::from(s.records)).sum::<u64>() - acked_in_first
    }

    /// Whether every record has been loaded for sending.
    pub fn drained(&self) -> bool {
        match self.segs.back() {
            None => true,
            Some(last) => {
                self.cursor.seg > last.id
                    || (self.cursor.seg == last.id && self.cursor.off >= last.bytes)
            }
        }
    }

    /// Appends one message; returns how many records were dropped (older
    /// ones to make room, or this one) and why this one was, if it was.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> (u64, Option<String>) {
        let rec = (HDR + 1 + payload.len()) as u64;
        if rec > self.max || payload.len() + 1 > MAX_RECORD {
            return (1, Some("message larger than the spool".into()));
        }
        let mut dropped = 0;
        while self.total + rec > self.max {
            dropped += self.drop_oldest();
        }
        let need_new = self
            .segs
            .back()
            .is_none_or(|s| s.bytes + rec > self.seg_max);
        if need_new || self.tail.is_none() {
            let id = match self.segs.back() {
                Some(s) if !need_new => s.id,
                Some(s) => s.id + 1,
                None => self.cursor.seg.max(self.acked.seg) + 1,
            };
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(seg_path(&self.dir, id));
            match f {
                Ok(f) => self.tail = Some(f),
                Err(e) => {
                    return (
                        dropped + 1,
                        Some(format!("spool {}: {e}", self.dir.display())),
                    )
                }
            }
            if need_new {
                if self.segs.is_empty() {
                    self.cursor = Pos {
                        seg: id,
                        off: 0,
                        idx: 0,
                    };
                    self.acked = self.cursor;
                }
                self.segs.push_back(Seg {
                    id,
                    bytes: 0,
                    records: 0,
                });
            }
        }
        self.hdr.clear();
        self.hdr
            .extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
        self.hdr
            .extend_from_slice(&crc32(&[&[kind], payload]).to_le_bytes());
        self.hdr.push(kind);
        let (Some(f), Some(seg)) = (self.tail.as_mut(), self.segs.back_mut()) else {
            return (dropped + 1, None);
        };
        let iov = [
            std::io::IoSlice::new(&self.hdr),
            std::io::IoSlice::new(payload),
        ];
        // One writev: a record is torn only by a crash inside the call.
        match f.write_vectored(&iov) {
            Ok(n) if n as u64 == rec => {
                seg.bytes += rec;
                seg.records += 1;
                self.total += rec;
                (dropped, None)
            }
            r => {
                // Cut back to the record's start; the message is lost.
                let _ = f.set_len(seg.bytes);
                let why = r
                    .err()
                    .map_or("short write (disk full?)".into(), |e| e.to_string());
                (
                    dropped + 1,
                    Some(format!("spool {}: {why}", self.dir.display())),
                )
            }
        }
    }

    /// Deletes the oldest segment; returns its undelivered records.
    fn drop_oldest(&mut self) -> u64 {
        let Some(s) = self.segs.pop_front() else {
            return 0;
        };
        let _ = fs::remove_file(seg_path(&self.dir, s.id));
        self.total -= s.bytes;
        if self.segs.is_empty() {
            self.tail = None;
        }
        self.reader = None;
        let delivered = if self.acked.seg == s.id {
            self.acked.idx
        } else {
            0
        };
        let next = Pos {
            seg: s.id + 1,
            off: 0,
            idx: 0,
        };
        self.cursor = self.cursor.max(next);
        self.acked = self.acked.max(next);
        u64::from(s.records - delivered)
    }

    /// The next record for sending into `buf` (kind, payload) and its place.
    /// A record that fails its checks ends its segment (logged by the caller).
    pub fn next(&mut self, buf: &mut Vec<u8>) -> Option<Result<(u8, Pos), String>> {
        loop {
            let seg = self.segs.iter().find(|s| s.id >= self.cursor.seg)?;
            if seg.id != self.cursor.seg {
                self.cursor = Pos {
                    seg: seg.id,
                    off: 0,
                    idx: 0,
                };
            }
            if self.cursor.off >= seg.bytes {
                self.cursor = Pos {
                    seg: seg.id + 1,
                    off: 0,
                    idx: 0,
                };
                continue;
            }
            let (id, end) = (seg.id, seg.bytes);
            let pos = self.cursor;
            match self.read_at(id, pos.off, end, buf) {
                Ok(kind) => {
                    self.cursor = Pos {
                        seg: id,
                        off: pos.off + (HDR + 1 + buf.len()) as u64,
                        idx: pos.idx + 1,
                    };
                    return Some(Ok((kind, pos)));
                }
                Err(e) => {
                    self.cursor = Pos {
                        seg: id + 1,
                        off: 0,
                        idx: 0,
                    };
                    return Some(Err(format!(
                        "spool segment {id}: {e}: skipped from byte {}",
                        pos.off
                    )));
                }
            }
        }
    }

    fn read_at(&mut self, id: u32, off: u64, end: u64, buf: &mut Vec<u8>) -> Result<u8, String> {
        if self.reader.as_ref().is_none_or(|(r, _)| *r != id) {
            let f = File::open(seg_path(&self.dir, id)).map_err(|e| e.to_string())?;
            self.reader = Some((id, f));
        }
        let Some((_, f)) = &self.reader else {
            return Err("not open".into());
        };
        let mut h = [0u8; HDR + 1];
        f.read_exact_at(&mut h, off)
            .map_err(|_| "torn record header".to_string())?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if len == 0 || len > MAX_RECORD || off + (HDR + len) as u64 > end {
            return Err("torn record (bad length)".into());
        }
        buf.clear();
        buf.resize(len - 1, 0);
        f.read_exact_at(buf, off + (HDR + 1) as u64)
            .map_err(|_| "torn record".to_string())?;
        if crc32(&[&h[HDR..], buf]) != crc {
            return Err("record fails its CRC".into());
        }
        Ok(h[HDR])
    }

    /// Everything before `p` is delivered: whole segments before it go.
    pub fn ack_to(&mut self, p: Pos) {
        self.acked = self.acked.max(p);
        while let Some(s) = self.segs.front() {
            let done =
                s.id < self.acked.seg || (s.id == self.acked.seg && self.acked.off >= s.bytes);
            if !done {
                break;
            }
            let _ = fs::remove_file(seg_path(&self.dir, s.id));
            self.total -= s.bytes;
            self.segs.pop_front();
            self.reader = None;
            if self.segs.is_empty() {
                self.tail = None;
            }
        }
    }

    /// Where the next record to load is.
    pub fn cursor(&self) -> Pos {
        self.cursor
    }

    /// A record read by `next` did not fit: it is read again next time.
    pub fn unread(&mut self, p: Pos) {
        self.cursor = p;
    }

    /// The connection went: what was loaded but not acked is loaded again.
    pub fn rewind(&mut self) {
        self.cursor = self.acked;
    }
}

/// Valid bytes, records, and where a torn record starts (if one does).
fn scan(p: &Path) -> std::io::Result<(u64, u32, Option<u64>)> {
    let f = File::open(p)?;
    let size = f.metadata()?.len();
    let (mut off, mut n) = (0u64, 0u32);
    let mut body = Vec::new();
    while off < size {
        let mut h = [0u8; HDR];
        let ok = f.read_exact_at(&mut h, off).ok().and_then(|_| {
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            if !(1..=MAX_RECORD).contains(&len) || off + (HDR + len) as u64 > size {
                return None;
            }
            body.resize(len, 0);
            f.read_exact_at(&mut body, off + HDR as u64).ok()?;
            (crc32(&[&body]) == crc).then_some((HDR + len) as u64)
        });
        match ok {
            Some(l) => {
                off += l;
                n += 1;
            }
            None => return Ok((off, n, Some(off))),
        }
    }
    Ok((off, n, None))
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
