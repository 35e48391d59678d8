"""Slices and Calibration pages under AppTest: numbers from core at the sidebar's thresholds,
click-through to the explorer (limited to a slice's images) and to Class errors."""
from __future__ import annotations

import numpy as np
import pytest

from core.calibration import best_thresholds, calibration
from core.slices import build_slices
from tests.conftest import chart_figures
from tests.test_app import assert_clean, explorer_position, open_app, sample_eval, texts  # noqa: F401 (fixture)
from ui import state as S

SLICES, CALIBRATION = "pages/11_Slices.py", "pages/12_Calibration.py"


def test_slices_page_shows_core_numbers_at_the_threshold(sample_eval):
    dataset, _, ev = sample_eval
    at = open_app(SLICES, **{S.SCORE_THR: 0.3})
    assert_clean(at)
    expected = build_slices(ev).table(0.3)
    worst = expected[~expected["tiny"]].iloc[0]
    static = at.table[0].value                                           # the fast default: st.table
    assert static.iloc[0]["slice"] == worst["slice"] and static.iloc[0]["GT boxes"] == worst["n_gt"]
    assert "AP@0.50, all boxes" in texts(at)
    at.toggle(key="_slices_bars").set_value(True).run()                 # clickable grid and bars, on request
    assert_clean(at)
    shown = at.dataframe(key="slice_table").value
    first = shown.iloc[0]
    assert first["slice"] == worst["slice"]
    assert first["AP@0.50"] == pytest.approx(worst["ap50"], abs=1e-12)
    assert first["GT boxes"] == worst["n_gt"] and first["predictions"] == worst["n_pred"]
    spec = chart_figures(at)[0]
    assert spec["data"][0]["customdata"][0][:2] == [worst["dimension"], worst["slice"]]


def test_slice_opens_its_images_in_the_explorer(sample_eval):
    dataset, _, ev = sample_eval
    at = open_app(SLICES)
    index = build_slices(ev)
    label = "size (COCO areas) · small (< 32²)"
    at.selectbox(key="_slices_open").set_value(label).run()
    at.button(key="_slices_to_explorer").click().run()
    assert_clean(at)
    wanted = set(dataset.images["file_name"].to_numpy()[index.images_of("size (COCO areas)", "small (< 32²)")])
    subset = at.session_state[S.EXPLORER_SUBSET]
    assert set(subset[1]) == wanted
    at.switch_page("pages/2_Image_explorer.py").run()  # where st.switch_page went (AppTest stays)
    assert f"Showing the {len(wanted):,} images of slice {label} only." in texts(at)
    # the explorer's position box counts only the slice's images
    assert explorer_position(at).label == f"Image (of {len(wanted):,})"
    at.button(key="_explorer_clear_subset").click().run()
    assert explorer_position(at).label == f"Image (of {len(dataset.images):,})"


def test_slices_page_follows_the_iou_threshold(sample_eval):
    at = open_app(SLICES, **{S.IOU_THR: 0.75})
    assert_clean(at)
    assert "AP@0.75" in at.table[0].value.columns


def test_calibration_page_numbers_and_exports(sample_eval):
    dataset, _, ev = sample_eval
    at = open_app(CALIBRATION, **{S.SCORE_THR: 0.2})
    assert_clean(at)
    cal = calibration(ev, score_thr=0.2)
    assert f"ECE {cal.ece:.4f}" in texts(at)
    table = best_thresholds(ev, min_precision=0.9, min_recall=0.5)
    shown = next(d.value for d in at.dataframe if "best-F1 threshold" in d.value.columns)
    for row in table[table["category_id"] >= 0].itertuples():
        mine = shown[shown["class"] == row.name].iloc[0]
        assert mine["best-F1 threshold"] == pytest.approx(row.best_f1_thr)
    assert "mAP rewards keeping low-score boxes" in texts(at)


def test_calibration_class_chart_and_bins(sample_eval):
    at = open_app(CALIBRATION)
    at.number_input(key="_cal_bins").set_value(5).run()
    assert_clean(at)
    names = list(at.selectbox(key="_cal_class").options)
    at.selectbox(key="_cal_class").set_value(names[1]).run()
    assert_clean(at)


def test_coco_analyze_section_follows_core(sample_eval):
    from core.coco_analyze import coco_analyze

    dataset, _, ev = sample_eval
    at = open_app(SLICES)
    at.selectbox(key="_analyze_class").set_value("Paper").run()
    at.radio(key="_analyze_area").set_value("large").run()
    assert_clean(at)
    # sample_data's categories carry supercategories: Sim is computed
    result = coco_analyze(ev, {int(c): n for c, n in zip(dataset.category_ids, dataset.categories["name"])})
    assert result.has_sim
    assert "Sim equals Oth" not in texts(at)
    spec = chart_figures(at)[-1]
    paper = int(dataset.category_ids[list(dataset.categories["name"]).index("Paper")])
    expected = [f"[{v:.3f}] {k}" for k, v in result.ap(paper, "large").items()]
    assert [t.get("name") for t in spec["data"]][1:] == expected


def test_80_classes_stay_readable():
    """cocoapi_fake100 (80 COCO classes): the confusion matrix shows the 30 most confused (a
    number box changes it), the TIDE per class heatmap the top 30, and every page runs clean."""
    from tests.conftest import EXTERNAL, need

    folder = need(EXTERNAL / "cocoapi_fake100")
    at = open_app("pages/1_Overview.py", data_dir=folder, **{
        S.GT_CHOICE: "instances_val2014_100.json", S.PREDICTIONS_FOR_GT: "instances_val2014_100.json",
        S.ACTIVE_PREDICTIONS: "instances_val2014_fakebbox100_results.json"})
    assert_clean(at)
    assert len(chart_figures(at)[-1]["data"][0]["y"]) == 31
    at.number_input(key="_confusion_top").set_value(10).run()
    assert len(chart_figures(at)[-1]["data"][0]["y"]) == 11
    at.switch_page(SLICES).run()
    assert_clean(at)
    heatmap = next(f for f in chart_figures(at) if f["data"][0].get("type") == "heatmap")
    assert len(heatmap["data"][0]["y"]) == 30
    at.text_input(key="_tide_classes_search").input("dog").run()
    heatmap = next(f for f in chart_figures(at) if f["data"][0].get("type") == "heatmap")
    assert heatmap["data"][0]["y"] == ["dog"] or set(heatmap["data"][0]["y"]) <= {"dog", "hot dog"}
    at.switch_page(CALIBRATION).run()
    assert_clean(at)


def test_brightness_slices_on_request(sample_eval):
    at = open_app(SLICES)
    at.toggle(key="_slices_pixels").set_value(True).run()
    assert_clean(at)
    shown = at.table[0].value
    assert {"image brightness", "image contrast"} <= set(shown["dimension"])
    assert shown.loc[shown["dimension"] == "image brightness", "images"].sum() == 100
