"""Comparing evaluations side by side (core.compare) and the Compare page under AppTest."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.compare import biggest_differences, compare, comparison_panels, delta_column, unique_names
from core.dataset import load_coco
from core.evaluation import evaluate
from core.outcomes import OUTCOME_LABELS
from core.submission import read_submission
from core.tables import Predictions
from tests.conftest import REAL_TRASH, REPO, SAMPLE, chart_figures, need, panel_figures
from tests.test_simulate import pycocotools_map50
from ui import state as S


def tiny_dataset():
    """Three 100x100 images: one GT box of class 0 on images 0 and 1, nothing on image 2."""
    doc = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in range(3)],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 0, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
            {"id": 1, "image_id": 1, "category_id": 0, "bbox": [50, 50, 30, 30], "area": 900, "iscrowd": 0},
        ],
        "categories": [{"id": 0, "name": "can"}, {"id": 1, "name": "bottle"}],
    }
    return load_coco(json.dumps(doc).encode(), name="tiny.json")


def predictions(rows: dict[str, list], name: str) -> Predictions:
    keys = np.array(list(rows), dtype=object)
    table = np.array([r for v in rows.values() for r in v], dtype=np.float64).reshape(-1, 6)
    pos = np.array([i for i, v in enumerate(rows.values()) for _ in v], dtype=np.int64)
    return Predictions(keys, pos, table[:, 0].astype(np.int64), table[:, 1], table[:, 2:],
                       np.arange(len(keys)) + 2, source=name)


@pytest.fixture(scope="module")
def tiny():
    dataset = tiny_dataset()
    # A finds image 0's box exactly, misses image 1, puts a false positive on the empty image 2.
    a = predictions({"0.jpg": [[0, 0.9, 10, 10, 50, 50]], "1.jpg": [], "2.jpg": [[0, 0.8, 0, 0, 20, 20]]}, "A")
    # B misses image 0, finds image 1 (plus a low-score duplicate), nothing on image 2.
    b = predictions({"0.jpg": [], "1.jpg": [[0, 0.7, 50, 50, 80, 80], [0, 0.3, 51, 51, 80, 80]], "2.jpg": []}, "B")
    return dataset, compare({"A": evaluate(dataset, a), "B": evaluate(dataset, b)})


class TestComparisonByHand:
    def test_per_image_difference_and_order(self, tiny):
        _, comparison = tiny
        table = comparison.per_image("A", "B")
        assert table["file_name"].iloc[0] == "0.jpg"
        assert set(table["file_name"].iloc[1:]) == {"1.jpg", "2.jpg"}
        assert table["difference"].tolist() == pytest.approx([1.0, -1.0, -1.0])
        # image 2 has no GT: A's false positive gives AP 0, B's nothing-at-all counts as 1
        row = table.set_index("file_name").loc["2.jpg"]
        assert row["ap50_a"] == 0.0 and np.isnan(row["ap50_b"])
        a_wins, b_wins = biggest_differences(table, n=5)
        assert a_wins["file_name"].tolist() == ["0.jpg"]
        assert set(b_wins["file_name"]) == {"1.jpg", "2.jpg"}
        assert (b_wins["difference"] < 0).all()

    def test_per_image_swapped_is_the_mirror(self, tiny):
        _, comparison = tiny
        ab = comparison.per_image("A", "B").set_index("file_name")["difference"]
        ba = comparison.per_image("B", "A").set_index("file_name")["difference"]
        pd.testing.assert_series_equal(ab.sort_index(), -ba.sort_index())

    def test_error_counts(self, tiny):
        _, comparison = tiny
        counts = comparison.error_counts()
        assert counts.loc["tp"].tolist()[:2] == [1, 1]
        assert counts.loc["background", "A"] == 1 and counts.loc["background", "B"] == 0
        assert counts.loc["duplicate", "B"] == 1 and counts.loc["duplicate", "A"] == 0
        assert counts.loc["missed"].tolist()[:2] == [1, 1]
        assert counts.loc["background", delta_column("B", "A")] == -1

    def test_threshold_applies(self, tiny):
        dataset, comparison = tiny
        high = compare(comparison.evaluations, score_thr=0.5)
        # B's 0.3 duplicate is gone above 0.5
        assert high.error_counts().loc["duplicate", "B"] == 0
        assert high.metrics().loc["boxes kept", "B"] == 1
        assert comparison.metrics().loc["boxes kept", "B"] == 2

    def test_metrics_and_per_class_match_each_evaluation(self, tiny):
        _, comparison = tiny
        metrics = comparison.metrics()
        for name, ev in comparison.evaluations.items():
            assert metrics.loc["mAP@0.5", name] == pytest.approx(ev.stats["map50"])
            assert metrics.loc["mAP@[.5:.95]", name] == pytest.approx(ev.stats["map"])
        delta = delta_column("B", "A")
        assert metrics.loc["mAP@0.5", delta] == pytest.approx(metrics.loc["mAP@0.5", "B"] - metrics.loc["mAP@0.5", "A"])
        per_class = comparison.per_class().set_index("name")
        assert per_class.loc["can", "n_gt"] == 2
        assert np.isnan(per_class.loc["bottle", "A"])  # no GT of that class: no AP


class TestComparisonOnSampleData:
    @pytest.fixture(scope="class")
    def comparison(self):
        dataset = load_coco(SAMPLE / "train.json")
        evs = {name: evaluate(dataset, read_submission(SAMPLE / f"predictions_{name}.csv", dataset=dataset))
               for name in ("strong", "weak")}
        return compare(evs, score_thr=0.3)

    def test_tables_agree_with_the_views(self, comparison):
        for name, ev in comparison.evaluations.items():
            view = ev.at(0.3)
            counts = comparison.error_counts()[name]
            assert counts.to_dict() == {k: view.counts[k] for k in counts.index}
            np.testing.assert_allclose(comparison.per_class()[name], view.per_class["ap50"])
            per_image = comparison.per_image("strong", "weak")
            key = "ap50_a" if name == "strong" else "ap50_b"
            merged = per_image.merge(view.per_image, on="image_index")
            np.testing.assert_allclose(merged[key], merged["ap50"])

    def test_given_views_are_used_and_give_the_same_tables(self, comparison):
        views = {name: ev.at(0.3) for name, ev in comparison.evaluations.items()}
        with_views = compare(comparison.evaluations, score_thr=0.3, views=views)
        assert with_views._view("strong") is views["strong"]
        pd.testing.assert_frame_equal(with_views.metrics(), comparison.metrics())
        pd.testing.assert_frame_equal(with_views.per_image(), comparison.per_image())

    def test_per_image_sorted_and_both_directions_present(self, comparison):
        table = comparison.per_image()
        assert table["difference"].is_monotonic_decreasing
        a_wins, b_wins = biggest_differences(table, n=10)
        assert len(a_wins) == 10 and len(b_wins) > 0
        assert a_wins["difference"].iloc[0] == table["difference"].max()
        assert b_wins["difference"].iloc[0] == table["difference"].min()


def test_real_trash_tta_against_the_model():
    dataset = load_coco(need(REAL_TRASH / "fold3_gt.json"))
    evs = {name: evaluate(dataset, read_submission(REAL_TRASH / f"{name}.csv", dataset=dataset))
           for name in ("fold3_deta_swinL", "fold3_deta_swinL_hflip")}
    comparison = compare(evs)
    metrics = comparison.metrics()
    assert metrics.loc["mAP@0.5", "fold3_deta_swinL"] == pytest.approx(0.668446, abs=1e-5)
    table = comparison.per_image()
    assert len(table) == 958
    assert (table["difference"] > 0).sum() > 50 and (table["difference"] < 0).sum() > 50


def test_comparison_panels_one_scheme_each_model_its_own_missed_gt():
    """Outcome scheme: GT plain, each model's panel its predictions by outcome and the GT boxes
    that model missed (its ThresholdView's); class scheme: class names only; a set without
    outcomes turns the figure to classes rather than mix."""
    from core.colors import class_colors
    from core.prediction_files import load_predictions
    from core.thresholds import PredictionView

    dataset = load_coco(SAMPLE / "train.json")
    names, colors = dataset.category_names, class_colors(list(dataset.category_names))
    views = {}
    for name in SAMPLE_PAIR:
        preds = load_predictions(SAMPLE / name, dataset=dataset)
        views[name] = PredictionView(preds, 0.3, dataset, evaluate(dataset, preds, iou_thr=0.5).at(0.3))
    shown = list(views.items())
    outcome_names = set(OUTCOME_LABELS.values())
    n_missed_drawn = 0
    for image_index in range(0, len(dataset.images), 9):
        key = str(dataset.images["file_name"].iloc[image_index])
        panels = comparison_panels(dataset, key, image_index, shown, color_by="outcome",
                                   class_names=names, class_colors=colors)
        assert [p.title for p in panels] == ["Ground truth", *SAMPLE_PAIR]
        for panel in panels:
            assert {layer.name.removeprefix("GT: ") for layer in panel.layers} <= outcome_names
        for panel, (name, view) in zip(panels[1:], shown):
            gts = view.evaluated.gts
            missed = gts[(gts["image_index"] == image_index) & gts["missed"] & (gts["iscrowd"] == 0)]
            drawn = [layer for layer in panel.layers if layer.name == f"GT: {OUTCOME_LABELS['missed']}"]
            boxes = drawn[0].boxes_xyxy if drawn else np.zeros((0, 4))
            expected = dataset.annotations.iloc[missed["ann_index"].to_numpy()][["x1", "y1", "x2", "y2"]]
            np.testing.assert_array_equal(boxes, expected.to_numpy(np.float64))
            n_missed_drawn += len(boxes)
        panels = comparison_panels(dataset, key, image_index, shown, color_by="class",
                                   class_names=names, class_colors=colors)
        assert {layer.name.removesuffix(" (crowd)") for p in panels for layer in p.layers} <= set(names.values())
    assert n_missed_drawn > 0  # the images looked at do have missed GT
    plain = [(n, PredictionView(v.predictions, 0.3, dataset)) for n, v in shown]
    panels = comparison_panels(dataset, key, image_index, [shown[0], plain[1]], color_by="outcome",
                               class_names=names, class_colors=colors)
    assert {layer.name.removesuffix(" (crowd)") for p in panels for layer in p.layers} <= set(names.values())


def test_invalid_comparisons():
    dataset = tiny_dataset()
    ev = evaluate(dataset, predictions({"0.jpg": [[0, 0.9, 10, 10, 50, 50]]}, "A"))
    with pytest.raises(ValueError, match="at least two"):
        compare({"A": ev})
    other = load_coco(SAMPLE / "train.json")
    ev_other = evaluate(other, read_submission(SAMPLE / "predictions_strong.csv", dataset=other))
    with pytest.raises(ValueError, match="another dataset"):
        compare({"A": ev, "B": ev_other})
    with pytest.raises(ValueError, match="Unknown model"):
        compare({"A": ev, "B": ev}).per_image("A", "C")
    assert unique_names(["a.csv", "a.csv", "b"]) == ["a.csv", "a.csv (2)", "b"]


# --------------------------------------------------------------------------------- the page
def panel_titles(spec: dict) -> list[str]:
    return [re.sub(r"</?b>", "", a["text"]) for a in spec["layout"].get("annotations", []) if "text" in a]


def legend_names(spec: dict) -> list[str]:
    """The names the figure's one legend lists."""
    return [t["name"] for t in spec["data"] if t.get("showlegend", True) and t.get("name")]


SAMPLE_PAIR = ["predictions_strong.csv", "predictions_weak.csv"]


def open_compare(**state) -> AppTest:
    """The Compare page; on the sample data, strong vs weak unless state says otherwise."""
    state = {S.COMPARE_SETS: SAMPLE_PAIR, **state}
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page("pages/7_Compare.py").run()
    return at


HEAD_TO_HEAD_KEY = "_compare_tab"
HEAD_TO_HEAD = {HEAD_TO_HEAD_KEY: "A against B, per image"}  # the page's second (lazy) tab


class TestComparePage:
    def test_sample_data_tables_and_three_panels(self):
        at = open_compare()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        assert at.multiselect(key=S.widget_key(S.COMPARE_SETS)).value == SAMPLE_PAIR
        metrics = at.table[0].value
        strong = read_submission(SAMPLE / "predictions_strong.csv")
        assert metrics.loc["mAP@0.5", "predictions_strong.csv"] == pytest.approx(
            pycocotools_map50(load_coco(SAMPLE / "train.json"), strong), abs=1e-5)
        counts = at.table[2].value
        assert list(counts.index) == ["tp", "classification", "localization", "both", "duplicate",
                                      "background", "missed"]
        # lazy tabs: the first tab runs alone (per-class bars, no image panels, no A/B lists)
        assert len(chart_figures(at)) == 1 and not panel_figures(at) and len(at.table) == 3
        with pytest.raises(KeyError):
            at.selectbox(key="_compare_a")
        at = open_compare(**HEAD_TO_HEAD)  # the second tab runs alone: A/B lists and the panels
        assert not at.exception, [e.value for e in at.exception]
        figures = panel_figures(at)
        assert len(figures) == 1 and not chart_figures(at) and len(at.table) == 2  # the panels; A's and B's best images
        titles = panel_titles(figures[0])
        assert titles[0] == "Ground truth"
        assert any(t.startswith("A: predictions_strong.csv") for t in titles)
        assert any(t.startswith("B: predictions_weak.csv") for t in titles)
        # the image shown is the one where A beats B most
        assert at.selectbox(key=S.widget_key(S.COMPARE_IMAGE)).value == at.table[0].value["image"].iloc[0]

    def test_swapping_the_models_and_picking_an_image(self):
        at = open_compare(**HEAD_TO_HEAD)
        at.selectbox(key="_compare_a").set_value("predictions_weak.csv").run()
        assert not at.exception
        assert at.selectbox(key="_compare_b").value == "predictions_strong.csv"
        options = at.selectbox(key=S.widget_key(S.COMPARE_IMAGE)).options
        at.selectbox(key=S.widget_key(S.COMPARE_IMAGE)).set_value(options[-1].split("  ")[0]).run()
        assert not at.exception
        titles = panel_titles(panel_figures(at)[0])
        assert any(t.startswith("A: predictions_weak.csv") for t in titles)

    def test_score_threshold_changes_the_threshold_rows_not_the_coco_ones(self):
        at = open_compare()
        before = at.table[0].value
        at.slider(key=S.widget_key(S.SCORE_THR)).set_value(0.6).run()
        assert not at.exception, [e.value for e in at.exception]
        after = at.table[0].value
        assert at.session_state[S.SCORE_THR] == 0.6
        assert after.loc["mAP@0.5", "predictions_strong.csv"] == before.loc["mAP@0.5", "predictions_strong.csv"]
        assert after.loc["boxes kept", "predictions_strong.csv"] < before.loc["boxes kept", "predictions_strong.csv"]
        assert any("score threshold 0.60" in c.value for c in at.caption)

    def test_layouts_side_by_side_and_one_panel_at_a_time(self):
        """Issue 11: the user picks the layout; one at a time shows A, B or the GT, full width."""
        at = open_compare(**HEAD_TO_HEAD)
        assert at.radio(key="_compare_layout").value == "side by side"
        assert len(panel_titles(panel_figures(at)[0])) == 3
        at.radio(key="_compare_layout").set_value("one at a time").run()
        assert not at.exception, [e.value for e in at.exception]
        titles = panel_titles(panel_figures(at)[0])
        assert len(titles) == 1 and titles[0].startswith("A: predictions_strong.csv")
        for panel, start in (("B", "B: predictions_weak.csv"), ("Ground truth", "Ground truth")):
            at.radio(key="_compare_panel").set_value(panel).run()
            assert not at.exception
            titles = panel_titles(panel_figures(at)[0])
            assert len(titles) == 1 and titles[0].startswith(start)
        at.radio(key="_compare_layout").set_value("side by side").run()
        assert len(panel_titles(panel_figures(at)[0])) == 3

    @pytest.mark.parametrize("layout", ["side by side", "one at a time"])
    def test_one_legend_never_mixes_class_and_outcome_colours(self, layout):
        """Issue 11: the GT panel was coloured by class beside outcome-coloured predictions in one
        legend (Paper and TP both green). Each scheme's legend holds only its own entries."""
        classes = set(load_coco(SAMPLE / "train.json").category_names.values())
        outcomes = set(OUTCOME_LABELS.values())
        at = open_compare(**{"_compare_layout": layout, **HEAD_TO_HEAD})
        for color_by in ("outcome", "class"):
            at.radio(key="_compare_color_by").set_value(color_by).run()
            assert not at.exception, [e.value for e in at.exception]
            names = legend_names(panel_figures(at)[0])
            assert names, "no legend entries"
            if color_by == "outcome":
                assert {n.removeprefix("GT: ") for n in names} <= outcomes, names
            else:
                assert {n.removesuffix(" (crowd)") for n in names} <= classes, names

    def test_one_set_asks_for_another(self):
        at = open_compare(**{S.COMPARE_SETS: ["predictions_strong.csv"]})
        assert not at.exception
        assert any("at least two" in i.value for i in at.info)
        assert at.slider(key=S.widget_key(S.SCORE_THR)).value == 0.05  # the sidebar keeps its slider

    def test_test_set_without_boxes(self):
        """No mAP on a test set, but agreement between submissions (issue 12, tests/test_app_no_gt.py)."""
        at = open_compare(**{S.GT_CHOICE: "test.json"})
        assert not at.exception
        assert any("no annotations" in c.value for c in at.caption)
        assert any("at least two non-empty submissions" in i.value for i in at.info)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is not installed")
def test_compare_and_ensemble_pages_in_a_browser():
    """Real browser: three synchronised panels with the image drawn; an ensemble run end to end."""
    from tests.browser import chromium_page, page_problems, panel_images, streamlit_server, wait_until_idle

    shots = REPO / "tests" / "screenshots"
    shots.mkdir(exist_ok=True)
    with streamlit_server() as url, chromium_page(height=4200) as page:
        page.goto(f"{url}/Compare")
        wait_until_idle(page, quiet_ms=500)
        page.get_by_role("tab", name="A against B, per image").click()
        wait_until_idle(page, quiet_ms=500)
        page.screenshot(path=str(shots / "sample_compare.png"))
        assert page_problems(page) == []
        assert panel_images(page) == 3, "GT | A | B: each panel needs the image"
        assert "beats B most" in page.inner_text("body")

        page.goto(f"{url}/Ensemble")
        wait_until_idle(page, quiet_ms=500)
        page.get_by_role("button", name="Run ensemble").click()
        page.get_by_text("Ensemble: wbf iou=0.55 conf=avg").first.wait_for(timeout=60_000)
        wait_until_idle(page, quiet_ms=500)
        page.screenshot(path=str(shots / "sample_ensemble.png"))
        assert page_problems(page) == []
        assert page.get_by_text("Download the submission CSV").count() == 1


def test_compare_page_on_the_real_trash_folder():
    """Real files, no images: tables and the three panels drawn on blank canvases."""
    at = open_compare(**{S.DATA_DIR: str(need(REAL_TRASH)), S.GT_CHOICE: "fold3_gt.json", S.COMPARE_SETS: []})
    assert at.multiselect(key=S.widget_key(S.COMPARE_SETS)).value == [  # the default: active + next fitting
        "fold3_deta_swinL.csv", "fold3_deta_swinL_hflip.csv"]
    assert not at.exception and not at.error
    assert at.table[0].value.loc["mAP@0.5", "fold3_deta_swinL.csv"] == pytest.approx(0.668446, abs=1e-5)
    at.session_state[HEAD_TO_HEAD_KEY] = HEAD_TO_HEAD[HEAD_TO_HEAD_KEY]  # the user opens the second tab
    at.run()
    assert not at.exception and not at.error
    assert len(panel_titles(panel_figures(at)[0])) >= 3
    assert any("not found" in i.value or "blank" in i.value for i in at.info)
