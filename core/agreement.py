"""Agreement between two prediction sets without ground truth: one is the pseudo ground truth.

    ag = agreement(ref, other, ref_thr=0.5, dataset=test_json)   # heavy: one COCO evaluation
    ag.map50, ag.per_class, ag.per_image                         # at other_thr (default ref_thr)

The reference's boxes scoring >= ref_thr become a COCO ground truth (one annotation per box,
area = w * h, not crowd) and `other` is evaluated against it exactly as against a real one
(core.evaluation.evaluate), so "agreement" per class is AP@0.5 of `other` on that pseudo GT;
tests hold it to pycocotools on the same pseudo GT written as a json.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from core.problems import Problem, Severity
from core.thresholds import at_or_above
from core.tables import ANNOTATION_COLUMNS, CATEGORY_COLUMNS, IMAGE_COLUMNS, Dataset, Predictions

DEFAULT_REF_THR = 0.5
# Outcome groups of `other`'s boxes against the pseudo GT (core.outcomes values).
ONLY_OTHER_OUTCOMES = ("background", "localization", "duplicate")
CLASS_DISAGREEMENT_OUTCOMES = ("classification", "both")
PER_CLASS_COLUMNS = ["category_id", "name", "agreement", "ref_boxes", "other_boxes", "matched",
                     "only_ref", "only_other", "class_disagreements"]


def pseudo_ground_truth(ref: Predictions, ref_thr: float = DEFAULT_REF_THR, *,
                        dataset: Dataset | None = None, other: Predictions | None = None) -> Dataset:
    """A Dataset whose annotations are `ref`'s boxes scoring >= ref_thr, ids 1..A in file order.

    Images and categories come from `dataset` (e.g. test.json: sizes and class names) when
    given; else the images are those `ref` and `other` list (ids 1..N in first-seen order,
    size unknown) and the classes the labels they use ("class <id>").
    """
    if dataset is not None:
        images = dataset.images[IMAGE_COLUMNS].reset_index(drop=True)
        categories = dataset.categories[CATEGORY_COLUMNS].reset_index(drop=True)
    else:
        keys = pd.unique(np.concatenate([np.asarray(p.image_keys, dtype=object)
                                         for p in (ref, other) if p is not None]))
        images = pd.DataFrame({"id": np.arange(1, len(keys) + 1, dtype=np.int64),
                               "file_name": pd.Series(keys, dtype=object),
                               "width": np.nan, "height": np.nan}, columns=IMAGE_COLUMNS)
        labels = np.unique(np.concatenate([p.labels for p in (ref, other) if p is not None]).astype(np.int64))
        categories = pd.DataFrame({"id": labels, "name": pd.Series([f"class {c}" for c in labels], dtype=object)},
                                  columns=CATEGORY_COLUMNS)
    image_index = ref.image_index_in(_images_only(images))
    kept = at_or_above(ref.scores, ref_thr)
    keep = kept & (image_index >= 0) & np.isin(ref.labels, categories["id"].to_numpy())
    rows = np.flatnonzero(keep)
    rows = rows[np.argsort(image_index[rows], kind="stable")]           # image by image, file order
    xyxy = ref.boxes_xyxy[rows].reshape(-1, 4)
    xywh = np.hstack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])          # [A,4]
    index = image_index[rows]
    annotations = pd.DataFrame({
        "id": np.arange(1, len(rows) + 1, dtype=np.int64), "image_index": index,
        "image_id": images["id"].to_numpy()[index], "category_id": ref.labels[rows].astype(np.int64),
        "x": xywh[:, 0], "y": xywh[:, 1], "w": xywh[:, 2], "h": xywh[:, 3],
        "x1": xyxy[:, 0], "y1": xyxy[:, 1], "x2": xyxy[:, 2], "y2": xyxy[:, 3],
        "area": xywh[:, 2] * xywh[:, 3], "iscrowd": np.zeros(len(rows), np.int64),
    }, columns=ANNOTATION_COLUMNS)
    problems = []
    n_left = int((kept & ~keep).sum())
    if n_left:
        problems.append(Problem(Severity.WARNING, f"{n_left} box(es) of the reference scoring >= {ref_thr:g} are on "
                                "images or of classes the dataset lacks; they are not in the pseudo ground truth.",
                                file=ref.source))
    return Dataset(images=images, annotations=annotations, categories=categories, problems=problems,
                   source=f"{ref.source} (score >= {ref_thr:g})", root=dataset.root if dataset is not None else None)


def _images_only(images: pd.DataFrame) -> Dataset:
    empty = pd.DataFrame(columns=ANNOTATION_COLUMNS)
    return Dataset(images=images, annotations=empty, categories=pd.DataFrame(columns=CATEGORY_COLUMNS))


@dataclass
class Agreement:
    """`other` evaluated against `ref`'s confident boxes. evaluation: core.evaluation.Evaluation
    on `pseudo_gt`; other_thr: the score threshold `other`'s counted boxes must reach."""

    ref_name: str
    other_name: str
    ref_thr: float
    other_thr: float
    pseudo_gt: Dataset
    evaluation: object

    @property
    def map50(self) -> float:
        """Agreement overall: COCO mAP@0.5 of `other` on the pseudo GT (all of other's boxes)."""
        return float(self.evaluation.stats["map50"])

    @cached_property
    def view(self):
        return self.evaluation.at(self.other_thr)

    @cached_property
    def per_class(self) -> pd.DataFrame:
        """PER_CLASS_COLUMNS. agreement: AP@0.5 (NaN where ref has no box of the class);
        counts at other_thr: matched, only_ref (ref boxes other did not find), only_other
        (other's boxes on no ref box of their class), class_disagreements (on a ref box of
        another class)."""
        counts = self.view.per_class
        return pd.DataFrame({
            "category_id": counts["category_id"].to_numpy(), "name": counts["name"].to_numpy(),
            "agreement": self.evaluation.per_class["ap50"].to_numpy(),
            "ref_boxes": self.evaluation.per_class["n_gt"].to_numpy(),
            "other_boxes": counts[["tp", *ONLY_OTHER_OUTCOMES, *CLASS_DISAGREEMENT_OUTCOMES]].sum(axis=1).to_numpy(),
            "matched": counts["tp"].to_numpy(),
            "only_ref": counts["missed"].to_numpy(),
            "only_other": counts[list(ONLY_OTHER_OUTCOMES)].sum(axis=1).to_numpy(),
            "class_disagreements": counts[list(CLASS_DISAGREEMENT_OUTCOMES)].sum(axis=1).to_numpy(),
        }, columns=PER_CLASS_COLUMNS)

    @cached_property
    def per_image(self) -> pd.DataFrame:
        """image_index, file_name, ref_boxes, other_boxes, matched, disagreements (other's
        unmatched boxes + ref's unmatched boxes), agreement (per-image AP@0.5); most
        disagreement first, ties by file name."""
        per = self.view.per_image
        table = pd.DataFrame({
            "image_index": per["image_index"].to_numpy(), "file_name": per["file_name"].to_numpy(),
            "ref_boxes": per["n_gt"].to_numpy(), "other_boxes": per["n_pred"].to_numpy(),
            "matched": per["n_tp"].to_numpy(),
            "disagreements": (per["n_fp"] + per["n_missed"]).to_numpy(),
            "agreement": per["ap50"].to_numpy(),
        })
        return table.sort_values(["disagreements", "file_name"], ascending=[False, True],
                                 kind="stable").reset_index(drop=True)


def agreement(ref: Predictions, other: Predictions, *, ref_thr: float = DEFAULT_REF_THR,
              other_thr: float | None = None, dataset: Dataset | None = None,
              iou_thr: float = 0.5, ref_name: str | None = None, other_name: str | None = None) -> Agreement:
    """Evaluate `other` against `ref`'s boxes scoring >= ref_thr (see module docstring).

    other_thr: threshold for the counts (default ref_thr, so both sides count confident boxes);
    the agreement AP uses every box of `other`, as mAP does.
    """
    from core.evaluation import evaluate

    if not 0.0 <= ref_thr <= 1.0:
        raise ValueError(f"Invalid ref_thr {ref_thr!r}. Only values in [0, 1] are supported.")
    pseudo = pseudo_ground_truth(ref, ref_thr, dataset=dataset, other=other)
    evaluation = evaluate(pseudo, other, iou_thr=iou_thr)
    return Agreement(ref_name or ref.source, other_name or other.source, float(ref_thr),
                     float(ref_thr if other_thr is None else other_thr), pseudo, evaluation)
