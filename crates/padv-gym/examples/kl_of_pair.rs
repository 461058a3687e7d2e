//! Measures KL(π ‖ π_o) per step on validation maps for the reference and every policy
//! checkpoint of a pair: `kl_of_pair PAIR_DIR [MAPS]`.
use padv_engine::tokenize::TextTokenizer;
use padv_gym::agent::Agent;
use padv_gym::demo::read_manifest;
use padv_gym::sample::Sampler;
use padv_gym::train::{KlMonitor, MonitorConfig};
use std::path::PathBuf;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pair = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: kl_of_pair PAIR [MAPS]")?,
    );
    let maps: usize = std::env::args().nth(2).map_or(Ok(32), |x| x.parse())?;
    let (cfg, _) = read_manifest(&pair)?;
    let tok = TextTokenizer::from_dir(&pair.join("reference"))?;
    let reference = Agent::load(&pair.join("reference"), &tok)?.inference_model()?;
    let sampler = Sampler::new(&tok, padv_gym::tokenizer::END_OF_TURN, cfg.style)?;
    let mc = MonitorConfig {
        maps,
        rollouts: 4,
        every: 1,
    };
    let t0 = std::time::Instant::now();
    let mon = KlMonitor::new(&reference, &sampler, &cfg.lake, cfg.beta, &mc, cfg.seed)?;
    eprintln!("projection {:.1}s", t0.elapsed().as_secs_f64());
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&pair)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.safetensors").exists())
        .collect();
    dirs.sort();
    for d in dirs {
        let m = Agent::load(&d, &tok)?.inference_model()?;
        let k = mon.measure(&m, 8)?;
        println!(
            "{:<20} KL(.||oracle) {:.4}  KL(.||ref) {:.4}  success {:.3}  steps {}",
            d.file_name().unwrap().to_string_lossy(),
            k.kl_to_oracle,
            k.kl_to_reference,
            k.success,
            k.steps
        );
    }
    Ok(())
}
