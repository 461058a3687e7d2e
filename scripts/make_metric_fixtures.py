#!/usr/bin/env python3
"""Generate reference values for padv's rank metrics.

Writes crates/padv-core/tests/fixtures/metrics/metrics.json: several score/label sets
(ties, all-equal scores, negative and infinite-free scores, several sizes) with
scikit-learn's roc_auc_score and average_precision_score and SciPy's spearmanr, which
tests/metrics_fixtures.rs compares to padv's own implementations at 1e-12.

Run: /work/pyenv/bin/python scripts/make_metric_fixtures.py
"""
import json
import math
import pathlib

import numpy as np
import scipy
import sklearn
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/padv-core/tests/fixtures/metrics/metrics.json"


def finite_or_none(x):
    x = float(x)
    return None if math.isnan(x) else x


def case(name, scores, labels, other):
    scores = [float(s) for s in scores]
    labels = [bool(l) for l in labels]
    other = [float(o) for o in other]
    both = 0 < sum(labels) < len(labels)
    auroc = roc_auc_score(labels, scores) if both else None
    auprc = average_precision_score(labels, scores) if any(labels) else None
    if len(set(scores)) > 1 and len(set(other)) > 1:
        rho = spearmanr(scores, other).statistic
    else:
        rho = float("nan")  # SciPy warns and returns NaN for constant input
    return {
        "name": name,
        "scores": scores,
        "labels": labels,
        "other": other,
        "auroc": None if auroc is None else float(auroc),
        "auprc": None if auprc is None else float(auprc),
        "spearman": finite_or_none(rho),
    }


def main():
    rng = np.random.default_rng(20260601)
    cases = []
    for n in (2, 5, 17, 50, 400, 1200):
        labels = rng.random(n) < 0.4
        labels[0], labels[-1] = True, False  # both classes present
        scores = rng.normal(size=n) + 0.8 * labels
        other = rng.normal(size=n) + scores
        cases.append(case(f"continuous_n{n}", scores, labels, other))
        # heavy ties: scores rounded to a coarse grid, rewards in {0, 0.5, 1}
        tied = np.round(scores * 2) / 2
        rewards = rng.choice([0.0, 0.5, 1.0], size=n)
        cases.append(case(f"ties_n{n}", tied, labels, rewards))
    # negative scores only (log-prob-like), many ties
    n = 200
    labels = rng.random(n) < 0.5
    labels[0], labels[1] = True, False
    scores = -np.round(rng.exponential(size=n) * 4) / 4 - 0.25 * labels
    cases.append(case("negative_ties_n200", scores, labels, rng.normal(size=n)))
    # all scores equal: AUROC 0.5, AP = positive rate, Spearman undefined
    cases.append(case("all_equal_n10", [-1.5] * 10, [i % 3 == 0 for i in range(10)], list(range(10))))
    # perfectly separated and perfectly inverted
    cases.append(case("separated", [0.1, 0.2, 0.3, 0.8, 0.9], [0, 0, 0, 1, 1], [1, 2, 3, 4, 5]))
    cases.append(case("inverted", [0.9, 0.8, 0.3, 0.2, 0.1], [0, 0, 0, 1, 1], [1, 2, 3, 4, 5]))
    # single class: AUROC undefined; AP defined only with positives
    cases.append(case("only_positives", [0.3, 0.1, 0.2], [1, 1, 1], [3, 1, 2]))
    cases.append(case("only_negatives", [0.3, 0.1, 0.2], [0, 0, 0], [3, 1, 2]))
    # large magnitudes
    cases.append(case("large_magnitudes", [1e12, -1e12, 3e11, 3e11, 0.0, -5e-9],
                      [1, 0, 1, 0, 0, 1], [5, 1, 3, 3, 2, 0]))
    doc = {
        "generator": "scripts/make_metric_fixtures.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__},
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One case per line: diffable, and compact enough to commit.
    body = ",\n".join(json.dumps(c, separators=(",", ":")) for c in cases)
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"})[:-1]
    OUT.write_text(f'{head}, "cases": [\n{body}\n]}}\n')
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
