//! Fault injection for tests. In non-test builds `Faults` is an empty type
//! whose checks compile to nothing.

/// An operation that tests can make fail.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FaultOp {
    /// Creating a new segment file.
    Create,
    /// Writing a group to the active segment (the writer leaves a torn record).
    Write,
    /// Fsyncing the active segment after a group write.
    Sync,
}

#[cfg(not(test))]
#[derive(Debug, Default)]
pub(crate) struct Faults {}

#[cfg(not(test))]
impl Faults {
    #[inline(always)]
    pub(crate) fn check(&self, _op: FaultOp) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) use test_faults::Faults;

#[cfg(test)]
mod test_faults {
    use super::FaultOp;
    use std::io;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::time::Duration;

    /// Counters of upcoming operations to fail, plus an artificial fsync delay.
    #[derive(Debug, Default)]
    pub(crate) struct Faults {
        pub fail_creates: AtomicU32,
        pub fail_writes: AtomicU32,
        pub fail_syncs: AtomicU32,
        pub sync_delay_us: AtomicU64,
    }

    impl Faults {
        pub(crate) fn check(&self, op: FaultOp) -> io::Result<()> {
            let counter = match op {
                FaultOp::Create => &self.fail_creates,
                FaultOp::Write => &self.fail_writes,
                FaultOp::Sync => {
                    let delay = self.sync_delay_us.load(Ordering::Relaxed);
                    if delay > 0 {
                        std::thread::sleep(Duration::from_micros(delay));
                    }
                    &self.fail_syncs
                }
            };
            let take =
                counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            match (take, op) {
                (Err(_), _) => Ok(()),
                (Ok(_), FaultOp::Sync) => Err(io::Error::other("injected fsync failure")),
                (Ok(_), _) => Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "injected: no space left on device",
                )),
            }
        }
    }
}
