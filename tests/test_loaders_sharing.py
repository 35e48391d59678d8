"""Many sessions at once (issue 16): a heavy result asked for by several sessions together is
computed once (single flight) and shared; a failure reaches every waiting session as its error."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.memory_budget import BoundedCache

N = 8


def _callers(cache: BoundedCache, create, n: int = N) -> tuple[list, list]:
    """Run n threads asking `cache` for one key at once; returns (values, exceptions)."""
    values, errors, started = [], [], threading.Barrier(n)

    def ask():
        started.wait()
        try:
            values.append(cache.get_or_create("key", create))
        except BaseException as exc:  # noqa: BLE001 - what each caller received is the result
            errors.append(exc)

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a caller still waits: single flight hung"
    return values, errors


def _slow(result, calls: list, seconds: float = 0.3):
    """A create() that counts its calls and takes long enough for every caller to be waiting."""
    def create():
        calls.append(threading.get_ident())
        time.sleep(seconds)
        return result() if callable(result) else result
    return create


def test_concurrent_callers_compute_once_and_share_the_value():
    calls = []
    values, errors = _callers(BoundedCache(10 ** 6), _slow(lambda: np.zeros(10), calls))
    assert errors == [] and len(calls) == 1
    assert len(values) == N and all(v is values[0] for v in values)


def test_an_exception_in_the_computing_thread_reaches_every_waiter_once():
    calls = []

    def boom():
        raise ValueError("fold3.csv: line 7: bad box")

    values, errors = _callers(BoundedCache(10 ** 6), _slow(boom, calls))
    assert len(calls) == 1, f"the failing create ran {len(calls)} times, once per waiter"
    assert values == [] and len(errors) == N
    assert all(isinstance(e, ValueError) and "line 7" in str(e) for e in errors)


class _Stopped(BaseException):
    """Like Streamlit's StopException/RerunException: the creating session's run was stopped."""


def test_a_stopped_creator_hands_the_work_to_a_waiter():
    """A rerun stopping the creating session is no error of the input: a waiter computes it."""
    calls, lock = [], threading.Lock()

    def create():
        with lock:
            calls.append(1)
            first = len(calls) == 1
        time.sleep(0.3)
        if first:
            raise _Stopped()
        return np.ones(3)

    values, errors = _callers(BoundedCache(10 ** 6), create)
    assert len(calls) == 2 and len(errors) == 1 and isinstance(errors[0], _Stopped)
    assert len(values) == N - 1 and all(v is values[0] for v in values)


def test_a_failed_key_is_computed_again_on_the_next_request():
    cache = BoundedCache(10 ** 6)
    with pytest.raises(ValueError):
        cache.get_or_create("key", lambda: (_ for _ in ()).throw(ValueError("boom")))
    assert "key" not in cache and cache.get_or_create("key", lambda: np.zeros(2)).shape == (2,)


def test_sessions_evaluating_one_file_together_match_once(monkeypatch):
    """ui.loaders.evaluation from N sessions (threads) at once: core.evaluation.evaluate runs
    once and every session gets the same Evaluation, equal to pycocotools' mAP@0.5."""
    import json

    import core.evaluation
    from core.prediction_files import load_predictions
    from tests.conftest import SAMPLE
    from tests.eval_support import dataset_of, pycocotools_eval, results_of
    from ui import loaders

    doc = json.loads((SAMPLE / "train.json").read_text())
    for ann in doc["annotations"]:  # pycocotools never matches annotation id 0
        ann["id"] += 1
    dataset = dataset_of(doc)
    predictions = load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)
    real, calls = core.evaluation.evaluate, []

    def counted(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)  # every session is waiting by now
        return real(*args, **kwargs)

    monkeypatch.setattr(core.evaluation, "evaluate", counted)
    loaders.caches()["evaluations"].clear()
    results, started = [], threading.Barrier(N)

    def session():
        started.wait()
        results.append(loaders.evaluation(dataset, "gt-sharing-test", predictions, "pred-sharing-test", 0.5))

    threads = [threading.Thread(target=session, daemon=True) for _ in range(N)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(calls) == 1 and len(results) == N and all(r is results[0] for r in results)
    expected = pycocotools_eval(doc, results_of(dataset, predictions)).stats[1]  # AP@0.5
    assert results[0].stats["map50"] == pytest.approx(expected, abs=1e-9)


def test_threshold_curves_are_computed_once_for_every_run_and_session(monkeypatch):
    """Overview's curves and Class errors' PR curve come from the evaluation's cache: slider moves
    and a second session compute no curve again (at 490,000 boxes one costs ~0.2 s per run)."""
    import core.evaluation
    from tests.test_app import open_app
    from ui import state as S

    real, calls = core.evaluation.Evaluation.threshold_curve, []

    def counted(self, category_id=None, thresholds=None):
        calls.append(category_id)
        return real(self, category_id, thresholds)

    monkeypatch.setattr(core.evaluation.Evaluation, "threshold_curve", counted)
    from ui import loaders
    loaders.caches()["evaluations"].clear()  # a fresh evaluation: nothing derived from it yet
    for page in ("pages/1_Overview.py", "pages/3_Class_errors.py"):
        first = open_app(page)
        assert not first.exception
        made = len(calls)
        assert made >= 1
        for value in (0.3, 0.6):
            first.slider(key=S.widget_key(S.SCORE_THR)).set_value(value).run()
            assert not first.exception
        second = open_app(page)
        assert not second.exception
        assert len(calls) == made, f"{page}: curves computed again: {calls}"
