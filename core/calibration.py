"""How far scores can be trusted: reliability and ECE, and per-class operating thresholds.

Calibration: every prediction COCO counts (not ignored: not on a crowd region, within the 100
best of its class in its image) with score >= score_thr is *correct* when it is a true
positive at the evaluation's IoU. Scores fall in `n_bins` equal-width bins over [0, 1]
(bin i holds i/n <= s < (i+1)/n, the last one also 1.0; scores outside [0, 1] are clipped
into the end bins). ECE = sum over bins of (count / total) * |accuracy - mean score|; MCE =
the largest gap of a non-empty bin. Per-class ECE uses the same bins on that class's boxes.
The same definition as hotcoco's `COCOeval.calibration` (area all, maxDets 100), which the
tests hold it to.

Thresholds: for each class, over its counted predictions in descending score order, the cut
"keep score >= t" at every distinct score t (tied scores are kept or dropped together), with
precision, recall (of the class's ground truth) and F1 at the evaluation's IoU. Best-F1 is
the highest-F1 cut (the higher threshold on a tie); "precision >= p" is the lowest threshold
whose precision reaches p (the most recall at that precision); "recall >= r" the highest
threshold whose recall reaches r. A cut helps deployment; mAP itself rewards keeping
low-score boxes.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.outcomes import Outcome
from core.tables import Predictions
from core.thresholds import at_or_above

N_BINS = 10


@dataclass(frozen=True)
class Calibration:
    """ece, mce, bins (bin_lower, bin_upper, count, avg_confidence, avg_accuracy, gap),
    per_class (category_id, name, n, ece, mce), iou_thr, n_bins, n (predictions)."""

    ece: float
    mce: float
    bins: pd.DataFrame
    per_class: pd.DataFrame
    iou_thr: float
    n_bins: int
    n: int

    def as_dict(self) -> dict:
        """json-ready: ece, mce, n_bins, iou_thr, n, bins [..], per_class {name: ece}."""
        def clean(v):
            v = v.item() if hasattr(v, "item") else v
            return None if isinstance(v, float) and np.isnan(v) else v
        return {
            "ece": clean(self.ece), "mce": clean(self.mce), "n_bins": self.n_bins, "iou_thr": self.iou_thr,
            "n": self.n,
            "bins": [{k: clean(v) for k, v in row.items()} for row in self.bins.to_dict("records")],
            "per_class": {str(r.name): clean(r.ece) for r in self.per_class.itertuples()},
        }


def _counted(ev, score_thr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class position, score, correct) of the predictions COCO counts, score >= score_thr."""
    det, outcome, _ = ev._arrays
    keep = (outcome.code != Outcome.IGNORED.code) & at_or_above(det.score, score_thr)
    return det.cls[keep], det.score[keep], outcome.code[keep] == Outcome.TP.code


def calibration(ev, *, n_bins: int = N_BINS, score_thr: float = -np.inf) -> Calibration:
    """Reliability bins, ECE and MCE (overall and per class) at the evaluation's IoU."""
    if int(n_bins) < 1:
        raise ValueError(f"Invalid n_bins {n_bins!r}. Only positive integers are supported.")
    n_bins = int(n_bins)
    cls, score, correct = _counted(ev, score_thr)
    which = np.clip((score * n_bins).astype(np.int64) if len(score) else score.astype(np.int64), 0, n_bins - 1)
    count, conf, acc = _bin_sums(which, score, correct, n_bins)
    ece, mce = _ece(count, conf, acc)
    with np.errstate(divide="ignore", invalid="ignore"):
        bins = pd.DataFrame({
            "bin_lower": np.arange(n_bins) / n_bins, "bin_upper": np.arange(1, n_bins + 1) / n_bins,
            "count": count.astype(np.int64),
            "avg_confidence": np.where(count > 0, conf / count, np.nan),
            "avg_accuracy": np.where(count > 0, acc / count, np.nan),
        })
    bins["gap"] = (bins["avg_accuracy"] - bins["avg_confidence"]).abs()
    k = len(ev.dataset.categories)
    rows = []
    for c in range(k):
        mine = cls == c
        c_count, c_conf, c_acc = _bin_sums(which[mine], score[mine], correct[mine], n_bins)
        c_ece, c_mce = _ece(c_count, c_conf, c_acc)
        rows.append((int(mine.sum()), c_ece, c_mce))
    per_class = pd.DataFrame(rows, columns=["n", "ece", "mce"])
    per_class.insert(0, "name", ev.dataset.categories["name"].astype(str).to_numpy())
    per_class.insert(0, "category_id", ev.dataset.categories["id"].to_numpy())
    return Calibration(ece=ece, mce=mce, bins=bins, per_class=per_class, iou_thr=float(ev.iou_thr),
                       n_bins=n_bins, n=int(len(score)))


def _bin_sums(which, score, correct, n_bins):
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    conf = np.bincount(which, weights=score, minlength=n_bins)
    acc = np.bincount(which, weights=correct.astype(np.float64), minlength=n_bins)
    return count, conf, acc


def _ece(count, conf, acc) -> tuple[float, float]:
    total = count.sum()
    if total == 0:
        return float("nan"), float("nan")
    filled = count > 0
    gap = np.abs(acc[filled] / count[filled] - conf[filled] / count[filled])
    return float(np.sum(count[filled] / total * gap)), float(gap.max())


# ------------------------------------------------------------------------------ thresholds
def operating_points(ev, category_id: int | None = None) -> pd.DataFrame:
    """score_thr, n_tp, n_fp, precision, recall, f1 at every distinct score (keep >= score_thr),
    highest threshold first, for one class or, with category_id None, all classes together."""
    det, outcome, _ = ev._arrays
    counted = outcome.code != Outcome.IGNORED.code
    regular = ~ev.dataset.annotations["iscrowd"].to_numpy().astype(bool)
    gt_cat = ev.dataset.annotations["category_id"].to_numpy()
    if category_id is None:
        rows, n_gt = counted, int(regular.sum())
    else:
        if category_id not in set(ev.dataset.category_ids.tolist()):
            raise ValueError(f"Invalid category_id {category_id!r}. Only {ev.dataset.category_ids.tolist()} "
                             "are supported.")
        rows, n_gt = counted & (det.label == category_id), int((regular & (gt_cat == category_id)).sum())
    return _points(det.score[rows], outcome.code[rows] == Outcome.TP.code, n_gt)


def _points(score: np.ndarray, tp: np.ndarray, n_gt: int) -> pd.DataFrame:
    order = np.argsort(-score, kind="stable")
    score, tp = score[order], tp[order]
    n_tp, n_fp = np.cumsum(tp), np.cumsum(~tp)
    last = np.r_[score[1:] != score[:-1], True] if len(score) else np.zeros(0, bool)  # end of a tie run
    score, n_tp, n_fp = score[last], n_tp[last], n_fp[last]
    precision = n_tp / np.maximum(n_tp + n_fp, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = n_tp / n_gt if n_gt else np.full(len(n_tp), np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return pd.DataFrame({"score_thr": score, "n_tp": n_tp, "n_fp": n_fp, "precision": precision,
                         "recall": recall, "f1": f1})


def best_thresholds(ev, *, min_precision: float | None = None, min_recall: float | None = None) -> pd.DataFrame:
    """One row per class (and a last row "all classes", category_id -1): n_gt, best_f1,
    best_f1_thr, precision and recall there; with min_precision p: thr_precision (the lowest
    threshold with precision >= p) and its recall; with min_recall r: thr_recall (the highest
    threshold with recall >= r) and its precision. NaN where no cut qualifies."""
    rows = []
    for cid, name in list(ev.dataset.category_names.items()) + [(None, "all classes")]:
        pts = operating_points(ev, cid)
        row = {"category_id": -1 if cid is None else cid, "name": str(name)}
        regular = ~ev.dataset.annotations["iscrowd"].to_numpy().astype(bool)
        cats = ev.dataset.annotations["category_id"].to_numpy()
        row["n_gt"] = int(regular.sum() if cid is None else (regular & (cats == cid)).sum())
        row["n_pred"] = int(pts["n_tp"].iloc[-1] + pts["n_fp"].iloc[-1]) if len(pts) else 0
        if len(pts) and row["n_gt"]:
            best = int(np.argmax(pts["f1"].to_numpy()))  # first = highest threshold on a tie
            row.update(best_f1=pts["f1"].iloc[best], best_f1_thr=pts["score_thr"].iloc[best],
                       precision=pts["precision"].iloc[best], recall=pts["recall"].iloc[best])
        else:
            row.update(best_f1=np.nan, best_f1_thr=np.nan, precision=np.nan, recall=np.nan)
        if min_precision is not None:
            ok = np.flatnonzero(pts["precision"].to_numpy() >= min_precision) if row["n_gt"] else []
            row["thr_precision"] = pts["score_thr"].iloc[ok[-1]] if len(ok) else np.nan
            row["recall_at_thr_precision"] = pts["recall"].iloc[ok[-1]] if len(ok) else np.nan
        if min_recall is not None:
            ok = np.flatnonzero(pts["recall"].to_numpy() >= min_recall) if row["n_gt"] else []
            row["thr_recall"] = pts["score_thr"].iloc[ok[0]] if len(ok) else np.nan
            row["precision_at_thr_recall"] = pts["precision"].iloc[ok[0]] if len(ok) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def thresholds_json(table: pd.DataFrame, column: str = "best_f1_thr") -> str:
    """{"<class name>": {"category_id": id, "threshold": t}} for the classes that have one."""
    out = {}
    for row in table[table["category_id"] >= 0].itertuples():
        value = getattr(row, column)
        if not np.isnan(value):
            out[str(row.name)] = {"category_id": int(row.category_id), "threshold": float(value)}
    return json.dumps(out, indent=1)


def cut_per_class(predictions: Predictions, thresholds: dict[int, float], default: float = -np.inf) -> Predictions:
    """The predictions with score >= the threshold of their label (`default` for labels without one)."""
    labels = predictions.labels
    thr = np.full(len(labels), float(default))
    for label, value in thresholds.items():
        if value is not None and not np.isnan(value):
            thr[labels == label] = float(value)
    return predictions.subset(at_or_above(predictions.scores, thr))


def cut_per_class_csv(predictions: Predictions, thresholds: dict[int, float]) -> tuple[str, int]:
    """(submission CSV text of cut_per_class, boxes kept); every image keeps its row."""
    from core.submission import write_submission

    kept = cut_per_class(predictions, thresholds)
    buffer = io.StringIO()
    write_submission(kept, buffer)
    return buffer.getvalue(), len(kept)
