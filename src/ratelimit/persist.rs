//! Coalescing a bucket owner's writes: every decision is answered from memory at once, and the
//! latest state reaches storage within [`PERSIST_DELAY_MS`], in one write per burst. An object
//! idles for seconds before it is evicted, so eviction never loses state; only a crash of the
//! object's host inside the delay can lose the last updates.

/// How long a changed state may wait before it is written.
pub const PERSIST_DELAY_MS: u32 = 50;

/// The state waiting to be written, and whether a flush is scheduled.
#[derive(Debug, Default)]
pub struct WriteCoalescer {
    pending: Option<String>,
    scheduled: bool,
}

impl WriteCoalescer {
    /// Records the latest state. True when the caller must schedule a flush (none is pending).
    pub fn offer(&mut self, state: String) -> bool {
        self.pending = Some(state);
        !std::mem::replace(&mut self.scheduled, true)
    }

    /// The state to write now — the latest offered — ending the scheduled flush.
    pub fn flush(&mut self) -> Option<String> {
        self.scheduled = false;
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_one_write_of_the_latest_state() {
        let mut w = WriteCoalescer::default();
        assert!(w.offer("1".into()), "the first change schedules a flush");
        assert!(!w.offer("2".into()));
        assert!(!w.offer("3".into()));
        assert_eq!(w.flush().as_deref(), Some("3"));
        assert_eq!(w.flush(), None, "nothing new, nothing written");
        assert!(
            w.offer("4".into()),
            "a change after the flush schedules the next one"
        );
    }
}
