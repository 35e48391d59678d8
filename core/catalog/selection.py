"""Which models to ensemble: greedy forward selection on a validation ground truth.

Start from the best single submission; at each step add the candidate whose ensemble with the
current members scores the highest mAP@0.5 (each candidate set tried with every given config,
e.g. the sweep's best settings); stop when no addition improves it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import pandas as pd

from core.ensemble import EnsembleConfig, ensemble_prepared, prepare_inputs
from core.tables import Dataset, Predictions

# (step, candidates tried so far in this step, label) -> None
SelectionProgressFn = Callable[[int, int, str], None]


@dataclass
class SelectionResult:
    """path: one row per step (step, added, members, n_members, map50, map, gain, config);
    members: the chosen names; config: the ensemble settings of the last step (None: one model)."""

    path: pd.DataFrame
    members: list[str]
    config: EnsembleConfig | None
    map50: float


def _evaluate(dataset: Dataset, preds: Predictions):
    from core.evaluation import evaluate

    return evaluate(dataset, preds)


def forward_selection(
    candidates: Mapping[str, Predictions],
    dataset: Dataset,
    configs: Sequence[EnsembleConfig] = (EnsembleConfig("wbf", conf_type="max"),),
    *,
    evaluate_fn=None,
    min_gain: float = 0.0,
    max_members: int | None = None,
    progress: SelectionProgressFn | None = None,
    image_root=None,
    default_size: tuple[float, float] | None = None,
    roots=None,
    workers: int | None = None,
) -> SelectionResult:
    """Greedy forward selection of ensemble members by mAP@0.5 against `dataset`.

    candidates: name -> predictions on dataset's images. configs: settings tried for each
    candidate set (weights are reset to equal: the member count changes). A member is added
    only when it raises mAP@0.5 by more than `min_gain`.
    """
    if len(candidates) < 1:
        raise ValueError("forward selection needs at least one candidate submission")
    if not configs:
        raise ValueError("forward selection needs at least one ensemble config")
    evaluate_fn = evaluate_fn or _evaluate
    configs = [replace(c, weights=None) for c in configs]
    names = list(candidates)
    singles = {}
    for i, name in enumerate(names):
        if progress:
            progress(0, i, name)
        ev = evaluate_fn(dataset, candidates[name])
        singles[name] = (float(ev.stats["map50"]), float(ev.stats["map"]))
    first = max(names, key=lambda n: singles[n])
    members, config = [first], None
    best = singles[first]
    rows = [dict(step=0, added=first, members=first, n_members=1, map50=best[0], map=best[1],
                 gain=float("nan"), config="(single model)")]
    step = 0
    while len(members) < len(names) and (max_members is None or len(members) < max_members):
        step += 1
        trial_best = None
        tried = 0
        for name in names:
            if name in members:
                continue
            trial = members + [name]
            prepared = prepare_inputs([candidates[n] for n in trial], dataset=dataset, image_root=image_root,
                                      default_size=default_size, roots=roots)
            for cfg in configs:
                if progress:
                    progress(step, tried, f"+ {name} ({cfg.label})")
                tried += 1
                result = ensemble_prepared(prepared, cfg, workers=workers)
                ev = evaluate_fn(dataset, result.predictions)
                key = (float(ev.stats["map50"]), float(ev.stats["map"]))
                if trial_best is None or key > trial_best[0]:
                    trial_best = (key, name, cfg)
        (score, name, cfg) = trial_best
        if not score[0] > best[0] + min_gain:
            break
        rows.append(dict(step=step, added=name, members=" + ".join(members + [name]), n_members=len(members) + 1,
                         map50=score[0], map=score[1], gain=score[0] - best[0], config=cfg.label))
        members.append(name)
        best, config = score, cfg
    return SelectionResult(path=pd.DataFrame(rows), members=members, config=config, map50=best[0])
