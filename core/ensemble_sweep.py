"""Search ensembling settings: run a grid of variants, score each against the ground truth.

Settings matter more than the method (on the real-trash fold, WBF with conf_type avg loses 0.03
mAP@0.5 to a single model, conf_type max gains 0.01), so the sweep ranks every variant, and the
inputs on their own, by mAP@0.5 on a validation set.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from core.ensemble import (
    CONF_TYPES, METHODS, EnsembleConfig, EnsembleResult, ensemble_prepared, prepare_inputs,
)
from core.data_roots import DataRoots
from core.problems import Problem
from core.tables import Dataset, Predictions

DEFAULT_IOU_THRS = (0.5, 0.55, 0.6, 0.7)
DEFAULT_SKIP_BOX_THRS = (0.0,)
DEFAULT_SIGMAS = (0.5,)

# Sweep progress: (variants done, variants total, label of the variant now running).
SweepProgressFn = Callable[[int, int, str], None]
# Scores one prediction set: (dataset, predictions) -> object with .stats (map50, map, ...) and
# .per_class (category_id, name, ap50); core.evaluation.evaluate by default.
EvaluateFn = Callable[[Dataset, Predictions], object]

INPUT_METHOD = "input"


def sweep_grid(
    methods: Sequence[str] = METHODS,
    iou_thrs: Sequence[float] = DEFAULT_IOU_THRS,
    conf_types: Sequence[str] = CONF_TYPES,
    skip_box_thrs: Sequence[float] = DEFAULT_SKIP_BOX_THRS,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    weights: Sequence[float] | None = None,
) -> list[EnsembleConfig]:
    """Every combination that means something: conf_type only for WBF, sigma (not iou_thr) for
    gaussian Soft-NMS. The default grid has 25 variants."""
    weights = tuple(weights) if weights is not None else None
    configs = []
    for method in methods:
        for skip in skip_box_thrs:
            if method == "soft_nms":
                configs += [EnsembleConfig(method, skip_box_thr=skip, sigma=s, weights=weights) for s in sigmas]
                continue
            for iou in iou_thrs:
                for conf in (conf_types if method == "wbf" else ("avg",)):
                    configs.append(EnsembleConfig(method, iou_thr=iou, skip_box_thr=skip, conf_type=conf,
                                                  weights=weights))
    if not configs:
        raise ValueError("The sweep grid is empty: give at least one method and one value per parameter.")
    return configs


@dataclass
class SweepResult:
    """table: one row per variant and per input, best mAP@0.5 first (see `run_sweep`);
    best: the best ensemble variant, with its predictions in best_result."""

    table: pd.DataFrame
    best: EnsembleConfig
    best_result: EnsembleResult
    problems: list[Problem] = field(default_factory=list)


def _default_evaluate(dataset: Dataset, preds: Predictions):
    from core.evaluation import evaluate

    return evaluate(dataset, preds)


def _row(variant: str, method: str, config: EnsembleConfig | None, evaluation, n_boxes: int,
         seconds: float) -> dict:
    per_class = evaluation.per_class
    row = {
        "variant": variant,
        "method": method,
        "iou_thr": np.nan if config is None or config.method == "soft_nms" else config.iou_thr,
        "conf_type": config.conf_type if config is not None and config.method == "wbf" else "",
        "skip_box_thr": np.nan if config is None else config.skip_box_thr,
        "sigma": config.sigma if config is not None and config.method == "soft_nms" else np.nan,
        "map50": float(evaluation.stats["map50"]),
        "map": float(evaluation.stats["map"]),
        "map75": float(evaluation.stats["map75"]),
        "n_boxes": int(n_boxes),
        "seconds": seconds,
    }
    for name, ap50 in zip(per_class["name"].tolist(), per_class["ap50"].tolist()):
        row[f"AP50 {name}"] = ap50
    return row


def run_sweep(
    inputs: Sequence[Predictions],
    dataset: Dataset,
    configs: Sequence[EnsembleConfig] | None = None,
    *,
    names: Sequence[str] | None = None,
    evaluate_fn: EvaluateFn | None = None,
    progress: SweepProgressFn | None = None,
    workers: int | None = None,
    image_root=None,
    default_size: tuple[float, float] | None = None,
    roots: DataRoots | None = None,
) -> SweepResult:
    """Ensemble `inputs` with every config (default `sweep_grid()`), evaluate each against `dataset`.

    Returns a SweepResult whose table has columns variant, method, iou_thr, conf_type,
    skip_box_thr, sigma, map50, map, map75, n_boxes, seconds (ensembling time),
    `AP50 <class>` per class, delta_map50 (vs the best input); sorted by map50 then map, best first.
    Inputs appear as rows with method "input".
    """
    configs = list(configs) if configs is not None else sweep_grid()
    if not configs:
        raise ValueError("Nothing to sweep: the list of variants is empty.")
    names = list(names) if names is not None else [p.source for p in inputs]
    evaluate_fn = evaluate_fn or _default_evaluate
    prepared = prepare_inputs(inputs, dataset=dataset, image_root=image_root, default_size=default_size,
                              roots=roots)
    total = len(inputs) + len(configs)
    rows = []
    for i, (name, preds) in enumerate(zip(names, inputs)):
        if progress:
            progress(i, total, f"input {name}")
        rows.append(_row(f"input: {name}", INPUT_METHOD, None, evaluate_fn(dataset, preds), len(preds), 0.0))
    best_result, best_key = None, None
    for j, config in enumerate(configs):
        if progress:
            progress(len(inputs) + j, total, config.label)
        result = ensemble_prepared(prepared, config, workers=workers)
        evaluation = evaluate_fn(dataset, result.predictions)
        row = _row(config.label, config.method, config, evaluation, len(result.predictions), result.seconds)
        rows.append(row)
        key = (row["map50"], row["map"])
        if best_key is None or key > best_key:  # keep only the best predictions in memory
            best_result, best_key = result, key
    if progress:
        progress(total, total, "done")
    table = pd.DataFrame(rows)
    best_input = table.loc[table["method"] == INPUT_METHOD, "map50"].max()
    table["delta_map50"] = table["map50"] - best_input
    table = table.sort_values(["map50", "map"], ascending=False, kind="stable").reset_index(drop=True)
    return SweepResult(table=table, best=best_result.config, best_result=best_result,
                       problems=list(prepared.problems))
