//! A bounded FIFO of samples waiting to be sent: when full, the oldest sample goes.

use std::collections::VecDeque;

/// Holds at most `capacity` items; pushing onto a full buffer drops the oldest. Dropping
/// old data rather than refusing new data keeps the most recent picture of the host, which
/// is what a dashboard and alerting want after an outage.
#[derive(Debug)]
pub struct RingBuffer<T> {
    items: VecDeque<T>,
    capacity: usize,
    dropped: u64,
}

impl<T> RingBuffer<T> {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            // Grown on demand: a 86 400-sample buffer costs nothing while the server is up.
            items: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items dropped for lack of room since the buffer was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Appends `item`; returns true if the oldest item had to go to make room.
    pub fn push(&mut self, item: T) -> bool {
        let full = self.items.len() >= self.capacity;
        if full {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
        full
    }

    /// Takes up to `n` of the oldest items, oldest first.
    pub fn take_oldest(&mut self, n: usize) -> Vec<T> {
        let n = n.min(self.items.len());
        self.items.drain(..n).collect()
    }

    /// Puts items taken earlier back in front, in their order (a batch that has to be sent
    /// again in smaller pieces). If that overfills the buffer, the oldest go.
    pub fn put_back(&mut self, items: Vec<T>) {
        for item in items.into_iter().rev() {
            self.items.push_front(item);
        }
        while self.items.len() > self.capacity {
            self.items.pop_front();
            self.dropped += 1;
        }
    }

    /// Everything, oldest first, leaving the buffer empty.
    pub fn drain_all(&mut self) -> Vec<T> {
        self.items.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_when_full() {
        let mut b = RingBuffer::new(3);
        assert!(b.is_empty());
        for i in 0..3 {
            assert!(!b.push(i));
        }
        assert!(b.push(3));
        assert!(b.push(4));
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped(), 2);
        assert_eq!(b.drain_all(), vec![2, 3, 4]);
        assert!(b.is_empty());
    }

    #[test]
    fn never_exceeds_capacity() {
        let mut b = RingBuffer::new(100);
        for i in 0..10_000 {
            b.push(i);
            assert!(b.len() <= 100);
        }
        assert_eq!(b.dropped(), 9_900);
        assert_eq!(b.take_oldest(1), vec![9_900]);
    }

    #[test]
    fn takes_oldest_first_and_puts_back_in_order() {
        let mut b = RingBuffer::new(5);
        for i in 0..5 {
            b.push(i);
        }
        let batch = b.take_oldest(3);
        assert_eq!(batch, vec![0, 1, 2]);
        b.push(5);
        b.put_back(batch);
        // 0..=5 is six items for five places: the oldest goes.
        assert_eq!(b.dropped(), 1);
        assert_eq!(b.take_oldest(10), vec![1, 2, 3, 4, 5]);
        assert_eq!(b.take_oldest(10), Vec::<i32>::new());
    }

    #[test]
    fn zero_capacity_means_one() {
        let mut b = RingBuffer::new(0);
        assert_eq!(b.capacity(), 1);
        b.push('a');
        b.push('b');
        assert_eq!(b.drain_all(), vec!['b']);
    }
}
