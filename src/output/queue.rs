//! A bounded queue of whole lines, one per output. Memory is taken once at
//! start and never grows: a line that does not fit is refused whole (the
//! caller counts it), never cut. The front line may be partly written to a
//! stream (pipe, terminal); its written part is remembered so the rest
//! follows and nothing else is ever written in between.

use std::collections::VecDeque;

/// Bytes per output queue: a few snapshots (2-3 KB each, 16 KiB at most).
pub const QUEUE_BYTES: usize = 64 * 1024;
/// Lines per output queue.
pub const QUEUE_LINES: usize = 16;

pub struct LineQueue {
    bytes: VecDeque<u8>,
    lens: heapless::Deque<u32, QUEUE_LINES>,
    /// Bytes of the front line already written.
    front_done: usize,
}

impl Default for LineQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl LineQueue {
    pub fn new() -> LineQueue {
        LineQueue {
            bytes: VecDeque::with_capacity(QUEUE_BYTES),
            lens: heapless::Deque::new(),
            front_done: 0,
        }
    }

    /// Queues `line` whole, or returns false and queues nothing.
    pub fn push(&mut self, line: &[u8]) -> bool {
        // The VecDeque never grows past what it was given at start.
        if line.is_empty() || self.bytes.len() + line.len() > QUEUE_BYTES || self.lens.is_full() {
            return false;
        }
        self.bytes.extend(line);
        // is_full was checked above.
        let _ = self.lens.push_back(line.len() as u32);
        true
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// The front line, contiguous, and how much of it is already written.
    pub fn front(&mut self) -> Option<(&[u8], usize)> {
        let len = *self.lens.front()? as usize;
        let (a, _) = self.bytes.as_slices();
        if a.len() < len {
            // Rotates in place: no allocation.
            self.bytes.make_contiguous();
        }
        Some((&self.bytes.as_slices().0[..len], self.front_done))
    }

    /// Records `n` more bytes of the front line as written.
    pub fn advance(&mut self, n: usize) {
        self.front_done += n;
        if self
            .lens
            .front()
            .is_some_and(|&l| self.front_done >= l as usize)
        {
            self.pop();
        }
    }

    /// Removes the front line (written, or lost); true when one was removed.
    pub fn pop(&mut self) -> bool {
        let Some(len) = self.lens.pop_front() else {
            return false;
        };
        self.bytes.drain(..len as usize);
        if self.lens.is_empty() {
            // Back to the buffer's start: a queue that keeps up touches only
            // its first pages, not all 64 KiB as its head walks around.
            self.bytes.clear();
        }
        self.front_done = 0;
        true
    }

    /// Whether the front line is partly written (a stream must finish it).
    pub fn front_started(&self) -> bool {
        self.front_done > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_in_order_and_refusal_when_full() {
        let mut q = LineQueue::new();
        let line = [b'a'; 1000];
        let mut n = 0;
        while q.push(&line) {
            n += 1;
        }
        assert_eq!(n, QUEUE_LINES, "line count bounds first");
        let cap = q.bytes.capacity();
        assert!(!q.push(b"x\n"));
        // Drain half, refill across the wrap, and read back intact.
        for _ in 0..QUEUE_LINES / 2 {
            assert!(q.pop());
        }
        for i in 0..QUEUE_LINES / 2 {
            let l = [b'0' + (i % 10) as u8; 1000];
            assert!(q.push(&l));
        }
        for _ in 0..QUEUE_LINES / 2 {
            assert_eq!(q.front().unwrap().0, &line[..]);
            q.advance(1000);
        }
        for i in 0..QUEUE_LINES / 2 {
            let (f, done) = q.front().unwrap();
            assert_eq!((f[0], f.len(), done), (b'0' + (i % 10) as u8, 1000, 0));
            q.advance(400);
            assert!(q.front_started());
            q.advance(600);
        }
        assert!(q.is_empty());
        assert_eq!(q.bytes.capacity(), cap, "no growth");
    }

    #[test]
    fn byte_bound_refuses_a_line_that_does_not_fit() {
        let mut q = LineQueue::new();
        assert!(!q.push(&vec![b'x'; QUEUE_BYTES + 1]));
        assert!(q.push(&vec![b'x'; QUEUE_BYTES - 10]));
        assert!(!q.push(&[b'y'; 11]));
        assert!(q.push(&[b'y'; 10]));
        assert_eq!(q.len(), 2);
    }
}
