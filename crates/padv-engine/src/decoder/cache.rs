//! Per-layer key/value cache, so a shared prefix is computed once: run the prefix, `clone()`
//! the cache (cheap: tensors are reference-counted), then run each continuation from it.

use candle_core::Tensor;

/// Keys and values of the positions seen so far, per layer, `[B, T, Hkv, D]` after RoPE.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    seq_len: usize,
    store: bool,
}

impl KvCache {
    /// An empty cache for a model with `num_layers` layers, keeping what each forward adds.
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            seq_len: 0,
            store: true,
        }
    }

    /// A cache that keeps nothing: for one-shot scoring, where holding every layer's keys and
    /// values until the end of the pass would only cost memory. Forwards through it must
    /// start at offset 0.
    pub fn discarding() -> Self {
        Self {
            layers: Vec::new(),
            seq_len: 0,
            store: false,
        }
    }

    /// Number of positions cached (the offset of the next forward).
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Whether this cache keeps keys and values.
    pub fn is_storing(&self) -> bool {
        self.store
    }

    /// Forgets everything (keeps the storing mode).
    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
        self.seq_len = 0;
    }

    pub(crate) fn layer(&self, i: usize) -> Option<&(Tensor, Tensor)> {
        self.layers.get(i).and_then(|l| l.as_ref())
    }

    pub(crate) fn set_layer(&mut self, i: usize, kv: (Tensor, Tensor)) {
        if self.store {
            if i >= self.layers.len() {
                self.layers.resize(i + 1, None);
            }
            self.layers[i] = Some(kv);
        }
    }

    pub(crate) fn advance(&mut self, n: usize) {
        if self.store {
            self.seq_len += n;
        }
    }
}
