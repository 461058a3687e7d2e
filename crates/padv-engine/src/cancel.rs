//! Cooperative cancellation of model work: a caller that gives up on a computation (the
//! server's `--timeout`) raises a [`CancelFlag`], and the engine stops at its next chunk
//! boundary (between decoder layers, output-projection chunks and batched requests) with
//! [`crate::logprobs::EngineError::Cancelled`], freeing its worker instead of finishing work
//! nobody will read.
//!
//! The flag is scoped to the thread that runs the work ([`with_cancel`]), so the engine's
//! signatures stay as they are and every caller that does not cancel pays one thread-local
//! read per chunk.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared "stop" switch. Clones observe the same switch.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag: work running under it stops at its next chunk boundary.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag was raised.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<CancelFlag>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread with `flag` as the cancellation flag the engine checks.
pub fn with_cancel<T>(flag: &CancelFlag, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<CancelFlag>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT.with(|c| c.borrow_mut().replace(flag.clone()));
    let _restore = Restore(prev);
    f()
}

/// Whether the work running on this thread was cancelled.
pub fn cancelled() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(CancelFlag::is_cancelled))
}

/// The message of the candle error that carries a cancellation out of the decoder.
pub(crate) const CANCELLED: &str = "cancelled";

/// `Err` when this thread's work was cancelled, for the candle-level loops.
#[cfg(feature = "decoder")]
pub(crate) fn check() -> candle_core::Result<()> {
    if cancelled() {
        Err(candle_core::Error::Msg(CANCELLED.into()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_seen_only_inside_its_scope() {
        let flag = CancelFlag::new();
        assert!(!cancelled());
        with_cancel(&flag, || {
            assert!(!cancelled());
            flag.cancel();
            assert!(cancelled());
        });
        assert!(!cancelled(), "restored after the scope");
    }
}
