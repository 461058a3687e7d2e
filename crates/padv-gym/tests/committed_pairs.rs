//! The two committed pairs are what `padv demo` and `padv demo --style verbose` load: their
//! manifests must parse and name the style they are committed for, their checkpoints must
//! load with their own tokenizer, and a pair whose policy is its reference (the verbose pair,
//! whose RL never came closer to the optimum than the reference) must say so in its
//! manifest, since the demo's PA rows for the policy and reference players are then
//! identically zero.

use padv_engine::tokenize::TextTokenizer;
use padv_gym::agent::Agent;
use padv_gym::demo::{default_pair_dir, read_manifest, verbose_pair_dir};
use padv_gym::protocol::ActionStyle;

fn weights(dir: &std::path::Path) -> Vec<u8> {
    std::fs::read(dir.join("model.safetensors")).expect("committed checkpoint weights")
}

#[test]
fn committed_pairs_load_and_declare_their_style() {
    for (dir, style) in [
        (default_pair_dir(), ActionStyle::Terse),
        (verbose_pair_dir(), ActionStyle::Verbose),
    ] {
        let (cfg, manifest) = read_manifest(&dir).expect("manifest");
        assert_eq!(cfg.style, style, "{}", dir.display());
        let tok = TextTokenizer::from_dir(&dir.join("policy")).expect("tokenizer");
        for sub in ["policy", "reference"] {
            Agent::load(&dir.join(sub), &tok).expect("checkpoint loads");
        }
        let same = weights(&dir.join("policy")) == weights(&dir.join("reference"));
        let declared = manifest["policy_is_reference"]["declared"].as_bool() == Some(true);
        assert_eq!(
            same,
            declared,
            "{}: policy == reference is {same} but the manifest declares {declared}",
            dir.display()
        );
    }
}
