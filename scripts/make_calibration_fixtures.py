#!/usr/bin/env python3
"""Generate reference values for padv's calibration (crates/padv-core/src/eval/calibration).

Writes crates/padv-core/tests/fixtures/calibration/calibration.json: several score/label sets
(separable classes, noise, heavy ties, a large score scale with a low base rate, a constant
score, tiny sets) with, from scikit-learn:

- Platt scaling: StandardScaler (population standard deviation) followed by
  LogisticRegression(C=1.0) -- L2 penalty 0.5*w^2 on the slope, intercept unpenalised --
  solved to tol 1e-14 by the exact Newton solver ("newton-cholesky"): the standardised
  coefficient and intercept and predictions at chosen scores;
- IsotonicRegression(increasing=True, out_of_bounds="clip"): X_thresholds_, y_thresholds_
  and predictions at chosen scores (inside, between and outside the training range);
- brier_score_loss and log_loss of predictions (clipped to [1e-15, 1 - 1e-15] first, padv's
  stated clipping; scikit-learn's own clipping at float64 eps then changes nothing), and the
  expected calibration error from calibration_curve(n_bins=10, strategy="uniform") with the
  bin counts from the same binning: sum_b n_b / n * |prob_true_b - prob_pred_b|;
- a cross-validation with an explicit fold assignment: both maps fitted on the other folds,
  applied to the held-out fold, the metrics of the pooled held-out predictions.

tests/calibration_fixtures.rs compares padv against these values (tolerances stated there).
Developer-side only (CI never runs Python):

  python3 -m venv /tmp/skl && /tmp/skl/bin/pip install numpy scikit-learn
  /tmp/skl/bin/python scripts/make_calibration_fixtures.py
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.preprocessing import StandardScaler

OUT = (
    pathlib.Path(__file__).resolve().parent.parent
    / "crates/padv-core/tests/fixtures/calibration/calibration.json"
)
EPS = 1e-15
N_BINS = 10


def platt(scores, labels):
    scaler = StandardScaler().fit(scores.reshape(-1, 1))
    clf = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-14, max_iter=1000)
    clf.fit(scaler.transform(scores.reshape(-1, 1)), labels)
    predict = lambda x: clf.predict_proba(scaler.transform(np.asarray(x).reshape(-1, 1)))[:, 1]
    return clf, predict


def isotonic(scores, labels):
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(scores, labels)
    return iso, iso.predict


def metrics(pred, labels):
    pred = np.asarray(pred, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    clipped = np.clip(pred, EPS, 1 - EPS)
    prob_true, prob_pred = calibration_curve(labels, pred, n_bins=N_BINS, strategy="uniform")
    bins = np.linspace(0.0, 1.0, N_BINS + 1)
    counts = np.bincount(np.searchsorted(bins[1:-1], pred), minlength=N_BINS)
    counts = counts[counts > 0]
    ece = float(np.sum(counts / len(pred) * np.abs(prob_true - prob_pred)))
    return {
        "predicted": [float(p) for p in pred],
        "outcomes": [bool(y) for y in labels],
        "brier": float(brier_score_loss(labels, pred)),
        "log_loss": float(log_loss(labels, clipped, labels=[False, True])),
        "ece": ece,
    }


def stratified(labels, k, rng):
    folds = np.empty(len(labels), dtype=int)
    nxt = 0
    for want in (True, False):
        members = np.flatnonzero(labels == want)
        rng.shuffle(members)
        for i in members:
            folds[i] = nxt % k
            nxt += 1
    return folds


def cross_validated(scores, labels, folds, k):
    out = {"platt": [], "isotonic": [], "outcomes": []}
    for f in range(k):
        train, test = folds != f, folds == f
        if not test.any():
            continue
        _, p = platt(scores[train], labels[train])
        _, q = isotonic(scores[train], labels[train])
        out["platt"].extend(p(scores[test]))
        out["isotonic"].extend(q(scores[test]))
        out["outcomes"].extend(labels[test])
    return {
        "folds": [int(f) for f in folds],
        "k": k,
        "platt": metrics(out["platt"], out["outcomes"]),
        "isotonic": metrics(out["isotonic"], out["outcomes"]),
    }


def case(name, scores, labels, rng, k=5):
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    lo, hi = scores.min(), scores.max()
    span = hi - lo if hi > lo else 1.0
    eval_scores = np.concatenate(
        [
            scores[: min(len(scores), 10)],
            [lo - span, hi + span, lo, hi, (lo + hi) / 2],
            lo + span * rng.random(8),
        ]
    )
    clf, p = platt(scores, labels)
    iso, q = isotonic(scores, labels)
    out = {
        "name": name,
        "scores": [float(s) for s in scores],
        "labels": [bool(y) for y in labels],
        "eval_scores": [float(s) for s in eval_scores],
        "platt": {
            "coef_standardised": float(clf.coef_[0, 0]),
            "intercept_standardised": float(clf.intercept_[0]),
            "predictions": [float(v) for v in p(eval_scores)],
            "in_sample": metrics(p(scores), labels),
        },
        "isotonic": {
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
            "predictions": [float(v) for v in q(eval_scores)],
            "in_sample": metrics(q(scores), labels),
        },
    }
    if labels.sum() >= k and (~labels).sum() >= k:
        out["cv"] = cross_validated(scores, labels, stratified(labels, k, rng), k)
    return out


def main():
    rng = np.random.default_rng(20261218)
    cases = []
    # Separable classes: the unpenalised slope would be infinite.
    cases.append(case("separable_n12", [0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
                      [0] * 6 + [1] * 6, rng, k=3))
    for n in (4, 60, 400):
        labels = rng.random(n) < 0.45
        labels[0], labels[-1] = True, False
        scores = rng.normal(size=n) + 1.2 * labels
        cases.append(case(f"noisy_n{n}", scores, labels, rng))
    # Heavy ties: scores on a coarse grid.
    labels = rng.random(150) < 0.5
    labels[0], labels[-1] = True, False
    scores = np.round(rng.normal(size=150) + 0.8 * labels, 0)
    cases.append(case("ties_n150", scores, labels, rng))
    # A sum-aggregated score: large scale and offset, low base rate.
    labels = rng.random(300) < 0.2
    labels[0], labels[-1] = True, False
    scores = -800.0 + 60.0 * (rng.normal(size=300) + 0.9 * labels)
    cases.append(case("large_scale_n300", scores, labels, rng))
    # A constant score: Platt can only learn the base rate, isotonic one value.
    cases.append(case("constant_n10", [2.5] * 10, [1, 0, 0, 1, 0, 0, 0, 1, 0, 0], rng, k=3))
    json.dump(
        {
            "generator": "scripts/make_calibration_fixtures.py",
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
            "log_loss_eps": EPS,
            "ece_bins": N_BINS,
            "cases": cases,
        },
        open(OUT, "w"),
        separators=(",", ":"),
    )
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
