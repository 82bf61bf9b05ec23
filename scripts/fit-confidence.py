#!/usr/bin/env python3
"""Fits the weights of tarjama's confidence (src/check/confidence.rs) and reports how
well each signal finds the bad translations.

Input: `tarjama eval --segments-out SEG.jsonl` runs over FLORES lines with their
references. A line is bad when its sentence chrF (sacreBLEU's, against the reference) is
in the lowest quarter of its run. Every segment of a line shares the line's label.

    pip install numpy sacrebleu==2.4.3
    scripts/fit-confidence.py --fit SEG-1-200.jsonl REF-lines-1-200 \
        --check SEG-201-400.jsonl REF-lines-201-400

Prints, for the mean alone (what tarjama uses) and for the mean, minimum and doubtful
share together, the fitted weights and on each set the ROC-AUC of every signal and of
the fitted confidence, and what flagging below each confidence floor would catch.
"""
import argparse
import json
import math

import numpy as np
import sacrebleu

MIN_FLOOR = -12.0  # as src/check/confidence.rs floors the minimum


def load(segments_path, reference_path, offset):
    refs = open(reference_path, encoding="utf-8").read().split("\n")
    rows = [json.loads(l) for l in open(segments_path, encoding="utf-8") if l.strip()]
    hyp_of_line = {}
    for r in rows:
        hyp_of_line.setdefault(r["line"], []).append(r["translation"])
    chrf = {
        line: sacrebleu.sentence_chrf(" ".join(h), [refs[line - 1]]).score
        for line, h in hyp_of_line.items()
    }
    lines = sorted(chrf, key=lambda l: (chrf[l], l))
    bad_lines = set(lines[: round(len(lines) * 0.25)])
    data = []
    for r in rows:
        s = r.get("signals")
        if not s:
            continue
        data.append(
            dict(
                line=r["line"],
                bad=r["line"] in bad_lines,
                mean=s["mean"],
                min=max(s["min"], MIN_FLOOR),
                doubtful=s["doubtful"],
                contrast=r.get("source_contrast"),
                errors=any(w.get("severity", "error") == "error" for w in r["warnings"]),
            )
        )
    return data


def auc(scores, bad):
    """P(a bad item scores higher than a good one), ties half."""
    pos = [s for s, b in zip(scores, bad) if b]
    neg = [s for s, b in zip(scores, bad) if not b]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


FEATURES = {
    "mean": lambda d: [d["mean"]],
    "mean+min+doubtful": lambda d: [d["mean"], d["min"], d["doubtful"]],
}


def features(d, which="mean"):
    return np.array([1.0] + FEATURES[which](d))


def fit(data, which="mean", l2=1e-3, steps=20000, rate=0.5):
    """Logistic regression of 'not bad' on the features, by gradient descent."""
    x = np.array([features(d, which) for d in data])
    y = np.array([0.0 if d["bad"] else 1.0 for d in data])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - y) / len(y) + l2 * np.r_[0, w[1:]]
        w -= rate * grad
    return w


def report(name, data, w, which="mean"):
    bad = [d["bad"] for d in data]
    conf = [1 / (1 + math.exp(-features(d, which) @ w)) for d in data]
    print(f"{name}: {len(data)} segments, {sum(bad)} in bad lines")
    print(f"  mean log-prob   AUC {auc([-d['mean'] for d in data], bad):.3f}")
    print(f"  min log-prob    AUC {auc([-d['min'] for d in data], bad):.3f}")
    print(f"  doubtful share  AUC {auc([d['doubtful'] for d in data], bad):.3f}")
    with_contrast = [d for d in data if d["contrast"] is not None]
    if with_contrast:
        print(
            "  source contrast AUC "
            f"{auc([-d['contrast'] for d in with_contrast], [d['bad'] for d in with_contrast]):.3f}"
        )
    print(f"  confidence      AUC {auc([-c for c in conf], bad):.3f}")
    for floor in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75):
        low = [c < floor for c in conf]
        flagged = sum(low)
        hits = sum(l and b for l, b in zip(low, bad))
        err = [l or d["errors"] for l, d in zip(low, data)]
        ehits = sum(e and b for e, b in zip(err, bad))
        print(
            f"  confidence < {floor:.2f}: {flagged} segments ({100 * flagged / len(data):.0f} %), "
            f"precision {100 * hits / max(flagged, 1):.0f} %, recall {100 * hits / max(sum(bad), 1):.0f} %; "
            f"with check errors: {sum(err)} ({100 * sum(err) / len(data):.0f} %), "
            f"precision {100 * ehits / max(sum(err), 1):.0f} %, recall {100 * ehits / max(sum(bad), 1):.0f} %"
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fit", nargs=2, metavar=("SEGMENTS", "REFERENCE"), required=True)
    ap.add_argument("--check", nargs=2, metavar=("SEGMENTS", "REFERENCE"))
    args = ap.parse_args()
    train = load(*args.fit, 0)
    check = load(*args.check, 0) if args.check else None
    for which in FEATURES:
        w = fit(train, which)
        print(f"{which}: weights (bias first) " + ", ".join(f"{x:.4f}" for x in w))
        report("fit", train, w, which)
        if check:
            report("check", check, w, which)


if __name__ == "__main__":
    main()
