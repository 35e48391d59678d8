"""Suspected ground-truth errors, ranked: where a model's confident boxes disagree with the labels.

    issues = find_label_issues(dataset, preds)    # LabelIssues; issues.suspects is the ranked table

Each suspect is one of SUSPECT_KINDS, found by DetLens' rules on the evaluation's per-box
outcomes at IoU 0.5 (`core.evaluation`), each rule giving a suspicion in [0, 1] from the
model's *calibrated* confidence (the share of its boxes at that score that are true positives,
so the rules hold for a model whose scores top out at 0.4 as for one at 0.99):

- missing: a prediction overlapping no ground truth (IoU < 0.5 with every box, suspicion
  fading from IoU 0.1 to 0.5), not a lower-scoring copy of a box that found an object, and
  not the poor box of an unfound object of its class (that is a bad box);
- wrong_class: a ground truth with a prediction of another class on it (IoU >= 0.5, TIDE's
  classification error); suspicion p(other) * (1 - p(best box of its own class));
- bad_box: a ground truth whose own-class predictions (those for which it is the best match)
  overlap it only loosely: p * clip((0.75 - IoU) / 0.5) * (1 - p(a well-placed box, IoU >= 0.75));
- duplicate: two ground truths on one object (IoU >= 0.5, same class; >= 0.7 across classes);
  the one the model supports less is suspected, suspicion from the IoU and that support.

cleanlab's ObjectLab box scores (`cleanlab.object_detection.rank`: overlooked for missing,
swap for wrong_class and cross-class duplicates, badloc for bad_box) are computed on the
same boxes and blended in where they have an opinion: score = (1 - w) * rule + w * (1 - box
score), w = CLEANLAB_WEIGHT. Predictions should be out-of-fold: a model that saw the labels
repeats their errors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pandas as pd

from core.boxes import box_iou
from core.problems import Problem, Severity
from core.tables import Dataset, Predictions

MATCH_IOU = 0.5        # the competition's IoU: a prediction "on" a ground truth
GOOD_BOX_IOU = 0.75    # a model box this close to a ground truth confirms its placement
LOOSE_IOU = 0.1        # below this a prediction is not about that ground truth (TIDE's bg_thresh)
DUPLICATE_IOU = 0.5    # two ground truths of one class this close: one object boxed twice?
CROSS_DUPLICATE_IOU = 0.7  # across classes (one box inside another is often legitimate)
MIN_SUSPICION = 0.05   # suspects below this are not listed
CLEANLAB_WEIGHT = 0.1  # share of cleanlab's box score in the blended suspicion (chosen in bench/bench_label_issues.py)
CALIBRATION_BINS = 20
CONFIDENT = 0.5        # calibrated confidence from which cleanlab counts a box as confident ...
HIGH_CONFIDENCE_CAP = 0.95  # ... never above cleanlab's own threshold


class SuspectKind(str, Enum):
    """A kind of suspected label error, with what it means and the fix it suggests."""

    MISSING = "missing"
    WRONG_CLASS = "wrong_class"
    BAD_BOX = "bad_box"
    DUPLICATE = "duplicate"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_LABELS = {SuspectKind.MISSING: "Missing annotation", SuspectKind.WRONG_CLASS: "Wrong class",
           SuspectKind.BAD_BOX: "Bad box", SuspectKind.DUPLICATE: "Duplicate GT"}
_DESCRIPTIONS = {
    SuspectKind.MISSING: "A confident prediction on no ground truth: an object nobody boxed? Fix: add the model's box.",
    SuspectKind.WRONG_CLASS: "A confident prediction of another class on a ground truth. Fix: relabel it.",
    SuspectKind.BAD_BOX: "The model's box of this class overlaps it only loosely. Fix: take the model's box.",
    SuspectKind.DUPLICATE: "Another ground truth on the same object. Fix: delete this one.",
}
SUSPECT_KINDS: list[SuspectKind] = [SuspectKind.MISSING, SuspectKind.WRONG_CLASS,
                                    SuspectKind.BAD_BOX, SuspectKind.DUPLICATE]

# fix: what accepting the suggestion does to the ground truth (core.review applies it)
FIX_ADD, FIX_RELABEL, FIX_MOVE, FIX_DELETE = "add", "relabel", "move", "delete"
_FIX_OF_KIND = {SuspectKind.MISSING: FIX_ADD, SuspectKind.WRONG_CLASS: FIX_RELABEL,
                SuspectKind.BAD_BOX: FIX_MOVE, SuspectKind.DUPLICATE: FIX_DELETE}

SUSPECT_COLUMNS = [
    "suspect_id", "rank", "kind", "image_index", "image_id", "file_name",
    "ann_id", "category_id",                   # the ground truth in question (-1 for missing)
    "gt_x1", "gt_y1", "gt_x2", "gt_y2",        # its box (NaN for missing)
    "other_ann_id",                            # duplicate: the ground truth it duplicates (else -1)
    "model_category_id", "model_score", "model_x1", "model_y1", "model_x2", "model_y2",  # the evidence
    "iou",                                     # GT vs model box (duplicate: GT vs the other GT)
    "fix", "suggested_category_id",            # the suggested edit and the class after it
    "fix_x1", "fix_y1", "fix_x2", "fix_y2",    # the box after it (NaN for delete)
    "detlens_score", "cleanlab_score", "score",  # rule suspicion, cleanlab's (1 - box score), blended
]


class LabelIssuesError(ValueError):
    """The inputs cannot be checked (no annotations, no overlapping images); the message says why."""


@dataclass
class LabelIssues:
    """Ranked suspects (SUSPECT_COLUMNS, rank 1 = most suspicious) and what was noticed on the way."""

    suspects: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    cleanlab_used: bool = False
    n_images_checked: int = 0

    def counts(self) -> dict[str, int]:
        """Suspects per kind, in SUSPECT_KINDS order."""
        kinds = self.suspects["kind"].value_counts()
        return {k.value: int(kinds.get(k.value, 0)) for k in SUSPECT_KINDS}


def find_label_issues(dataset: Dataset, preds: Predictions, *, evaluation=None, use_cleanlab: bool = True,
                      cleanlab_weight: float = CLEANLAB_WEIGHT, min_suspicion: float = MIN_SUSPICION) -> LabelIssues:
    """Every suspect with a (blended) suspicion >= min_suspicion, ranked (see the module docstring).

    evaluation: an Evaluation of preds on dataset at IoU 0.5 to reuse (else one is run).
    Raises LabelIssuesError when the ground truth has no annotations or shares no image with preds.
    """
    from core.evaluation import evaluate

    _check_inputs(dataset, preds)
    if evaluation is None or abs(evaluation.iou_thr - MATCH_IOU) > 1e-9:
        evaluation = evaluate(dataset, preds, iou_thr=MATCH_IOU)
    dets, gts = evaluation.dets, evaluation.gts
    scores_raw = dets["score"].to_numpy()
    confidence = calibrated_confidence(scores_raw, dets["outcome"].astype(str).to_numpy() == "tp")
    high = _confident_score(scores_raw, confidence)
    # cleanlab has an opinion on missing boxes scoring >= its threshold (0.95 by default) only
    opinion_from = (0.95 if high is None else high) if use_cleanlab else np.inf
    rows = _rule_suspects(dataset, dets, gts, confidence, min_suspicion, opinion_from)
    problems = list(evaluation.problems) + _coverage_problems(dataset, preds)
    cleanlab_used = False
    if use_cleanlab:
        try:
            scores = cleanlab_box_scores(dataset, dets, high_probability_threshold=high)
        except ImportError:
            problems.append(Problem(Severity.WARNING, "cleanlab is not installed: suspects are ranked by "
                                    "DetLens' rules alone (pip install cleanlab)"))
        else:
            rows = _blend(rows, scores, cleanlab_weight)
            cleanlab_used = True
    if not cleanlab_used:
        rows["cleanlab_score"] = np.nan
        rows["score"] = rows["detlens_score"]
    rows = rows[rows["score"] >= min_suspicion].copy()
    rows["suspect_id"] = suspect_ids(rows)
    rows = rows.sort_values(["score", "image_index", "suspect_id"], ascending=[False, True, True], kind="stable")
    rows = rows.drop_duplicates("suspect_id").reset_index(drop=True)
    rows["rank"] = np.arange(1, len(rows) + 1)
    return LabelIssues(rows[SUSPECT_COLUMNS], problems, cleanlab_used,
                       int(np.unique(dets["image_index"]).size))


def _check_inputs(dataset: Dataset, preds: Predictions) -> None:
    if not len(dataset.annotations):
        raise LabelIssuesError(
            f"{dataset.source}: the ground truth has no annotations (a test split?), so there are no labels "
            "to check; give the json with the boxes, e.g. train.json or a validation fold")
    known = dataset.image_index_of_file(preds.image_keys) >= 0
    if not known.any():
        first = repr(preds.image_keys[0]) if len(preds.image_keys) else "none"
        raise LabelIssuesError(
            f"{preds.source}: none of its {len(preds.image_keys)} image(s) is in the ground truth "
            f"{dataset.source} (first image_id {first}; the ground truth's first file_name is "
            f"{dataset.images['file_name'].iloc[0]!r} if any): predictions for another dataset? "
            "Give the predictions made on this ground truth's images")


def _coverage_problems(dataset: Dataset, preds: Predictions) -> list[Problem]:
    """A warning when most prediction images are not the ground truth's: another dataset's file?"""
    known = dataset.image_index_of_file(preds.image_keys) >= 0
    if known.mean() >= 0.5:
        return []
    return [Problem(Severity.WARNING, f"only {int(known.sum())} of the {len(known)} images in the predictions are "
                    f"in the ground truth {dataset.source}: predictions for another dataset? Suspects on the "
                    "shared file names compare boxes of different images", file=preds.source)]


def calibrated_confidence(scores: np.ndarray, is_tp: np.ndarray, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """[N] share of true positives among predictions scoring about the same: a monotone map of
    the score, read off score-quantile bins and interpolated (scores [N], is_tp [N] bool)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return scores.copy()
    order = np.argsort(scores, kind="stable")
    chunks = np.array_split(order, min(bins, len(order)))
    centers = np.array([scores[c].mean() for c in chunks])
    rates = np.maximum.accumulate(np.array([is_tp[c].mean() for c in chunks]))  # monotone in the score
    return np.interp(scores, centers, rates)


def _confident_score(scores: np.ndarray, confidence: np.ndarray) -> float | None:
    """The raw score from which this model's boxes are right at least half the time (cleanlab's
    fixed 0.95 means "confident" only for models scoring like it expects); None: keep 0.95."""
    confident = scores[confidence >= CONFIDENT]
    return float(min(confident.min(), HIGH_CONFIDENCE_CAP)) if confident.size else None


# ------------------------------------------------------------------ DetLens' rules, per image
def _rule_suspects(dataset: Dataset, dets: pd.DataFrame, gts: pd.DataFrame, confidence: np.ndarray,
                   floor: float, opinion_from: float) -> pd.DataFrame:
    """Every suspect, unranked; missing boxes only where the model's confidence reaches `floor`
    or its score reaches `opinion_from` (below both, the suspicion cannot reach floor)."""
    ann = dataset.annotations
    gt_xyxy = ann[["x1", "y1", "x2", "y2"]].to_numpy(np.float64).reshape(-1, 4)
    gt_cls = ann["category_id"].to_numpy()
    crowd = ann["iscrowd"].to_numpy().astype(bool)
    matched_p = np.zeros(len(ann))  # calibrated confidence of the prediction matched to each GT
    det_row_of_pred = pd.Series(np.arange(len(dets)), index=dets["pred_index"].to_numpy())
    matched = gts["matched_pred"].to_numpy()
    has = matched >= 0
    matched_p[has] = confidence[det_row_of_pred.loc[matched[has]].to_numpy()]
    det_xyxy = dets[["x1", "y1", "x2", "y2"]].to_numpy(np.float64).reshape(-1, 4)
    det_cls = dets["category_id"].to_numpy()
    det_tp = dets["outcome"].astype(str).to_numpy() == "tp"
    det_cls_err = dets["outcome"].astype(str).to_numpy() == "classification"
    det_ignored = dets["outcome"].astype(str).to_numpy() == "ignored"   # on a crowd region: COCO leaves it out
    det_score = dets["score"].to_numpy()

    gt_image = ann["image_index"].to_numpy()
    gt_order = np.argsort(gt_image, kind="stable")
    n_images = len(dataset.images)
    gt_start = np.searchsorted(gt_image[gt_order], np.arange(n_images + 1))
    det_start = np.searchsorted(dets["image_index"].to_numpy(), np.arange(n_images + 1))
    out: list[dict] = []
    for i in range(n_images):
        g = gt_order[gt_start[i]:gt_start[i + 1]]
        g = g[~crowd[g]]
        d = np.arange(det_start[i], det_start[i + 1])       # by descending score
        if not len(g) and not len(d):
            continue
        iou = box_iou(gt_xyxy[g], det_xyxy[d])               # [G,D]
        same = gt_cls[g][:, None] == det_cls[d][None, :]     # [G,D]
        p = confidence[d]
        out += _wrong_class(g, d, iou, same, p, det_cls_err[d])
        bad, loose_for_unfound = _bad_box(g, d, iou, same, p, matched_p[g])
        out += bad
        worth = (p >= floor) | (det_score[d] >= opinion_from)
        out += _missing(d, iou, p, det_xyxy[d], det_ignored[d] | ~worth, loose_for_unfound)
        out += _duplicates(g, d, gt_xyxy[g], gt_cls[g], iou, same, p, matched_p[g])
    return _table(out, dataset, dets, gt_xyxy, gt_cls)


def _wrong_class(g, d, iou, same, p, cls_err) -> list[dict]:
    rows = []
    on = iou >= MATCH_IOU                                    # [G,D]
    for a in range(len(g)):
        other = on[a] & ~same[a] & cls_err
        if not other.any():
            continue
        j = np.flatnonzero(other)[np.argmax(p[other])]
        own = on[a] & same[a]
        p_own = p[own].max() if own.any() else 0.0
        rows.append(dict(kind=SuspectKind.WRONG_CLASS, gt=g[a], det=d[j], iou=iou[a, j],
                         rule=p[j] * (1.0 - p_own)))
    return rows


def _bad_box(g, d, iou, same, p, matched_p) -> tuple[list[dict], np.ndarray]:
    """Bad-box suspects, and [D] whether each prediction is the loose box of an unfound GT of its class."""
    rows = []
    loose_for_unfound = np.zeros(len(d), bool)
    if not len(g) or not len(d):
        return rows, loose_for_unfound
    own_iou = np.where(same, iou, -1.0)                      # [G,D]
    best_gt = own_iou.argmax(axis=0)                         # [D] the GT each prediction is about
    for a in range(len(g)):
        about = same[a] & (iou[a] >= LOOSE_IOU) & (best_gt == a)
        if not about.any():
            continue
        if matched_p[a] == 0:
            loose_for_unfound |= about & (iou[a] < MATCH_IOU)
        j = np.flatnonzero(about)[np.argmax(p[about])]
        if iou[a, j] >= GOOD_BOX_IOU:
            continue
        good = same[a] & (iou[a] >= GOOD_BOX_IOU)
        p_good = p[good].max() if good.any() else 0.0
        looseness = np.clip((GOOD_BOX_IOU - iou[a, j]) / 0.5, 0.0, 1.0)
        rows.append(dict(kind=SuspectKind.BAD_BOX, gt=g[a], det=d[j], iou=iou[a, j],
                         rule=p[j] * looseness * (1.0 - p_good)))
    return rows, loose_for_unfound


def _missing(d, iou, p, xyxy, skip, loose_for_unfound) -> list[dict]:
    """skip: [D] boxes never suspected (on a crowd region, too unsure); d is by descending score and
    whether a box is skipped for being unsure is monotone in it, so no skipped box would have
    covered a listed one."""
    if not len(d):
        return []
    best = iou.max(axis=0) if iou.shape[0] else np.zeros(len(d))    # [D] best IoU with any GT
    on_object = best >= MATCH_IOU
    c = np.flatnonzero(~on_object & ~skip & ~loose_for_unfound)                     # [C]
    found = np.flatnonzero(on_object)                                              # [F]
    if len(c) and len(found):  # a lower-scoring copy of a box that is on a labelled object
        copy = ((box_iou(xyxy[c], xyxy[found]) >= MATCH_IOU) & (found[None, :] < c[:, None])).any(axis=1)
        c = c[~copy]
    close = box_iou(xyxy[c], xyxy[c]) >= MATCH_IOU                                 # [C,C]
    taken = np.zeros(len(c), bool)  # covered by a higher-scoring suspect
    rows = []
    for k, j in enumerate(c):
        if taken[k]:
            continue
        taken |= close[k]
        weight = 1.0 if best[j] <= LOOSE_IOU else (MATCH_IOU - best[j]) / (MATCH_IOU - LOOSE_IOU)
        rows.append(dict(kind=SuspectKind.MISSING, gt=-1, det=d[j], iou=best[j], rule=p[j] * weight))
    return rows


def _duplicates(g, d, xyxy, cls, iou_gd, same_gd, p, matched_p) -> list[dict]:
    rows = []
    if len(g) < 2:
        return rows
    pair = box_iou(xyxy, xyxy)                                        # [G,G]
    on = iou_gd >= MATCH_IOU
    support = np.array([p[on[a] & same_gd[a]].max() if (on[a] & same_gd[a]).any() else 0.0
                        for a in range(len(g))])
    for a, b in zip(*np.nonzero(np.triu(pair, 1) >= DUPLICATE_IOU)):
        same_class = cls[a] == cls[b]
        if not same_class and pair[a, b] < CROSS_DUPLICATE_IOU:
            continue
        # the one the model supports less (for one class: the one its matching left unfound)
        sa, sb = (matched_p[a], matched_p[b]) if same_class else (support[a], support[b])
        drop, keep = (a, b) if sa < sb else (b, a)
        lo = DUPLICATE_IOU if same_class else CROSS_DUPLICATE_IOU
        closeness = np.clip((pair[a, b] - lo) / (0.9 - lo), 0.0, 1.0)
        s_drop = sa if drop == a else sb
        rows.append(dict(kind=SuspectKind.DUPLICATE, gt=g[drop], other=g[keep], det=-1, iou=pair[a, b],
                         rule=closeness * (1.0 - s_drop), cross=not same_class))
    return rows


def _table(rows: list[dict], dataset: Dataset, dets: pd.DataFrame, gt_xyxy, gt_cls) -> pd.DataFrame:
    ann, images = dataset.annotations, dataset.images
    n = len(rows)
    if not n:
        empty = pd.DataFrame({c: pd.Series(dtype=object if c in ("suspect_id", "kind", "file_name", "fix")
                                           else np.float64) for c in SUSPECT_COLUMNS})
        return empty.assign(_det=np.zeros(0, np.int64), _gt=np.zeros(0, np.int64), _cross=np.zeros(0, bool))
    kind = np.array([r["kind"].value for r in rows], dtype=object)
    gt = np.array([r["gt"] for r in rows], np.int64)
    det = np.array([r["det"] for r in rows], np.int64)
    other = np.array([r.get("other", -1) for r in rows], np.int64)
    has_gt, has_det = gt >= 0, det >= 0
    det_xyxy = dets[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    image_index = np.where(has_gt, ann["image_index"].to_numpy()[np.maximum(gt, 0)] if len(ann) else -1,
                           dets["image_index"].to_numpy()[np.maximum(det, 0)] if len(dets) else -1)
    g_box = np.where(has_gt[:, None], gt_xyxy[np.maximum(gt, 0)] if len(ann) else np.nan, np.nan).reshape(-1, 4)
    m_box = np.where(has_det[:, None], det_xyxy[np.maximum(det, 0)] if len(dets) else np.nan, np.nan).reshape(-1, 4)
    m_cls = np.where(has_det, dets["category_id"].to_numpy()[np.maximum(det, 0)] if len(dets) else -1, -1)
    m_score = np.where(has_det, dets["score"].to_numpy()[np.maximum(det, 0)] if len(dets) else np.nan, np.nan)
    g_cls = np.where(has_gt, gt_cls[np.maximum(gt, 0)] if len(ann) else -1, -1)
    fix = np.array([_FIX_OF_KIND[r["kind"]] for r in rows], dtype=object)
    suggested = np.where((fix == FIX_ADD) | (fix == FIX_RELABEL), m_cls, g_cls)
    fix_box = np.where(((fix == FIX_ADD) | (fix == FIX_MOVE))[:, None], m_box,
                       np.where((fix == FIX_RELABEL)[:, None], g_box, np.nan)).reshape(-1, 4)
    ann_id = np.where(has_gt, ann["id"].to_numpy()[np.maximum(gt, 0)] if len(ann) else -1, -1)
    other_id = np.where(other >= 0, ann["id"].to_numpy()[np.maximum(other, 0)] if len(ann) else -1, -1)
    image_id = images["id"].to_numpy()[image_index] if n else np.zeros(0, np.int64)
    table = pd.DataFrame({
        "kind": kind, "image_index": image_index.astype(np.int64), "image_id": image_id,
        "file_name": images["file_name"].to_numpy(dtype=object)[image_index] if n else np.zeros(0, object),
        "ann_id": ann_id.astype(np.int64), "category_id": g_cls.astype(np.int64),
        **{f"gt_{c}": g_box[:, k] for k, c in enumerate(("x1", "y1", "x2", "y2"))},
        "other_ann_id": other_id.astype(np.int64),
        "model_category_id": m_cls.astype(np.int64), "model_score": m_score,
        **{f"model_{c}": m_box[:, k] for k, c in enumerate(("x1", "y1", "x2", "y2"))},
        "iou": np.array([r["iou"] for r in rows], np.float64), "fix": fix,
        "suggested_category_id": suggested.astype(np.int64),
        **{f"fix_{c}": fix_box[:, k] for k, c in enumerate(("x1", "y1", "x2", "y2"))},
        "detlens_score": np.array([r["rule"] for r in rows], np.float64),
        "_det": det, "_gt": gt, "_cross": np.array([r.get("cross", False) for r in rows], bool),
    })
    table["suspect_id"] = ""  # named once the table is cut to what is listed (suspect_ids)
    table["rank"] = 0
    return table


def suspect_ids(table: pd.DataFrame) -> list[str]:
    """Stable across runs: the kind, image and annotation (a missing box: its class and place)."""
    columns = ["kind", "image_id", "ann_id", "model_category_id", "model_x1", "model_y1", "model_x2", "model_y2"]
    ids = []
    for kind, image_id, ann_id, cls, x1, y1, x2, y2 in zip(*(table[c].tolist() for c in columns)):
        if kind == SuspectKind.MISSING.value:
            ids.append(f"missing:{image_id}:{cls}:{x1:.0f}:{y1:.0f}:{x2:.0f}:{y2:.0f}")
        else:
            ids.append(f"{kind}:{image_id}:{ann_id}")
    return ids


# ------------------------------------------------------------------------------ cleanlab
@dataclass
class CleanlabScores:
    """cleanlab's ObjectLab box scores (1 = clean, lower = more likely an error, NaN = no opinion)."""

    overlooked: np.ndarray  # [N] per row of ev.dets
    swap: np.ndarray        # [G] per annotation row
    badloc: np.ndarray      # [G] per annotation row


def cleanlab_inputs(dataset: Dataset, dets: pd.DataFrame) -> tuple[list[dict], list[np.ndarray], list[np.ndarray]]:
    """cleanlab's `auxiliary_inputs` (one dict per image with boxes), the det rows and annotation
    rows of each: its similarity matrices computed as cleanlab does, without its per-pair loops."""
    from cleanlab.internal.constants import ALPHA, EPSILON, EUC_FACTOR

    ann = dataset.annotations
    gt_xyxy = ann[["x1", "y1", "x2", "y2"]].to_numpy(np.float64).reshape(-1, 4)
    gt_cls = ann["category_id"].to_numpy()
    det_xyxy = dets[["x1", "y1", "x2", "y2"]].to_numpy(np.float64).reshape(-1, 4)
    gt_order = np.argsort(ann["image_index"].to_numpy(), kind="stable")
    n_images = len(dataset.images)
    gt_start = np.searchsorted(ann["image_index"].to_numpy()[gt_order], np.arange(n_images + 1))
    det_start = np.searchsorted(dets["image_index"].to_numpy(), np.arange(n_images + 1))
    aux, det_rows, gt_rows = [], [], []
    min_similarity = 1.0
    for i in range(n_images):
        g = gt_order[gt_start[i]:gt_start[i + 1]]
        d = np.arange(det_start[i], det_start[i + 1])
        if not len(g) and not len(d):
            continue
        lab, pred = gt_xyxy[g], det_xyxy[d]
        iou = _cleanlab_iou(lab, pred, EPSILON)
        centre_l = (lab[:, :2] + lab[:, 2:]) / 2
        centre_p = (pred[:, :2] + pred[:, 2:]) / 2
        distance = np.linalg.norm(centre_l[:, None, :] - centre_p[None, :, :], axis=2)   # [G,D]
        similarity = iou * ALPHA + (1 - ALPHA) * np.exp(-distance * EUC_FACTOR)
        nonzero = similarity[similarity != 0]
        if nonzero.size:
            min_similarity = min(min_similarity, float(nonzero.min()))
        aux.append(dict(pred_labels=dets["category_id"].to_numpy()[d], pred_label_probs=dets["score"].to_numpy()[d],
                        pred_bboxes=pred, lab_labels=gt_cls[g], lab_bboxes=lab,
                        similarity_matrix=similarity, iou_matrix=iou))
        det_rows.append(d)
        gt_rows.append(g)
    for entry in aux:
        entry["min_possible_similarity"] = min_similarity
    return aux, det_rows, gt_rows


def _cleanlab_iou(boxes1: np.ndarray, boxes2: np.ndarray, epsilon: float) -> np.ndarray:
    """cleanlab's `_get_iou` for every pair: [N,4], [M,4] xyxy -> [N,M]."""
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])   # [N,M,2]
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])   # [N,M,2]
    apart = (rb < lt).any(axis=2)
    inter = np.prod(rb - lt, axis=2)
    area1 = np.prod(boxes1[:, 2:] - boxes1[:, :2], axis=1)
    area2 = np.prod(boxes2[:, 2:] - boxes2[:, :2], axis=1)
    union = np.clip(area1[:, None] + area2[None, :] - inter, epsilon, None)
    return np.where(apart, 0.0, inter / union)


def cleanlab_box_scores(dataset: Dataset, dets: pd.DataFrame, *,
                        high_probability_threshold: float | None = None) -> CleanlabScores:
    """cleanlab's overlooked / swap / badloc box scores for ev.dets and the annotations, with its
    defaults (high_probability_threshold None = cleanlab's 0.95)."""
    from cleanlab.internal.constants import HIGH_PROBABILITY_THRESHOLD, LOW_PROBABILITY_THRESHOLD
    from cleanlab.object_detection.rank import (compute_badloc_box_scores, compute_overlooked_box_scores,
                                                compute_swap_box_scores)

    high = HIGH_PROBABILITY_THRESHOLD if high_probability_threshold is None else high_probability_threshold
    aux, det_rows, gt_rows = cleanlab_inputs(dataset, dets)
    # predictions at or below both thresholds change no score (only the global minimum
    # similarity, already taken over all of them): leave them out of cleanlab's python loops
    cut = min(high, LOW_PROBABILITY_THRESHOLD)
    kept_rows = []
    for entry, d in zip(aux, det_rows):
        keep = entry["pred_label_probs"] > cut
        kept_rows.append(d[keep])
        for key in ("pred_labels", "pred_label_probs", "pred_bboxes"):
            entry[key] = entry[key][keep]
        entry["similarity_matrix"] = entry["similarity_matrix"][:, keep]
        entry["iou_matrix"] = entry["iou_matrix"][:, keep]
    overlooked = np.full(len(dets), np.nan)
    swap = np.full(len(dataset.annotations), np.nan)
    badloc = np.full(len(dataset.annotations), np.nan)
    if aux:
        for d, s in zip(kept_rows, compute_overlooked_box_scores(auxiliary_inputs=aux, high_probability_threshold=high)):
            overlooked[d] = s
        for g, s in zip(gt_rows, compute_swap_box_scores(auxiliary_inputs=aux, high_probability_threshold=high)):
            swap[g] = s
        for g, s in zip(gt_rows, compute_badloc_box_scores(auxiliary_inputs=aux)):
            badloc[g] = s
    return CleanlabScores(overlooked, swap, badloc)


def cleanlab_suspects(dataset, dets: pd.DataFrame, high: float | None) -> pd.DataFrame:
    """cleanlab's box scores alone as a suspects table: overlooked -> missing, swap -> wrong_class,
    badloc -> bad_box; suspicion 1 - box score, boxes it has no opinion on (NaN or 1) left out."""
    scores = cleanlab_box_scores(dataset, dets, high_probability_threshold=high)
    ann = dataset.annotations
    image_id = dataset.images["id"].to_numpy()
    parts = []
    keep = ~np.isnan(scores.overlooked) & (scores.overlooked < 1)
    parts.append(pd.DataFrame({
        "kind": "missing", "image_id": image_id[dets["image_index"].to_numpy()[keep]], "ann_id": -1,
        "model_x1": dets["x1"].to_numpy()[keep], "model_y1": dets["y1"].to_numpy()[keep],
        "model_x2": dets["x2"].to_numpy()[keep], "model_y2": dets["y2"].to_numpy()[keep],
        "score": 1 - scores.overlooked[keep]}))
    for kind, values in (("wrong_class", scores.swap), ("bad_box", scores.badloc)):
        keep = ~np.isnan(values) & (values < 1)
        parts.append(pd.DataFrame({"kind": kind, "image_id": ann["image_id"].to_numpy()[keep],
                                   "ann_id": ann["id"].to_numpy()[keep], "score": 1 - values[keep]}))
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def _blend(rows: pd.DataFrame, scores: CleanlabScores, weight: float) -> pd.DataFrame:
    """cleanlab_score (1 - its box score for the suspect's box) and the blended score."""
    rows = rows.copy()
    cl = np.full(len(rows), np.nan)
    kind = rows["kind"].to_numpy()
    det = rows["_det"].to_numpy()
    gt_row = rows["_gt"].to_numpy()
    missing = (kind == SuspectKind.MISSING.value) & (det >= 0)
    cl[missing] = 1.0 - scores.overlooked[det[missing]]
    for k, source in ((SuspectKind.WRONG_CLASS, scores.swap), (SuspectKind.BAD_BOX, scores.badloc),
                      (SuspectKind.DUPLICATE, scores.swap)):
        pick = (kind == k.value) & (gt_row >= 0)
        cl[pick] = 1.0 - source[gt_row[pick]]
    # a box score of exactly 1 is cleanlab's "no confident box to compare with": no opinion; its
    # overlap check (a box labelled twice) is across classes only, so for a duplicate of one
    # class its swap score is about something else
    cl[cl == 0] = np.nan
    cl[(kind == SuspectKind.DUPLICATE.value) & ~rows["_cross"].to_numpy(bool)] = np.nan
    rows["cleanlab_score"] = cl
    rule = rows["detlens_score"].to_numpy()
    rows["score"] = np.where(np.isnan(cl), rule, (1 - weight) * rule + weight * np.nan_to_num(cl))
    return rows

