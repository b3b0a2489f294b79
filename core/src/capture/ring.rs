//! The consumer side of the probe's BPF ring buffer, with its data area
//! mapped once. libbpf maps the data area twice in a row so that a record
//! which wraps reads contiguously; the kernel fills both views at mmap, so
//! the process's RSS counts every ring page twice (2 MB for the default
//! 1 MB ring) for memory that exists once. Here the rare record that wraps
//! is copied into a scratch buffer the size of the largest record instead.
//!
//! The protocol is the kernel's (kernel/bpf/ringbuf.c) as libbpf's consumer
//! follows it (ringbuf.c, ringbuf_process_ring): acquire loads of
//! producer_pos and of each record's length word (busy bit: still being
//! written; discard bit: skip), a release store of consumer_pos after each
//! record. Positions are `unsigned long` in the kernel, as in libbpf.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

use core::mem::size_of;

use super::skel::types::{
    kestrel_close_tail, kestrel_fd, kestrel_flags, kestrel_hdr, kestrel_layout, kestrel_record,
    kestrel_record_type,
};

const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HDR: usize = 8;

/// The largest record the probe writes (kestrel.h's union of them all).
pub const MAX_RECORD: usize = size_of::<kestrel_record>();

/// The largest ring record: one record, or a CPU's stage of small ones
/// (bpf/stage.h); the scratch a wrapped one is copied into.
pub const MAX_ENTRY: usize = {
    let stage = kestrel_layout::KL_STAGE.0 as usize;
    if stage > MAX_RECORD {
        stage
    } else {
        MAX_RECORD
    }
};

/// The records in one ring record, each handed to `f`: one record, or a
/// stage of small records back to back, each starting 8-aligned and as
/// long as its hdr.len says; an open flagged KF_CLOSE_FOLLOWS is followed
/// by a kestrel_close_tail, handed on as the whole close record it stands
/// for. False when a length is off: what came before it was delivered, the
/// rest is not.
pub fn split(entry: &[u8], f: &mut dyn FnMut(&[u8])) -> bool {
    const TAIL: usize = size_of::<kestrel_close_tail>();
    let mut at = 0;
    while at < entry.len() {
        let rest = &entry[at..];
        let Ok(h) = super::record::read::<kestrel_hdr>(rest) else {
            return false;
        };
        let len = usize::from(h.len);
        if len < size_of::<kestrel_hdr>() || len > rest.len() {
            return false;
        }
        f(&rest[..len]);
        at += len.next_multiple_of(8);
        if h.r#type == kestrel_record_type::KR_OPEN.0 as u16
            && h.flags & kestrel_flags::KF_CLOSE_FOLLOWS.0 as u16 != 0
        {
            let Some(tail) = entry.get(at..at + TAIL) else {
                return false;
            };
            f(&close_record(&h, tail));
            at += TAIL;
        }
    }
    true
}

/// The close record a tail stands for: the open's thread, jiffies and new
/// fd, the tail's number, flags and return value (bpf/stage.h,
/// stage_close_tail).
fn close_record(open: &kestrel_hdr, tail: &[u8]) -> [u8; size_of::<kestrel_fd>()] {
    use core::mem::offset_of;
    let t: kestrel_close_tail = super::record::read(tail).unwrap_or_default();
    let mut r = [0u8; size_of::<kestrel_fd>()];
    let mut put = |at: usize, b: &[u8]| r[at..at + b.len()].copy_from_slice(b);
    let h = offset_of!(kestrel_fd, hdr);
    put(
        h + offset_of!(kestrel_hdr, jiffies),
        &open.jiffies.to_ne_bytes(),
    );
    put(h + offset_of!(kestrel_hdr, tid), &open.tid.to_ne_bytes());
    put(h + offset_of!(kestrel_hdr, pid), &open.pid.to_ne_bytes());
    let close = kestrel_record_type::KR_CLOSE.0 as u16;
    put(h + offset_of!(kestrel_hdr, r#type), &close.to_ne_bytes());
    let len = size_of::<kestrel_fd>() as u16;
    put(h + offset_of!(kestrel_hdr, len), &len.to_ne_bytes());
    put(h + offset_of!(kestrel_hdr, nr), &t.nr.to_ne_bytes());
    put(h + offset_of!(kestrel_hdr, flags), &t.flags.to_ne_bytes());
    put(
        h + offset_of!(kestrel_hdr, ret),
        &i64::from(t.ret).to_ne_bytes(),
    );
    put(offset_of!(kestrel_fd, fd), &open.ret.to_ne_bytes());
    r
}

/// Where each record goes. A boxed callback rather than a type parameter,
/// so the consume loop is compiled here, in the crate built for speed, and
/// not instantiated in the agent's crate (built for size).
pub type OnRecord<'a> = Box<dyn FnMut(&[u8]) + 'a>;

/// Where a record's bytes are: in the mapping, or split by the end of it.
enum Span {
    Whole(usize),
    Wrapped { first: usize },
}

pub struct EventRing<'a> {
    fd: OwnedFd,
    page: usize,
    /// One page, read-write: consumer_pos.
    consumer: *mut core::ffi::c_void,
    /// The producer page, then the data area once.
    producer: *mut core::ffi::c_void,
    size: usize,
    scratch: Box<[u8]>,
    on_record: OnRecord<'a>,
    /// Records longer than the ring, or wrapped and longer than any record
    /// type: skipped, never delivered cut (never expected of the kernel).
    pub corrupt: u64,
}

impl<'a> EventRing<'a> {
    /// Maps the ring behind `map_fd` (a BPF_MAP_TYPE_RINGBUF of `size`
    /// bytes, a power of two) and delivers each record to `on_record`.
    pub fn new(map_fd: impl AsFd, size: usize, on_record: OnRecord<'a>) -> std::io::Result<Self> {
        if !size.is_power_of_two() {
            return Err(std::io::Error::other("ring size is not a power of two"));
        }
        let fd = map_fd.as_fd().try_clone_to_owned()?;
        let page = rustix::param::page_size();
        // SAFETY: a fresh shared mapping of the map's first page, the only
        // part the kernel lets a consumer write (ringbuf_map_mmap_user).
        let consumer = unsafe {
            mmap(
                core::ptr::null_mut(),
                page,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }?;
        // SAFETY: a fresh read-only mapping of the producer page and the
        // data area once; remap_vmalloc_range accepts a shorter length.
        let producer = unsafe {
            mmap(
                core::ptr::null_mut(),
                page + size,
                ProtFlags::READ,
                MapFlags::SHARED,
                &fd,
                page as u64,
            )
        };
        let producer = match producer {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: the mapping made above, unmapped once.
                let _ = unsafe { munmap(consumer, page) };
                return Err(e.into());
            }
        };
        Ok(EventRing {
            fd,
            page,
            consumer,
            producer,
            size,
            scratch: vec![0; MAX_ENTRY].into_boxed_slice(),
            on_record,
            corrupt: 0,
        })
    }

    fn consumer_pos(&self) -> &AtomicUsize {
        // SAFETY: the consumer page is mapped read-write for self's life;
        // consumer_pos is its first, aligned `unsigned long`.
        unsafe { AtomicUsize::from_ptr(self.consumer.cast()) }
    }

    fn producer_pos(&self) -> &AtomicUsize {
        // SAFETY: the producer page is mapped for self's life; producer_pos
        // is its first, aligned word. Only loaded (a lock-free atomic load
        // of a word from read-only memory is allowed).
        unsafe { AtomicUsize::from_ptr(self.producer.cast()) }
    }

    fn data(&self) -> *const u8 {
        // SAFETY: page bytes into a mapping of page + size bytes.
        unsafe { self.producer.cast::<u8>().add(self.page) }
    }

    /// The length word of the record at data offset `off` (8-aligned, so
    /// the header never straddles the end).
    fn len_word(&self, off: usize) -> u32 {
        debug_assert!(off % 8 == 0 && off + HDR <= self.size);
        // SAFETY: off is 8-aligned and below size - 8 (masked position of
        // an 8-aligned record), inside the data mapping; loaded only.
        unsafe { AtomicU32::from_ptr(self.data().add(off) as *mut u32) }.load(Ordering::Acquire)
    }

    /// Delivers the committed records; returns how many ring records (a
    /// stage of small records counts once).
    /// At most about a ring's worth per call: under a flood the consumer
    /// cannot keep up with, the loop still gets back to its snapshots,
    /// signals and scrapes (the probe drops, and counts, what does not fit;
    /// the next wakeup or drain tick takes the rest).
    pub fn consume(&mut self) -> usize {
        let mask = self.size - 1;
        let mut cons = self.consumer_pos().load(Ordering::Acquire);
        let first = cons;
        let mut n = 0;
        loop {
            let prod = self.producer_pos().load(Ordering::Acquire);
            let start = cons;
            while cons != prod {
                let off = cons & mask;
                let word = self.len_word(off);
                if word & BUSY_BIT != 0 {
                    break;
                }
                let len = (word & !(BUSY_BIT | DISCARD_BIT)) as usize;
                if len > self.size - HDR {
                    // Not a record the kernel could have written: skip to
                    // the producer rather than read out of bounds.
                    self.corrupt += 1;
                    cons = prod;
                    self.consumer_pos().store(cons, Ordering::Release);
                    break;
                }
                if word & DISCARD_BIT == 0 {
                    if self.deliver(off + HDR, len) {
                        n += 1;
                    } else {
                        self.corrupt += 1;
                    }
                }
                cons = cons.wrapping_add((len + HDR).next_multiple_of(8));
                self.consumer_pos().store(cons, Ordering::Release);
            }
            if cons == start || cons.wrapping_sub(first) >= self.size {
                return n;
            }
        }
    }

    fn span(&self, at: usize, len: usize) -> Span {
        let at = at & (self.size - 1);
        if at + len <= self.size {
            Span::Whole(at)
        } else {
            Span::Wrapped {
                first: self.size - at,
            }
        }
    }

    /// Hands the records of one ring record to on_record; false when it
    /// wraps and is longer than any ring record, or its lengths are off.
    fn deliver(&mut self, at: usize, len: usize) -> bool {
        let data = self.data();
        let rec = match self.span(at, len) {
            // SAFETY: off + len <= size, inside the data mapping; the
            // kernel does not rewrite a record before consumer_pos passes it.
            Span::Whole(off) => unsafe { core::slice::from_raw_parts(data.add(off), len) },
            Span::Wrapped { first } => {
                if len > self.scratch.len() {
                    return false;
                }
                let off = at & (self.size - 1);
                // SAFETY: [off, size) and [0, len - first) lie inside the
                // data mapping (first = size - off, len <= size).
                let (a, b) = unsafe {
                    (
                        core::slice::from_raw_parts(data.add(off), first),
                        core::slice::from_raw_parts(data, len - first),
                    )
                };
                self.scratch[..first].copy_from_slice(a);
                self.scratch[first..len].copy_from_slice(b);
                &self.scratch[..len]
            }
        };
        split(rec, &mut *self.on_record)
    }
}

impl AsRawFd for EventRing<'_> {
    /// The map's fd: epoll on it wakes when the probe signals data.
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for EventRing<'_> {
    fn drop(&mut self) {
        // SAFETY: the two mappings made in new(), each unmapped once; no
        // reference into them outlives this call (records are borrowed only
        // during on_record).
        unsafe {
            let _ = munmap(self.consumer, self.page);
            let _ = munmap(self.producer, self.page + self.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;
    use core::mem::{offset_of, size_of};

    use crate::capture::skel::types::kestrel_hdr;

    /// A record of `len` bytes, its hdr.len set, its other bytes `fill`.
    fn rec(len: usize, fill: u8) -> Vec<u8> {
        let mut r = vec![fill; len];
        let at = offset_of!(kestrel_hdr, len);
        r[at..at + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        r
    }

    fn pieces(entry: &[u8]) -> (bool, Vec<Vec<u8>>) {
        let mut got = Vec::new();
        let ok = split(entry, &mut |r| got.push(r.to_vec()));
        (ok, got)
    }

    #[test]
    fn one_record_is_delivered_whole() {
        let r = rec(size_of::<kestrel_hdr>() + 5, 1);
        assert_eq!(pieces(&r), (true, vec![r.clone()]));
    }

    #[test]
    fn a_stage_splits_at_each_records_8_aligned_start() {
        let (a, b, c) = (rec(45, 1), rec(32, 2), rec(60, 3));
        let mut stage = Vec::new();
        for r in [&a, &b, &c] {
            stage.extend_from_slice(r);
            stage.resize(stage.len().next_multiple_of(8), 0);
        }
        assert_eq!(stage.len(), 48 + 32 + 64);
        assert_eq!(pieces(&stage), (true, vec![a, b, c]));
    }

    #[test]
    fn a_close_tail_after_its_open_becomes_the_whole_close_record() {
        use crate::capture::record::synth;
        use crate::capture::skel::types::{kestrel_flags as F, kestrel_record_type as T};
        let mut open = synth::open(7, 5, 3, 0, "/etc/hosts");
        let mut close = synth::fd(T::KR_CLOSE, 7, 5, 3, -9, false);
        let flags = offset_of!(kestrel_hdr, flags);
        for r in [&mut open, &mut close] {
            r[..8].copy_from_slice(&77u64.to_ne_bytes()); // jiffies
            r[flags..flags + 2].copy_from_slice(&(F::KF_COMPAT.0 as u16).to_ne_bytes());
        }
        let nr = offset_of!(kestrel_hdr, nr);
        close[nr..nr + 2].copy_from_slice(&6i16.to_ne_bytes());
        let mut stage = synth::with_close_tail(open.clone());
        stage.resize(stage.len().next_multiple_of(8), 0);
        stage.extend_from_slice(&6i16.to_ne_bytes());
        stage.extend_from_slice(&(F::KF_COMPAT.0 as u16).to_ne_bytes());
        stage.extend_from_slice(&(-9i32).to_ne_bytes());
        let after = rec(40, 4);
        stage.extend_from_slice(&after);
        let (ok, got) = pieces(&stage);
        assert!(ok);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0][..flags], open[..flags]);
        assert_eq!(got[1], close, "the close rebuilt byte for byte");
        assert_eq!(got[2], after, "and what follows the tail");
        // A tail cut off by the entry's end stops the split after the open.
        let (ok, got) = pieces(&stage[..open.len().next_multiple_of(8) + 4]);
        assert_eq!((ok, got.len()), (false, 1));
    }

    #[test]
    fn a_length_past_the_entry_or_below_a_header_stops_the_split() {
        let a = rec(32, 1);
        let mut long = a.clone();
        long.extend_from_slice(&rec(40, 2)[..36]);
        assert_eq!(pieces(&long), (false, vec![a.clone()]));
        let mut short = a.clone();
        let mut b = rec(32, 2);
        b[offset_of!(kestrel_hdr, len)..][..2].copy_from_slice(&8u16.to_ne_bytes());
        short.extend_from_slice(&b);
        assert_eq!(pieces(&short), (false, vec![a.clone()]));
        let mut tail = a.clone();
        tail.extend_from_slice(&[0; 8]);
        assert_eq!(pieces(&tail), (false, vec![a]));
    }
}
