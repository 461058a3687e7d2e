//! padv's one Python exception. It subclasses `ValueError` because nearly every failure is
//! bad input (a file, record or field the message names); a caller that wants to tell padv's
//! refusals from other errors catches `padv.PadvError`.

use std::fmt::Write as _;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

create_exception!(
    _padv,
    PadvError,
    PyValueError,
    "padv refused an input or failed a job; the message names the file, record and field."
);

/// An error with its whole chain of causes, as the CLI prints them (`a: b: c`).
pub fn padv_err(e: &(dyn std::error::Error + 'static)) -> PyErr {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // thiserror's `transparent` and "{source}" messages repeat their cause: print it once.
        if !msg.contains(&text) {
            let _ = write!(msg, ": {text}");
        }
        source = s.source();
    }
    PadvError::new_err(msg)
}

/// An error from a message.
pub fn padv_msg(msg: impl Into<String>) -> PyErr {
    PadvError::new_err(msg.into())
}
