"""The catalog in the app: the sidebar registers what it loads, the Submissions page (table,
correlation, bootstrap, forward selection, report, open in Compare), Compare's bootstrap, two
sessions editing at once, and a broken store that leaves the app working."""
from __future__ import annotations

import numpy as np
import pytest

from core.catalog.bootstrap import paired_bootstrap
from core.catalog.store import Catalog
from core.dataset import load_coco
from core.evaluation import evaluate
from core.prediction_files import load_predictions
from tests.catalog_support import store_url  # noqa: F401 - fixture
from tests.conftest import SAMPLE
from tests.test_app import assert_clean, open_app, texts
from tests.test_catalog_store import pycocotools_map50
from ui import catalog as C
from ui import state as S

SUBMISSIONS = "pages/9_Submissions.py"


@pytest.fixture
def app_store(store_url, monkeypatch):
    monkeypatch.setenv("DETLENS_DB_URL", store_url)
    return store_url


def test_sidebar_registers_and_caches_the_evaluation(app_store):
    at = open_app("pages/1_Overview.py")
    assert_clean(at)
    catalog = Catalog(app_store)
    (sub,) = catalog.list()
    assert sub.file_name == "predictions_strong.csv"
    assert catalog.content(sub.id) == (SAMPLE / "predictions_strong.csv").read_bytes()
    (gt_key, gt_name, _), = catalog.ground_truths()
    stats = catalog.result(gt_key, sub.sha256, 0.5)["stats"]
    assert stats["map50"] == pytest.approx(pycocotools_map50(SAMPLE / "train.json", SAMPLE / "predictions_strong.csv"),
                                           abs=1e-9)
    at.switch_page(SUBMISSIONS).run()
    assert_clean(at)
    assert "predictions_strong.csv" in at.dataframe[0].value["name"].tolist()
    catalog.close()


def test_submissions_page_flow(app_store):
    catalog = Catalog(app_store)
    lb = {"strong": 0.74, "weak": 0.47, "trained_fcos": 0.81}
    for name, score in lb.items():
        catalog.register((SAMPLE / f"predictions_{name}.csv").read_bytes(), f"{name}.csv", display_name=name,
                         lb_score=score)
    at = open_app(SUBMISSIONS)
    assert_clean(at)
    at.button(key="_catalog_eval").click().run()
    assert_clean(at)
    table = at.dataframe[0].value.set_index("name")
    val = {n: pycocotools_map50(SAMPLE / "train.json", SAMPLE / f"predictions_{n}.csv") for n in lb}
    for name in lb:
        assert table.at[name, "val mAP@0.5"] == pytest.approx(val[name], abs=1e-9)
    x, y = np.array([val[n] for n in lb]), np.array([lb[n] for n in lb])
    pearson = np.corrcoef(x, y)[0, 1]
    spearman = np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1]
    assert f"Pearson **{pearson:.3f}** · Spearman **{spearman:.3f}** over 3" in texts(at)

    ids = {s.display_name: s.id for s in catalog.list()}
    at.multiselect(key="_catalog_chosen").set_value([ids["weak"], ids["strong"]]).run()
    assert_clean(at)
    dataset = load_coco(SAMPLE / "train.json")
    evs = [evaluate(dataset, load_predictions(SAMPLE / f"predictions_{n}.csv", dataset=dataset)) for n in ("weak", "strong")]
    expected = paired_bootstrap(*evs)
    assert [m.value for m in at.metric] == [f"{expected.delta:+.4f}", f"[{expected.low:+.4f}, {expected.high:+.4f}]",
                                           f"{expected.p_b_better:.1%}"]
    at.multiselect(key="_catalog_chosen").set_value(list(ids.values())).run()
    at.button(key="_catalog_forward").click().run()
    assert_clean(at)
    assert "Forward selection" in texts(at) and len(at.table[-1].value) >= 1
    at.button(key="_catalog_report").click().run()
    assert_clean(at)
    assert at.get("download_button")
    at.button(key="_catalog_compare").click().run()
    assert_clean(at)
    assert len(at.session_state[S.COMPARE_SETS]) == 3 and "Per-class AP@0.5" in texts(at)
    at.session_state["_compare_tab"] = "A against B, per image"  # the bootstrap of A against B
    at.switch_page("pages/7_Compare.py").run()
    assert_clean(at)
    assert "Is the difference real?" in texts(at)
    catalog.close()


def test_two_sessions_editing_lose_no_write(store_url):
    """Both sessions hold the table as it was; A edits notes, B the LB score of the same row."""
    catalog = Catalog(store_url)
    sub, _ = catalog.register(b"PredictionString,image_id\n", "empty.csv", notes="old", lb_score=0.1)
    table_a = C.submissions_table(catalog, "")
    table_b = C.submissions_table(catalog, "")
    edited_a, edited_b = table_a.copy(), table_b.copy()
    edited_a.loc[0, "notes"] = "tuned NMS"
    edited_b.loc[0, "LB score"] = 0.733
    assert C.save_edits(catalog, table_a, edited_a) == [f"#{sub.id}: notes"]
    assert C.save_edits(catalog, table_b, edited_b) == [f"#{sub.id}: lb_score"]
    got = catalog.get(sub.id)
    assert (got.notes, got.lb_score) == ("tuned NMS", 0.733)
    catalog.close()


def test_broken_store_leaves_the_app_working(tmp_path, monkeypatch):
    corrupt = tmp_path / "catalog.sqlite"
    corrupt.write_bytes(b"not a database" * 500)
    monkeypatch.setenv("DETLENS_DB_URL", str(corrupt))
    at = open_app()
    assert not at.exception and not at.error
    assert any("catalog is unavailable" in w.value and "not a SQLite database" in w.value for w in at.sidebar.warning)
    at.switch_page("pages/1_Overview.py").run()
    assert not at.exception and not at.error
    assert any("catalog unavailable" in c.value for c in at.sidebar.caption)
    assert at.metric  # the overview's numbers are there
    at.switch_page(SUBMISSIONS).run()
    assert not at.exception
    assert "not a SQLite database" in at.error[0].value and "DETLENS_DB_URL" in at.error[0].value
