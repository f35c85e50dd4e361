//! Queries in flight in the order they were sent, for expiry and eviction: the oldest
//! is always at the front. A query that leaves early (answered, evicted) is only marked
//! gone and dropped when it reaches the front, or at the next compaction.
//!
//! The matcher kept this order in a `BTreeMap` keyed by send time: an insert and a
//! removal per query, a twentieth of dnsdoc's CPU at saturation. Here both are O(1).
//! Queries arrive almost in send order (records from two CPUs can swap by
//! microseconds), so a query is at most that much late to expire.

use std::collections::VecDeque;

/// A query's place in [`Arrivals`]; `seq` is unique for the life of the matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub seq: u64,
    slot: u32,
}

#[derive(Debug, Clone)]
struct Entry<K> {
    ts_ns: u64,
    ticket: Ticket,
    key: K,
}

/// The arrival queue. Memory follows the queries in flight: gone entries are at most
/// as many as live ones (plus a constant) after a compaction.
#[derive(Debug, Clone)]
pub struct Arrivals<K> {
    queue: VecDeque<Entry<K>>,
    /// The `seq` of the query holding each slot (0: free).
    live: Vec<u64>,
    free: Vec<u32>,
    live_count: usize,
    next_seq: u64,
}

impl<K> Default for Arrivals<K> {
    fn default() -> Self {
        Arrivals {
            queue: VecDeque::new(),
            live: Vec::new(),
            free: Vec::new(),
            live_count: 0,
            next_seq: 1,
        }
    }
}

/// Gone entries tolerated beyond the live ones before the queue is compacted.
const SLACK: usize = 64;

impl<K: Copy> Arrivals<K> {
    /// Queues a query sent at `ts_ns`.
    pub fn push(&mut self, ts_ns: u64, key: K) -> Ticket {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.live.push(0);
                (self.live.len() - 1) as u32
            }
        };
        self.live[slot as usize] = seq;
        self.live_count += 1;
        let ticket = Ticket { seq, slot };
        self.queue.push_back(Entry { ts_ns, ticket, key });
        if self.queue.len() > 2 * self.live_count + SLACK {
            let live = &self.live;
            self.queue
                .retain(|e| live[e.ticket.slot as usize] == e.ticket.seq);
        }
        ticket
    }

    /// Marks a query gone (answered or evicted by the caller).
    pub fn release(&mut self, t: Ticket) {
        let slot = &mut self.live[t.slot as usize];
        if *slot == t.seq {
            *slot = 0;
            self.free.push(t.slot);
            self.live_count -= 1;
        }
        self.drop_gone_front();
    }

    /// The oldest query still in flight, taken out, if `due(its send time)`.
    pub fn pop_due(&mut self, due: impl Fn(u64) -> bool) -> Option<(Ticket, K)> {
        self.drop_gone_front();
        let e = self.queue.front()?;
        if !due(e.ts_ns) {
            return None;
        }
        let e = self.queue.pop_front()?;
        self.release(e.ticket);
        Some((e.ticket, e.key))
    }

    /// The oldest query still in flight, taken out.
    pub fn pop_oldest(&mut self) -> Option<(Ticket, K)> {
        self.pop_due(|_| true)
    }

    /// Entries held, gone ones included (what the queue costs in memory).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.queue.len()
    }

    fn drop_gone_front(&mut self) {
        while let Some(e) = self.queue.front() {
            if self.live[e.ticket.slot as usize] == e.ticket.seq {
                break;
            }
            self.queue.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_in_flight_comes_out_first_and_gone_ones_never() {
        let mut a = Arrivals::default();
        let t1 = a.push(10, 'a');
        let t2 = a.push(20, 'b');
        let _t3 = a.push(30, 'c');
        a.release(t2);
        assert_eq!(a.pop_due(|ts| ts < 15), Some((t1, 'a')));
        assert_eq!(a.pop_due(|ts| ts < 15), None, "c is not due, b is gone");
        assert_eq!(a.pop_oldest().map(|(_, k)| k), Some('c'));
        assert_eq!((a.pop_oldest(), a.held()), (None, 0));
    }

    #[test]
    fn gone_entries_behind_a_long_wait_are_compacted() {
        let mut a = Arrivals::default();
        a.push(0, 0u32); // never answered: stays at the front
        for i in 1..100_000u32 {
            let t = a.push(u64::from(i), i);
            a.release(t);
        }
        assert!(a.held() <= 2 + SLACK + 1, "{}", a.held());
        // Slots are reused: memory follows what is in flight.
        assert!(a.live.len() <= 2, "{}", a.live.len());
    }
}
