//! One timer heap for many delayed jobs.
//!
//! Stage delays and lease renewals are entries in a binary heap ordered by deadline, driven by a
//! single task, instead of one sleeping task per object. Cancelling is O(1): the job is removed
//! from the map and its heap entry is skipped when it surfaces.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::time::Instant;

struct Inner<T> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    jobs: HashMap<u64, T>,
    next_seq: u64,
}

/// A delay queue: push jobs with a deadline, take them when due.
pub struct DelayQueue<T> {
    inner: Mutex<Inner<T>>,
    notify: Notify,
}

impl<T> Default for DelayQueue<T> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                heap: BinaryHeap::new(),
                jobs: HashMap::new(),
                next_seq: 1,
            }),
            notify: Notify::new(),
        }
    }
}

impl<T> DelayQueue<T> {
    /// Schedules `job` at `at`; the returned id cancels it.
    pub fn push(&self, at: Instant, job: T) -> u64 {
        let mut inner = self.inner.lock().expect("queue lock");
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let earliest = inner.heap.peek().map(|Reverse((t, _))| *t);
        inner.heap.push(Reverse((at, seq)));
        inner.jobs.insert(seq, job);
        drop(inner);
        if earliest.is_none_or(|e| at < e) {
            self.notify.notify_one();
        }
        seq
    }

    /// Cancels a job that has not been taken yet.
    pub fn cancel(&self, seq: u64) -> Option<T> {
        self.inner.lock().expect("queue lock").jobs.remove(&seq)
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("queue lock").jobs.len()
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes up to `max` due jobs, or returns the next deadline when none is due.
    fn take_due(&self, max: usize) -> (Vec<T>, Option<Instant>) {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("queue lock");
        let mut out = Vec::new();
        while out.len() < max {
            let Some(Reverse((at, seq))) = inner.heap.peek().copied() else {
                break;
            };
            if !inner.jobs.contains_key(&seq) {
                inner.heap.pop();
                continue;
            }
            if at > now {
                return (out, Some(at));
            }
            inner.heap.pop();
            if let Some(job) = inner.jobs.remove(&seq) {
                out.push(job);
            }
        }
        let next = inner.heap.peek().map(|Reverse((t, _))| *t);
        (out, next)
    }

    /// Waits for the next batch of due jobs (at most `max`).
    pub async fn next_batch(&self, max: usize) -> Vec<T> {
        loop {
            let notified = self.notify.notified();
            let (due, next) = self.take_due(max);
            if !due.is_empty() {
                return due;
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn orders_and_cancels() {
        let q = DelayQueue::default();
        let now = Instant::now();
        q.push(now + Duration::from_millis(30), "late");
        let c = q.push(now + Duration::from_millis(10), "cancelled");
        q.push(now + Duration::from_millis(20), "early");
        assert_eq!(q.cancel(c), Some("cancelled"));
        assert_eq!(q.next_batch(10).await, vec!["early"]);
        assert_eq!(q.next_batch(10).await, vec!["late"]);
        assert!(q.is_empty());
        assert!(now.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test]
    async fn wakes_for_an_earlier_job() {
        let q = std::sync::Arc::new(DelayQueue::default());
        q.push(Instant::now() + Duration::from_secs(60), 1);
        let q2 = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            q2.push(Instant::now(), 2);
        });
        let got = tokio::time::timeout(Duration::from_secs(5), q.next_batch(10))
            .await
            .unwrap();
        assert_eq!(got, vec![2]);
    }
}
