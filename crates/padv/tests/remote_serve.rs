//! `padv score` on a remote fleet, end to end through the CLI: `padv serve` hosts the
//! committed gym pair and speaks the vLLM protocol (`/v1/models` lists both models,
//! `/v1/completions` answers `prompt_logprobs`), and `padv score --policy-endpoint …
//! --reference-endpoint … --policy-model policy --reference-model reference` must write the
//! same target log-probs as local scoring of the same checkpoints (to 1e-5). The server
//! demands a bearer token, which the client sends from `--api-key-env` and never writes.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn pair() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../padv-gym/pair")
}

fn padv() -> Command {
    Command::new(env!("CARGO_BIN_EXE_padv"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running padv");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("record JSON"))
        .collect()
}

/// `padv score` of `trajectories` on the server at `url` (both models), writing to `out`.
fn remote_score(trajectories: &Path, url: &str, out: &Path) -> Command {
    let mut cmd = padv();
    cmd.args(["score", "--renderer", "chat-template", "--input"])
        .arg(trajectories)
        .arg("--tokenizer")
        .arg(pair().join("policy"))
        .args(["--policy-endpoint", url, "--reference-endpoint", url])
        .arg("--out")
        .arg(out);
    cmd
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's token (its environment) and the client's (its own variable).
const KEY: &str = "s3cret-token-for-the-test";

#[test]
fn remote_scoring_against_padv_serve_equals_local_scoring() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    // Eight real rollouts of the pair on one held-out map.
    run_ok(
        padv()
            .args(["demo", "--quick", "--maps", "1", "--seed", "5", "--out"])
            .arg(&demo),
    );
    let trajectories = demo.join("policy").join("trajectories.jsonl");

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let _server = Server(
        padv()
            .args(["serve", "--port", &port.to_string(), "--policy"])
            .arg(pair().join("policy"))
            .arg("--reference")
            .arg(pair().join("reference"))
            .env("PADV_API_KEY", KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting padv serve"),
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "padv serve did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let url = format!("http://127.0.0.1:{port}");
    // Without the token the server refuses, and the client says so.
    let out = remote_score(&trajectories, &url, &dir.path().join("nokey"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    // A variable that is not set is named.
    let out = remote_score(&trajectories, &url, &dir.path().join("nokey"))
        .args(["--api-key-env", "PADV_TEST_NO_SUCH_VARIABLE"])
        .env_remove("PADV_TEST_NO_SUCH_VARIABLE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PADV_TEST_NO_SUCH_VARIABLE"), "{err}");

    let remote = dir.path().join("remote");
    run_ok(
        remote_score(&trajectories, &url, &remote)
            .args(["--policy-model", "policy", "--reference-model", "reference"])
            .args(["--api-key-env", "PADV_TEST_CLIENT_KEY"])
            .env("PADV_TEST_CLIENT_KEY", KEY),
    );
    let run_json = std::fs::read_to_string(remote.join("run.json")).unwrap();
    assert!(!run_json.contains(KEY), "the token never reaches run.json");
    assert!(
        run_json.contains("PADV_TEST_CLIENT_KEY"),
        "its variable's name does"
    );
    let local = dir.path().join("local");
    run_ok(
        padv()
            .args(["score", "--renderer", "chat-template", "--input"])
            .arg(&trajectories)
            .arg("--policy")
            .arg(pair().join("policy"))
            .arg("--reference")
            .arg(pair().join("reference"))
            .arg("--out")
            .arg(&local),
    );

    let r = read_records(&remote.join("records.jsonl"));
    let l = read_records(&local.join("records.jsonl"));
    assert_eq!(r.len(), 8);
    assert_eq!(r.len(), l.len());
    let mut compared = 0;
    for (a, b) in r.iter().zip(&l) {
        assert_eq!(a["id"], b["id"]);
        let (sa, sb) = (
            a["steps"].as_array().unwrap(),
            b["steps"].as_array().unwrap(),
        );
        assert_eq!(sa.len(), sb.len(), "{}", a["id"]);
        for (x, y) in sa.iter().zip(sb) {
            assert_eq!(x["message_index"], y["message_index"]);
            for field in ["policy", "reference"] {
                let (xs, ys) = (x[field].as_array().unwrap(), y[field].as_array().unwrap());
                assert_eq!(xs.len(), ys.len(), "{} {field}", a["id"]);
                for (p, q) in xs.iter().zip(ys) {
                    let (p, q) = (p.as_f64().unwrap(), q.as_f64().unwrap());
                    assert!((p - q).abs() < 1e-5, "{} {field}: {p} vs {q}", a["id"]);
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 100, "only {compared} log-probs compared");

    // A model id the server does not list is refused, naming what it serves.
    let out = remote_score(&trajectories, &url, &dir.path().join("bad"))
        .args(["--policy-model", "nope"])
        .args(["--api-key-env", "PADV_TEST_CLIENT_KEY"])
        .env("PADV_TEST_CLIENT_KEY", KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"nope\"") && err.contains("policy"), "{err}");
}
