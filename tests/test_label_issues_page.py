"""The Label review page under AppTest: a decision persists across a rerun and a restart."""
from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from core.dataset import load_coco
from core.label_issues import find_label_issues
from core.prediction_files import load_predictions
from core.review import review_path
from tests.conftest import REPO, SAMPLE
from ui import state as S

PAGE = "pages/10_Label_review.py"


@pytest.fixture()
def folder(tmp_path):
    """A dataset folder the app may write a review file into: the sample GT and the demo model's CSV."""
    for name in ("train.json", "predictions_trained_fcos.csv"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    return tmp_path


@pytest.fixture(scope="module")
def suspects():
    dataset = load_coco(SAMPLE / "train.json")
    return find_label_issues(dataset, load_predictions(SAMPLE / "predictions_trained_fcos.csv", dataset=dataset)).suspects


def open_page(folder) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.session_state[S.DATA_DIR] = str(folder)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def test_a_decision_persists_across_a_rerun_and_a_restart(folder, suspects):
    at = open_page(folder)
    n = len(suspects)
    assert progress_text(at) == f"0 of {n} reviewed"
    first = suspects.iloc[0]
    assert f"annotation {first['ann_id']}" in at.markdown[0].value
    at.button(key="_lr_accept").click().run()
    assert not at.exception
    saved = json.loads(review_path(folder / "train.json").read_text())["decisions"]
    assert [(d["suspect_id"], d["action"]) for d in saved] == [(first["suspect_id"], "accept")]
    assert progress_text(at) == f"1 of {n} reviewed"
    second = suspects.iloc[1]
    assert f"{second['file_name']}" in at.markdown[0].value           # the queue moved on
    at.run()
    assert progress_text(at) == f"1 of {n} reviewed"
    restarted = open_page(folder)                                     # a new session reads the file
    assert progress_text(restarted) == f"1 of {n} reviewed"
    restarted.button(key="_lr_reject").click().run()
    saved = json.loads(review_path(folder / "train.json").read_text())["decisions"]
    assert sorted(d["suspect_id"] for d in saved) == sorted([first["suspect_id"], second["suspect_id"]])
    assert restarted.button(key="_lr_worth")                         # export offered once decided


def test_fix_class_and_filters(folder, suspects):
    at = open_page(folder)
    at.multiselect(key="label_review_kinds").set_value(["bad_box"]).run()
    row = suspects[suspects["kind"] == "bad_box"].iloc[0]
    assert f"annotation {row['ann_id']}" in at.markdown[0].value
    at.selectbox(key=f"_lr_class:{row['suspect_id']}").set_value(9).run()
    at.button(key="_lr_fix").click().run()
    decision = json.loads(review_path(folder / "train.json").read_text())["decisions"][0]
    assert (decision["suspect_id"], decision["edit"], decision["category_id"]) == (row["suspect_id"], "relabel", 9)


def test_unwritable_review_file_keeps_decisions_in_the_session(folder, suspects):
    review_path(folder / "train.json").mkdir()   # something in the way that is not a file
    at = open_page(folder)
    assert any("kept in this session only" in c.value for c in at.caption)
    at.button(key="_lr_accept").click().run()
    assert not at.exception and progress_text(at) == f"1 of {len(suspects)} reviewed"


def test_open_in_explorer(folder, suspects):
    at = open_page(folder)
    at.button(key="_lr_open").click().run()
    assert not at.exception
    assert at.session_state[S.EXPLORER_IMAGE] == suspects.iloc[0]["file_name"]
