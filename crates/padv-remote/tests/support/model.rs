//! A test engine server backed by padv's own local engine on a fixture checkpoint: the log-prob
//! of each prompt token comes from `LocalEngine` (the numbers local scoring produces), the
//! top-k from the full next-token distribution of the same model, so remote scoring can be
//! compared with local scoring value by value.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use padv_core::StatsRequest;
use padv_engine::decoder::KvCache;
use padv_engine::logprobs::{EngineOptions, LocalEngine};

use super::server::{sglang_answer, vllm_answer, Answer, Imitate, Rows};

/// Fixture checkpoint folder.
pub fn fixture_model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../padv-engine/tests/fixtures/models")
        .join(name)
}

/// An engine server of one fixture checkpoint.
pub struct ModelServer {
    pub engine: LocalEngine,
    pub imitate: Imitate,
}

impl ModelServer {
    pub fn new(model: &str, sglang: bool, max_model_len: usize) -> ModelServer {
        let dir = fixture_model(model);
        ModelServer {
            engine: LocalEngine::load(&dir, EngineOptions::default()).expect("fixture loads"),
            imitate: Imitate {
                sglang,
                name: model.to_string(),
                root: format!("/models/{model}"),
                max_model_len,
                max_logprobs: 20,
            },
        }
    }

    /// Per-position rows for `ids` with the top `k`.
    pub fn rows(&self, ids: &[u32], k: usize) -> Rows {
        let n = ids.len();
        let targets: Vec<usize> = (1..n).collect();
        let actual = self
            .engine
            .score_from(
                ids,
                &targets,
                StatsRequest::default(),
                &mut KvCache::discarding(),
            )
            .expect("local scoring")
            .logprob;
        let model = self.engine.model();
        let input = Tensor::from_slice(&ids[..n - 1], (1, n - 1), model.device()).unwrap();
        let all_rows: Vec<usize> = (0..n - 1).collect();
        let hidden = model
            .forward_rows(&input, 0, &mut KvCache::discarding(), &all_rows, n)
            .unwrap()
            .squeeze(0)
            .unwrap();
        let logits: Vec<Vec<f32>> = hidden
            .matmul(&model.lm_head().t().unwrap())
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec2()
            .unwrap();
        let mut rank = Vec::with_capacity(n - 1);
        let mut top = Vec::with_capacity(n - 1);
        for (r, z) in logits.iter().enumerate() {
            let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let lse = m + z.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            let mut order: Vec<u32> = (0..z.len() as u32).collect();
            order.sort_by(|&a, &b| z[b as usize].total_cmp(&z[a as usize]));
            let want = ids[r + 1];
            rank.push(order.iter().position(|&i| i == want).unwrap() + 1);
            top.push(
                order[..k]
                    .iter()
                    .map(|&i| {
                        // The prompt token's value is the local engine's, as in `actual`.
                        let lp = if i == want {
                            actual[r]
                        } else {
                            (z[i as usize] as f64 - lse) as f32
                        };
                        (i, lp)
                    })
                    .collect(),
            );
        }
        Rows { actual, rank, top }
    }
}

impl Answer for ModelServer {
    fn get(&self, path: &str) -> (u16, String) {
        self.imitate.get(path)
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let (ids, k) = match self.imitate.request(path, body) {
            Ok(x) => x,
            Err(e) => return e,
        };
        let rows = self.rows(&ids, k);
        if self.imitate.sglang {
            (200, sglang_answer(&ids, &rows))
        } else {
            (200, vllm_answer(&self.imitate.name, &ids, &rows))
        }
    }
}
