"""Several prediction sets at once (Compare and Ensemble pages): every file in the dataset
folder, upload and in-app set (ensembles, live inference) the sidebar offers, loaded and
evaluated through the shared cached loaders."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd
import streamlit as st

from core.charts import iou_text
from core.compare import Comparison, biggest_differences, compare
from core.problems import Problem
from core.folder_scan import first_csv_image_id
from core.tables import Predictions
from core.thresholds import PredictionView
from ui import loaders
from ui import state as S
from ui.loaders import Source
from ui.sidebar import ActiveData, RegisteredPredictions, prediction_options, show_problems


@dataclass
class PredictionSet:
    """One chosen prediction set: predictions (None when rejected), content key, problems and,
    when the dataset has boxes, its cached Evaluation at the sidebar's IoU threshold."""

    label: str
    predictions: Predictions | None
    key: str
    problems: list[Problem] = field(default_factory=list)
    evaluation: object | None = None


def load_prediction_set(data: ActiveData, label: str, option: Source | RegisteredPredictions,
                        *, evaluate: bool = True) -> PredictionSet:
    """Load (cached) one option against the active dataset; evaluate it when the GT has boxes."""
    if isinstance(option, RegisteredPredictions):
        chosen = PredictionSet(label, option.predictions, option.key)
    else:
        loaded = loaders.load_predictions(option, data.dataset, data.dataset_key)
        chosen = PredictionSet(label, loaded.value, loaded.key, list(loaded.problems))
    known = chosen.predictions is not None and (
        data.dataset.image_index_of_file(chosen.predictions.image_keys) >= 0).any()
    if evaluate and known and data.has_gt_boxes:
        chosen.evaluation = loaders.evaluation(data.dataset, data.dataset_key, chosen.predictions,
                                               chosen.key, data.iou_thr)
    return chosen


def choose_prediction_sets(data: ActiveData, state_key: str, label: str, *, help: str,
                           evaluate: bool = True) -> list[PredictionSet]:
    """A multiselect of every available set (state kept across pages), loaded; rejected ones
    are reported with the loader's messages and left out."""
    options = prediction_options(data.folder)
    names = list(options)
    if not st.session_state.get(state_key):  # first visit: the active set and the next that fits
        start = [data.predictions_label] if data.predictions_label in options else []
        fitting = [n for n in names if n not in start and _fits(data, options[n])]
        st.session_state[state_key] = (start + fitting)[:2]
    chosen = st.multiselect(label, names, help=help, placeholder="choose prediction files",
                            **S.bind(state_key, names))
    sets = []
    for name in chosen:
        if isinstance(options[name], Source) and not options[name].available:
            st.warning(loaders.dropped_upload_message(options[name].name))
            continue
        loaded = load_prediction_set(data, name, options[name], evaluate=evaluate)
        if name != data.predictions_label:  # the active set's problems are on the page already
            show_problems(loaded.problems, f"Predictions {name}",
                          "Fix the listed lines (`python -m core validate FILE --gt GT.json`), or "
                          "leave this file out.", loaded=loaded.predictions is not None)
        if loaded.predictions is not None:
            sets.append(loaded)
    return sets


def _fits(data: ActiveData, option: Source | RegisteredPredictions) -> bool:
    """Whether a set's first image is in the dataset (CSV head only; other kinds: assume so)."""
    if isinstance(option, Source) and option.path is not None and option.path.suffix.lower() == ".csv":
        return first_csv_image_id(option.path) in set(data.dataset.images["file_name"])
    return True


def set_view(data: ActiveData, chosen: PredictionSet, score_thr: float | None = None, *,
             evaluated: bool = True) -> PredictionView:
    """`chosen`'s predictions at score_thr (default: the sidebar's) on the active dataset; with
    outcomes when it was evaluated (its cached ThresholdView), unless evaluated=False."""
    score_thr = data.score_thr if score_thr is None else float(score_thr)
    view = None
    if evaluated and chosen.evaluation is not None:
        view = loaders.threshold_view(chosen.evaluation, data.dataset_key, chosen.key, data.iou_thr, score_thr)
    return PredictionView(chosen.predictions, score_thr, data.dataset, view)


class ComparisonTables:
    """A Comparison at one score threshold and its tables, each made on first use and cached with
    it (treat as read-only): Compare's two tabs use different ones."""

    def __init__(self, comparison: Comparison, iou_thr: float):
        self.comparison = comparison
        self.iou_thr = iou_thr

    @cached_property
    def metrics(self) -> pd.DataFrame:
        metrics = self.comparison.metrics()  # the threshold row is at the sidebar's IoU: its label says so
        return metrics.rename(index={"mAP@0.5 at threshold": f"mAP@{iou_text(self.iou_thr)} at threshold"})

    @cached_property
    def per_class(self) -> pd.DataFrame:
        return self.comparison.per_class()

    @cached_property
    def error_counts(self) -> pd.DataFrame:
        """Index: outcome names as str."""
        counts = self.comparison.error_counts()
        counts.index = [str(i) for i in counts.index]
        return counts


def _set_keys(sets: list[PredictionSet]) -> tuple[tuple[str, str], ...]:
    return tuple((s.label, s.key) for s in sets)


def _comparison_tables(dataset_key: str, iou_thr: float, score_thr: float,
                       sets: list[PredictionSet]) -> ComparisonTables:
    views = {s.label: loaders.threshold_view(s.evaluation, dataset_key, s.key, iou_thr, score_thr)
             for s in sets}
    return ComparisonTables(compare({s.label: s.evaluation for s in sets}, score_thr=score_thr, views=views),
                            iou_thr)


def comparison_tables(data: ActiveData, sets: list[PredictionSet]) -> ComparisonTables:
    """The evaluated sets compared at the data's score threshold, cached per (files, thresholds)
    while their evaluations stay cached: a slider move back to a value costs nothing, and the
    views are the other pages' ones."""
    iou_thr, score_thr = round(float(data.iou_thr), 4), round(float(data.score_thr), 4)
    return loaders.derived(
        ("comparison", data.dataset_key, _set_keys(sets), iou_thr, score_thr),
        lambda: _comparison_tables(data.dataset_key, iou_thr, score_thr, sets),
        [s.evaluation for s in sets])


def pair_tables(data: ActiveData, sets: list[PredictionSet], tables: ComparisonTables,
                name_a: str, name_b: str, n: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(per-image AP of a against b, the n images a wins most, the n b wins most), cached."""
    def create():
        per_image = tables.comparison.per_image(name_a, name_b)
        return (per_image, *biggest_differences(per_image, n))

    return loaders.derived(
        ("pair", data.dataset_key, _set_keys(sets), round(float(data.iou_thr), 4),
         round(float(data.score_thr), 4), name_a, name_b, int(n)),
        create, [s.evaluation for s in sets])
