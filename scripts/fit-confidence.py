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

With --aggregates, the segments must carry `token_logprobs` or `coverage` (from
`cargo run --release --example confidence_audit -- --tokens|--coverage SEG.jsonl`), and it
prints instead, for each quantity derived from them alone and together with the mean, the
line-level ROC-AUC of a logistic fit on --fit and of the same weights on --check.
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
                aggregates=aggregates(r),
            )
        )
    return data


def aggregates(record):
    """Quantities a confidence could be built from, beyond the decoder's three signals."""
    out = {"mean": record["signals"]["mean"]}
    lp = record.get("token_logprobs")
    if lp:
        lp = np.array(lp)
        low = np.sort(lp)
        half = len(lp) // 2
        out.update(
            {
                "mean under the first prompt": lp.mean(),
                "min": max(lp.min(), MIN_FLOOR),
                "mean of 3 lowest": low[:3].mean(),
                "mean of 5 lowest": low[:5].mean(),
                "share under -1": (lp < -1).mean(),
                "share under -2": (lp < -2).mean(),
                "tokens under -3": float((lp < -3).sum()),
                "10th percentile": np.quantile(lp, 0.1),
                "median": np.median(lp),
                "mean clipped at -4": np.maximum(lp, -4).mean(),
                "mean probability": np.exp(lp).mean(),
                "first half mean": lp[: max(half, 1)].mean(),
                "second half mean": lp[half:].mean(),
                "log tokens": math.log(len(lp)),
                "sum": lp.sum(),
            }
        )
    for i, (words, missing) in enumerate(record.get("coverage") or []):
        out[f"share without English, rarity {i}"] = missing / (1 + words)
        out[f"words without English, rarity {i}"] = float(missing)
    return out


def line_auc(data, doubt):
    """ROC-AUC over lines, a line as doubtful as its most doubtful segment."""
    worst, bad = {}, {}
    for d, x in zip(data, doubt):
        worst[d["line"]] = max(worst.get(d["line"], -math.inf), x)
        bad[d["line"]] = d["bad"]
    lines = list(worst)
    return auc([worst[l] for l in lines], [bad[l] for l in lines])


def fit_columns(data, names, l2=1e-3, steps=20000, rate=0.5):
    """Logistic fit of 'not bad' on standardized aggregates; returns a doubt scorer."""
    x = np.array([[d["aggregates"][n] for n in names] for d in data])
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.c_[np.ones(len(x)), (x - mu) / sd]
    y = np.array([0.0 if d["bad"] else 1.0 for d in data])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        w -= rate * (z.T @ (p - y) / len(y) + l2 * np.r_[0, w[1:]])

    def doubt(rows):
        xs = np.array([[d["aggregates"][n] for n in names] for d in rows])
        return list(-(np.c_[np.ones(len(xs)), (xs - mu) / sd] @ w))

    return doubt


def compare_aggregates(train, check):
    names = list(train[0]["aggregates"])
    if not names:
        raise SystemExit("--aggregates: the segments carry no token_logprobs or coverage")
    print("line-level ROC-AUC for the worst quarter: fit set / check set")
    for name in names:
        for columns in ([name], ["mean", name]):
            if columns == ["mean", "mean"] or not all(c in names for c in columns):
                continue
            doubt = fit_columns(train, columns)
            scores = f"{line_auc(train, doubt(train)):.3f}"
            if check:
                scores += f" / {line_auc(check, doubt(check)):.3f}"
            print(f"  {' + '.join(columns)}: {scores}")


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
    ap.add_argument("--aggregates", action="store_true")
    args = ap.parse_args()
    train = load(*args.fit, 0)
    check = load(*args.check, 0) if args.check else None
    if args.aggregates:
        compare_aggregates(train, check)
        return
    for which in FEATURES:
        w = fit(train, which)
        print(f"{which}: weights (bias first) " + ", ".join(f"{x:.4f}" for x in w))
        report("fit", train, w, which)
        if check:
            report("check", check, w, which)


if __name__ == "__main__":
    main()
