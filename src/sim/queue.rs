//! The event queue: a 4-ary min-heap of small keys ordered by `(time, seq)`, over a slab of
//! events.
//!
//! `seq` grows by one per scheduled event, so events at the same instant run in the order they
//! were scheduled (first in, first out), as nexosim's priority queue does. Cancellation is by
//! generation: a cancellable event carries the generation of what it belongs to (the arrival
//! process, a connection's slot, a drain's epoch), and the engine skips it when popped if that
//! has moved on. That keeps the heap free of tombstone bookkeeping and the hot path free of
//! allocation once the heap has grown.
//!
//! Why not `std::collections::BinaryHeap` of whole entries: a profile showed most of the
//! engine's time in a store-forwarding stall, the heap moving each entry with small stores that
//! the engine then read back at once with wide loads. Here the heap moves only 24-byte keys, each
//! written once per level with the hole technique (the moving key is written once, at its final
//! place), and the event itself is written once into its slab slot at push and read once at pop,
//! long after the store retired. Four children per node halve the depth of a binary heap; the
//! children of a node share a cache line.

use crate::time::SimTime;

/// What the heap orders: `(time, seq)`, and where the event is.
#[derive(Debug, Clone, Copy)]
struct Key {
    time: u64,
    seq: u64,
    slot: u32,
}

impl Key {
    #[inline(always)]
    fn before(&self, other: &Key) -> bool {
        (self.time, self.seq) < (other.time, other.seq)
    }
}

/// Children per heap node.
const ARITY: usize = 4;

/// A min-queue of events in `(time, seq)` order.
pub struct EventQueue<E> {
    heap: Vec<Key>,
    /// Events by slot; a slot is free once its event popped.
    events: Vec<E>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::with_capacity(64)
    }
}

impl<E: Copy> EventQueue<E> {
    pub fn with_capacity(capacity: usize) -> Self {
        EventQueue {
            heap: Vec::with_capacity(capacity),
            events: Vec::with_capacity(capacity),
            free: Vec::new(),
            next_seq: 0,
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at `time`; ties run in scheduling order.
    // Always inlined: the caller then writes the event's fields straight into its slab slot,
    // instead of building it on the stack for a wide copy that would stall on those stores.
    #[inline(always)]
    pub fn push(&mut self, time: SimTime, event: E) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.events[s as usize] = event;
                s
            }
            None => {
                self.events.push(event);
                (self.events.len() - 1) as u32
            }
        };
        let key = Key {
            time: time.0,
            seq: self.next_seq,
            slot,
        };
        self.next_seq += 1;
        // Sift up with a hole: parents move down one write each, the key is written once.
        let mut i = self.heap.len();
        self.heap.push(key);
        while i > 0 {
            let parent = (i - 1) / ARITY;
            let p = self.heap[parent];
            if !key.before(&p) {
                break;
            }
            self.heap[i] = p;
            i = parent;
        }
        self.heap[i] = key;
    }

    /// The earliest event, if any.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let top = *self.heap.first()?;
        let last = self.heap.pop().expect("not empty");
        let n = self.heap.len();
        if n > 0 {
            // Sift the last key down from the root, moving the smallest child up each level.
            let mut i = 0;
            loop {
                let first = ARITY * i + 1;
                if first >= n {
                    break;
                }
                let end = (first + ARITY).min(n);
                let mut m = first;
                let mut mk = self.heap[first];
                for c in first + 1..end {
                    let ck = self.heap[c];
                    if ck.before(&mk) {
                        m = c;
                        mk = ck;
                    }
                }
                if !mk.before(&last) {
                    break;
                }
                self.heap[i] = mk;
                i = m;
            }
            self.heap[i] = last;
        }
        self.free.push(top.slot);
        Some((SimTime(top.time), self.events[top.slot as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_fifo_order() {
        let mut q = EventQueue::default();
        q.push(SimTime(5), "b1");
        q.push(SimTime(1), "a");
        q.push(SimTime(5), "b2");
        q.push(SimTime(3), "c");
        q.push(SimTime(5), "b3");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, ["a", "c", "b1", "b2", "b3"]);
    }

    #[test]
    fn matches_a_sorted_reference_under_random_pushes_and_pops() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut q = EventQueue::default();
        let mut reference: Vec<(u64, u64)> = Vec::new();
        let mut seq = 0;
        for _ in 0..20_000 {
            if rng.gen_bool(0.55) {
                let t = rng.gen_range(0..200u64);
                q.push(SimTime(t), seq);
                reference.push((t, seq));
                seq += 1;
            } else {
                reference.sort();
                let want = (!reference.is_empty()).then(|| reference.remove(0));
                let got = q.pop().map(|(t, e)| (t.0, e));
                assert_eq!(got, want);
            }
            assert_eq!(q.len(), reference.len());
        }
    }
}
