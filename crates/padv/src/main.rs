//! `padv`: progress-advantage scoring of LLM agent trajectories.
//!
//! A thin shell over `padv-core` (formats, scoring, evaluations) and `padv-engine` (the local
//! log-prob engine and the scoring pipeline). Each subcommand lives in its own file under
//! `cli/`.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// Training and scoring allocate and free many short-lived tensors of a few MB. glibc's
/// malloc hands those back to the kernel and page-faults them in again on every pass, which
/// cost more system time than the arithmetic (`padv gym train`: SFT steps about 2× slower, most
/// of it in the kernel). mimalloc with purging turned off keeps the pages for the next pass.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3 alike; the sys crate names
/// the options around it, 14 and 16, but not this one).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never return freed pages to the OS (−1), unless the user set `MIMALLOC_PURGE_DELAY`.
fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option; mimalloc allows it at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// candle asks how many threads to use on every matrix product and, when
/// `RAYON_NUM_THREADS` is unset, answers by reading `/proc/cpuinfo` (and the CPU mask files)
/// again each time: 3–4 % of `padv demo` was the kernel formatting that file. Rayon's global
/// pool is built first, with its own default (the logical CPUs), then the variable is set to
/// the count candle computes, so both keep their defaults and candle reads a variable
/// instead of a file. (Processes padv starts inherit the variable.)
fn pin_candle_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    // An error means the pool exists already, with whatever it was given.
    let _ = rayon::ThreadPoolBuilder::new().build_global();
    let n = candle_core::utils::get_num_threads();
    // Before any other thread of ours reads the environment.
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
}

fn main() -> ExitCode {
    keep_freed_pages();
    pin_candle_threads();
    let args = cli::Cli::parse();
    // Colour codes only for a person at a terminal: in a log file they are noise.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PADV_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`padv inspect … | head`): it has what it wanted.
        Err(e) if cli::output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // The one place an error is printed; code below returns errors, never logs them too.
            eprintln!("padv: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
