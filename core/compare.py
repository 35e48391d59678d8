"""Compare two or more evaluations on one dataset: side-by-side tables with differences.

    cmp = compare({"strong": ev_a, "weak": ev_b}, score_thr=0.3)
    cmp.metrics()          # mAP@0.5, mAP, ... per model, and each model minus the first
    cmp.per_class()        # AP50 per class side by side, with differences
    cmp.error_counts()     # TP / error-type / missed counts side by side
    cmp.per_image("strong", "weak")   # per-image AP50 of two models, largest difference first

The first model is the reference: every "Δ" column is (that model) - (first model).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from core.outcomes import ERROR_TYPES, Outcome

# (key in Evaluation.stats, label): COCO stats, independent of the score threshold.
COCO_METRICS = [
    ("map50", "mAP@0.5"), ("map", "mAP@[.5:.95]"), ("map75", "mAP@0.75"),
    ("map_small", "mAP small"), ("map_medium", "mAP medium"), ("map_large", "mAP large"),
    ("ar100", "AR@100"),
]
# Labels of the rows that depend on the score threshold.
THRESHOLD_METRICS = ["mAP@0.5 at threshold", "precision", "recall", "F1", "boxes kept"]
COUNT_ROWS = [Outcome.TP] + list(ERROR_TYPES)   # tp, the prediction errors, then missed


def delta_column(name: str, reference: str) -> str:
    """Name of the column holding `name` minus `reference`."""
    return f"Δ {name} − {reference}"


def unique_names(names: Sequence[str]) -> list[str]:
    """The names, with ' (2)', ' (3)' ... appended to repeats so each is a distinct column."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _same_dataset(a, b) -> bool:
    if a is b:
        return True
    return (len(a.images) == len(b.images) and len(a.annotations) == len(b.annotations)
            and a.images["file_name"].tolist() == b.images["file_name"].tolist())


@dataclass
class Comparison:
    """Evaluations of several prediction sets on one dataset, viewed at one score threshold.

    evaluations: name -> Evaluation, the first being the reference; score_thr: boxes scoring
    below it are deleted in the threshold-dependent tables (None: keep every box); views:
    name -> that evaluation's ThresholdView at score_thr, when the caller already holds them
    (the dashboard caches them per file and threshold), else made here.
    """

    evaluations: dict
    score_thr: float | None = None
    views: dict | None = None

    @property
    def names(self) -> list[str]:
        return list(self.evaluations)

    @property
    def reference(self) -> str:
        return self.names[0]

    def _view(self, name: str):
        # one ThresholdView per model, shared by every table: its lazy parts (per-class and
        # per-image AP) are computed once per model, not once per table
        views = self.__dict__.setdefault("_views", dict(self.views or {}))
        if name not in views:
            thr = -np.inf if self.score_thr is None else self.score_thr
            views[name] = self.evaluations[name].at(thr)
        return views[name]

    def _with_deltas(self, table: pd.DataFrame) -> pd.DataFrame:
        for name in self.names[1:]:
            table[delta_column(name, self.reference)] = table[name] - table[self.reference]
        return table

    def metrics(self) -> pd.DataFrame:
        """Rows: COCO metrics then threshold-dependent ones; columns: each model, then Δ columns."""
        rows = {}
        for name, ev in self.evaluations.items():
            view = self._view(name)
            values = [float(ev.stats[key]) for key, _ in COCO_METRICS]
            values += [view.map50, view.precision, view.recall, view.f1, float(view.n_kept)]  # no copy of the kept rows
            rows[name] = values
        labels = [label for _, label in COCO_METRICS] + THRESHOLD_METRICS
        table = pd.DataFrame(rows, index=pd.Index(labels, name="metric"))
        return self._with_deltas(table)

    def per_class(self) -> pd.DataFrame:
        """category_id, name, n_gt, AP50 of each model (columns named by model), Δ columns."""
        first = self._view(self.reference).per_class
        table = pd.DataFrame({"category_id": first["category_id"].to_numpy(), "name": first["name"].to_numpy()})
        n_gt = first["tp"] + first["missed"]
        table["n_gt"] = n_gt.to_numpy()
        for name in self.names:
            per_class = self._view(name).per_class
            table[name] = per_class.set_index("category_id").loc[table["category_id"], "ap50"].to_numpy()
        return self._with_deltas(table)

    def error_counts(self) -> pd.DataFrame:
        """Rows: TP, each error type, missed (Outcome order); columns: each model's count, Δ columns."""
        counts = {name: [self._view(name).counts.get(e.value, 0) for e in COUNT_ROWS] for name in self.names}
        index = pd.Index([e.value for e in COUNT_ROWS], name="outcome")
        return self._with_deltas(pd.DataFrame(counts, index=index))

    def per_image(self, name_a: str | None = None, name_b: str | None = None) -> pd.DataFrame:
        """Per-image AP50 of model a and b, sorted by `difference` (a - b), a's wins first.

        Columns: image_index, file_name, n_gt, ap50_a, ap50_b, difference, n_tp_a, n_tp_b,
        n_fp_a, n_fp_b, n_missed_a, n_missed_b. An image with no ground truth and no boxes
        has no AP (NaN); for the difference it counts as 1.0 (nothing to find, nothing wrong),
        so a model that puts false positives there (AP 0) loses it.
        """
        name_a = name_a or self.names[0]
        name_b = name_b or self.names[1]
        for name in (name_a, name_b):
            if name not in self.evaluations:
                raise ValueError(f"Unknown model {name!r}. Only {', '.join(self.names)} are compared.")
        a, b = self._view(name_a).per_image, self._view(name_b).per_image
        table = pd.DataFrame({
            "image_index": a["image_index"].to_numpy(),
            "file_name": a["file_name"].array,  # as stored: no string re-conversion
            "n_gt": a["n_gt"].to_numpy(),
            "ap50_a": a["ap50"].to_numpy(),
            "ap50_b": b["ap50"].to_numpy(),
        })
        table["difference"] = table["ap50_a"].fillna(1.0) - table["ap50_b"].fillna(1.0)
        for column in ("n_tp", "n_fp", "n_missed"):
            table[f"{column}_a"] = a[column].to_numpy()
            table[f"{column}_b"] = b[column].to_numpy()
        table = table.sort_values(["difference", "n_gt"], ascending=[False, False], kind="stable")
        table.attrs.update(name_a=name_a, name_b=name_b)
        return table.reset_index(drop=True)


def compare(evaluations: Mapping[str, object], score_thr: float | None = None,
            views: Mapping[str, object] | None = None) -> Comparison:
    """A Comparison of two or more evaluations made on the same dataset (ValueError otherwise);
    views: the evaluations' ThresholdViews at score_thr, if already made."""
    evaluations = dict(evaluations)
    if len(evaluations) < 2:
        raise ValueError(f"Comparing needs at least two evaluations; got {len(evaluations)}.")
    names = list(evaluations)
    first = evaluations[names[0]].dataset
    for name in names[1:]:
        if not _same_dataset(first, evaluations[name].dataset):
            raise ValueError(f"{name!r} was evaluated on another dataset than {names[0]!r}; "
                             "compare prediction sets evaluated against the same ground truth.")
    return Comparison(evaluations, score_thr, dict(views) if views else None)


def biggest_differences(per_image: pd.DataFrame, n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """From a `Comparison.per_image` table: the n images where a beats b most (difference > 0,
    largest first) and the n where b beats a most (difference < 0, largest gap first)."""
    a_wins = per_image[per_image["difference"] > 0].head(n)
    b_wins = per_image[per_image["difference"] < 0].sort_values("difference", kind="stable").head(n)
    return a_wins.reset_index(drop=True), b_wins.reset_index(drop=True)


def per_class_figure(per_class: pd.DataFrame, names: Sequence[str]):
    """Grouped bars of AP50 per class, one colour per model (a `Comparison.per_class` table)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name in names:
        fig.add_bar(x=per_class["name"], y=per_class[name], name=name,
                    hovertemplate="%{x}<br>AP50 %{y:.3f}<extra>" + name + "</extra>")
    fig.update_layout(barmode="group", yaxis_title="AP@0.5", yaxis_range=[0, 1.02], height=360,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12))
    return fig


COLOR_SCHEMES = ["outcome", "class"]


def comparison_panels(dataset, image_key: str, image_index: int, shown: Sequence[tuple[str, object]], *,
                      color_by: str, class_names: dict[int, str], class_colors: dict[int, str],
                      with_labels: bool = True) -> list:
    """[Ground truth, then one panel per (title, PredictionView)] of one image, all in one colour
    scheme, so the figure's one legend never mixes class and outcome colours.

    "class": every box by its class. "outcome": the ground truth as plain reference boxes (one
    colour), each model's predictions by outcome with the ground truth it missed (dashed); a
    model without outcomes (not evaluated) turns the whole figure to "class".
    """
    from core.browse import DET_COLUMNS, gt_rows
    from core.drawing import Panel, gt_layers, prediction_layers

    if color_by not in COLOR_SCHEMES:
        raise ValueError(f"Invalid color_by {color_by!r}. Only {', '.join(map(repr, COLOR_SCHEMES))} are supported.")
    if any(not view.has_outcomes for _, view in shown):
        color_by = "class"
    style = dict(color_by=color_by, class_names=class_names, class_colors=class_colors, with_labels=with_labels)
    reference = gt_rows(dataset, image_index, pd.DataFrame(columns=DET_COLUMNS))  # status gt / crowd
    panels = [Panel("Ground truth", gt_layers(reference, **style))]
    for title, view in shown:
        dets = view.image_boxes(image_key, image_index)
        layers = prediction_layers(dets, **style)
        if color_by == "outcome":
            gts = view.image_gts(image_index, dets)
            layers = gt_layers(gts[gts["status"] == "missed"], **style) + layers
        panels.append(Panel(title, layers))
    return panels
