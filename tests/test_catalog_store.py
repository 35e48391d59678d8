"""The catalog's store on SQLite and PostgreSQL: registration by content, edits, cached results,
two concurrent writers, and bad stores (corrupt, foreign, newer schema, unreachable)."""
from __future__ import annotations

import json
import multiprocessing
import sqlite3

import pytest
import sqlalchemy as sa

from core.catalog.service import evaluate_cached, ground_truth_key, load_submission, register_predictions_file
from core.catalog.store import SCHEMA_VERSION, Catalog, CatalogError, mask_url, resolve_url
from core.dataset import load_coco
from core.prediction_files import load_predictions
from tests.catalog_support import store_url  # noqa: F401 - fixture
from tests.conftest import SAMPLE


def pycocotools_map50(gt_path, pred_path) -> float:
    """pycocotools' mAP@0.5 (annotation ids shifted by +1: its id-0 bug is not ours)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from core.formats import coco_results

    doc = json.loads(gt_path.read_text())
    for ann in doc["annotations"]:
        ann["id"] += 1
    dataset = load_coco(gt_path)
    results, _ = coco_results(load_predictions(pred_path, dataset=dataset), dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = doc
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1])


class TestRegister:
    def test_same_content_is_one_entry_and_the_file_is_kept(self, store_url):
        catalog = Catalog(store_url)
        data = (SAMPLE / "predictions_strong.csv").read_bytes()
        preds = load_predictions(data, dataset=load_coco(SAMPLE / "train.json"))
        first, created = register_predictions_file(catalog, data, "a/strong.csv", preds, model="m1")
        again, created_again = catalog.register(data, "renamed.csv")
        assert created and not created_again and again.id == first.id
        assert first.file_name == "strong.csv" and first.size_bytes == len(data)
        assert first.n_boxes == len(preds) and first.n_images == 100 and first.model == "m1"
        assert catalog.content(first.id) == data
        assert [s.id for s in catalog.list()] == [first.id]
        catalog.close()

    def test_reregistration_fills_only_empty_fields(self, store_url):
        catalog = Catalog(store_url)
        sub, _ = catalog.register(b"PredictionString,image_id\n", "empty.csv", notes="mine")
        catalog.update(sub.id, lb_score=0.7)
        again, _ = catalog.register(b"PredictionString,image_id\n", "empty.csv", notes="theirs", lb_score=0.1,
                                    model="yolo")
        assert (again.notes, again.lb_score, again.model) == ("mine", 0.7, "yolo")
        catalog.close()

    def test_update_writes_named_fields_and_checks_them(self, store_url):
        catalog = Catalog(store_url)
        sub, _ = catalog.register(b"x", "x.csv", model="a", notes="n")
        catalog.update(sub.id, lb_score="0.712")
        got = catalog.get(sub.id)
        assert (got.model, got.notes, got.lb_score) == ("a", "n", 0.712)
        with pytest.raises(ValueError, match="lb_score must be a number"):
            catalog.update(sub.id, lb_score="abc")
        with pytest.raises(ValueError, match="Invalid field"):
            catalog.update(sub.id, sha256="0" * 64)
        with pytest.raises(KeyError):
            catalog.update(sub.id + 100, notes="x")
        catalog.close()


class TestResults:
    def test_cached_result_equals_pycocotools_and_is_reused(self, store_url):
        catalog = Catalog(store_url)
        gt_path, pred_path = SAMPLE / "train.json", SAMPLE / "predictions_weak.csv"
        dataset = load_coco(gt_path)
        sub, _ = catalog.register(pred_path.read_bytes(), pred_path.name)
        preds = load_submission(catalog, sub, dataset)
        key = ground_truth_key(gt_path)
        payload, cached = evaluate_cached(catalog, dataset, key, "train.json", preds, sub.sha256, 0.5)
        again, cached_again = evaluate_cached(catalog, dataset, key, "train.json", preds, sub.sha256, 0.5)
        assert not cached and cached_again and again == payload
        assert payload["stats"]["map50"] == pytest.approx(pycocotools_map50(gt_path, pred_path), abs=1e-9)
        assert set(catalog.results_for(key, 0.5)) == {sub.sha256}
        assert catalog.results_for(key, 0.75) == {}
        assert [(k, n, c) for k, n, c in catalog.ground_truths()] == [(key, "train.json", 1)]
        catalog.close()


def _writer(url: str, role: str, ids: list[int], rounds: int, queue) -> None:
    try:
        catalog = Catalog(url)
        for r in range(rounds):
            catalog.register(f"{role} file {r}".encode(), f"{role}{r}.csv")   # new entries
            catalog.register(b"shared file", "shared.csv")                     # the same entry
            for sub_id in ids:  # each writer edits its own field of the same rows
                if role == "a":
                    catalog.update(sub_id, notes=f"a{r}")
                else:
                    catalog.update(sub_id, lb_score=float(r))
        catalog.close()
        queue.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        queue.put(f"{type(exc).__name__}: {exc}")


def test_two_concurrent_writers_lose_no_write(store_url):
    catalog = Catalog(store_url)
    ids = [catalog.register(f"row {i}".encode(), f"row{i}.csv")[0].id for i in range(5)]
    rounds = 15
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(store_url, role, ids, rounds, queue)) for role in "ab"]
    for w in workers:
        w.start()
    outcomes = [queue.get(timeout=240) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert outcomes == ["ok", "ok"]
    subs = catalog.list()
    names = [s.file_name for s in subs]
    assert names.count("shared.csv") == 1
    assert sum(n.startswith("a") for n in names) == rounds and sum(n.startswith("b") for n in names) == rounds
    for sub_id in ids:
        got = catalog.get(sub_id)
        assert (got.notes, got.lb_score) == (f"a{rounds - 1}", float(rounds - 1))
    catalog.close()


class TestBadStores:
    def test_corrupt_file(self, tmp_path):
        path = tmp_path / "catalog.sqlite"
        path.write_bytes(b"this is not a database, just bytes" * 100)
        with pytest.raises(CatalogError, match="not a SQLite database") as info:
            Catalog(resolve_url(str(path)))
        assert "DETLENS_DB_URL" in str(info.value)

    def test_foreign_database(self, tmp_path):
        path = tmp_path / "other.sqlite"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE users (id INTEGER)")
        with pytest.raises(CatalogError, match="not DetLens'.*users"):
            Catalog(resolve_url(str(path)))
        with sqlite3.connect(path) as conn:  # left untouched
            assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["users"]

    def test_newer_schema(self, store_url):
        Catalog(store_url).close()
        engine = sa.create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE detlens_schema SET version = :v"), {"v": SCHEMA_VERSION + 5})
        engine.dispose()
        with pytest.raises(CatalogError, match=f"version {SCHEMA_VERSION + 5}, written by a newer DetLens"):
            Catalog(store_url)

    def test_old_schema_is_migrated(self, tmp_path):
        path = tmp_path / "v0.sqlite"
        with sqlite3.connect(path) as conn:  # what a version-0 store holds: the version table only
            conn.execute("CREATE TABLE detlens_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
            conn.execute("INSERT INTO detlens_schema VALUES (1, 0)")
        catalog = Catalog(resolve_url(str(path)))
        assert catalog.schema_version() == SCHEMA_VERSION
        assert catalog.register(b"x", "x.csv")[1]
        catalog.close()

    def test_unreachable_server_hides_the_password(self):
        import socket

        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"postgresql://team:s3cr3t-pw@127.0.0.1:{port}/detlens"
        with pytest.raises(CatalogError) as info:
            Catalog(url)
        message = str(info.value)
        assert "s3cr3t-pw" not in message and "***" in message and "reachable" in message

    def test_mask_url(self):
        assert mask_url("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
        assert "pw" not in mask_url("postgresql+psycopg://u:pw@h/db")


def test_resolve_url(tmp_path):
    assert resolve_url(None, {}).endswith(".detlens/catalog.sqlite")
    assert resolve_url(None, {"DETLENS_DB_URL": "postgresql://x@h/db"}) == "postgresql://x@h/db"
    assert resolve_url(str(tmp_path / "c.db"), {"DETLENS_DB_URL": "postgresql://x@h/db"}) == \
        f"sqlite:///{tmp_path / 'c.db'}"
