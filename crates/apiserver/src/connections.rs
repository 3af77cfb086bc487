//! What a connection may cost before it has proved who it is: handshake and header-read
//! timeouts, and a bound on connections that are still in their TLS handshake or came without
//! a client certificate. Past the bound the oldest such connection is closed, so silent or
//! anonymous sockets cannot use up the process's file descriptors and lock everyone out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a client may take to send a request's headers, and so also how long an HTTP/1
/// connection may sit idle between requests (kube-apiserver's `ReadHeaderTimeout`).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);

/// Interval and timeout of HTTP/2 pings that find peers that went away without closing.
pub const HTTP2_KEEPALIVE: Duration = Duration::from_secs(30);

/// Connections that have not (yet) shown a client certificate, tracked oldest first.
pub struct Unverified {
    limit: usize,
    next_id: AtomicU64,
    open: Mutex<VecDeque<(u64, Arc<Notify>)>>,
}

/// One tracked connection. `evicted` completes when the connection must close to make room;
/// dropping the ticket stops tracking it.
pub struct Ticket {
    id: u64,
    evicted: Arc<Notify>,
    owner: Arc<Unverified>,
}

impl Unverified {
    /// A bound of a quarter of the open-file limit, at least 16 and at most 1024.
    pub fn for_open_file_limit() -> Arc<Self> {
        let files = open_file_limit().unwrap_or(1024);
        Self::with_limit((files / 4).clamp(16, 1024) as usize)
    }

    pub fn with_limit(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            next_id: AtomicU64::new(0),
            open: Mutex::new(VecDeque::new()),
        })
    }

    /// Starts tracking a connection, closing the oldest tracked one when the bound is reached.
    pub fn enter(self: &Arc<Self>) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = Arc::new(Notify::new());
        let mut open = self.open.lock().unwrap();
        while open.len() >= self.limit {
            let Some((_, oldest)) = open.pop_front() else {
                break;
            };
            oldest.notify_one();
        }
        open.push_back((id, evicted.clone()));
        Ticket {
            id,
            evicted,
            owner: self.clone(),
        }
    }

    /// Connections tracked now.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ticket {
    /// Completes when the connection has to make room for a newer one.
    pub async fn evicted(&self) {
        self.evicted.notified().await
    }
}

impl Ticket {
    /// Stops tracking the connection: it proved who it is (a token), so it is never evicted.
    pub fn release(&self) {
        let mut open = self.owner.open.lock().unwrap();
        if let Some(at) = open.iter().position(|(id, _)| *id == self.id) {
            open.remove(at);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.release();
    }
}

/// The soft limit on open files.
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// Raises the soft limit on open files to the hard limit, as Go programs do at start, so that
/// many clients and watches do not run out of descriptors at a default of 1,024.
pub fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_connection_makes_room() {
        let unverified = Unverified::with_limit(2);
        let first = unverified.enter();
        let second = unverified.enter();
        assert_eq!(unverified.len(), 2);
        let third = unverified.enter();
        assert_eq!(unverified.len(), 2);
        tokio::time::timeout(Duration::from_secs(1), first.evicted())
            .await
            .expect("the oldest is told to close");
        let still_open = tokio::time::timeout(Duration::from_millis(50), second.evicted()).await;
        assert!(still_open.is_err(), "the second stays");
        third.release();
        assert_eq!(unverified.len(), 1);
        let fourth = unverified.enter();
        let third_stays = tokio::time::timeout(Duration::from_millis(50), third.evicted()).await;
        assert!(third_stays.is_err(), "a released connection is not evicted");
        drop(fourth);
        drop(third);
        assert_eq!(unverified.len(), 1);
        drop(first);
        drop(second);
        assert!(unverified.is_empty());
    }
}
