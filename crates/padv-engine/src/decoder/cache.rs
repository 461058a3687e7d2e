//! Per-layer key/value cache, so a shared prefix is computed once: run the prefix, `clone()`
//! the cache (cheap: tensors are reference-counted), then run each continuation from it.
//!
//! **Growing in place.** By default each forward concatenates the new keys and values onto
//! the old ones, which copies the whole cache: one position at a time, decoding copies it
//! once per token (a tenth of the gym demo's time went to that copy and to paging in the new
//! buffers). A [`KvCache::growing`] cache instead keeps each layer in a buffer with room to
//! spare and writes new positions into it; the layer is then a view of the buffer's first
//! `T` positions. A buffer is written in place only while no clone of the cache shares it
//! (otherwise both would write the same positions); a shared or full buffer is copied into a
//! new one half again as large.

use std::sync::Arc;

use candle_core::Tensor;

/// Keys and values of the positions seen so far, per layer, `[B, T, Hkv, D]` after RoPE.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// Per layer of a growing cache: the buffers `layers[i]` is a view of, when it is.
    rooms: Vec<Option<Room>>,
    seq_len: usize,
    store: bool,
    grow: bool,
}

/// A layer's key and value buffers `[B, C, Hkv, D]` (contiguous, `C` ≥ the cached length).
#[derive(Debug, Clone)]
struct Room {
    k: Tensor,
    v: Tensor,
    /// Counts the caches holding this room: writing in place is safe only when it is one.
    owners: Arc<()>,
}

impl KvCache {
    /// An empty cache for a model with `num_layers` layers, keeping what each forward adds.
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
            rooms: Vec::new(),
            seq_len: 0,
            store: true,
            grow: false,
        }
    }

    /// This cache, growing in place ([module docs](self)): for decoding, where each forward
    /// adds a few positions. Caches made from it (rows selected, prefixes gathered) do not
    /// grow unless asked: most get one more forward and are dropped, and spare room would only
    /// cost a larger copy.
    pub fn growing(mut self) -> Self {
        self.grow = true;
        self
    }

    /// The spare positions a growing cache of `len` positions gets when its buffer is
    /// (re)allocated: half again as many, at least 16.
    pub fn growth_room(len: usize) -> usize {
        (len / 2).max(16)
    }

    /// A cache that keeps nothing: for one-shot scoring, where holding every layer's keys and
    /// values until the end of the pass would only cost memory. Forwards through it must
    /// start at offset 0.
    pub fn discarding() -> Self {
        Self {
            layers: Vec::new(),
            rooms: Vec::new(),
            seq_len: 0,
            store: false,
            grow: false,
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
        self.rooms.clear();
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
            rooms: Vec::new(),
            seq_len: self.seq_len,
            store: self.store,
            grow: false,
        })
    }

    /// A cache of the given rows of this one, in the given order (a row may repeat): what a
    /// batch keeps when some of its sequences finish (drop them) or when several
    /// continuations must branch from chosen rows (repeat them). The rows are copied. Errors
    /// on a row out of range and on no rows.
    pub fn select_rows(&self, rows: &[usize]) -> candle_core::Result<KvCache> {
        self.select_rows_with_room(rows, 0)
    }

    /// [`KvCache::select_rows`] into buffers with room for `room` more positions: when
    /// `room > 0` the cache [grows](KvCache::growing) and its next forwards write in place,
    /// so each kept position is copied once (selecting, then appending, would copy it
    /// twice).
    pub fn select_rows_with_room(
        &self,
        rows: &[usize],
        room: usize,
    ) -> candle_core::Result<KvCache> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            layers.push(match layer {
                None => None,
                Some((key, value)) => {
                    let n = key.dim(0)?;
                    if let Some(&bad) = rows.iter().find(|&&r| r >= n) {
                        candle_core::bail!("select_rows: row {bad} of a {n}-row cache");
                    }
                    let len = key.dim(1)?;
                    let pick = |t: &Tensor| {
                        gathered(&rows.iter().map(|&r| (t, r)).collect::<Vec<_>>(), len, room)
                    };
                    Some((pick(key)?, pick(value)?))
                }
            });
        }
        KvCache::from_buffers(layers, self.seq_len, self.store, room)
    }

    /// A cache whose layers are `buffers` (`[B, len + room, H, D]`, `len = seq_len`): with
    /// `room > 0`, views of their first `len` positions that grow into the rest.
    fn from_buffers(
        buffers: Vec<Option<(Tensor, Tensor)>>,
        seq_len: usize,
        store: bool,
        room: usize,
    ) -> candle_core::Result<KvCache> {
        if room == 0 {
            return Ok(KvCache {
                layers: buffers,
                rooms: Vec::new(),
                seq_len,
                store,
                grow: false,
            });
        }
        let mut layers = Vec::with_capacity(buffers.len());
        let mut rooms = Vec::with_capacity(buffers.len());
        for b in buffers {
            let Some((k, v)) = b else {
                layers.push(None);
                rooms.push(None);
                continue;
            };
            layers.push(Some((k.narrow(1, 0, seq_len)?, v.narrow(1, 0, seq_len)?)));
            rooms.push(Some(Room {
                k,
                v,
                owners: Arc::new(()),
            }));
        }
        Ok(KvCache {
            layers,
            rooms,
            seq_len,
            store,
            grow: true,
        })
    }

    /// The rows of several caches of equal length stacked into one (in order): batches
    /// whose rows share a position gathered into one pass. Errors when the lengths or layer
    /// layouts differ.
    pub fn concat_rows(caches: &[KvCache]) -> candle_core::Result<KvCache> {
        let Some(first) = caches.first() else {
            candle_core::bail!("concat_rows of no caches");
        };
        if caches.len() == 1 {
            return Ok(first.clone());
        }
        let n_layers = first.layers.len();
        if let Some(c) = caches
            .iter()
            .find(|c| c.seq_len != first.seq_len || c.layers.len() != n_layers)
        {
            candle_core::bail!(
                "concat_rows: caches of {} and {} positions (or different layer counts)",
                first.seq_len,
                c.seq_len
            );
        }
        let mut layers = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let parts: Vec<&(Tensor, Tensor)> =
                caches.iter().filter_map(|c| c.layers[i].as_ref()).collect();
            layers.push(match parts.len() {
                0 => None,
                n if n == caches.len() => {
                    let ks: Vec<Tensor> = parts.iter().map(|(k, _)| k.clone()).collect();
                    let vs: Vec<Tensor> = parts.iter().map(|(_, v)| v.clone()).collect();
                    Some((Tensor::cat(&ks, 0)?, Tensor::cat(&vs, 0)?))
                }
                _ => candle_core::bail!("concat_rows: layer {i} is empty in some caches"),
            });
        }
        Ok(KvCache {
            layers,
            rooms: Vec::new(),
            seq_len: first.seq_len,
            store: first.store,
            grow: false,
        })
    }

    /// One cache of `picks.len()` rows, row `i` being row `picks[i].1` of `caches[picks[i].0]`
    /// cut to its first `len` positions (a row may repeat). Each kept position is copied
    /// exactly once: branching many continuations from different points of already-computed
    /// sequences (the gym's decision probes) would otherwise copy whole rows several times
    /// (select, cut, stack). Errors on a row or cache out of range, on `len` beyond a cache's
    /// length, and on caches with different layer layouts.
    pub fn gather_prefixes(
        caches: &[&KvCache],
        picks: &[(usize, usize)],
        len: usize,
    ) -> candle_core::Result<KvCache> {
        Self::gather_prefixes_with_room(caches, picks, len, 0)
    }

    /// [`KvCache::gather_prefixes`] into buffers with room for `room` more positions (a
    /// growing cache when `room > 0`; see [`KvCache::select_rows_with_room`]).
    pub fn gather_prefixes_with_room(
        caches: &[&KvCache],
        picks: &[(usize, usize)],
        len: usize,
        room: usize,
    ) -> candle_core::Result<KvCache> {
        let Some(&(c0, _)) = picks.first() else {
            candle_core::bail!("gather_prefixes of no rows");
        };
        let n_layers = caches.get(c0).map_or(0, |c| c.layers.len());
        for &(c, _) in picks {
            let Some(cache) = caches.get(c) else {
                candle_core::bail!("gather_prefixes: cache {c} of {}", caches.len());
            };
            if len > cache.seq_len || cache.layers.len() != n_layers {
                candle_core::bail!(
                    "gather_prefixes: {len} positions of a {}-position cache (or different \
                     layer counts)",
                    cache.seq_len
                );
            }
        }
        let store = caches[c0].store;
        if len == 0 {
            return Ok(KvCache {
                layers: vec![None; n_layers],
                rooms: Vec::new(),
                seq_len: 0,
                store,
                grow: room > 0,
            });
        }
        let mut layers = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let (mut ks, mut vs) = (Vec::with_capacity(picks.len()), Vec::new());
            for &(c, r) in picks {
                let Some((k, v)) = caches[c].layers[i].as_ref() else {
                    candle_core::bail!("gather_prefixes: layer {i} of cache {c} is empty");
                };
                let n = k.dim(0)?;
                if r >= n {
                    candle_core::bail!("gather_prefixes: row {r} of a {n}-row cache");
                }
                ks.push((k, r));
                vs.push((v, r));
            }
            layers.push(Some((gathered(&ks, len, room)?, gathered(&vs, len, room)?)));
        }
        KvCache::from_buffers(layers, len, store, room)
    }

    pub(crate) fn layer(&self, i: usize) -> Option<&(Tensor, Tensor)> {
        self.layers.get(i).and_then(|l| l.as_ref())
    }

    /// Adds keys and values `[B, n, Hkv, D]` of the next positions to layer `i` and returns
    /// the layer's keys and values of all positions, for attention. A storing cache keeps
    /// them (growing in place when it [grows](KvCache::growing)); a discarding one does not.
    pub(crate) fn append(
        &mut self,
        i: usize,
        k: Tensor,
        v: Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let Some((pk, pv)) = self.layer(i).cloned() else {
            let kv = (k.contiguous()?, v.contiguous()?);
            self.set_layer(i, kv.clone());
            return Ok(kv);
        };
        if !self.grow || !self.store {
            let kv = (Tensor::cat(&[&pk, &k], 1)?, Tensor::cat(&[&pv, &v], 1)?);
            self.set_layer(i, kv.clone());
            return Ok(kv);
        }
        let (t, n) = (pk.dim(1)?, k.dim(1)?);
        if self.rooms.len() <= i {
            self.rooms.resize(i + 1, None);
        }
        let room = match self.rooms[i].take() {
            // Only this cache holds the buffer, and the new positions fit.
            Some(r) if Arc::strong_count(&r.owners) == 1 && t + n <= r.k.dim(1)? => {
                r.k.slice_set(&k.contiguous()?, 1, t)?;
                r.v.slice_set(&v.contiguous()?, 1, t)?;
                r
            }
            _ => {
                let cap = t + n + KvCache::growth_room(t + n);
                let (b, _, h, d) = k.dims4()?;
                let pad = Tensor::zeros((b, cap - t - n, h, d), k.dtype(), k.device())?;
                Room {
                    k: Tensor::cat(&[&pk, &k, &pad], 1)?,
                    v: Tensor::cat(&[&pv, &v, &pad], 1)?,
                    owners: Arc::new(()),
                }
            }
        };
        let kv = (room.k.narrow(1, 0, t + n)?, room.v.narrow(1, 0, t + n)?);
        self.set_layer(i, kv.clone());
        self.rooms[i] = Some(room);
        Ok(kv)
    }

    /// Replaces layer `i` (forgetting its buffer: the new tensors are not a view of it).
    pub(crate) fn set_layer(&mut self, i: usize, kv: (Tensor, Tensor)) {
        if let Some(room) = self.rooms.get_mut(i) {
            *room = None;
        }
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

/// Rows `picks[i] = (tensor, row)` (each `[B, T, H, D]`, `T ≥ len`), positions `0..len`,
/// stacked into one contiguous `[picks.len(), len + room, H, D]` tensor whose last `room`
/// positions are zeros. Each kept value is copied once, straight from the source's storage
/// when it is f32 on the CPU with contiguous rows (any row stride: a growing cache's view, a
/// broadcast row); otherwise through candle's `narrow`/`cat`.
fn gathered(picks: &[(&Tensor, usize)], len: usize, room: usize) -> candle_core::Result<Tensor> {
    let Some(&(first, _)) = picks.first() else {
        candle_core::bail!("gathering no rows");
    };
    let (_, _, h, d) = first.dims4()?;
    for &(t, r) in picks {
        let (b, tl, th, td) = t.dims4()?;
        if r >= b || len > tl || (th, td) != (h, d) {
            candle_core::bail!(
                "gathering row {r}, {len} positions of a [{b}, {tl}, {th}, {td}] cache \
                 (heads [{h}, {d}] expected)"
            );
        }
    }
    let cap = len + room;
    let mut buf: Vec<f32> = Vec::with_capacity(picks.len() * cap * h * d);
    let mut raw = true;
    for &(t, r) in picks {
        let (storage, layout) = t.storage_and_layout();
        let st = layout.stride();
        let rows_contiguous = (len <= 1 || st[1] == h * d) && (h <= 1 || st[2] == d) && st[3] == 1;
        match &*storage {
            candle_core::Storage::Cpu(candle_core::CpuStorage::F32(data)) if rows_contiguous => {
                let start = layout.start_offset() + r * st[0];
                let Some(src) = data.get(start..start + len * h * d) else {
                    candle_core::bail!("gathering row {r}: storage shorter than its layout");
                };
                buf.extend_from_slice(src);
                buf.resize(buf.len() + room * h * d, 0.0);
            }
            _ => {
                raw = false;
                break;
            }
        }
    }
    if raw {
        return Tensor::from_vec(buf, (picks.len(), cap, h, d), first.device());
    }
    let mut rows = Vec::with_capacity(picks.len());
    for &(t, r) in picks {
        rows.push(t.narrow(0, r, 1)?.narrow(1, 0, len)?);
    }
    let stacked = Tensor::cat(&rows, 0)?;
    if room == 0 {
        return Ok(stacked);
    }
    let pad = Tensor::zeros((picks.len(), room, h, d), first.dtype(), first.device())?;
    Tensor::cat(&[&stacked, &pad], 1)
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

    #[test]
    fn select_rows_picks_and_repeats_rows() {
        // Three rows whose entries are 100·row + position·3 + channel.
        let mut c = KvCache::new(1);
        let k = Tensor::from_vec(
            (0..3)
                .flat_map(|r| (0..6).map(move |x| (100 * r + x) as f32))
                .collect::<Vec<_>>(),
            (3, 2, 1, 3),
            &Device::Cpu,
        )
        .unwrap();
        c.set_layer(0, (k.clone(), k));
        c.advance(2);
        let s = c.select_rows(&[2, 0, 2]).unwrap();
        assert_eq!(s.seq_len(), 2);
        let (k, v) = s.layer(0).unwrap();
        let rows: Vec<Vec<f32>> = k.reshape((3, 6)).unwrap().to_vec2().unwrap();
        let row = |r: usize| (0..6).map(|x| (100 * r + x) as f32).collect::<Vec<_>>();
        assert_eq!(rows, vec![row(2), row(0), row(2)]);
        assert_eq!(v.dims(), &[3, 2, 1, 3]);
        assert!(c.select_rows(&[3]).is_err());
        // Stacking rows of two caches of one length.
        let both = KvCache::concat_rows(&[s.clone(), c.select_rows(&[1]).unwrap()]).unwrap();
        let (k, _) = both.layer(0).unwrap();
        assert_eq!(k.dims(), &[4, 2, 1, 3]);
        let rows: Vec<Vec<f32>> = k.reshape((4, 6)).unwrap().to_vec2().unwrap();
        assert_eq!(rows, vec![row(2), row(0), row(2), row(1)]);
        let mut short = c.clone();
        short.truncate(1).unwrap();
        assert!(KvCache::concat_rows(&[c.clone(), short]).is_err());
        // Prefixes of rows of two caches, one copy: rows (c, 2), (c, 0), (s, 0) cut to one
        // position.
        let g = KvCache::gather_prefixes(&[&c, &s], &[(0, 2), (0, 0), (1, 0)], 1).unwrap();
        assert_eq!(g.seq_len(), 1);
        let (k, v) = g.layer(0).unwrap();
        assert_eq!(k.dims(), &[3, 1, 1, 3]);
        let got: Vec<Vec<f32>> = v.reshape((3, 3)).unwrap().to_vec2().unwrap();
        let first = |r: usize| row(r)[..3].to_vec();
        assert_eq!(got, vec![first(2), first(0), first(2)]);
        assert!(KvCache::gather_prefixes(&[&c], &[(0, 3)], 1).is_err());
        assert!(KvCache::gather_prefixes(&[&c], &[(1, 0)], 1).is_err());
        assert!(KvCache::gather_prefixes(&[&c], &[(0, 0)], 3).is_err());
        assert!(KvCache::gather_prefixes(&[&c], &[], 1).is_err());
        // With room: the same rows, a growing cache whose buffers hold the spare positions
        // as zeros, from a strided view (a truncated cache) as from a contiguous one.
        let mut t = c.clone();
        t.truncate(1).unwrap();
        for (src, len) in [(&c, 2), (&t, 1)] {
            let r = src.select_rows_with_room(&[2, 0], 3).unwrap();
            assert_eq!(r.seq_len(), len);
            let (k, _) = r.layer(0).unwrap();
            assert_eq!(k.dims(), &[2, len, 1, 3]);
            let got: Vec<Vec<f32>> = k.reshape((2, len * 3)).unwrap().to_vec2().unwrap();
            assert_eq!(
                got,
                vec![row(2)[..len * 3].to_vec(), row(0)[..len * 3].to_vec()]
            );
            let room = r.rooms[0].as_ref().unwrap();
            assert_eq!(room.k.dims(), &[2, len + 3, 1, 3]);
            let spare: Vec<f32> = room
                .k
                .narrow(1, len, 3)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert!(spare.iter().all(|&x| x == 0.0));
            assert!(r.grow && !c.select_rows(&[0]).unwrap().grow);
        }
        let g = KvCache::gather_prefixes_with_room(&[&c, &s], &[(1, 1), (0, 1)], 1, 2).unwrap();
        let (_, v) = g.layer(0).unwrap();
        let got: Vec<Vec<f32>> = v.reshape((2, 3)).unwrap().to_vec2().unwrap();
        assert_eq!(got, vec![first(0), first(1)]);
        assert_eq!(g.rooms[0].as_ref().unwrap().v.dims(), &[2, 3, 1, 3]);
        // Appending fills the room in place (the buffer is not replaced) and reads back.
        let mut g = g;
        let new = Tensor::ones((2, 1, 1, 3), DType::F32, &Device::Cpu).unwrap();
        let before = g.rooms[0].as_ref().unwrap().k.clone();
        let (k, _) = g.append(0, new.clone(), new).unwrap();
        // The write landed in the old buffer (a clone of it shares its storage).
        let written: Vec<f32> = before
            .narrow(1, 1, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(written, vec![1.0; 6]);
        let got: Vec<Vec<f32>> = k.reshape((2, 6)).unwrap().to_vec2().unwrap();
        assert_eq!(got[0], [first(0), vec![1.0; 3]].concat());
        assert_eq!(got[1], [first(1), vec![1.0; 3]].concat());
        // Truncate, then select: only the kept positions travel.
        let (k, _) = t.select_rows(&[1]).unwrap().layer(0).cloned().unwrap();
        assert_eq!(
            k.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![100.0, 101.0, 102.0]
        );
    }
}
