//! The event queue: a 4-ary min-heap of `(time, seq, event)` entries ordered by `(time, seq)`.
//!
//! `seq` grows by one per scheduled event, so events at the same instant run in the order they
//! were scheduled (first in, first out), as nexosim's priority queue does. Cancellation is by
//! generation: a cancellable event carries the generation of what it belongs to (the arrival
//! process, a connection's slot, a drain's epoch), and the engine skips it when popped if that
//! has moved on. That keeps the heap free of tombstone bookkeeping and the hot path free of
//! allocation once the heap has grown.
//!
//! Two lanes, one order. Most events are a regular stream: the next probe `delay` after a
//! verdict, its verdict one round trip after that, a route update `route_update_delay` after a
//! status change. Those are pushed with [`EventQueue::push_in_order`] and, when not before the
//! last one there, appended to a FIFO lane: O(1) however many probers run, which keeps the cost
//! per event flat from 1 to 256 LB nodes. Client connections' ends, millions of them far ahead
//! at scattered times, go to a timing wheel ([`EventQueue::push_wheel`]): an append per push and
//! one sort per bucket when it comes due, instead of a walk down a heap of millions that misses
//! the cache at every level. Everything else (fault edges, arrivals, drain deadlines, QUIC
//! timers, and the other lanes' out-of-range events) goes to a 4-ary min-heap. A pop takes the
//! earliest of the three heads by `(time, seq)`, so the order is exactly the one a single heap
//! would give.
//!
//! Why not `std::collections::BinaryHeap`: a profile showed most of the engine's time in
//! store-forwarding stalls, entries moved with small stores and read back at once with wide
//! loads. Here an entry is four words (time, seq, and the event packed in two words by the
//! engine, see [`Words`]); the keys compare as one 128-bit number (no branch per field); the
//! heap is sifted with the hole technique (the moving entry written once); and the entries a
//! push may just have written (the root, the last) are read back one word at a time. Four
//! children per node halve the depth of a binary heap.

use crate::time::SimTime;

/// What the queue stores of an event: two machine words. The queue reads and writes them one
/// word at a time, so a load is always forwarded from exactly one earlier store.
pub trait Words: Copy {
    fn to_words(self) -> [u64; 2];
    fn from_words(w: [u64; 2]) -> Self;
}

impl Words for u64 {
    #[inline(always)]
    fn to_words(self) -> [u64; 2] {
        [self, 0]
    }
    #[inline(always)]
    fn from_words(w: [u64; 2]) -> Self {
        w[0]
    }
}

/// One heap entry: the `(time, seq)` order key and the event's words, inline.
#[derive(Debug, Clone, Copy)]
struct Entry {
    time: u64,
    seq: u64,
    w: [u64; 2],
}

impl Entry {
    /// `(time, seq)` as one number, so that comparing two keys is a branch-free subtract
    /// instead of two dependent compare-and-branch steps.
    #[inline(always)]
    fn key(&self) -> u128 {
        (u128::from(self.time) << 64) | u128::from(self.seq)
    }

    #[inline(always)]
    fn before(&self, other: &Entry) -> bool {
        self.key() < other.key()
    }
}

/// Children per heap node.
const ARITY: usize = 4;

/// Width of a wheel bucket: 2^24 ns, about 16.8 ms.
const WHEEL_SHIFT: u32 = 24;
/// Buckets in the wheel: one turn is about 70 s, past most connections' lifetimes; later ends
/// go to the heap.
const WHEEL_BUCKETS: u64 = 4096;

/// A min-queue of events in `(time, seq)` order.
pub struct EventQueue<E> {
    /// Entries pushed in `(time, seq)` order: each at or after the one pushed before it. Most
    /// events are scheduled a fixed span after the current instant (the next probe, `delay`
    /// after a verdict; its verdict one round trip after that), so they arrive in order and
    /// cost O(1) here, however many probers there are; the others go to the heap.
    fifo: std::collections::VecDeque<Entry>,
    /// The time of the last entry pushed to `fifo` (at or after every entry in it), kept apart
    /// so that the in-order test reads a word written as a word, not the entry the previous push
    /// may still be storing.
    fifo_last: u64,
    heap: Vec<Entry>,
    /// The timing wheel of [`EventQueue::push_wheel`]: bucket `b % WHEEL_BUCKETS` holds the
    /// entries of times in `[b << WHEEL_SHIFT, (b + 1) << WHEEL_SHIFT)`, unsorted, for buckets
    /// after `wheel_cur` and less than one turn ahead.
    wheel: Vec<Vec<Entry>>,
    /// The bucket being consumed: `active`, sorted latest first (popped from the back).
    wheel_cur: u64,
    active: Vec<Entry>,
    /// Entries in `wheel` (not counting `active`).
    wheel_count: usize,
    next_seq: u64,
    _event: std::marker::PhantomData<E>,
}

impl<E: Words> Default for EventQueue<E> {
    fn default() -> Self {
        Self::with_capacity(64)
    }
}

impl<E: Words> EventQueue<E> {
    pub fn with_capacity(capacity: usize) -> Self {
        EventQueue {
            fifo: std::collections::VecDeque::with_capacity(capacity),
            fifo_last: 0,
            heap: Vec::with_capacity(capacity),
            wheel: Vec::new(),
            wheel_cur: 0,
            active: Vec::new(),
            wheel_count: 0,
            next_seq: 0,
            _event: std::marker::PhantomData,
        }
    }

    /// Empties the queue and restarts its sequence, keeping its memory (for the next run).
    pub fn clear(&mut self) {
        self.fifo.clear();
        self.fifo_last = 0;
        self.heap.clear();
        self.wheel.iter_mut().for_each(Vec::clear);
        self.wheel_cur = 0;
        self.active.clear();
        self.wheel_count = 0;
        self.next_seq = 0;
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.fifo.len() + self.heap.len() + self.active.len() + self.wheel_count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `event` at `time`, one of many events far ahead at scattered times (client
    /// connections' ends): in a timing wheel, where a push is an append to its bucket and each
    /// bucket is sorted once, when it comes due, instead of every entry travelling the depth of
    /// a heap of millions. Times in the bucket being consumed or a turn or more ahead go to the
    /// heap. Ties run in scheduling order, as everywhere.
    #[inline]
    pub fn push_wheel<T>(&mut self, time: SimTime, event: T)
    where
        E: From<T>,
    {
        let bucket = time.0 >> WHEEL_SHIFT;
        if bucket <= self.wheel_cur || bucket >= self.wheel_cur + WHEEL_BUCKETS {
            self.push(time, event);
            return;
        }
        if self.wheel.is_empty() {
            self.wheel = (0..WHEEL_BUCKETS).map(|_| Vec::new()).collect();
        }
        let entry = Entry {
            time: time.0,
            seq: self.next_seq,
            w: E::from(event).to_words(),
        };
        self.next_seq += 1;
        self.wheel[(bucket % WHEEL_BUCKETS) as usize].push(entry);
        self.wheel_count += 1;
    }

    /// Moves the wheel on to its next non-empty bucket and sorts it into `active`.
    #[cold]
    fn refill(&mut self) {
        debug_assert!(self.active.is_empty() && self.wheel_count > 0);
        loop {
            self.wheel_cur += 1;
            let i = (self.wheel_cur % WHEEL_BUCKETS) as usize;
            if !self.wheel[i].is_empty() {
                // The emptied `active` is freed, not handed back to the bucket for its next
                // turn: a bucket fills over a whole turn and is full only when it comes due, so
                // buckets that each kept their largest size would hold far more than the
                // entries waiting in them (in `benches/traffic.rs` at 100,000 connections a
                // second, freeing them cut the run's peak heap from 414 MiB to 249 MiB). Grown
                // afresh, a bucket holds at most twice its entries.
                self.active = std::mem::take(&mut self.wheel[i]);
                self.wheel_count -= self.active.len();
                self.active
                    .sort_unstable_by_key(|e| std::cmp::Reverse(e.key()));
                return;
            }
        }
    }

    /// Schedules `event` at `time`, an event of a regular stream (the next probe, a verdict):
    /// in the in-order lane when it is not before the last entry there, else in the heap. Ties
    /// run in scheduling order either way.
    // Always inlined: the caller then encodes the event straight into the entry's words.
    #[inline(always)]
    pub fn push_in_order<T>(&mut self, time: SimTime, event: T)
    where
        E: From<T>,
    {
        // In order after the last in-order entry (its seq is smaller, so equal times are in
        // order too): O(1), and popped in turn.
        if self.fifo_last <= time.0 {
            let entry = Entry {
                time: time.0,
                seq: self.next_seq,
                w: E::from(event).to_words(),
            };
            self.next_seq += 1;
            self.fifo_last = entry.time;
            self.fifo.push_back(entry);
            return;
        }
        self.push(time, event);
    }

    /// Schedules `event` at `time` in the heap (events far ahead, or at irregular times, which
    /// would hold the in-order lane back); ties run in scheduling order.
    #[inline(always)]
    pub fn push<T>(&mut self, time: SimTime, event: T)
    where
        E: From<T>,
    {
        let entry = Entry {
            time: time.0,
            seq: self.next_seq,
            w: E::from(event).to_words(),
        };
        self.next_seq += 1;
        // Sift up with a hole: parents move down one write each, the entry is written once.
        let mut i = self.heap.len();
        self.heap.push(entry);
        while i > 0 {
            let parent = (i - 1) / ARITY;
            let p = self.heap[parent];
            if !entry.before(&p) {
                break;
            }
            self.heap[i] = p;
            i = parent;
        }
        self.heap[i] = entry;
    }

    /// Rewrites in place the earliest waiting event that `matches` picks to `with`, and returns
    /// what it was, with its time; `None` when none matches. The entry keeps its time and
    /// sequence number, so the order of the queue is unchanged: a cancellation for events that
    /// carry no generation (the engine rewrites into a no-op). A scan of the in-order lane, the
    /// heap and the wheel bucket being consumed, not of the wheel's later buckets (they hold
    /// only connection ends): for rare events only.
    #[cold]
    #[inline(never)]
    pub fn replace_first(
        &mut self,
        mut matches: impl FnMut(SimTime, E) -> bool,
        with: E,
    ) -> Option<(SimTime, E)> {
        let best = self
            .fifo
            .iter_mut()
            .chain(self.heap.iter_mut())
            .chain(self.active.iter_mut())
            .filter(|e| matches(SimTime(e.time), E::from_words(e.w)))
            .min_by_key(|e| e.key())?;
        let was = E::from_words(best.w);
        best.w = with.to_words();
        Some((SimTime(best.time), was))
    }

    /// Entry `i`, read one word at a time. The entries read here (the root and the last) are
    /// often the ones a push just wrote word by word; a wider load spanning two of those stores
    /// could not be forwarded from them and would wait for them to reach the cache.
    #[inline(always)]
    fn load(&self, i: usize) -> Entry {
        Self::read_words(&self.heap[i])
    }

    /// An entry read one word at a time (see [`EventQueue::load`]).
    #[inline(always)]
    fn read_words(e: &Entry) -> Entry {
        // SAFETY: `e` is a valid, aligned reference; volatile only keeps the loads word-sized.
        unsafe {
            Entry {
                time: std::ptr::read_volatile(&e.time),
                seq: std::ptr::read_volatile(&e.seq),
                w: [
                    std::ptr::read_volatile(&e.w[0]),
                    std::ptr::read_volatile(&e.w[1]),
                ],
            }
        }
    }

    /// The earliest event, if any: the earlier of the in-order queue's front and the heap's
    /// root.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.active.is_empty() && self.wheel_count > 0 {
            self.refill();
        }
        if let Some(&w) = self.active.last() {
            let fifo_first = self.fifo.front().is_some_and(|f| f.before(&w));
            let heap_first = self.heap.first().is_some_and(|h| h.before(&w));
            if !fifo_first && !heap_first {
                self.active.pop();
                return Some((SimTime(w.time), E::from_words(w.w)));
            }
        }
        let n = self.heap.len();
        if let Some(f) = self.fifo.front() {
            // With few probers the front is the entry a push wrote one event ago: read it word
            // by word too.
            let f = Self::read_words(f);
            if n == 0 || f.before(&self.heap[0]) {
                self.fifo.pop_front();
                return Some((SimTime(f.time), E::from_words(f.w)));
            }
        } else if n == 0 {
            return None;
        }
        let top = self.load(0);
        let last = self.load(n - 1);
        self.heap.truncate(n - 1);
        let n = n - 1;
        if n > 0 {
            // Sift the last entry down from the root, moving the smallest child up each level.
            let mut i = 0;
            loop {
                let first = ARITY * i + 1;
                if first >= n {
                    break;
                }
                let end = (first + ARITY).min(n);
                let mut m = first;
                for c in first + 1..end {
                    if self.heap[c].before(&self.heap[m]) {
                        m = c;
                    }
                }
                if !self.heap[m].before(&last) {
                    break;
                }
                self.heap[i] = self.heap[m];
                i = m;
            }
            self.heap[i] = last;
        }
        Some((SimTime(top.time), E::from_words(top.w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_fifo_order() {
        let mut q = EventQueue::<u64>::default();
        q.push(SimTime(5), 51u64);
        q.push(SimTime(1), 1u64);
        q.push_in_order(SimTime(5), 52u64);
        q.push(SimTime(3), 3u64);
        q.push_in_order(SimTime(5), 53u64);
        let order: Vec<u64> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, [1, 3, 51, 52, 53]);
    }

    #[test]
    fn replace_first_rewrites_the_earliest_match_in_place() {
        let mut q = EventQueue::<u64>::default();
        q.push(SimTime(5), 51u64);
        q.push_in_order(SimTime(2), 21u64);
        q.push(SimTime(1), 11u64);
        q.push_in_order(SimTime(7), 71u64);
        // The earliest event from time 2 on with odd tens: 51 (in the heap), not 71 (in order);
        // 11 is too early and 21's tens are even.
        let got = q.replace_first(|t, e| t.0 >= 2 && (e / 10) % 2 == 1, 0);
        assert_eq!(got, Some((SimTime(5), 51)));
        assert_eq!(q.replace_first(|_, e| e == 99, 0), None);
        let order: Vec<(u64, u64)> = std::iter::from_fn(|| q.pop())
            .map(|(t, e)| (t.0, e))
            .collect();
        assert_eq!(order, [(1, 11), (2, 21), (5, 0), (7, 71)]);
    }

    #[test]
    fn matches_a_sorted_reference_under_random_pushes_and_pops() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut q = EventQueue::<u64>::default();
        let mut reference: Vec<(u64, u64)> = Vec::new();
        let mut seq = 0;
        for _ in 0..20_000 {
            if rng.gen_bool(0.55) {
                // Times over a few wheel buckets and past a whole turn.
                let t = if rng.gen_bool(0.5) {
                    rng.gen_range(0..200u64)
                } else {
                    rng.gen_range(0..(WHEEL_BUCKETS + 8) << WHEEL_SHIFT)
                };
                match rng.gen_range(0..3) {
                    0 => q.push_in_order(SimTime(t), seq),
                    1 => q.push(SimTime(t), seq),
                    _ => q.push_wheel(SimTime(t), seq),
                }
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
