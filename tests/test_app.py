"""Every dashboard page under streamlit's AppTest: sample data, real files, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.dataset import load_coco
from core.evaluation import evaluate
from core.prediction_files import load_predictions
from tests.conftest import (EXTERNAL, REAL_TRASH, REPO, SAMPLE, assert_charts_drawable, chart_figures,
                            figure_image_sources, need, panel_figures, panel_tables)
from ui import state as S

PAGES = ["pages/1_Overview.py", "pages/2_Image_explorer.py", "pages/3_Class_errors.py",
         "pages/4_Dataset.py", "pages/5_Export.py"]


@pytest.fixture(scope="module")
def sample_eval():
    dataset = load_coco(SAMPLE / "train.json")
    predictions = load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)
    return dataset, predictions, evaluate(dataset, predictions, iou_thr=0.5)


SAMPLE_PREDICTIONS = "predictions_strong.csv"  # what sample_eval evaluates


def open_app(page: str | None = None, *, data_dir=None, **state) -> AppTest:
    """app.py run once (as a user lands), then `page` when given; session state set first.

    On the sample data the active set is SAMPLE_PREDICTIONS unless `state` says otherwise, so
    no test depends on which files sample_data/ happens to hold.
    """
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    if data_dir is not None:
        at.session_state[S.DATA_DIR] = str(data_dir)
    elif S.ACTIVE_PREDICTIONS not in state:
        state = {S.ACTIVE_PREDICTIONS: SAMPLE_PREDICTIONS, S.PREDICTIONS_FOR_GT: "train.json", **state}
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def texts(at: AppTest) -> str:
    """All visible text of the run (markdown, captions, alerts, metrics), one string."""
    parts = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "title",
                                  "subheader", "header") for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def explorer_position(at: AppTest):
    """The explorer's position box (its key ends with the list's order)."""
    return next(n for n in at.number_input if n.key.startswith("_explorer_position"))


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# ------------------------------------------------------------------------------ sample data
def test_landing_shows_the_sample_dataset():
    at = open_app()
    assert_clean(at)
    dataset = load_coco(SAMPLE / "train.json")
    assert metric(at, "Images") == f"{len(dataset.images):,}"
    assert metric(at, "Ground-truth boxes") == f"{len(dataset.annotations):,}"
    assert metric(at, "Classes") == str(len(dataset.categories))
    classes = at.dataframe[0].value
    assert classes["class"].tolist() == dataset.categories["name"].tolist()
    assert len(panel_figures(at)) == 1 and not chart_figures(at)  # the image with its boxes
    spec = panel_figures(at)[0]
    assert figure_image_sources(spec)[0].startswith("data:image/jpeg;base64,")
    assert f"active predictions **{SAMPLE_PREDICTIONS}**" in texts(at)
    assert at.session_state[S.SCORE_THR] == 0.05 and at.session_state[S.IOU_THR] == 0.5


def test_default_predictions_follow_the_documented_rule(tmp_path):
    """The first prediction file in sorted order whose images are the ground truth's."""
    for name in ("train.json", "predictions_weak.csv"):
        (tmp_path / name).write_bytes((SAMPLE / name).read_bytes())
    (tmp_path / "a_test_images.csv").write_bytes((SAMPLE / "predictions_test.csv").read_bytes())
    (tmp_path / "b_strong.csv").write_bytes((SAMPLE / "predictions_strong.csv").read_bytes())
    at = open_app(data_dir=tmp_path)
    assert not at.exception
    assert at.session_state[S.ACTIVE_PREDICTIONS] == "b_strong.csv"
    assert at.selectbox(key=S.widget_key(S.ACTIVE_PREDICTIONS)).options == [
        "(none)", "a_test_images.csv", "b_strong.csv", "predictions_weak.csv"]
    # an uploaded set stays active when the ground truth changes
    at.file_uploader(key="_upload_predictions").set_value(
        ("mine.csv", (SAMPLE / "predictions_weak.csv").read_bytes(), "text/csv")).run()
    at.file_uploader(key="_upload_gt").set_value(
        ("again.json", (SAMPLE / "train.json").read_bytes(), "application/json")).run()
    assert_clean(at)
    assert at.session_state[S.GT_CHOICE] == "uploaded: again.json"
    assert at.session_state[S.ACTIVE_PREDICTIONS] == "uploaded: mine.csv"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_sample_data(page):
    at = open_app(page)
    assert_clean(at)
    assert at.title, "page drew nothing"
    assert_charts_drawable(at)


def test_overview_shows_core_metrics(sample_eval):
    _, _, ev = sample_eval
    at = open_app("pages/1_Overview.py")
    assert_clean(at)
    assert metric(at, "mAP@0.5 (competition)") == f"{ev.stats['map50']:.4f}"
    assert metric(at, "mAP@[.5:.95]") == f"{ev.stats['map']:.4f}"
    per_class = at.table[0].value  # static tables (no data grid bundle to load)
    np.testing.assert_allclose(per_class["AP@0.5"].to_numpy(float), ev.per_class["ap50"].to_numpy(float))
    tide = at.table[1].value.set_index("error")
    np.testing.assert_allclose(tide["dAP"].to_numpy(float), ev.tide["dap"].to_numpy(float))
    assert len(chart_figures(at)) == 3  # TIDE, threshold curves, confusion


def test_threshold_slider_changes_counts_as_core_says_and_survives_page_switch(sample_eval):
    _, _, ev = sample_eval
    at = open_app("pages/1_Overview.py")
    low = ev.at(0.05).counts
    assert f"**TP** {int(low['tp']):,}" in texts(at)
    at.slider(key=S.widget_key(S.SCORE_THR)).set_value(0.6).run()
    assert_clean(at)
    high = ev.at(0.6).counts
    assert high["tp"] != low["tp"]
    assert f"**TP** {int(high['tp']):,}" in texts(at)
    assert f"**Missed GT** {int(high['missed']):,}" in texts(at)
    assert metric(at, "F1") == f"{ev.at(0.6).f1:.3f}"
    at.switch_page("pages/5_Export.py").run()
    assert at.session_state[S.SCORE_THR] == 0.6
    assert at.slider(key=S.widget_key(S.SCORE_THR)).value == 0.6


def test_iou_threshold_reevaluates(sample_eval):
    dataset, predictions, _ = sample_eval
    at = open_app("pages/1_Overview.py")
    at.slider(key=S.widget_key(S.IOU_THR)).set_value(0.75).run()
    assert_clean(at)
    strict = evaluate(dataset, predictions, iou_thr=0.75).at(0.05)
    assert f"**TP** {int(strict.counts['tp']):,}" in texts(at)


def test_explorer_navigation_and_jump():
    at = open_app("pages/2_Image_explorer.py")
    assert_clean(at)
    first = at.session_state[S.EXPLORER_IMAGE]
    at.button(key="_explorer_next").click().run()
    second = at.session_state[S.EXPLORER_IMAGE]
    assert second != first
    at.button(key="_explorer_prev").click().run()
    assert at.session_state[S.EXPLORER_IMAGE] == first
    at.text_input(key="_explorer_jump").set_value("train/0042.jpg").run()
    assert at.session_state[S.EXPLORER_IMAGE] == "train/0042.jpg"
    assert "`train/0042.jpg`" in texts(at)
    at.text_input(key="_explorer_jump").set_value("no_such.jpg").run()
    assert any("No image 'no_such.jpg'" in e.value for e in at.error)
    assert not at.exception


def test_explorer_panels_and_box_table_match_core(sample_eval):
    dataset, _, ev = sample_eval
    at = open_app("pages/2_Image_explorer.py", **{S.EXPLORER_IMAGE: "train/0007.jpg"})
    assert_clean(at)
    view = ev.at(0.05)
    index = int(dataset.image_index_of_file(["train/0007.jpg"])[0])
    n_dets = int((view.dets["image_index"] == index).sum())
    n_gts = int((dataset.annotations["image_index"] == index).sum())
    table = panel_tables(at)[0]  # written under the panels by their page, no other table
    assert not at.table and not at.dataframe
    assert (table["kind"] == "prediction").sum() == n_dets
    assert (table["kind"] == "ground truth").sum() == n_gts
    scores = view.dets.loc[view.dets["image_index"] == index, "score"].to_numpy()
    assert sorted(table.loc[table["kind"] == "prediction", "score"]) == sorted(np.round(scores, 3).tolist())
    assert table.loc[table["kind"] == "ground truth", "score"].isna().all()  # blank, not 0
    spec = panel_figures(at)[0]
    assert spec["layout"]["xaxis2"]["matches"] == "x"
    assert len(spec["layout"]["images"]) == 2


def test_explorer_slider_move_redraws_the_image_as_core_says(sample_eval):
    """What the explorer draws follows ev.at(t). (In a browser the slider reruns only the
    explorer's fragment; AppTest reruns the whole page: bench/bench_slider.py covers both.)"""
    dataset, _, ev = sample_eval
    at = open_app("pages/2_Image_explorer.py", **{S.EXPLORER_IMAGE: "train/0007.jpg"})
    index = int(dataset.image_index_of_file(["train/0007.jpg"])[0])
    for score_thr in (0.5, 0.9):
        at.slider(key=S.widget_key(S.SCORE_THR)).set_value(score_thr).run()
        for _ in range(2):  # after the move, then in a full run of the page
            assert_clean(at)
            dets = ev.at(score_thr).dets
            n_dets = int((dets["image_index"] == index).sum())
            table = panel_tables(at)[0]
            assert (table["kind"] == "prediction").sum() == n_dets
            assert table.loc[table["kind"] == "prediction", "score"].min() >= score_thr
            assert f"{n_dets} predictions ≥ {score_thr:.2f}" in texts(at)
            spec = panel_figures(at)[0]
            assert f"score ≥ {score_thr:.2f}" in json.dumps(spec["layout"]["annotations"],
                                                            ensure_ascii=False)
            at.run()
        assert at.title[0].value == "Image explorer"
    at.switch_page("pages/1_Overview.py").run()
    assert metric(at, "F1") == f"{ev.at(0.9).f1:.3f}"


def test_explorer_outcome_filter_keeps_only_images_with_that_outcome(sample_eval):
    _, _, ev = sample_eval
    at = open_app("pages/2_Image_explorer.py", **{S.EXPLORER_OUTCOMES: ["background"]})
    assert_clean(at)
    view = ev.at(0.05)
    with_background = view.dets.loc[view.dets["outcome"].astype(str) == "background", "image_index"].nunique()
    assert f"Image (of {with_background:,})" == explorer_position(at).label
    table = panel_tables(at)[0]
    predicted = table[table["kind"] == "prediction"]
    assert len(predicted) and set(predicted["outcome"]) == {"Background"}


def test_class_errors_link_opens_the_image_in_the_explorer():
    at = open_app("pages/3_Class_errors.py")
    assert_clean(at)
    assert at.get("imgs") or at.get("image"), "no crops drawn"
    caption_key = at.session_state[S.ERRORS_CLASS]
    assert caption_key  # a class is chosen
    first_crop = at.get("image")[0].proto.imgs[0].caption.split(" · ")[1]  # "1 · train/0016.jpg · ..."
    at.pills(key="_errors_open").set_value(0).run()
    assert not at.exception
    assert at.session_state[S.EXPLORER_IMAGE] == first_crop
    assert any("Image explorer" in t.value for t in at.title)


def test_class_errors_crops_are_cached_across_a_threshold_change(monkeypatch):
    import core.drawing

    rendered = []
    real_render = core.drawing.render_crop
    monkeypatch.setattr(core.drawing, "render_crop",
                        lambda *args, **kwargs: rendered.append(args[2]) or real_render(*args, **kwargs))
    from ui.loaders import _crop_png

    _crop_png.clear()  # crops other tests made in this process
    at = open_app("pages/3_Class_errors.py", **{S.ERRORS_CLASS: "Paper"})
    assert_clean(at)
    rendered.clear()
    at.radio(key="_errors_kind").set_value("tp").run()  # many boxes, all well above 0.06
    first = len(rendered)
    shown = [img.url for el in at.get("image") for img in el.proto.imgs]
    assert first == len(shown) == 24  # the default number of crops, each rendered once
    at.slider(key=S.widget_key(S.SCORE_THR)).set_value(0.06).run()
    assert_clean(at)
    assert len(rendered) == first, "a threshold change re-rendered crops"
    # same crops, same PNG bytes: the browser gets the same media URLs
    assert [img.url for el in at.get("image") for img in el.proto.imgs] == shown


def test_test_image_csv_browses_with_predictions_only():
    at = open_app("pages/2_Image_explorer.py", **{S.ACTIVE_PREDICTIONS: "predictions_test.csv",
                                                  S.PREDICTIONS_FOR_GT: "train.json"})
    assert not at.exception
    assert "not in the ground truth: predictions only" in texts(at)
    at.switch_page("pages/1_Overview.py").run()
    assert not at.exception
    assert "test images?" in texts(at)


# ----------------------------------------------------------------------------------- bad input
def test_csv_upload_with_errors_is_scored_with_the_validators_messages(sample_eval):
    # what the server may reject is listed, and the file is scored as pycocotools would
    dataset, _, _ = sample_eval
    at = open_app("pages/1_Overview.py")
    bad = b"PredictionString,image_id\n1 0.9 10 10 50 50,train/0000.jpg\n1 0.9 10 10 abc 50,train/0001.jpg\n"
    at.file_uploader(key="_upload_predictions").set_value(("bad.csv", bad, "text/csv")).run()
    assert not at.exception
    assert at.session_state[S.ACTIVE_PREDICTIONS] == "uploaded: bad.csv"
    message = "\n".join(e.value for e in at.error)
    assert "the competition server may reject this file; DetLens scores it as pycocotools would" in message
    assert "bad.csv:3" in message and "rejected" not in message
    ev = evaluate(dataset, load_predictions(bad, dataset=dataset))      # the first box, scored
    assert metric(at, "mAP@0.5 (competition)") == f"{ev.stats['map50']:.4f}"


def test_unusable_csv_upload_is_rejected_with_the_validators_messages():
    at = open_app("pages/1_Overview.py")
    bad = b"preds,image\n1 0.9 10 10 50 50,train/0000.jpg\n"
    at.file_uploader(key="_upload_predictions").set_value(("bad.csv", bad, "text/csv")).run()
    assert not at.exception
    assert at.session_state[S.ACTIVE_PREDICTIONS] == "uploaded: bad.csv"
    message = "\n".join(e.value for e in at.error)
    assert "Predictions bad.csv rejected" in message and "lacks the column(s)" in message
    # the rest of the app keeps working: the dataset page still draws
    at.switch_page("pages/4_Dataset.py").run()
    assert not at.exception and metric(at, "Images") == "100"


def test_empty_csv_upload_gives_an_error():
    at = open_app("pages/1_Overview.py")
    at.file_uploader(key="_upload_predictions").set_value(("empty.csv", b"", "text/csv")).run()
    assert not at.exception
    assert any("empty.csv" in e.value for e in at.error)


def test_malformed_json_upload_gives_an_error_and_keeps_working():
    at = open_app()
    at.file_uploader(key="_upload_gt").set_value(("broken.json", b"{\"images\": [", "application/json")).run()
    assert not at.exception
    assert any("broken.json" in e.value for e in at.error)
    at.selectbox(key=S.widget_key(S.GT_CHOICE)).set_value("train.json").run()
    assert_clean(at)


def test_missing_folder_gives_an_error(tmp_path):
    at = open_app(data_dir=tmp_path / "nope")
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)


def test_image_path_escape_is_refused(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    gt = {"images": [{"id": 1, "file_name": "../outside.jpg", "width": 64, "height": 48}],
          "annotations": [{"id": 0, "image_id": 1, "category_id": 0, "bbox": [1, 1, 10, 10],
                           "area": 100, "iscrowd": 0}],
          "categories": [{"id": 0, "name": "thing"}]}
    (root / "train.json").write_text(json.dumps(gt))
    at = open_app("pages/2_Image_explorer.py", data_dir=root)
    assert not at.exception
    assert any("outside the dataset folder" in i.value for i in at.info)


def test_registered_predictions_become_selectable(sample_eval):
    from ui.loaders import predictions_key
    from ui.sidebar import RegisteredPredictions

    _, predictions, _ = sample_eval
    subset = predictions.subset(predictions.scores >= 0.5)
    label = "ensemble: test"
    at = open_app("pages/1_Overview.py", **{
        S.EXTRA_PREDICTIONS: {label: RegisteredPredictions(label, subset, predictions_key(subset))},
        S.ACTIVE_PREDICTIONS: label, S.PREDICTIONS_FOR_GT: "train.json"})
    assert_clean(at)
    assert label in at.selectbox(key=S.widget_key(S.ACTIVE_PREDICTIONS)).options
    assert f"**{label}**" in texts(at)


# ------------------------------------------------------------------------------ real files
def test_real_trash_fold_is_fully_browsable():
    need(REAL_TRASH / "fold3_gt.json")
    at = open_app(data_dir=REAL_TRASH)
    assert_clean(at)
    assert at.session_state[S.GT_CHOICE] == "fold3_gt.json"
    assert at.session_state[S.ACTIVE_PREDICTIONS] == "fold3_deta_swinL.csv"
    at.switch_page("pages/1_Overview.py").run()
    assert_clean(at)
    assert metric(at, "mAP@0.5 (competition)") == "0.6684"  # pycocotools: 0.668446
    at.switch_page("pages/2_Image_explorer.py").run()
    assert_clean(at)
    assert any("not found" in i.value for i in at.info)  # blank canvas + notice
    at.switch_page("pages/3_Class_errors.py").run()
    assert_clean(at)


def test_real_test_submission_browses_on_test_json():
    need(REAL_TRASH / "test.json")
    at = open_app("pages/2_Image_explorer.py", data_dir=REAL_TRASH,
                  **{S.GT_CHOICE: "test.json", S.EXPLORER_IMAGE: "test/0001.jpg"})
    assert_clean(at)
    assert at.session_state[S.ACTIVE_PREDICTIONS] == "test_submission_cascade.csv"
    spec = panel_figures(at)[0]
    assert figure_image_sources(spec)[0].startswith("data:image/"), "the one real image is drawn"
    at.switch_page("pages/1_Overview.py").run()
    assert not at.exception and "has no annotations" in texts(at)


@pytest.mark.parametrize("page", [None] + PAGES)
def test_voc_cartucho_pages(page):
    need(EXTERNAL / "voc-cartucho" / "gt.json")
    at = open_app(page, data_dir=EXTERNAL / "voc-cartucho")
    assert_clean(at)
    if page == "pages/1_Overview.py":
        assert metric(at, "mAP@0.5 (competition)") == "0.3120"  # pycocotools: 0.311953
