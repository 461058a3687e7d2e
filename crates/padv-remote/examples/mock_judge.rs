//! A mock OpenAI-compatible judge server on 127.0.0.1, to try `padv judge --kind prm` and
//! `--kind llm-judge` where no judge model can run. It follows a keyword rule, not a model
//! (see `tests/support/mock_judge.rs`): steps mentioning errors, apologies or failures are
//! judged incorrect.
//!
//! ```text
//! cargo run -p padv-remote --example mock_judge -- [PORT] [MODEL_NAME] [--no-logprobs]
//! ```
//! Serves `POST /v1/chat/completions`, `POST /v1/completions` and `GET /v1/models` until
//! stopped (Ctrl-C). Defaults: port 8123, model `mock-judge`.

#[path = "../tests/support/server.rs"]
mod server;

#[path = "../tests/support/mock_judge.rs"]
mod mock_judge;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let logprobs = !args.iter().any(|a| a == "--no-logprobs");
    let plain: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let port: u16 = match plain.first().map(|p| p.parse()) {
        None => 8123,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("usage: mock_judge [PORT] [MODEL_NAME] [--no-logprobs]");
            std::process::exit(2);
        }
    };
    let name = plain
        .get(1)
        .map_or("mock-judge", |s| s.as_str())
        .to_string();
    let mock = mock_judge::MockJudge {
        name: name.clone(),
        logprobs,
    };
    let server = match server::Server::start_on(&format!("127.0.0.1:{port}"), mock) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mock_judge: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(2);
        }
    };
    eprintln!(
        "mock judge {name:?} on {} (log-probs: {logprobs}); Ctrl-C to stop",
        server.url
    );
    loop {
        std::thread::park();
    }
}
