//! The queue between a watch and its client, bounded by events and by bytes.
//!
//! The watch's producer drains the store's events into it as they come, so a client that stops
//! reading holds at most the queue's bound: past it the queue is emptied and closed (the client
//! resumes from the last resourceVersion it saw, or gets 410 Gone, as with kube-apiserver's
//! cacher closing an unresponsive watcher). Events the producer can pace itself on (initial
//! lists, history replays) wait for room instead. Neither tokio's channels nor a semaphore can
//! be emptied from the sending side, which is why this is a queue of its own.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::watch::WatchEvent;

/// How much one watch may have queued for its client.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub events: usize,
    pub bytes: usize,
}

/// Watches served over HTTP: a client that stops reading costs at most this.
pub const CLIENT_LIMITS: QueueLimits = QueueLimits {
    events: 100_000,
    bytes: 32 << 20,
};

/// Watches of in-process components, which keep up unless the whole process falls behind.
pub const IN_PROCESS_LIMITS: QueueLimits = QueueLimits {
    events: 200_000,
    bytes: 1 << 30,
};

#[derive(Default)]
struct State {
    events: VecDeque<WatchEvent>,
    bytes: usize,
    /// The producer is done (its sender dropped) or the queue overflowed.
    closed: bool,
    receiver_gone: bool,
}

struct Shared {
    state: Mutex<State>,
    limits: QueueLimits,
    readable: Notify,
    writable: Notify,
}

/// The producer's end.
pub struct Sender {
    shared: Arc<Shared>,
}

/// The client's end: events in order, then `None` once the watch ends.
pub struct Receiver {
    shared: Arc<Shared>,
}

/// Why an event was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The client is gone.
    Gone,
    /// The client fell behind the queue's bound; the queue is now empty and closed.
    Overflow,
}

pub fn queue(limits: QueueLimits) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        limits,
        readable: Notify::new(),
        writable: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

fn size(ev: &WatchEvent) -> usize {
    ev.object.len()
}

impl Shared {
    fn has_room(&self, st: &State, ev: &WatchEvent) -> bool {
        st.events.is_empty()
            || (st.events.len() < self.limits.events && st.bytes + size(ev) <= self.limits.bytes)
    }
}

impl Sender {
    /// Queues an event now. A client too far behind overflows the queue, which drops what it
    /// holds and ends the watch.
    pub fn try_send(&self, ev: WatchEvent) -> Result<(), SendError> {
        let mut st = self.shared.state.lock().unwrap();
        if st.receiver_gone {
            return Err(SendError::Gone);
        }
        if st.closed {
            return Err(SendError::Overflow);
        }
        if !self.shared.has_room(&st, &ev) {
            st.events = VecDeque::new();
            st.bytes = 0;
            st.closed = true;
            drop(st);
            self.shared.readable.notify_one();
            return Err(SendError::Overflow);
        }
        st.bytes += size(&ev);
        st.events.push_back(ev);
        drop(st);
        self.shared.readable.notify_one();
        Ok(())
    }

    /// Queues an event once there is room for it.
    pub async fn send(&self, ev: WatchEvent) -> Result<(), SendError> {
        loop {
            let room = self.shared.writable.notified();
            let fits = {
                let st = self.shared.state.lock().unwrap();
                if st.receiver_gone {
                    return Err(SendError::Gone);
                }
                if st.closed {
                    return Err(SendError::Overflow);
                }
                self.shared.has_room(&st, &ev)
            };
            if fits {
                return self.try_send(ev);
            }
            room.await;
        }
    }

    /// Completes when the client has gone away.
    pub async fn closed(&self) {
        loop {
            let changed = self.shared.writable.notified();
            if self.shared.state.lock().unwrap().receiver_gone {
                return;
            }
            changed.await;
        }
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.state.lock().unwrap().bytes
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap().closed = true;
        self.shared.readable.notify_one();
    }
}

impl Receiver {
    /// The next event, or `None` when the watch has ended.
    pub async fn recv(&mut self) -> Option<WatchEvent> {
        loop {
            let ready = self.shared.readable.notified();
            let (next, closed) = {
                let mut st = self.shared.state.lock().unwrap();
                let next = st.events.pop_front();
                if let Some(ev) = &next {
                    st.bytes -= size(ev);
                }
                (next, st.closed)
            };
            if let Some(ev) = next {
                self.shared.writable.notify_one();
                return Some(ev);
            }
            if closed {
                return None;
            }
            ready.await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock().unwrap();
        st.receiver_gone = true;
        st.events = VecDeque::new();
        st.bytes = 0;
        drop(st);
        self.shared.writable.notify_waiters();
        self.shared.writable.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn event(bytes: usize) -> WatchEvent {
        WatchEvent {
            kind: "ADDED",
            object: Bytes::from(vec![b'x'; bytes]),
            decoded: None,
        }
    }

    #[tokio::test]
    async fn a_client_past_the_byte_bound_is_dropped_and_its_queue_freed() {
        let (tx, mut rx) = queue(QueueLimits {
            events: 1000,
            bytes: 1000,
        });
        for _ in 0..10 {
            tx.try_send(event(100)).unwrap();
        }
        assert_eq!(tx.queued_bytes(), 1000);
        assert_eq!(tx.try_send(event(100)), Err(SendError::Overflow));
        assert_eq!(tx.queued_bytes(), 0, "what was queued is freed at once");
        assert!(rx.recv().await.is_none(), "the watch ends");
    }

    #[tokio::test]
    async fn paced_sends_wait_for_room_instead_of_overflowing() {
        let (tx, mut rx) = queue(QueueLimits {
            events: 2,
            bytes: 1 << 20,
        });
        let producer = tokio::spawn(async move {
            for _ in 0..10 {
                tx.send(event(10)).await.unwrap();
            }
        });
        let mut got = 0;
        while tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("events keep coming")
            .is_some()
        {
            got += 1;
        }
        producer.await.unwrap();
        assert_eq!(got, 10);
    }

    #[tokio::test]
    async fn one_event_larger_than_the_bound_still_passes_an_empty_queue() {
        let (tx, mut rx) = queue(QueueLimits {
            events: 10,
            bytes: 10,
        });
        tx.try_send(event(50)).unwrap();
        assert_eq!(rx.recv().await.unwrap().object.len(), 50);
    }

    #[tokio::test]
    async fn the_producer_learns_when_the_client_leaves() {
        let (tx, rx) = queue(CLIENT_LIMITS);
        let waiter = tokio::spawn(async move { tx.closed().await });
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("noticed")
            .unwrap();
    }
}
