"""core.memory_budget: the budget setting, size estimates (against tracemalloc) and the
byte-bounded LRU cache; then the dashboard's caches built on it (ui.loaders, imported inside
the tests that need it, so the core tests stay free of streamlit)."""
from __future__ import annotations

import gc
import hashlib
import threading
import time
import tracemalloc
import weakref

import numpy as np
import pandas as pd
import pytest

from core.dataset import load_coco
from core.evaluation import evaluate
from core.memory_budget import (DEFAULT_BUDGET_MB, ENV_VAR, MIN_BUDGET_MB, RESERVED_MB, BoundedCache,
                                Budget, cache_capacity, estimate_bytes, read_budget)
from core.prediction_files import load_predictions
from tests.conftest import SAMPLE

MB = 1 << 20


def _sized(n: int) -> np.ndarray:
    return np.zeros(n, np.uint8)


def _cache(capacity: int, **kwargs) -> BoundedCache:
    return BoundedCache(capacity, "test", sizeof=lambda value, skip=(): value.nbytes,
                        release=lambda: None, **kwargs)


# ------------------------------------------------------------------------------- the setting
class TestReadBudget:
    def test_unset_is_the_default(self):
        assert read_budget({}) == Budget(DEFAULT_BUDGET_MB * MB)

    def test_value_in_megabytes(self):
        assert read_budget({ENV_VAR: "4096"}).bytes == 4096 * MB
        assert read_budget({ENV_VAR: " 1000.5 "}).bytes == int(1000.5 * MB)

    @pytest.mark.parametrize("raw", ["abc", "-5", "0", "nan", "inf", str(MIN_BUDGET_MB - 1)])
    def test_unusable_value_falls_back_to_the_default_and_says_why(self, raw):
        budget = read_budget({ENV_VAR: raw})
        assert budget.bytes == DEFAULT_BUDGET_MB * MB
        assert ENV_VAR in budget.problem and repr(raw) in budget.problem
        assert str(MIN_BUDGET_MB) in budget.problem

    def test_cache_capacity_is_a_share_of_what_the_reserve_leaves(self):
        budget = Budget(2048 * MB)
        assert cache_capacity(0.25, budget) == int((2048 - RESERVED_MB) * MB * 0.25)
        assert cache_capacity(1.0, Budget(MIN_BUDGET_MB * MB)) == (MIN_BUDGET_MB - RESERVED_MB) * MB
        for share in (0, -0.1, 1.5):
            with pytest.raises(ValueError, match="Invalid share"):
                cache_capacity(share, budget)


# --------------------------------------------------------------------------------- estimates
class TestEstimateBytes:
    def test_arrays_bytes_and_containers(self):
        a, b = _sized(1000), np.zeros((10, 4), np.float64)
        assert estimate_bytes(a) == 1000
        assert estimate_bytes({"a": a, "b": [b, b], "c": b"x" * 77}) == 1000 + 320 + 77 + len("abc")

    def test_views_share_their_base(self):
        a = np.zeros(1000, np.float64)
        assert estimate_bytes([a, a[10:20], a.reshape(10, 100)]) == a.nbytes

    def test_dataframe_columns_of_one_block_counted_once(self):
        table = pd.DataFrame({"x": np.arange(1000.0), "y": np.arange(1000.0), "k": np.arange(1000)})
        expected = int(table.memory_usage(index=False, deep=False).sum())
        assert estimate_bytes(table) == expected
        assert estimate_bytes([table, table[["x", "y"]]]) >= expected

    def test_skip_leaves_out_everything_reachable_from_it(self):
        shared = _sized(5000)
        owner = {"big": shared}
        assert estimate_bytes({"mine": _sized(100), "theirs": shared}, skip=(owner,)) == 100 + len("mine") + len("theirs")

    def test_a_skipped_object_is_walked_again_once_it_built_more(self):
        """The walk of what is skipped is remembered (core.memory_budget._skip_footprint) until the
        object gains an attribute: a lazily built table is then its, not the value's."""
        class Owner:
            pass

        owner, later = Owner(), _sized(3000)
        owner.big = _sized(5000)
        value = {"a": owner.big, "b": later}
        assert estimate_bytes(value, skip=(owner,)) == 3000 + 2
        assert estimate_bytes(value, skip=(owner,)) == 3000 + 2  # remembered
        owner.later = later
        assert estimate_bytes(value, skip=(owner,)) == 2
        assert estimate_bytes(value, skip=(Owner(),)) == 8000 + 2  # another owner: its own walk

    def test_evaluation_estimate_matches_the_memory_it_allocated(self):
        """Reference: tracemalloc's count of what evaluate() and a view allocated and kept."""
        dataset = load_coco(SAMPLE / "train.json")
        predictions = load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)
        evaluate(dataset, predictions)  # kernels loaded, caches warm
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            ev = evaluate(dataset, predictions, iou_thr=0.5)
            ev.dets, ev.gts
            view = ev.at(0.3)
            view.dets, view.per_image, view.confusion
            gc.collect()
            allocated = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        estimate = estimate_bytes([ev, view], skip=(dataset,))
        assert 0.75 * allocated <= estimate <= 1.25 * allocated, (estimate, allocated)
        # a view alone is small: its evaluation is another cache's
        assert estimate_bytes(view, skip=(ev,)) < 0.5 * estimate_bytes(ev, skip=(dataset,))


# ------------------------------------------------------------------------------- the cache
class TestBoundedCache:
    def test_evicts_least_recently_used_down_to_capacity(self):
        cache = _cache(3000)
        for key in "abc":
            cache.put(key, _sized(1000))
        assert cache.get("a") is not None  # a is now the most recent: b goes first
        cache.put("d", _sized(1000))
        assert cache.keys() == ["c", "a", "d"] and cache.total_bytes == 3000
        cache.put("e", _sized(2500))
        assert cache.keys() == ["e"] and cache.total_bytes == 2500

    def test_the_newest_entry_stays_even_over_capacity(self):
        evicted = []
        cache = _cache(100, on_evict=lambda key, value: evicted.append(key))
        cache.put("small", _sized(50))
        cache.put("huge", _sized(1000))
        assert cache.keys() == ["huge"] and evicted == ["small"]

    def test_max_entries(self):
        cache = _cache(10 ** 9, max_entries=2)
        for key in "abc":
            cache.put(key, _sized(1))
        assert cache.keys() == ["b", "c"]

    def test_replacing_a_key_keeps_the_total_right(self):
        cache = _cache(10 ** 6)
        cache.put("a", _sized(100))
        cache.put("a", _sized(300))
        assert cache.total_bytes == 300 and len(cache) == 1
        assert cache.pop("a").nbytes == 300 and cache.total_bytes == 0

    def test_remeasure_counts_what_an_entry_built_since(self):
        sizes = {"a": 100, "b": 100}
        cache = BoundedCache(1000, sizeof=lambda value, skip=(): sizes[value], release=lambda: None)
        cache.put("a", "a")
        cache.put("b", "b")
        sizes["b"] = 950  # b built a lazy table
        cache.remeasure("b")
        assert cache.keys() == ["b"] and cache.total_bytes == 950

    def test_remeasure_sizes_again_only_when_the_signature_changed(self):
        calls = []

        def sizeof(value, skip=()):
            calls.append(value["built"])
            return 100 * len(value["built"])

        cache = BoundedCache(10 ** 6, sizeof=sizeof, release=lambda: None,
                             signature=lambda value: tuple(value["built"]))
        value = {"built": ["a"]}
        cache.put("k", value)
        cache.remeasure("k")
        assert len(calls) == 1 and cache.total_bytes == 100  # nothing new: not walked again
        value["built"].append("b")
        cache.remeasure("k")
        assert len(calls) == 2 and cache.total_bytes == 200

    def test_dependents_go_with_what_they_depend_on_and_are_sized_without_it(self):
        parent = {"arrays": _sized(10_000)}
        derived = BoundedCache(10 ** 6, release=lambda: None)
        parents = BoundedCache(10 ** 6, release=lambda: None,
                               on_evict=lambda key, value: derived.discard_dependents(value))
        parents.put("p", parent)
        child = {"parent": parent, "own": _sized(10)}
        derived.put("view", child, depends_on=(parent,))
        assert derived.total_bytes == 10 + len("parent") + len("own")
        parents.capacity_bytes = 0
        parents.put("q", {"arrays": _sized(5)})  # evicts p, and with it the view
        assert "p" not in parents and "view" not in derived

    def test_evicted_values_are_freed(self):
        cache = BoundedCache(1000, release=lambda: None)
        value = pd.DataFrame({"x": np.zeros(100)})
        ref = weakref.ref(value)
        cache.put("a", value)
        del value
        cache.put("b", _sized(1000))
        gc.collect()
        assert ref() is None

    def test_get_or_create_builds_once_for_concurrent_callers(self):
        cache = _cache(10 ** 6)
        calls = []

        def create():
            calls.append(1)
            time.sleep(0.05)
            return _sized(10)

        results = []
        threads = [threading.Thread(target=lambda: results.append(cache.get_or_create("k", create)))
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(calls) == 1 and len({id(r) for r in results}) == 1

    def test_concurrent_puts_keep_the_total_exact_and_bounded(self):
        cache = _cache(50_000)
        rng = np.random.default_rng(0)
        sizes = rng.integers(1, 5000, size=(8, 200))

        def worker(row):
            for i, size in enumerate(sizes[row]):
                cache.put((row, i % 20), _sized(int(size)))
                cache.get((row, (i * 7) % 20))

        threads = [threading.Thread(target=worker, args=(r,)) for r in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        held = sum(cache.get(k).nbytes for k in cache.keys())
        assert cache.total_bytes == held <= 50_000

    def test_a_failing_create_leaves_nothing_behind(self):
        cache = _cache(10 ** 6)
        with pytest.raises(RuntimeError):
            cache.get_or_create("k", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
        assert "k" not in cache
        assert cache.get_or_create("k", lambda: _sized(3)).nbytes == 3


# ------------------------------------------------------------------- the dashboard's caches
def test_views_never_keep_an_evicted_evaluation_alive(monkeypatch):
    """The issue's IoU sweep: with room for two evaluations, after evaluating at every IoU
    threshold and viewing each at several score thresholds, only cached evaluations live."""
    from ui import loaders

    dataset = load_coco(SAMPLE / "train.json")
    predictions = load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)
    one = estimate_bytes(evaluate(dataset, predictions, iou_thr=0.5), skip=(dataset,))
    evaluations = loaders.caches()["evaluations"]
    monkeypatch.setattr(evaluations, "capacity_bytes", int(2.5 * one))
    evaluations.clear()
    alive = []
    for iou_thr in np.round(np.arange(0.05, 0.951, 0.05), 2):
        ev = loaders.evaluation(dataset, "ds-key", predictions, "pred-key", iou_thr)
        alive.append(weakref.ref(ev))
        for score_thr in (0.05, 0.3, 0.6):
            view = loaders.threshold_view(ev, "ds-key", "pred-key", iou_thr, score_thr)
            view.dets  # a lazy table, as the explorer builds
        assert loaders.evaluation(dataset, "ds-key", predictions, "pred-key", iou_thr) is ev
    del ev, view
    gc.collect()
    living = [ref() for ref in alive if ref() is not None]
    assert 1 <= len(living) <= 3
    assert all(evaluations.holds(ev) for ev in living)
    assert evaluations.total_bytes <= evaluations.capacity_bytes
    # a view cached again for a live evaluation is found again, for a dropped one made afresh
    ev = living[-1]
    view = loaders.threshold_view(ev, "ds-key", "pred-key", ev.iou_thr, 0.3)
    assert loaders.threshold_view(ev, "ds-key", "pred-key", ev.iou_thr, 0.3) is view
    evaluations.clear()


def test_upload_store_is_bounded_and_content_addressed(monkeypatch):
    from ui import loaders

    uploads = loaders.caches()["uploads"]
    monkeypatch.setattr(uploads, "capacity_bytes", 3 * MB)
    keys = [loaders.store_upload(bytes([i]) * MB) for i in range(5)]
    assert keys == [hashlib.sha256(bytes([i]) * MB).hexdigest() for i in range(5)]
    assert loaders.store_upload(bytes([4]) * MB) == keys[-1] and uploads.total_bytes == 3 * MB
    assert loaders.upload_bytes(keys[-1]) == bytes([4]) * MB
    assert loaders.upload_bytes(keys[0]) is None and loaders.upload_bytes(keys[1]) is None
    assert uploads.total_bytes <= 3 * MB
    assert "DETLENS_MEMORY_BUDGET_MB" in loaders.dropped_upload_message("a.csv")
    uploads.clear()


def test_decoded_images_are_held_within_their_share(tmp_path, monkeypatch):
    """Crops decode whole images; those are held in the budget's image share, not 16 x 64 MP."""
    from PIL import Image

    from ui import loaders

    images = loaders.caches()["images"]
    monkeypatch.setattr(images, "capacity_bytes", 10 * MB)
    images.clear()
    paths = []
    for i in range(4):  # 1500 x 1000 RGB: 4.5 MB decoded each
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (1500, 1000), (i, i, i)).save(paths[-1])
    decoded = [loaders._pil_image(str(p), p.stat().st_mtime_ns) for p in paths]
    assert [image.getpixel((0, 0)) for image in decoded] == [(i, i, i) for i in range(4)]
    assert images.total_bytes == 2 * 1500 * 1000 * 3 <= images.capacity_bytes
    assert loaders._pil_image(str(paths[3]), paths[3].stat().st_mtime_ns) is decoded[3]  # a hit
    images.clear()


def _released_upload_script():
    import streamlit as st
    from streamlit.proto.Common_pb2 import FileURLs
    from streamlit.runtime.uploaded_file_manager import DeletedFile, UploadedFile, UploadedFileRec

    from ui import loaders, sidebar
    from ui import state as S

    S.init_state()
    if not st.session_state.get("_done"):
        new = UploadedFile(UploadedFileRec("id-2", "b.csv", "text/csv", b"PredictionString,image_id\n"),
                           FileURLs())
        # the browser still lists a.csv, whose bytes _release_widget_file gave back to Streamlit
        st.session_state["_upload_predictions"] = [DeletedFile("id-1"), new]
        sidebar._on_predictions_upload()
        st.session_state["_done"] = True
    kept = st.session_state[S.UPLOADED_PREDICTIONS]
    st.text(f"{sorted(kept)} {loaders.upload_bytes(kept['uploaded: b.csv'].sha256)!r}")


def test_a_released_upload_in_the_widget_value_is_skipped():
    """The multi-file uploader reports files released to the store as DeletedFile: skipped."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_released_upload_script).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text[0].value == "['uploaded: b.csv'] b'PredictionString,image_id\\n'"


def test_an_upload_dropped_from_the_store_is_a_message_not_a_failure():
    """Uploaded bytes evicted to stay under the budget: the page says so and keeps working."""
    from tests.test_app import open_app, texts
    from ui import loaders
    from ui import state as S

    at = open_app("pages/1_Overview.py")
    at.file_uploader(key="_upload_predictions").set_value(
        ("mine.csv", (SAMPLE / "predictions_weak.csv").read_bytes(), "text/csv")).run()
    at.file_uploader(key="_upload_gt").set_value(
        ("again.json", (SAMPLE / "train.json").read_bytes(), "application/json")).run()
    assert not at.exception and at.session_state[S.GT_CHOICE] == "uploaded: again.json"
    kept = at.session_state[S.UPLOADED_PREDICTIONS]["uploaded: mine.csv"]
    assert kept.sha256 == hashlib.sha256((SAMPLE / "predictions_weak.csv").read_bytes()).hexdigest()
    assert not hasattr(kept, "data")  # the session holds name, hash and size, no bytes
    loaders.caches()["uploads"].clear()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Uploaded again.json was dropped to stay under the memory budget " \
           "(DETLENS_MEMORY_BUDGET_MB=" in texts(at)
    at.selectbox(key=S.widget_key(S.GT_CHOICE)).set_value("train.json").run()
    assert not at.exception
    assert at.session_state[S.ACTIVE_PREDICTIONS] == "uploaded: mine.csv"
    assert "Uploaded mine.csv was dropped" in texts(at)
