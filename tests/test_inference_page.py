"""The Live inference page: AppTest runs of the demo model, bad checkpoints, batch predictions,
and one real-browser screenshot (tests/screenshots/sample_live_inference.png)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import models
from core.dataset import load_coco
from core.inference import load_detector, predict_image, read_checkpoint
from tests.conftest import REAL_TRASH, REPO, SAMPLE, need, panel_figures
from ui import state as S

PAGE = "pages/6_Live_inference.py"
SHOTS = REPO / "tests" / "screenshots"


def open_page(data_dir: Path = SAMPLE, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240)
    at.session_state[S.DATA_DIR] = str(data_dir)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(PAGE).run()
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture(scope="module")
def three_image_dataset(tmp_path_factory) -> Path:
    """sample_data cut down to its first three train images (fast batch predictions)."""
    root = tmp_path_factory.mktemp("three")
    doc = json.loads((SAMPLE / "train.json").read_text())
    doc["images"] = doc["images"][:3]
    ids = {im["id"] for im in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in ids]
    (root / "train").mkdir()
    for im in doc["images"]:
        shutil.copy(SAMPLE / im["file_name"], root / im["file_name"])
    (root / "train.json").write_text(json.dumps(doc))
    return root


def test_demo_model_runs_on_the_explorers_image_at_the_shared_threshold():
    image = "train/0002.jpg"
    at = open_page(**{S.EXPLORER_IMAGE: image, S.SCORE_THR: 0.3})
    assert_clean(at)
    assert at.selectbox(key="_infer_image").value == image
    dataset = load_coco(SAMPLE / "train.json")
    expected = predict_image(load_detector(SAMPLE / "demo_model.pt", device="cpu"), SAMPLE / image, score_thr=0.3)
    assert metric(at, "Boxes ≥ 0.30") == str(len(expected.scores))
    n_gt = int((dataset.annotations["image_index"] == 2).sum())
    assert metric(at, "Ground-truth boxes") == str(n_gt)
    assert metric(at, "Inference time").endswith(" ms")
    recorded = read_checkpoint(SAMPLE / "demo_model.pt").meta["train"]
    assert any(f"mAP@0.5: {recorded['map50_train']:.3f} on its training images" in c.value for c in at.caption)
    figure = json.dumps(panel_figures(at)[0], ensure_ascii=False)
    assert "Ground truth" in figure and "score ≥ 0.30" in figure

    at.slider(key=S.widget_key(S.SCORE_THR)).set_value(0.9).run()  # the shared sidebar slider
    assert_clean(at)
    assert metric(at, "Boxes ≥ 0.90") == str(int((expected.scores >= 0.9).sum()))


def test_bad_checkpoint_path_and_offline_weights_say_why(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    at = open_page()
    at.radio(key="_infer_source").set_value("Checkpoint file path").run()
    at.text_input(key="_infer_path").input(str(bad)).run()
    assert not at.exception
    assert any("broken.pth: not a readable PyTorch checkpoint" in e.value for e in at.error)

    at.radio(key="_infer_source").set_value("torchvision COCO weights").run()
    assert not at.exception
    reason = models.pretrained_unavailable_reason("fasterrcnn_resnet50_fpn")
    if reason is not None:  # no local copy of the weights (always so here): says why, loads nothing
        assert any(reason in i.value for i in at.info)
        assert at.button(key="_infer_pretrained") is not None


def test_a_checkpoint_error_keeps_the_chosen_image_source(tmp_path):
    """Issue 11: the 'Image' radio (and so the upload) survived no run that stopped on a bad checkpoint."""
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    at = open_page()
    at.radio(key="_infer_image_source").set_value("Upload an image").run()
    at.radio(key="_infer_source").set_value("Checkpoint file path").run()
    at.text_input(key="_infer_path").input(str(bad)).run()
    assert any("not a readable PyTorch checkpoint" in e.value for e in at.error)
    assert at.radio(key="_infer_image_source").value == "Upload an image"
    at.radio(key="_infer_source").set_value("Bundled demo model").run()
    assert not at.exception
    assert at.radio(key="_infer_image_source").value == "Upload an image"


def test_opens_on_an_image_that_exists():
    """test.json lists test/0000.jpg first, whose file is absent; test/0001.jpg is there."""
    need(REAL_TRASH / "test.json")
    assert not (REAL_TRASH / "test" / "0000.jpg").exists() and (REAL_TRASH / "test" / "0001.jpg").is_file()
    at = open_page(REAL_TRASH, **{S.GT_CHOICE: "test.json"})
    assert not at.exception
    assert at.selectbox(key="_infer_image").value == "test/0001.jpg"
    assert not any("missing" in e.value for e in at.error)


def test_batch_predictions_become_the_active_set(three_image_dataset):
    at = open_page(three_image_dataset)
    assert_clean(at)
    at.button(key="_infer_batch").click().run()
    assert_clean(at)
    active = at.session_state[S.ACTIVE_PREDICTIONS]
    assert active.startswith("live: demo_model.pt (fcos_tiny_fpn) on train.json")
    assert any("Predicted 3 images" in s.value for s in at.success)
    registered = at.session_state[S.EXTRA_PREDICTIONS][active].predictions
    assert registered.image_keys.tolist() == ["train/0000.jpg", "train/0001.jpg", "train/0002.jpg"]
    assert registered.scores.min() >= 0.05
    at.switch_page("pages/1_Overview.py").run()  # selectable and evaluated like a CSV
    assert_clean(at)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is not installed")
def test_page_in_the_browser():
    from tests.browser import chromium_page, page_problems, panel_images, streamlit_server, wait_until_idle

    SHOTS.mkdir(exist_ok=True)
    with streamlit_server() as url, chromium_page() as page:
        page.goto(f"{url}/Live_inference")
        wait_until_idle(page, timeout_ms=120_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "sample_live_inference.png"), full_page=True)
        assert page_problems(page) == []
        assert panel_images(page) == 2, "both panels (ground truth | predictions) need the image"
        assert "Inference time" in page.inner_text("body")
