"""Every page with an empty prediction set (header-only CSV, `[]` json, rows without boxes, an
empty in-app set), with boxes only on images the ground truth lacks, and with a ground truth
that has images but no annotations: a notice, never an exception."""
from __future__ import annotations

import json

import pytest

from core.dataset import load_coco
from core.prediction_files import load_predictions
from tests.conftest import SAMPLE
from tests.test_app import open_app, texts
from ui import state as S

PAGES = ["pages/1_Overview.py", "pages/2_Image_explorer.py", "pages/3_Class_errors.py",
         "pages/4_Dataset.py", "pages/5_Export.py", "pages/7_Compare.py", "pages/8_Ensemble.py"]
METRIC_PAGES = ["pages/1_Overview.py", "pages/3_Class_errors.py"]
NOTICE_PAGES = METRIC_PAGES + ["pages/4_Dataset.py", "pages/5_Export.py", "pages/7_Compare.py",
                               "pages/8_Ensemble.py"]  # say "No predicted boxes in X"
OTHER = "predictions_strong.csv"  # a set with boxes, beside the empty one on Compare / Ensemble


def _sample_file_names() -> list[str]:
    return [image["file_name"] for image in json.loads((SAMPLE / "train.json").read_text())["images"]]


def _rows_without_boxes() -> bytes:
    """A valid submission listing every image with an empty PredictionString."""
    return ("PredictionString,image_id\n" + "".join(f",{name}\n" for name in _sample_file_names())).encode()


EMPTY_UPLOADS = {
    "header-only CSV": ("empty.csv", b"PredictionString,image_id\n"),
    "empty results json": ("empty.json", b"[]"),
    "rows without boxes": ("no_boxes.csv", _rows_without_boxes()),
}


def _with_upload(page: str, name: str, content: bytes):
    at = open_app()
    at.file_uploader(key="_upload_predictions").set_value((name, content, "text/csv")).run()
    assert at.session_state[S.ACTIVE_PREDICTIONS] == f"uploaded: {name}"
    at.session_state[S.COMPARE_SETS] = [f"uploaded: {name}", OTHER]
    at.session_state[S.ENSEMBLE_SETS] = [f"uploaded: {name}", OTHER]
    at.switch_page(page).run()
    return at


def _assert_no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, "page drew nothing"


@pytest.mark.parametrize("case", list(EMPTY_UPLOADS))
@pytest.mark.parametrize("page", PAGES)
def test_empty_prediction_upload_gives_a_notice_on_every_page(case, page):
    name, content = EMPTY_UPLOADS[case]
    dataset = load_coco(SAMPLE / "train.json")
    assert len(load_predictions(content, dataset=dataset, name=name)) == 0  # valid and empty
    at = _with_upload(page, name, content)
    _assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    if page in NOTICE_PAGES:
        assert f"No predicted boxes in uploaded: {name}" in texts(at)


def test_no_box_at_the_score_threshold_is_said_on_the_overview():
    dataset = load_coco(SAMPLE / "train.json")
    scores = load_predictions(SAMPLE / OTHER, dataset=dataset).scores
    assert scores.max() < 1.0  # so at 1.00 nothing is kept
    at = open_app("pages/1_Overview.py", **{S.SCORE_THR: 1.0})
    _assert_no_exception(at)
    assert f"No predicted boxes in {OTHER} at score ≥ 1.00" in texts(at)


@pytest.mark.parametrize("page", PAGES)
def test_empty_in_app_set_gives_a_notice_on_every_page(page):
    from ui.loaders import predictions_key
    from ui.sidebar import RegisteredPredictions

    dataset = load_coco(SAMPLE / "train.json")
    predictions = load_predictions(SAMPLE / OTHER, dataset=dataset)
    empty = predictions.subset(predictions.scores > 2.0)
    assert len(empty) == 0
    label = "ensemble: nothing"
    at = open_app(page, **{
        S.EXTRA_PREDICTIONS: {label: RegisteredPredictions(label, empty, predictions_key(empty))},
        S.ACTIVE_PREDICTIONS: label, S.PREDICTIONS_FOR_GT: "train.json",
        S.COMPARE_SETS: [label, OTHER], S.ENSEMBLE_SETS: [label, OTHER]})
    _assert_no_exception(at)
    if page in NOTICE_PAGES:
        assert f"No predicted boxes in {label}" in texts(at)


def test_ensemble_of_an_empty_set_and_a_real_one_runs():
    name, content = EMPTY_UPLOADS["header-only CSV"]
    at = _with_upload("pages/8_Ensemble.py", name, content)
    at.button(key="_ens_run").click().run()
    _assert_no_exception(at)
    assert at.session_state[S.ENSEMBLE_RESULT] is not None


@pytest.mark.parametrize("page", PAGES)
def test_boxes_only_on_images_the_ground_truth_lacks(page):
    at = open_app(page, **{S.ACTIVE_PREDICTIONS: "predictions_test.csv",
                           S.PREDICTIONS_FOR_GT: "train.json",
                           S.COMPARE_SETS: ["predictions_test.csv", OTHER],
                           S.ENSEMBLE_SETS: ["predictions_test.csv", OTHER]})
    _assert_no_exception(at)
    if page in METRIC_PAGES:
        assert "test images?" in texts(at)


@pytest.mark.parametrize("page", PAGES)
def test_ground_truth_with_images_but_no_annotations(page, tmp_path):
    coco = json.loads((SAMPLE / "train.json").read_text())
    coco["annotations"] = []
    (tmp_path / "images_only.json").write_text(json.dumps(coco))
    for name in (OTHER, "predictions_test.csv"):
        (tmp_path / name).write_bytes((SAMPLE / name).read_bytes())
    at = open_app(data_dir=tmp_path)
    at.switch_page(page).run()
    _assert_no_exception(at)
    assert at.session_state[S.GT_CHOICE] == "images_only.json"
    if page in METRIC_PAGES:
        assert "has no annotations" in texts(at)
