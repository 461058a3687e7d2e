//! The four canonical move lines as a token trie, and what one reference distribution per
//! trie node gives: the reference's exact probability of each environment action, the soft
//! value of the decision, and the oracle's tilted next-token distributions.
//!
//! A move line is exactly `go up|down|left|right` followed by the end-of-turn token
//! ([`crate::protocol::parse_action`]); any other continuation from any node is an invalid
//! action, whatever follows. So with the reference's next-token distribution `p(·|n)` at
//! each of the trie's internal nodes `n` (a [`DecisionProbe`]):
//!
//! - `P(move X | h)` is the product of `p` along the branch of `X`, and `P(invalid | h)` is
//!   `Σ_n P(reach n) · (mass of p(·|n) off the trie)` — a sum of positive terms, so it stays
//!   exact when the reference is nearly certain;
//! - with soft action values `Q` (from [`super::SoftLake`]), `Z(n) = E_ref[e^{Q(a)/β} | n]`
//!   satisfies `Z(n) = Σ_v p(v|n) · Z(child)` with `Z(leaf X) = e^{Q_X/β}` and
//!   `Z(off-trie) = e^{Q_invalid/β}`; `V_h = β·log Z(root)` is the soft value of the
//!   decision relative to the reference at this very history;
//! - the oracle's next token at node `n` is `π_o(v|n) = p(v|n) · Z(child_v) / Z(n)`, which
//!   sums to one by the recursion, so along any action the log-ratio telescopes:
//!   `β·Σ_t log π_o/p = Q(a) − V_h`, the soft advantage, exactly (up to f64 rounding).

use crate::lake::{Action, Move};
use crate::protocol::action_phrase;
use crate::tokenizer::{GymTokenizer, END_ID};

/// A node of the move-line trie.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    /// `(token, child)` pairs.
    children: Vec<(u32, usize)>,
    /// The move a leaf (end-of-turn written) stands for; `None` for internal nodes.
    leaf: Option<Move>,
}

/// The canonical move lines (`go X` + end-of-turn) as a trie over token ids. Node 0 is the
/// decision point (nothing of the move line written yet); internal nodes have smaller ids
/// than their children.
#[derive(Debug, Clone, PartialEq)]
pub struct MoveTrie {
    nodes: Vec<Node>,
    /// Per move in [`Move::ALL`] order: its ids, end-of-turn last.
    branches: [Vec<u32>; 4],
    /// Per move: the nodes along its branch, root first, leaf last (`len + 1` entries).
    paths: [Vec<usize>; 4],
}

impl MoveTrie {
    /// The trie of the gym tokenizer's move lines.
    pub fn new() -> MoveTrie {
        let tok = GymTokenizer::new();
        let branches = Move::ALL.map(|m| {
            let mut ids = tok
                .encode(action_phrase(m))
                .expect("move phrases are in the gym alphabet");
            ids.push(END_ID);
            ids
        });
        let mut nodes = vec![Node {
            children: Vec::new(),
            leaf: None,
        }];
        let mut paths: [Vec<usize>; 4] = Default::default();
        for (k, ids) in branches.iter().enumerate() {
            let mut n = 0;
            paths[k].push(0);
            for (j, &id) in ids.iter().enumerate() {
                let next = match nodes[n].children.iter().find(|(t, _)| *t == id) {
                    Some(&(_, c)) => c,
                    None => {
                        nodes.push(Node {
                            children: Vec::new(),
                            leaf: (j + 1 == ids.len()).then_some(Move::ALL[k]),
                        });
                        let c = nodes.len() - 1;
                        nodes[n].children.push((id, c));
                        c
                    }
                };
                n = next;
                paths[k].push(n);
            }
        }
        MoveTrie {
            nodes,
            branches,
            paths,
        }
    }

    /// Number of nodes (internal and leaves).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the trie is empty (never: it holds the root).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The ids of move `m`'s line, end-of-turn last.
    pub fn branch(&self, m: Move) -> &[u32] {
        &self.branches[m.index()]
    }

    /// The node after writing `token` at node `n`; `None` off the trie.
    pub fn child(&self, n: usize, token: u32) -> Option<usize> {
        self.nodes
            .get(n)?
            .children
            .iter()
            .find(|(t, _)| *t == token)
            .map(|&(_, c)| c)
    }

    /// The move of a leaf.
    pub fn leaf(&self, n: usize) -> Option<Move> {
        self.nodes.get(n).and_then(|x| x.leaf)
    }

    /// Whether `n` is an internal node (the model still chooses a token there).
    pub fn is_internal(&self, n: usize) -> bool {
        self.nodes.get(n).is_some_and(|x| x.leaf.is_none())
    }

    /// The internal nodes along move `m`'s branch paired with the branch position whose
    /// model output is their distribution: feeding `branch(m)[..len − 1]` after the decision
    /// point, output `j` is the distribution at node `paths[m][j + 1]`.
    pub(crate) fn branch_nodes(&self, m: Move) -> impl Iterator<Item = (usize, usize)> + '_ {
        let path = &self.paths[m.index()];
        (0..path.len() - 2).map(move |j| (j, path[j + 1]))
    }
}

impl Default for MoveTrie {
    fn default() -> Self {
        MoveTrie::new()
    }
}

/// The reference's next-token log-distribution (f64, full vocabulary) at every internal
/// node of the [`MoveTrie`], measured at one decision point of one history.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionProbe {
    /// Indexed by node id; empty for leaves.
    dists: Vec<Vec<f64>>,
}

/// `log Σ exp(xs)` (−∞ for an empty or all −∞ input).
pub(crate) fn log_sum_exp(xs: impl IntoIterator<Item = f64> + Clone) -> f64 {
    let m = xs.clone().into_iter().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.into_iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Log-softmax in f64 of f32 logits.
pub(crate) fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let z: Vec<f64> = logits.iter().map(|&x| x as f64).collect();
    let lse = log_sum_exp(z.iter().copied());
    z.into_iter().map(|x| x - lse).collect()
}

impl DecisionProbe {
    /// A probe from per-node logits (`logits[n]` for every internal node `n`, nothing for
    /// leaves); errors on a missing or mis-sized row.
    pub fn from_logits(trie: &MoveTrie, logits: Vec<Option<Vec<f32>>>) -> Result<Self, String> {
        if logits.len() != trie.len() {
            return Err(format!(
                "probe has {} nodes, the trie {}",
                logits.len(),
                trie.len()
            ));
        }
        let mut dists = Vec::with_capacity(trie.len());
        let mut vocab = None;
        for (n, l) in logits.into_iter().enumerate() {
            match (trie.is_internal(n), l) {
                (true, Some(l)) => {
                    if *vocab.get_or_insert(l.len()) != l.len() || l.is_empty() {
                        return Err(format!("probe node {n} has {} logits", l.len()));
                    }
                    if l.iter().any(|x| !x.is_finite()) {
                        return Err(format!("probe node {n} has a non-finite logit"));
                    }
                    dists.push(log_softmax(&l));
                }
                (true, None) => return Err(format!("probe node {n} has no distribution")),
                (false, _) => dists.push(Vec::new()),
            }
        }
        Ok(DecisionProbe { dists })
    }

    /// The reference's log-distribution at internal node `n`.
    pub fn dist(&self, n: usize) -> &[f64] {
        &self.dists[n]
    }

    /// Probability mass of node `n`'s distribution on tokens that leave the trie.
    fn off_mass(&self, trie: &MoveTrie, n: usize) -> f64 {
        let d = &self.dists[n];
        let children = &trie.nodes[n].children;
        d.iter()
            .enumerate()
            .filter(|(v, _)| !children.iter().any(|(t, _)| *t as usize == *v))
            .map(|(_, x)| x.exp())
            .sum()
    }

    /// The reference's probability of each environment action at this decision point, in
    /// [`Action::ALL`] order (moves, then invalid); they sum to one.
    pub fn action_probs(&self, trie: &MoveTrie) -> [f64; 5] {
        // P(reach n) for every node, root first (children have larger ids).
        let mut reach = vec![0.0; trie.len()];
        reach[0] = 1.0;
        let mut invalid = 0.0;
        for n in 0..trie.len() {
            if !trie.is_internal(n) {
                continue;
            }
            for &(t, c) in &trie.nodes[n].children {
                reach[c] = reach[n] * self.dists[n][t as usize].exp();
            }
            invalid += reach[n] * self.off_mass(trie, n);
        }
        let mut out = [0.0; 5];
        for m in Move::ALL {
            let leaf = *trie.paths[m.index()].last().unwrap_or(&0);
            out[m.index()] = reach[leaf];
        }
        out[Action::Invalid.index()] = invalid;
        out
    }

    /// `log Z(n)` for every node (see the module docs) for soft action values `q` in
    /// [`Action::ALL`] order and temperature `beta`.
    pub fn log_z(&self, trie: &MoveTrie, q: &[f64; 5], beta: f64) -> Vec<f64> {
        let off = q[Action::Invalid.index()] / beta;
        let mut lz = vec![0.0; trie.len()];
        for n in (0..trie.len()).rev() {
            if let Some(m) = trie.leaf(n) {
                lz[n] = q[m.index()] / beta;
                continue;
            }
            let om = self.off_mass(trie, n);
            let terms = trie.nodes[n]
                .children
                .iter()
                .map(|&(t, c)| self.dists[n][t as usize] + lz[c])
                .chain((om > 0.0).then(|| om.ln() + off));
            lz[n] = log_sum_exp(terms);
        }
        lz
    }

    /// The oracle's next-token log-distribution at internal node `n`, given `log_z` from
    /// [`DecisionProbe::log_z`] and the invalid action's `Q/β`: `log p(v|n) + log Z(child_v)
    /// − log Z(n)`.
    pub fn tilted(
        &self,
        trie: &MoveTrie,
        n: usize,
        log_z: &[f64],
        q_invalid_over_beta: f64,
    ) -> Vec<f64> {
        let d = &self.dists[n];
        let mut out: Vec<f64> = d
            .iter()
            .map(|x| x + q_invalid_over_beta - log_z[n])
            .collect();
        for &(t, c) in &trie.nodes[n].children {
            out[t as usize] = d[t as usize] + log_z[c] - log_z[n];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe with random-looking but fixed logits.
    fn probe(trie: &MoveTrie, vocab: usize, seed: u64) -> DecisionProbe {
        let mut rng = padv_core::eval::SplitMix64::new(seed);
        let logits = (0..trie.len())
            .map(|n| {
                trie.is_internal(n)
                    .then(|| (0..vocab).map(|_| (4.0 * rng.next_f64()) as f32).collect())
            })
            .collect();
        DecisionProbe::from_logits(trie, logits).unwrap()
    }

    #[test]
    fn trie_shape() {
        let t = MoveTrie::new();
        // root, g, o, space, then up (2), down (4), left (4), right (5) letters, 4 leaves.
        assert_eq!(t.len(), 4 + 2 + 4 + 4 + 5 + 4);
        for m in Move::ALL {
            let mut n = 0;
            for &id in t.branch(m) {
                assert!(t.is_internal(n));
                n = t.child(n, id).unwrap();
            }
            assert_eq!(t.leaf(n), Some(m));
        }
        assert_eq!(t.child(0, END_ID), None);
    }

    #[test]
    fn probabilities_sum_to_one_and_z_is_the_expectation() {
        let t = MoveTrie::new();
        let p = probe(&t, crate::tokenizer::vocab_size(), 3);
        let probs = p.action_probs(&t);
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // P(move) by hand: the product along the branch.
        for m in Move::ALL {
            let mut n = 0;
            let mut lp = 0.0;
            for &id in t.branch(m) {
                lp += p.dist(n)[id as usize];
                n = t.child(n, id).unwrap();
            }
            assert!((lp.exp() - probs[m.index()]).abs() < 1e-15);
        }
        let q = [0.3, 0.9, 0.0, 0.5, 0.2];
        let beta = 0.1;
        let lz = p.log_z(&t, &q, beta);
        let z: f64 = probs
            .iter()
            .zip(&q)
            .map(|(p, q)| p * (q / beta).exp())
            .sum();
        assert!((lz[0] - z.ln()).abs() < 1e-12, "{} vs {}", lz[0], z.ln());
    }

    /// Every tilted distribution sums to one and the log-ratio telescopes to Q − V.
    #[test]
    fn the_tilt_is_normalised_and_telescopes() {
        let t = MoveTrie::new();
        let p = probe(&t, crate::tokenizer::vocab_size(), 9);
        let q = [0.1, 0.8, 0.05, 0.7, 0.0];
        let beta = 0.1;
        let lz = p.log_z(&t, &q, beta);
        let qi = q[4] / beta;
        for n in (0..t.len()).filter(|&n| t.is_internal(n)) {
            let s: f64 = p.tilted(&t, n, &lz, qi).iter().map(|x| x.exp()).sum();
            assert!((s - 1.0).abs() < 1e-12, "node {n}: {s}");
        }
        let v = beta * lz[0];
        for m in Move::ALL {
            let mut n = 0;
            let mut ratio = 0.0;
            for &id in t.branch(m) {
                ratio += p.tilted(&t, n, &lz, qi)[id as usize] - p.dist(n)[id as usize];
                n = t.child(n, id).unwrap();
            }
            assert!((beta * ratio - (q[m.index()] - v)).abs() < 1e-12);
        }
        // Leaving the trie after "go ": an invalid action, Q_invalid − V.
        let mut n = 0;
        let mut ratio = 0.0;
        let go = GymTokenizer::new().encode("go x").unwrap();
        for &id in &go {
            ratio += p.tilted(&t, n, &lz, qi)[id as usize] - p.dist(n)[id as usize];
            match t.child(n, id) {
                Some(c) => n = c,
                None => break,
            }
        }
        assert!((beta * ratio - (q[4] - v)).abs() < 1e-12);
    }
}
