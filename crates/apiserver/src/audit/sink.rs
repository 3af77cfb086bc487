//! Where audit events go: one JSON line each, written by a thread of its own from a bounded
//! queue, so requests never wait for the disk. When the queue is full the event is dropped and
//! counted rather than slowing the request down.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Events that may wait for the writer.
const QUEUE: usize = 64 * 1024;

pub struct Sink {
    tx: SyncSender<Vec<u8>>,
    dropped: AtomicU64,
}

impl Sink {
    /// Opens `path` for appending (`-` is stdout) and starts its writer.
    pub fn open(path: &str) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stdout())
        } else {
            let path = std::path::Path::new(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        };
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_all(rx, out))?;
        Ok(Self {
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues one event (a JSON object without its newline).
    pub fn send(&self, line: Vec<u8>) {
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, "audit log queue full; events dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Events dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Writes lines as they come, flushing whenever the queue runs empty.
fn write_all(rx: Receiver<Vec<u8>>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, out);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(line) = next {
            if out
                .write_all(&line)
                .and_then(|_| out.write_all(b"\n"))
                .is_err()
            {
                tracing::error!("cannot write the audit log");
            }
            next = rx.try_recv().ok();
        }
        let _ = out.flush();
    }
}
