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

    /// Keeps only the first `len` positions (no-op when it holds no more): each layer's keys
    /// and values are narrowed, which shares storage with the longer tensors. This is what
    /// lets a scorer reuse the longest prefix two sequences share, then continue the second
    /// from there.
    pub fn truncate(&mut self, len: usize) -> candle_core::Result<()> {
        if len >= self.seq_len {
            return Ok(());
        }
        if len == 0 {
            self.clear();
            return Ok(());
        }
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.narrow(1, 0, len)?;
            *v = v.narrow(1, 0, len)?;
        }
        self.seq_len = len;
        Ok(())
    }

    /// A cache of `k` rows, each this one-row cache: K continuations of one history branch
    /// from a prefix computed once (`[1, T, ..]` → `[k, T, ..]`). The rows are a broadcast
    /// view, not copies: the next forward concatenates the new keys and values onto them,
    /// which writes each row out once anyway. Errors when the cache holds more than one row.
    pub fn repeat_rows(&self, k: usize) -> candle_core::Result<KvCache> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            layers.push(match layer {
                None => None,
                Some((key, value)) => {
                    if key.dim(0)? != 1 {
                        candle_core::bail!(
                            "repeat_rows needs a one-row cache, this one has {} rows",
                            key.dim(0)?
                        );
                    }
                    Some((
                        key.broadcast_as((k, key.dim(1)?, key.dim(2)?, key.dim(3)?))?,
                        value.broadcast_as((k, value.dim(1)?, value.dim(2)?, value.dim(3)?))?,
                    ))
                }
            });
        }
        Ok(KvCache {
            layers,
            seq_len: self.seq_len,
            store: self.store,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn cache_with(len: usize) -> KvCache {
        let mut c = KvCache::new(2);
        for i in 0..2 {
            let k = Tensor::arange(0f32, (len * 3) as f32, &Device::Cpu)
                .and_then(|t| t.reshape((1, len, 1, 3)))
                .and_then(|t| t.affine(1.0, i as f64))
                .unwrap();
            c.set_layer(i, (k.clone(), k.to_dtype(DType::F32).unwrap()));
        }
        c.advance(len);
        c
    }

    #[test]
    fn truncate_narrows_every_layer() {
        let mut c = cache_with(5);
        c.truncate(7).unwrap();
        assert_eq!(c.seq_len(), 5);
        c.truncate(2).unwrap();
        assert_eq!(c.seq_len(), 2);
        for i in 0..2 {
            let (k, v) = c.layer(i).unwrap();
            assert_eq!(k.dims(), &[1, 2, 1, 3]);
            assert_eq!(v.dims(), &[1, 2, 1, 3]);
            let got: Vec<f32> = k.flatten_all().unwrap().to_vec1().unwrap();
            let want: Vec<f32> = (0..6).map(|x| (x + i) as f32).collect();
            assert_eq!(got, want);
        }
        let r = c.repeat_rows(3).unwrap();
        assert_eq!(r.seq_len(), 2);
        let (k, _) = r.layer(1).unwrap();
        assert_eq!(k.dims(), &[3, 2, 1, 3]);
        let rows: Vec<Vec<f32>> = k.reshape((3, 6)).unwrap().to_vec2().unwrap();
        assert!(rows
            .iter()
            .all(|row| *row == (1..7).map(|x| x as f32).collect::<Vec<_>>()));
        assert!(
            r.repeat_rows(2).is_err(),
            "a 3-row cache cannot be repeated"
        );
        c.truncate(0).unwrap();
        assert_eq!(c.seq_len(), 0);
        assert!(c.layer(0).is_none());
        assert!(c.is_storing());
    }
}
