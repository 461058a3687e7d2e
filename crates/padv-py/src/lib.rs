//! The native module of padv's Python package (`padv._padv`).
//!
//! Thin by design: each function turns Python values into the library's types and calls the
//! same library function the CLI calls (`padv_core::formats::read_file`,
//! `padv_engine::pipeline::score_trajectories`, `padv_core::eval::evaluate`, …), so a result
//! from Python is the CLI's result. The Python layer (`python/padv/`) adds what only Python
//! can do: accepting numpy/torch/pandas objects, notebook progress bars, the HTTP client.

mod errors;
mod eval;
mod records;
mod scoring;
mod trajectories;

use pyo3::prelude::*;

/// padv's native module; import `padv` instead.
#[pymodule]
fn _padv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PadvError", m.py().get_type::<errors::PadvError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<records::Records>()?;
    m.add_class::<eval::Report>()?;
    m.add_function(wrap_pyfunction!(records::read_records, m)?)?;
    m.add_function(wrap_pyfunction!(records::records_from_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(records::records_from_parquet_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(eval::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(trajectories::read_trajectories, m)?)?;
    m.add_function(wrap_pyfunction!(trajectories::render, m)?)?;
    m.add_function(wrap_pyfunction!(scoring::score, m)?)?;
    Ok(())
}
