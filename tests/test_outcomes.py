"""core.outcomes is the one place a box's outcome is declared (issue 11): every outcome and
ground-truth status has a label and a colour there, and legends, filters and charts come out in
its display order."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from core.charts import tide_figure
from core.dataset import load_coco
from core.drawing import gt_layers, prediction_layers
from core.evaluation import evaluate
from core.outcomes import (DISPLAY_ORDER, ERROR_TYPES, OUTCOME_CHOICES, OUTCOME_COLORS, OUTCOME_LABELS,
                           PREDICTION_COLOR, PREDICTION_OUTCOMES, GTStatus, Outcome, legend_entries)
from core.prediction_files import load_predictions
from tests.conftest import SAMPLE

HEX = re.compile(r"^#[0-9a-f]{6}$")


@pytest.fixture(scope="module")
def sample_eval():
    dataset = load_coco(SAMPLE / "train.json")
    return dataset, evaluate(dataset, load_predictions(SAMPLE / "predictions_strong.csv"))


class TestDeclarations:
    def test_every_outcome_has_label_colour_short_name_description(self):
        for outcome in Outcome:
            assert outcome.label and outcome.short_name and outcome.description, outcome
            assert HEX.match(outcome.color), outcome

    def test_every_gt_status_has_label_colour_dash(self):
        for status in GTStatus:
            assert status.label and HEX.match(status.color) and status.dash in ("solid", "dash", "dot")
        # a matched / missed ground truth looks like the outcome of the same name
        assert (GTStatus.MATCHED.label, GTStatus.MATCHED.color) == (Outcome.TP.label, Outcome.TP.color)
        assert (GTStatus.MISSED.label, GTStatus.MISSED.color) == (Outcome.MISSED.label, Outcome.MISSED.color)

    def test_colours_are_distinct(self):
        colours = [o.color for o in Outcome] + [GTStatus.CROWD.color, GTStatus.PLAIN.color, PREDICTION_COLOR]
        assert len(set(colours)) == len(colours)
        labels = [o.label for o in Outcome] + [GTStatus.CROWD.label, GTStatus.PLAIN.label]
        assert len(set(labels)) == len(labels)

    def test_by_value_tables_agree_with_the_enums(self):
        for item in [*Outcome, *GTStatus]:
            assert (OUTCOME_LABELS[item.value], OUTCOME_COLORS[item.value]) == (item.label, item.color)
        assert set(OUTCOME_LABELS) == {o.value for o in Outcome} | {s.value for s in GTStatus}
        with pytest.raises(TypeError):
            OUTCOME_LABELS["tp"] = "changed"  # read-only: the enums are the one source

    def test_display_order_is_tp_then_tide_then_ignored(self):
        assert sorted(DISPLAY_ORDER) == sorted(Outcome) and len(DISPLAY_ORDER) == len(Outcome)
        assert DISPLAY_ORDER == [Outcome.TP, *ERROR_TYPES, Outcome.IGNORED]
        assert PREDICTION_OUTCOMES == [o for o in DISPLAY_ORDER if o is not Outcome.MISSED]
        assert OUTCOME_CHOICES == [o.value for o in DISPLAY_ORDER]  # the explorer's outcome filter


class TestOrderOfConsumers:
    def test_prediction_layers_come_in_display_order(self, sample_eval):
        dataset, ev = sample_eval
        dets = ev.dets.sample(frac=1.0, random_state=0)  # shuffled rows: the order is the module's
        names = dict(zip(dataset.categories["id"], dataset.categories["name"]))
        layers = prediction_layers(dets, color_by="outcome", class_names=names, class_colors={})
        present = set(dets["outcome"].astype(str))
        assert len(present) >= 5
        expected = [o for o in PREDICTION_OUTCOMES if o.value in present]
        assert [(layer.name, layer.color) for layer in layers] == [(o.label, o.color) for o in expected]
        assert sum(len(layer.boxes_xyxy) for layer in layers) == len(dets)

    def test_gt_layers_come_in_status_order(self):
        statuses = ["crowd", "gt", "missed", "tp", "missed"]
        gts = pd.DataFrame({"category_id": [1] * 5, "x1": 0.0, "y1": 0.0, "x2": 5.0, "y2": 5.0,
                            "status": statuses})
        layers = gt_layers(gts, color_by="outcome", class_names={1: "a"}, class_colors={1: "#000000"})
        assert [(layer.color, layer.dash, len(layer.boxes_xyxy)) for layer in layers] == [
            (s.color, s.dash, statuses.count(s.value)) for s in GTStatus]
        assert [layer.name for layer in layers] == [f"GT: {s.label}" for s in GTStatus][:3] + [GTStatus.PLAIN.label]

    def test_legend_sorts_what_it_is_given(self):
        given = ["background", "crowd", "tp", "missed", "duplicate"]
        expected = [o for o in [*OUTCOME_CHOICES, "crowd"] if o in given]
        assert legend_entries(given) == [(OUTCOME_LABELS[v], OUTCOME_COLORS[v]) for v in expected]
        assert [label for label, _ in legend_entries()] == [o.label for o in DISPLAY_ORDER] + [GTStatus.CROWD.label]
        with pytest.raises(ValueError, match="'tpp'.*Known: tp"):
            legend_entries(["tpp"])

    def test_tide_chart_bars_carry_the_outcome_label_and_colour(self, sample_eval):
        _, ev = sample_eval
        bars = json.loads(tide_figure(ev.tide).to_json())["data"][0]
        assert list(bars["x"]) == [e.label for e in ERROR_TYPES]
        assert list(bars["marker"]["color"]) == [e.color for e in ERROR_TYPES]


class TestPages:
    def test_class_errors_radio_lists_outcomes_in_display_order(self):
        from tests.test_app import assert_clean, open_app

        at = open_app("pages/3_Class_errors.py")
        assert_clean(at)
        radio = at.radio(key="_errors_kind")
        expected = [o for o in DISPLAY_ORDER if o is not Outcome.IGNORED]
        assert list(radio.options) == [radio.format_func(o.value) for o in expected]
        assert [re.sub(r" \([\d,]+\)$", "", option) for option in radio.options] == [o.label for o in expected]
        assert radio.value == Outcome.BACKGROUND.value  # it opens on background boxes, as before

    def test_overview_counts_line_in_display_order(self):
        from tests.test_app import assert_clean, open_app

        at = open_app("pages/1_Overview.py")
        assert_clean(at)
        line = next(m.value for m in at.markdown if m.value.startswith(f"**{Outcome.TP.label}**"))
        shown = re.findall(r"\*\*(.+?)\*\*", line)
        assert shown == [o.label for o in DISPLAY_ORDER if o.label in shown]
        assert len(shown) >= len(DISPLAY_ORDER) - 1  # every outcome but possibly no ignored box
