//! Scores sorted once, with their labels and tie groups: the shared base of AUROC, average
//! precision, the bootstrap and cross-validation.
//!
//! Sorting is the only `O(n log n)` step. Every statistic after that is one `O(n)` walk over
//! the tie groups, with optional integer weights per item: a weight of 0/1 selects a fold, a
//! multinomial count is a bootstrap resample. That is what keeps a 1000-resample bootstrap
//! over a few hundred grid cells cheap.

/// Sort key for a score: NaN is not expected here (callers reject or drop it), and `-0.0`
/// is mapped to `0.0` so that equal scores always fall into one tie group.
#[inline]
pub(crate) fn score_key(x: f64) -> f64 {
    x + 0.0
}

/// An unsigned key with the order of `f64::total_cmp` on [`score_key`]`(x)`: flip all bits
/// of negatives, set the sign bit of positives. Equal keys mean equal scores.
fn sortable_bits(x: f64) -> u64 {
    let b = score_key(x).to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// Below this many items a comparison sort is as fast as the radix sort.
const RADIX_MIN: usize = 1 << 11;

/// Sort `(key, position)` pairs by key. Large inputs use a stable LSD radix sort on bytes,
/// skipping the byte positions where every key agrees (scores of one scale share their
/// sign and exponent bytes): a few linear passes instead of `n log n` comparisons, which is
/// most of a UQ grid cell's cost at 10^5 records. Ties end in input order either way, though
/// nothing downstream depends on the order within a tie group.
fn sort_keyed(items: &mut Vec<(u64, usize)>) {
    let n = items.len();
    if n < RADIX_MIN {
        items.sort_unstable();
        return;
    }
    let mut hist = vec![[0usize; 256]; 8];
    for &(k, _) in items.iter() {
        for (d, h) in hist.iter_mut().enumerate() {
            h[((k >> (8 * d)) & 0xFF) as usize] += 1;
        }
    }
    let mut buf = vec![(0u64, 0usize); n];
    for (d, h) in hist.iter().enumerate() {
        if h.contains(&n) {
            continue; // every key has the same byte here: the pass would change nothing
        }
        let mut next = [0usize; 256];
        let mut total = 0;
        for (slot, &c) in next.iter_mut().zip(h.iter()) {
            *slot = total;
            total += c;
        }
        for &(k, i) in items.iter() {
            let b = ((k >> (8 * d)) & 0xFF) as usize;
            buf[next[b]] = (k, i);
            next[b] += 1;
        }
        std::mem::swap(items, &mut buf);
    }
}

/// Scores in ascending order, grouped into ties.
#[derive(Debug, Clone)]
pub(crate) struct Ranked {
    /// Input positions, sorted by score ascending.
    order: Vec<usize>,
    /// Labels in sorted order.
    positive: Vec<bool>,
    /// Exclusive end of each tie group in sorted order.
    group_ends: Vec<usize>,
    n_pos: usize,
}

impl Ranked {
    /// Sort `scores` (same length as `labels`; no NaN).
    pub(crate) fn new(scores: &[f64], labels: &[bool]) -> Ranked {
        let n = scores.len().min(labels.len());
        let mut keyed: Vec<(u64, usize)> = (0..n).map(|i| (sortable_bits(scores[i]), i)).collect();
        sort_keyed(&mut keyed);
        let mut group_ends = Vec::new();
        for k in 1..n {
            if keyed[k].0 != keyed[k - 1].0 {
                group_ends.push(k);
            }
        }
        if n > 0 {
            group_ends.push(n);
        }
        let order: Vec<usize> = keyed.iter().map(|&(_, i)| i).collect();
        let positive: Vec<bool> = order.iter().map(|&i| labels[i]).collect();
        let n_pos = positive.iter().filter(|&&p| p).count();
        Ranked {
            order,
            positive,
            group_ends,
            n_pos,
        }
    }

    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Number of positives.
    pub(crate) fn n_pos(&self) -> usize {
        self.n_pos
    }

    /// Input position of sorted position `k`.
    pub(crate) fn input_position(&self, k: usize) -> usize {
        self.order[k]
    }

    /// Number of tie groups.
    pub(crate) fn n_groups(&self) -> usize {
        self.group_ends.len()
    }

    /// Tie-group index (ascending score) of each positive and of each negative, in sorted
    /// order. `None` beyond `u32::MAX` items (compact indices keep the bootstrap's
    /// random reads in cache).
    pub(crate) fn class_groups(&self) -> Option<(Vec<u32>, Vec<u32>)> {
        u32::try_from(self.len()).ok()?;
        let mut pos = Vec::with_capacity(self.n_pos);
        let mut neg = Vec::with_capacity(self.len() - self.n_pos);
        let mut start = 0;
        for (g, &end) in self.group_ends.iter().enumerate() {
            let g = g as u32; // fits: groups ≤ items ≤ u32::MAX
            for &p in &self.positive[start..end] {
                if p {
                    pos.push(g);
                } else {
                    neg.push(g);
                }
            }
            start = end;
        }
        Some((pos, neg))
    }

    /// 1-based average ranks (ties share the mean rank), in input order.
    pub(crate) fn average_ranks(&self) -> Vec<f64> {
        let mut ranks = vec![0.0; self.len()];
        let mut start = 0;
        for &end in &self.group_ends {
            // Ranks start+1 ..= end share their mean (start + 1 + end) / 2.
            let rank = (start + 1 + end) as f64 / 2.0;
            for &i in &self.order[start..end] {
                ranks[i] = rank;
            }
            start = end;
        }
        ranks
    }

    /// AUROC with unit weights (`None` when a class is absent).
    pub(crate) fn auroc(&self) -> Option<f64> {
        self.auroc_weighted(|_| 1)
    }

    /// AUROC where the item at SORTED position `k` counts `weight(k)` times.
    ///
    /// Mann–Whitney in integers: every positive scores one point per negative below it and
    /// half a point per tied negative. Accumulating twice the count keeps it exact, so the
    /// only rounding is the final division. The walk is sequential and branch-free, so a
    /// bootstrap resample costs one pass over contiguous memory.
    pub(crate) fn auroc_weighted(&self, weight: impl Fn(usize) -> u64) -> Option<f64> {
        let mut start = 0;
        let mut neg_below = 0u64;
        let mut pos_total = 0u64;
        let mut twice_wins = 0u64;
        for &end in &self.group_ends {
            let (mut wp, mut wn) = (0u64, 0u64);
            for (k, &p) in self.positive[start..end].iter().enumerate() {
                let w = weight(start + k);
                let wpos = w * u64::from(p);
                wp += wpos;
                wn += w - wpos;
            }
            twice_wins += wp * (2 * neg_below + wn);
            neg_below += wn;
            pos_total += wp;
            start = end;
        }
        if pos_total == 0 || neg_below == 0 {
            return None;
        }
        Some(twice_wins as f64 / (2.0 * pos_total as f64 * neg_below as f64))
    }

    /// Training and held-out AUROC of every cross-validation fold in ONE walk (instead of
    /// two per fold). `fold_of[k]` is the fold of the item at sorted position `k`, or
    /// `None`; an item without a fold (or with one ≥ `k`) is held out nowhere and trains
    /// everywhere.
    ///
    /// With `W(A, B)` the twice-counted wins of positives in `A` over negatives in `B`, fold
    /// `g`'s training wins follow by inclusion–exclusion from per-item sums:
    /// `W(¬g, ¬g) = W(all, all) − W(g, all) − W(all, g) + W(g, g)`, and each of the four
    /// terms costs O(1) per item, so the walk is O(n) whatever `k` is.
    pub(crate) fn fold_aurocs(
        &self,
        fold_of: impl Fn(usize) -> Option<usize>,
        k: usize,
    ) -> Vec<(Option<f64>, Option<f64>)> {
        let bucket = |j: usize| fold_of(j).map_or(k, |f| f.min(k));
        let p_all = self.n_pos as u64;
        let (mut neg_below_all, mut pos_below_all, mut all_wins) = (0u64, 0u64, 0u64);
        // Per fold (index k = no fold):
        let mut neg_below = vec![0u64; k + 1]; // negatives of the fold in lower groups
        let mut n_pos = vec![0u64; k + 1];
        let mut n_neg = vec![0u64; k + 1];
        let mut pos_side = vec![0u64; k + 1]; // W(fold, all)
        let mut neg_side = vec![0u64; k + 1]; // W(all, fold)
        let mut held = vec![0u64; k + 1]; // W(fold, fold)
        let mut group_neg = vec![0u64; k + 1]; // negatives of the fold in the current group
        let mut start = 0;
        for &end in &self.group_ends {
            let labels = &self.positive[start..end];
            let gp = labels.iter().filter(|&&p| p).count() as u64;
            let gn = labels.len() as u64 - gp;
            for (j, &p) in labels.iter().enumerate() {
                if !p {
                    group_neg[bucket(start + j)] += 1;
                }
            }
            for (j, &p) in labels.iter().enumerate() {
                let f = bucket(start + j);
                if p {
                    pos_side[f] += 2 * neg_below_all + gn;
                    held[f] += 2 * neg_below[f] + group_neg[f];
                } else {
                    let pos_above = p_all - pos_below_all - gp;
                    neg_side[f] += 2 * pos_above + gp;
                }
            }
            all_wins += gp * (2 * neg_below_all + gn);
            for (j, &p) in labels.iter().enumerate() {
                let f = bucket(start + j);
                if p {
                    n_pos[f] += 1;
                } else {
                    n_neg[f] += 1;
                    neg_below[f] += 1;
                    group_neg[f] = 0;
                }
            }
            neg_below_all += gn;
            pos_below_all += gp;
            start = end;
        }
        let auc = |wins: u64, p: u64, n: u64| {
            (p > 0 && n > 0).then(|| wins as f64 / (2.0 * p as f64 * n as f64))
        };
        (0..k)
            .map(|g| {
                let train_wins = all_wins + held[g] - pos_side[g] - neg_side[g];
                (
                    auc(train_wins, p_all - n_pos[g], neg_below_all - n_neg[g]),
                    auc(held[g], n_pos[g], n_neg[g]),
                )
            })
            .collect()
    }

    /// Average precision, scikit-learn's step definition: thresholds at each distinct score
    /// from the top, `AP = Σ (R_n − R_{n−1})·P_n`. `None` without positives.
    pub(crate) fn average_precision(&self) -> Option<f64> {
        if self.n_pos == 0 {
            return None;
        }
        let n_pos = self.n_pos as f64;
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut prev_recall = 0.0;
        let mut ap = 0.0;
        let mut end = self.len();
        for g in (0..self.group_ends.len()).rev() {
            let start = if g == 0 { 0 } else { self.group_ends[g - 1] };
            let pos = self.positive[start..end].iter().filter(|&&p| p).count();
            tp += pos;
            fp += end - start - pos;
            let recall = tp as f64 / n_pos;
            let precision = tp as f64 / (tp + fp) as f64;
            ap += (recall - prev_recall) * precision;
            prev_recall = recall;
            end = start;
        }
        Some(ap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_merge_signed_zero() {
        let r = Ranked::new(&[0.0, -0.0, 1.0], &[true, false, true]);
        assert_eq!(r.group_ends, vec![2, 3]);
        // positive at 0.0 ties the negative at -0.0 (1/2), positive at 1.0 beats it (1):
        // (0.5 + 1) / (2 * 1) = 0.75
        assert_eq!(r.auroc(), Some(0.75));
    }

    #[test]
    fn radix_sort_orders_like_total_cmp() {
        // Enough items for the radix path, with negatives, zeros of both signs, infinities,
        // heavy ties and a wide range of exponents.
        let mut rng = crate::eval::SplitMix64::new(5);
        let scores: Vec<f64> = (0..5000)
            .map(|i| match i % 7 {
                0 => -0.0,
                1 => 0.0,
                2 => f64::NEG_INFINITY,
                3 => (rng.below(20) as f64 - 10.0) / 4.0,
                4 => (rng.next_f64() - 0.5) * 1e12,
                5 => f64::INFINITY,
                _ => (rng.next_f64() - 0.5) * 1e-9,
            })
            .collect();
        let mut keyed: Vec<(u64, usize)> = scores
            .iter()
            .enumerate()
            .map(|(i, &x)| (sortable_bits(x), i))
            .collect();
        sort_keyed(&mut keyed);
        for w in keyed.windows(2) {
            let (a, b) = (scores[w[0].1] + 0.0, scores[w[1].1] + 0.0);
            assert!(a.total_cmp(&b).is_le(), "{a} before {b}");
            // stable: equal keys keep input order
            if a == b {
                assert!(w[0].1 < w[1].1);
            }
        }
        let mut seen: Vec<usize> = keyed.iter().map(|k| k.1).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..5000).collect::<Vec<_>>());
    }

    #[test]
    fn weighted_auroc_duplicates_items() {
        // scores 1 (neg), 2 (pos), 3 (neg); sorted positions equal input positions here.
        // Unit weights: the positive beats 1 of 2 -> 0.5.
        let r = Ranked::new(&[1.0, 2.0, 3.0], &[false, true, false]);
        assert_eq!(r.auroc(), Some(0.5));
        // Weight the low negative 3x: wins 3 of 4 negatives -> 0.75.
        assert_eq!(r.auroc_weighted(|k| if k == 0 { 3 } else { 1 }), Some(0.75));
        // Weight 0 on the low negative: a fold without it -> 0.
        assert_eq!(r.auroc_weighted(|k| u64::from(k != 0)), Some(0.0));
        // Dropping the positive leaves a single class.
        assert_eq!(r.auroc_weighted(|k| u64::from(k != 1)), None);
    }

    #[test]
    fn fold_aurocs_equal_weighted_walks() {
        let mut rng = crate::eval::SplitMix64::new(8);
        let n = 300;
        let labels: Vec<bool> = (0..n).map(|_| rng.next_f64() < 0.4).collect();
        let scores: Vec<f64> = (0..n).map(|_| rng.below(25) as f64).collect();
        let r = Ranked::new(&scores, &labels);
        // folds 0..4 by sorted position, plus some items without a fold
        let fold_of: Vec<Option<usize>> = (0..n)
            .map(|_| match rng.below(6) {
                5 => None,
                f => Some(f),
            })
            .collect();
        let got = r.fold_aurocs(|k| fold_of[k], 5);
        for (f, &(train, heldout)) in got.iter().enumerate() {
            let want_train = r.auroc_weighted(|k| u64::from(fold_of[k] != Some(f)));
            let want_heldout = r.auroc_weighted(|k| u64::from(fold_of[k] == Some(f)));
            assert_eq!((train, heldout), (want_train, want_heldout), "fold {f}");
        }
    }

    #[test]
    fn groups_and_ranks() {
        // sorted: 0.0 (input 3, neg), 1.0 (input 1, neg), 3.0 (inputs 0 and 2, both pos)
        let r = Ranked::new(&[3.0, 1.0, 3.0, 0.0], &[true, false, true, false]);
        assert_eq!(r.n_groups(), 3);
        assert_eq!(r.class_groups(), Some((vec![2, 2], vec![0, 1])));
        assert_eq!(r.input_position(0), 3);
        // ranks: 3.0 ties share (3 + 4) / 2 = 3.5
        assert_eq!(r.average_ranks(), vec![3.5, 2.0, 3.5, 1.0]);
    }
}
