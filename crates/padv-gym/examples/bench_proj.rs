use padv_engine::tokenize::TextTokenizer;
use padv_gym::agent::Agent;
use padv_gym::demo::{default_pair_dir, read_manifest};
use padv_gym::lake::Lake;
use padv_gym::oracle::{project, MoveTrie};
use padv_gym::train::heldout_map_seed;
use std::time::Instant;
fn main() {
    let pair = default_pair_dir();
    let (cfg, _) = read_manifest(&pair).unwrap();
    let tok = TextTokenizer::from_dir(&pair.join("reference")).unwrap();
    let m = Agent::load(&pair.join("reference"), &tok)
        .unwrap()
        .inference_model()
        .unwrap();
    let n: usize = std::env::args()
        .nth(1)
        .map(|x| x.parse().unwrap())
        .unwrap_or(16);
    let lakes: Vec<Lake> = (0..n)
        .map(|i| Lake::generate(&cfg.lake, heldout_map_seed(1, i)).unwrap())
        .collect();
    let t0 = Instant::now();
    let (_, cost) = project(&m, &lakes, cfg.style, cfg.beta, &MoveTrie::new()).unwrap();
    println!("{cost:?} {:.2}s", t0.elapsed().as_secs_f64());
}
