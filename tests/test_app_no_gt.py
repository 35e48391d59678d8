"""The dashboard on a test set (no ground-truth boxes): the real test.json and real test submission,
and a folder with two test submissions plus validation files (issue 12)."""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from core.agreement import agreement
from core.browse import NO_GT_SORT_ORDERS
from core.dataset import load_coco
from core.no_gt import ALL_CLASSES, class_prior, suggest_thresholds
from core.prediction_files import load_predictions
from core.recipe import apply_recipe
from core.submission import write_submission
from tests.conftest import REAL_TRASH, SAMPLE, assert_charts_drawable, chart_figures, need, panel_figures
from tests.test_app import assert_clean, metric, open_app, texts
from ui import state as S

ALL_PAGES = ["pages/1_Overview.py", "pages/2_Image_explorer.py", "pages/3_Class_errors.py",
             "pages/4_Dataset.py", "pages/5_Export.py", "pages/7_Compare.py", "pages/8_Ensemble.py"]


def _csv(predictions) -> bytes:
    buffer = io.StringIO()
    write_submission(predictions, buffer)
    return buffer.getvalue().encode()


@pytest.fixture(scope="module")
def two_test_submissions(tmp_path_factory):
    """The sample's files plus a second test submission (the first one jittered), in one folder."""
    folder = tmp_path_factory.mktemp("testset")
    for name in ("train.json", "test.json", "predictions_strong.csv", "predictions_weak.csv",
                 "predictions_test.csv"):
        shutil.copy(SAMPLE / name, folder / name)
    b = load_predictions(SAMPLE / "predictions_test.csv")
    rng = np.random.default_rng(3)
    b.boxes_xyxy[:] = b.boxes_xyxy + rng.normal(0, 15, b.boxes_xyxy.shape)
    (folder / "predictions_test_tta.csv").write_bytes(_csv(b))
    return folder


def _real_test_app(page=None, **state):
    need(REAL_TRASH / "test.json")
    return open_app(page, data_dir=REAL_TRASH, **{S.GT_CHOICE: "test.json", **state})


def test_landing_shows_the_busiest_predicted_image():
    at = _real_test_app()
    assert_clean(at)
    shown = texts(at)
    assert "most ground-truth boxes" not in shown
    assert "most predicted boxes" in shown
    classes = at.dataframe[0].value
    preds = load_predictions(REAL_TRASH / "test_submission_cascade.csv")
    assert classes["predicted ≥ 0.05"].sum() == int((preds.scores >= 0.05).sum())


@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_page_opens_on_the_real_test_submission(page):
    at = _real_test_app(page)
    assert_clean(at)
    assert_charts_drawable(at)
    assert at.session_state[S.ACTIVE_PREDICTIONS] == "test_submission_cascade.csv"
    if page == "pages/3_Class_errors.py":  # meaningless without GT: says what it needs, links what works
        assert "errors need ground-truth boxes" in texts(at)
        assert len(at.get("page_link")) >= 3
    elif page != "pages/5_Export.py":
        assert chart_figures(at) or panel_figures(at) or at.table or at.dataframe or at.multiselect, page


def test_overview_without_gt_counts_and_suggests():
    at = _real_test_app("pages/1_Overview.py")
    assert_clean(at)
    test = load_coco(REAL_TRASH / "test.json")
    preds = load_predictions(REAL_TRASH / "test_submission_cascade.csv", dataset=test)
    assert metric(at, "Test images") == f"{len(test.images):,}"
    assert metric(at, "Boxes at score ≥ 0.05") == f"{int((preds.scores >= 0.05).sum()):,}"
    assert at.session_state[S.NO_GT_PRIOR] == "fold3_gt.json"
    assert len(chart_figures(at)) >= 5
    overall = suggest_thresholds(preds, test, class_prior(load_coco(REAL_TRASH / "fold3_gt.json")))
    suggested = overall.loc[overall["category_id"] == ALL_CLASSES, "threshold"].iloc[0]
    at.button(key="_no_gt_use").click().run()
    assert at.session_state[S.SCORE_THR] == round(float(suggested), 2)
    assert metric(at, f"Boxes at score ≥ {round(float(suggested), 2):.2f}")


def test_explorer_sorts_and_facts_without_gt():
    at = _real_test_app("pages/2_Image_explorer.py")
    assert_clean(at)
    assert at.selectbox(key=S.widget_key(S.EXPLORER_SORT)).options == NO_GT_SORT_ORDERS
    assert at.radio(key=S.widget_key(S.EXPLORER_COLOR_BY)).options == ["class"]
    facts = next(m.value for m in at.markdown if " / 4,871" in m.value)
    assert "GT boxes" not in facts and "predictions ≥" in facts and "top score" in facts
    at = _real_test_app("pages/2_Image_explorer.py", **{S.EXPLORER_SORT: "fewest boxes"})
    assert_clean(at)
    test = load_coco(REAL_TRASH / "test.json")
    preds = load_predictions(REAL_TRASH / "test_submission_cascade.csv", dataset=test)
    counts = np.bincount(preds.image_index_in(test)[preds.scores >= 0.05], minlength=len(test.images))
    assert counts[test.image_index_of_file([at.session_state[S.EXPLORER_IMAGE]])[0]] == counts.min()


def test_compare_two_test_submissions(two_test_submissions):
    at = open_app("pages/7_Compare.py", data_dir=two_test_submissions,
                  **{S.GT_CHOICE: "test.json", S.ACTIVE_PREDICTIONS: "predictions_test.csv",
                     S.COMPARE_SETS: ["predictions_test.csv", "predictions_test_tta.csv"]})
    assert_clean(at)
    summary = at.table[0].value
    test = load_coco(two_test_submissions / "test.json")
    ref = load_predictions(two_test_submissions / "predictions_test.csv", dataset=test)
    other = load_predictions(two_test_submissions / "predictions_test_tta.csv", dataset=test)
    expected = agreement(ref, other, ref_thr=0.5, dataset=test).map50
    assert float(summary["agreement (mAP@0.5)"].iloc[0]) == pytest.approx(expected, abs=1e-12)
    assert len(panel_figures(at)) == 1 and not chart_figures(at)  # the disagreeing image, reference | other


def test_explorer_most_disagreement(two_test_submissions):
    at = open_app("pages/2_Image_explorer.py", data_dir=two_test_submissions,
                  **{S.GT_CHOICE: "test.json", S.ACTIVE_PREDICTIONS: "predictions_test.csv",
                     S.EXPLORER_SORT: "most disagreement"})
    assert_clean(at)
    assert at.session_state[S.EXPLORER_SECOND] == "predictions_test_tta.csv"
    test = load_coco(two_test_submissions / "test.json")
    ag = agreement(load_predictions(two_test_submissions / "predictions_test.csv", dataset=test),
                   load_predictions(two_test_submissions / "predictions_test_tta.csv", dataset=test),
                   ref_thr=0.5, dataset=test)
    assert at.session_state[S.EXPLORER_IMAGE] == ag.per_image["file_name"].iloc[0]


def test_ensemble_fit_on_validation_apply_to_test(two_test_submissions):
    folder = two_test_submissions
    at = open_app("pages/8_Ensemble.py", data_dir=folder,
                  **{S.GT_CHOICE: "train.json", S.ACTIVE_PREDICTIONS: "predictions_strong.csv",
                     S.ENSEMBLE_SETS: ["predictions_strong.csv", "predictions_weak.csv"]})
    assert_clean(at)
    at.multiselect(key="_sweep_methods").set_value(["wbf"])
    at.multiselect(key="_sweep_ious").set_value([0.55])
    at.button(key="_sweep_run").click().run()
    assert_clean(at)
    at.multiselect(key=S.widget_key(S.ENSEMBLE_TEST_SETS)).set_value(
        ["predictions_test.csv", "predictions_test_tta.csv"]).run()
    at.button(key="_recipe_apply").click().run()
    assert_clean(at)
    applied = at.session_state[S.ENSEMBLE_APPLIED]
    recipe = applied["recipe"]
    assert recipe.config == at.session_state[S.ENSEMBLE_SWEEP]["sweep"].best
    assert recipe.inputs == ("predictions_strong.csv", "predictions_weak.csv")
    test = load_coco(folder / "test.json")
    tests = [load_predictions(folder / n, dataset=test) for n in ("predictions_test.csv", "predictions_test_tta.csv")]
    expected = apply_recipe(recipe, tests, names=["a", "b"], dataset=test)
    assert _csv(applied["result"].predictions) == _csv(expected.predictions)
    assert json.loads(at.code[0].value)["method"] == recipe.config.method


def test_ensemble_on_test_set_applies_an_uploaded_recipe(two_test_submissions):
    """A recipe saved on validation (CLI or download), uploaded on the test set, gives the same CSV."""
    from core.ensemble import EnsembleConfig
    from core.recipe import Recipe

    folder = two_test_submissions
    recipe = Recipe.of(EnsembleConfig("wbf", iou_thr=0.6, conf_type="max", weights=(2, 1)),
                       ["a_val.csv", "b_val.csv"], fitted_on="val.json", map50=0.5)
    at = open_app("pages/8_Ensemble.py", data_dir=folder,
                  **{S.GT_CHOICE: "test.json", S.ACTIVE_PREDICTIONS: "predictions_test.csv",
                     S.ENSEMBLE_SETS: ["predictions_test.csv", "predictions_test_tta.csv"],
                     S.ENSEMBLE_TEST_SETS: ["predictions_test.csv", "predictions_test_tta.csv"]})
    assert_clean(at)
    at.file_uploader(key="_recipe_upload").set_value(("r.json", recipe.to_json().encode(), "application/json")).run()
    assert_clean(at)
    pairing = at.table[0].value
    assert pairing["fitted on"].tolist() == ["a_val.csv", "b_val.csv"]
    assert pairing["applied to"].tolist() == ["predictions_test.csv", "predictions_test_tta.csv"]
    at.button(key="_recipe_apply").click().run()
    assert_clean(at)
    test = load_coco(folder / "test.json")
    tests = [load_predictions(folder / n, dataset=test) for n in ("predictions_test.csv", "predictions_test_tta.csv")]
    expected = apply_recipe(recipe, tests, names=["a", "b"], dataset=test)
    assert _csv(at.session_state[S.ENSEMBLE_APPLIED]["result"].predictions) == _csv(expected.predictions)
    bad = at.file_uploader(key="_recipe_upload").set_value(("r.json", b'{"format": "x"}', "application/json")).run()
    assert any("not a DetLens ensemble recipe" in e.value for e in bad.error)


def test_compare_with_gt_also_shows_agreement():
    """On validation CSVs (with GT) the agreement section comes after the mAP comparison."""
    at = open_app("pages/7_Compare.py", **{S.COMPARE_SETS: ["predictions_strong.csv", "predictions_weak.csv"]})
    assert_clean(at)
    at.toggle(key="_compare_agree").set_value(True).run()
    assert_clean(at)
    gt = load_coco(SAMPLE / "train.json")
    expected = agreement(load_predictions(SAMPLE / "predictions_strong.csv", dataset=gt),
                         load_predictions(SAMPLE / "predictions_weak.csv", dataset=gt), ref_thr=0.5, dataset=gt)
    summary = next(t.value for t in at.table if "agreement (mAP@0.5)" in t.value.columns)
    assert float(summary["agreement (mAP@0.5)"].iloc[0]) == pytest.approx(expected.map50, abs=1e-12)
    assert "Ground truth" in json.dumps(panel_figures(at)[-1]["layout"].get("annotations", []))
