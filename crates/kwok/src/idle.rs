//! Returning memory when the process goes quiet: the allocator keeps freed pages for reuse and
//! hands them back to the system only while it is allocating, so a cluster that stops working
//! (after start-up, or after a burst of requests) would keep its peak. A task watches the
//! process's CPU time and, on each change from busy to idle, asks the allocator to give back
//! everything it holds unused. Under load nothing is done.

use std::time::Duration;

/// How often the process's CPU time is looked at.
const PERIOD: Duration = Duration::from_secs(2);

/// At most this share of one core over a period counts as idle (an idle embedded cluster uses
/// well under 1 % for its timers).
const IDLE_SHARE: f64 = 0.02;

/// Starts the task on the current runtime.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut ticks = tokio::time::interval(PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut detector = Detector::new(PERIOD, IDLE_SHARE);
        loop {
            ticks.tick().await;
            if detector.observe(process_cpu()) {
                release_free_memory();
            }
        }
    });
}

/// Decides from successive CPU-time readings when to trim: once per change from busy to idle.
/// Start-up counts as busy, so the first quiet period after it trims.
struct Detector {
    /// CPU time over one period below which the period was idle.
    threshold: Duration,
    last: Option<Duration>,
    busy_since_trim: bool,
}

impl Detector {
    fn new(period: Duration, idle_share: f64) -> Self {
        Detector {
            threshold: period.mul_f64(idle_share),
            last: None,
            busy_since_trim: true,
        }
    }

    /// Takes the process's CPU time now; true when memory should be released.
    fn observe(&mut self, cpu: Duration) -> bool {
        let Some(last) = self.last.replace(cpu) else {
            return false;
        };
        if cpu.saturating_sub(last) >= self.threshold {
            self.busy_since_trim = true;
            return false;
        }
        std::mem::take(&mut self.busy_since_trim)
    }
}

/// CPU time (user and system) of the whole process so far.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; the clock id is a constant the kernel knows.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

#[cfg(not(feature = "system-allocator"))]
fn release_free_memory() {
    unsafe extern "C" {
        /// mimalloc's collection: frees this thread's retired pages and, with `force`, purges
        /// (returns to the system) every unused part of the process's arenas at once instead of
        /// after the purge delay, which only runs when something allocates.
        fn mi_collect(force: bool);
    }
    // SAFETY: mimalloc is the global allocator (see main.rs), so its library is linked; the
    // call takes no pointers and may be made from any thread at any time.
    unsafe { mi_collect(true) }
}

#[cfg(feature = "system-allocator")]
fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: glibc's malloc_trim only walks its own arenas; no pointers are passed.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn trims_once_per_change_from_busy_to_idle() {
        let mut d = Detector::new(Duration::from_secs(2), 0.02);
        // The first reading only sets the baseline; start-up counts as busy.
        assert!(!d.observe(ms(900)));
        // The first quiet period trims, the next ones do not.
        assert!(d.observe(ms(910)));
        assert!(!d.observe(ms(920)));
        assert!(!d.observe(ms(925)));
        // Busy periods never trim; the quiet one after them does.
        assert!(!d.observe(ms(1900)));
        assert!(!d.observe(ms(3000)));
        assert!(d.observe(ms(3001)));
        assert!(!d.observe(ms(3002)));
    }

    #[test]
    fn a_clock_that_goes_back_counts_as_idle() {
        let mut d = Detector::new(Duration::from_secs(2), 0.02);
        assert!(!d.observe(ms(500)));
        assert!(d.observe(ms(0)));
    }

    #[test]
    fn process_cpu_time_advances_with_work() {
        let before = process_cpu();
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < ms(30) {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(7));
        }
        std::hint::black_box(x);
        assert!(process_cpu() > before);
    }

    #[test]
    fn releasing_free_memory_is_safe_at_any_time() {
        let kept: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 << 10]).collect();
        drop(kept);
        release_free_memory();
        let again = vec![1u8; 1 << 20];
        assert_eq!(again.iter().map(|&b| b as usize).sum::<usize>(), 1 << 20);
    }
}
