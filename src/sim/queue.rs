//! The event queue: a binary heap keyed on `(time, seq)`.
//!
//! `seq` grows by one per scheduled event, so events at the same instant run in the order they
//! were scheduled (first in, first out), as nexosim's priority queue does. Cancellation is by
//! generation: an event carries the generation of the timer slot it belongs to, and the engine
//! skips it when popped if the slot has moved on (see [`TimerSlots`]). That keeps the heap free of
//! tombstone bookkeeping and the hot path free of allocation once the heap has grown.

use super::time::SimTime;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Entry<E> {
    time: SimTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.time == other.time && self.seq == other.seq
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest `(time, seq)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// A min-queue of events in `(time, seq)` order.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::with_capacity(64)
    }
}

impl<E> EventQueue<E> {
    pub fn with_capacity(capacity: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(capacity),
            next_seq: 0,
        }
    }

    /// Schedules `event` at `time`; ties run in scheduling order.
    #[inline]
    pub fn push(&mut self, time: SimTime, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { time, seq, event });
    }

    /// The earliest event, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.heap.pop().map(|e| (e.time, e.event))
    }

    /// Time of the earliest event.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|e| e.time)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Empties the queue but keeps its memory, for reuse across trials.
    pub fn clear(&mut self) {
        self.heap.clear();
        self.next_seq = 0;
    }
}

/// Generation counters for cancellable timers: one slot per timer owner.
///
/// `arm(slot)` returns the generation to stamp on the event; `cancel(slot)` bumps it, so every
/// event stamped before is stale; `is_current(slot, gen)` is the check made when popping.
#[derive(Debug, Clone, Default)]
pub struct TimerSlots {
    generation: Vec<u32>,
}

impl TimerSlots {
    pub fn new(slots: usize) -> Self {
        TimerSlots {
            generation: vec![0; slots],
        }
    }

    #[inline]
    pub fn current(&self, slot: usize) -> u32 {
        self.generation[slot]
    }

    #[inline]
    pub fn cancel(&mut self, slot: usize) {
        self.generation[slot] = self.generation[slot].wrapping_add(1);
    }

    #[inline]
    pub fn is_current(&self, slot: usize, generation: u32) -> bool {
        self.generation[slot] == generation
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
    fn cancelled_timers_are_stale() {
        let mut t = TimerSlots::new(2);
        let g = t.current(1);
        assert!(t.is_current(1, g));
        t.cancel(1);
        assert!(!t.is_current(1, g));
        assert!(t.is_current(0, 0));
    }
}
