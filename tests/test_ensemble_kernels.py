"""The compiled ensembling kernels (core.ensemble_kernels) against ensemble-boxes itself.

Reference: ensemble-boxes called image by image (core.ensemble._ensemble_one_image, which calls
the library; Soft-NMS with the decayed scores, README "Metrics"). Outputs must agree in image,
label and order exactly, boxes and scores to 1e-6, on the sample data, the real fold's TTA pair
and hypothesis-generated cases built to tie (repeated boxes and scores, several models).
"""
from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit
from numpy.testing import assert_allclose, assert_array_equal

from core.dataset import load_coco
from core.ensemble import (
    CONF_TYPES, EnsembleConfig, _chunks, _ensemble_one_image, _run_chunk, ensemble_predictions, prepare_inputs,
)
from core.ensemble_kernels import (
    _argsort_as_numba, _pairwise_sum, _rank_if_distinct, ensemble_grouped, numpy_descending_order,
)
from core.submission import read_submission
from tests.conftest import REAL_TRASH, SAMPLE, need

ATOL = 1e-6


def library_per_image(starts, boxes, scores, labels, config):
    """ensemble-boxes image by image on grouped inputs -> (image, boxes, scores, labels)."""
    out = [[], [], [], []]
    n_models = starts.shape[1] - 1
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for i, row in enumerate(starts):
            if row[-1] == row[0]:
                continue
            parts = [slice(row[m], row[m + 1]) for m in range(n_models)]
            b, s, lab = _ensemble_one_image([boxes[p] for p in parts], [scores[p].copy() for p in parts],
                                            [labels[p] for p in parts], config)
            out[0].append(np.full(len(s), i))
            out[1].append(np.asarray(b, np.float64).reshape(-1, 4))
            out[2].append(np.asarray(s, np.float64))
            out[3].append(np.rint(np.asarray(lab, np.float64)).astype(np.int64))
    if not out[0]:
        return np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    return tuple(np.concatenate(part) for part in out)


def assert_same(ours, reference):
    image, boxes, scores, labels = ours
    ref_image, ref_boxes, ref_scores, ref_labels = reference
    assert len(scores) == len(ref_scores)
    assert_array_equal(image, ref_image)      # same images, same order
    assert_array_equal(labels, ref_labels)
    assert_allclose(boxes, ref_boxes, rtol=0, atol=ATOL)
    assert_allclose(scores, ref_scores, rtol=0, atol=ATOL)


CONFIGS = (
    [EnsembleConfig("wbf", iou_thr=0.55, conf_type=c) for c in CONF_TYPES]
    + [EnsembleConfig("wbf", iou_thr=0.6, conf_type=c, weights=(2.0, 0.7), skip_box_thr=0.1) for c in CONF_TYPES]
    + [EnsembleConfig("nms", iou_thr=0.6), EnsembleConfig("nms", iou_thr=0.5, weights=(1.0, 3.0), skip_box_thr=0.2),
       EnsembleConfig("soft_nms", sigma=0.5), EnsembleConfig("soft_nms", sigma=0.1, weights=(0.3, 1.0)),
       EnsembleConfig("nmw", iou_thr=0.55), EnsembleConfig("nmw", iou_thr=0.7, weights=(0.3, 1.0), skip_box_thr=0.1)]
)

# the library takes ~2 s per variant on the fold: one per method and conf_type, weighted or not
REAL_FOLD_CONFIGS = [CONFIGS[i] for i in (0, 1, 6, 7, 8, 10, 11, 13)]


def whole(prepared):
    return _chunks(prepared, 1)[0]


@pytest.fixture(scope="module")
def real_fold():
    dataset = load_coco(need(REAL_TRASH / "fold3_gt.json"))
    inputs = [read_submission(REAL_TRASH / name, dataset=dataset)
              for name in ("fold3_deta_swinL.csv", "fold3_deta_swinL_hflip.csv")]
    return whole(prepare_inputs(inputs, dataset=dataset))


@pytest.fixture(scope="module")
def sample_pair():
    dataset = load_coco(SAMPLE / "train.json")
    inputs = [read_submission(SAMPLE / name, dataset=dataset)
              for name in ("predictions_strong.csv", "predictions_weak.csv")]
    return whole(prepare_inputs(inputs, dataset=dataset))


class TestSameAsEnsembleBoxes:
    @pytest.mark.parametrize("config", REAL_FOLD_CONFIGS, ids=lambda c: c.label)
    def test_real_fold_tta_pair(self, real_fold, config):
        chunk = real_fold
        assert_same(_run_chunk(chunk, config, 2, "numba"),
                    library_per_image(chunk.starts, chunk.boxes, chunk.scores, chunk.labels, config))

    @pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.label)
    def test_sample_data(self, sample_pair, config):
        chunk = sample_pair
        assert_same(_run_chunk(chunk, config, 2, "numba"),
                    library_per_image(chunk.starts, chunk.boxes, chunk.scores, chunk.labels, config))

    def test_engines_agree_through_the_public_api(self, three_inputs):
        for config in (EnsembleConfig("wbf", conf_type="max"), EnsembleConfig("soft_nms")):
            ours = ensemble_predictions(three_inputs, config, default_size=(100, 100)).predictions
            ref = ensemble_predictions(three_inputs, config, default_size=(100, 100), engine="ensemble-boxes",
                                       workers=1).predictions
            assert_array_equal(ours.image_pos, ref.image_pos)
            assert_array_equal(ours.labels, ref.labels)
            assert_allclose(ours.boxes_xyxy, ref.boxes_xyxy, atol=1e-3)
            assert_allclose(ours.scores, ref.scores, atol=ATOL)

    def test_unknown_engine_is_named(self, three_inputs):
        with pytest.raises(ValueError, match="Only numba, ensemble-boxes"):
            ensemble_predictions(three_inputs, EnsembleConfig(), engine="torch")


@pytest.fixture(scope="module")
def three_inputs():
    from tests.test_ensemble import make_predictions

    rng = np.random.default_rng(3)
    models = []
    for m in range(3):
        rows = {}
        for name in ("a.jpg", "b.jpg"):
            xy = rng.integers(0, 60, (15, 2))
            rows[name] = np.column_stack([rng.integers(0, 3, 15), rng.choice([0.3, 0.5, 0.9], 15), xy,
                                          xy + rng.integers(5, 40, (15, 2))])
        models.append(make_predictions(rows, f"m{m}"))
    return models


# ---------------------------------------------------------------------------------------------
# Generated cases: coordinates on a coarse grid and scores from a few values, so that boxes
# repeat across models, IoUs hit the threshold exactly and scores tie.


@st.composite
def grouped_case(draw):
    n_models = draw(st.integers(1, 4))
    n_images = draw(st.integers(1, 3))
    grid = draw(st.sampled_from([4, 8, 10, 1000]))
    score_values = draw(st.sampled_from([
        [0.5, 0.5, 0.9], [0.1, 0.3, 0.3, 0.7, 1.0], [0.0, 0.2, 0.95], [0.05, 0.6, 1.2, -0.1]]))
    counts = draw(st.lists(st.integers(0, 12), min_size=n_images * n_models, max_size=n_images * n_models))
    total = sum(counts)
    xs = np.array(draw(st.lists(st.integers(0, grid), min_size=4 * total, max_size=4 * total)),
                  dtype=np.float64).reshape(-1, 4) / grid
    boxes = np.column_stack([np.minimum(xs[:, 0], xs[:, 2]), np.minimum(xs[:, 1], xs[:, 3]),
                             np.maximum(xs[:, 0], xs[:, 2]), np.maximum(xs[:, 1], xs[:, 3])])
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes[~ok] = [0.25, 0.25, 0.75, 0.75]        # prepare_inputs leaves only positive areas
    if total and draw(st.booleans()):            # a TTA-like exact duplicate of the first box
        boxes[-1] = boxes[0]
    scores = np.array(draw(st.lists(st.sampled_from(score_values), min_size=total, max_size=total)), np.float64)
    labels = np.array(draw(st.lists(st.integers(0, 2), min_size=total, max_size=total)), np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    starts = np.array([starts[i * n_models:(i + 1) * n_models + 1] for i in range(n_images)])
    method = draw(st.sampled_from(["wbf", "nms", "soft_nms", "nmw"]))
    weights = draw(st.none() | st.lists(st.sampled_from([0.3, 1.0, 2.0, 2.5]), min_size=n_models,
                                        max_size=n_models).map(tuple))
    config = EnsembleConfig(
        method, iou_thr=draw(st.sampled_from([0.0, 0.3, 0.5, 0.55, 0.8, 1.0])),
        skip_box_thr=draw(st.sampled_from([0.0, 0.0, 0.3])), conf_type=draw(st.sampled_from(CONF_TYPES)),
        weights=weights, sigma=draw(st.sampled_from([0.1, 0.5])))
    return starts, boxes, scores, labels, config


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_case())
def test_generated_cases_equal_ensemble_boxes(case):
    starts, boxes, scores, labels, config = case
    assert_same(ensemble_grouped(starts, boxes, scores, labels, config),
                library_per_image(starts, boxes, scores, labels, config))


def test_soft_nms_near_ties_are_ordered_as_the_library_orders_them():
    # Found by the generated cases: two decayed scores 1 ulp apart (numpy's SIMD exp in the
    # library, libm's in the kernel, differ in the last bit) came out swapped.
    distinct = np.array([[0, 0, 0.1, 0.2], [0, 0, 0.2, 0.4], [0, 0, 0.5, 0.1], [0, 0.1, 0.4, 0.5],
                         [0, 0.4, 1, 0.5], [0.25, 0.25, 0.75, 0.75]])
    boxes = distinct[[5] * 12 + [4] + [5] * 9 + [2, 5, 1, 3, 5, 5, 5, 5, 0]]
    starts = np.array([[0, 0, 0, 9], [9, 11, 23, 31]])
    scores, labels = np.full(31, 0.5), np.zeros(31, np.int64)
    config = EnsembleConfig("soft_nms", sigma=0.5, weights=(0.3, 0.3, 1.0))
    assert_same(ensemble_grouped(starts, boxes, scores, labels, config),
                library_per_image(starts, boxes, scores, labels, config))


# ---------------------------------------------------------------------------------------------
# The two numpy behaviours the kernels reproduce


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.1, 0.2, 0.2, 0.5, 0.9]), max_size=40), min_size=1, max_size=6))
def test_descending_order_is_numpys_argsort_reversed(segments):
    values = np.array([v for seg in segments for v in seg], np.float64)
    starts = np.concatenate([[0], np.cumsum([len(s) for s in segments])]).astype(np.int64)
    expected = np.concatenate([lo + np.argsort(values[lo:hi])[::-1] for lo, hi in zip(starts[:-1], starts[1:])])
    assert_array_equal(numpy_descending_order(values, starts), expected)


@pytest.mark.parametrize("length", [2, 17, 64, 300, 1100])
def test_descending_order_of_many_tied_segments_of_one_length(length):
    # tied segments of one length are sorted together as rows of a 2-D array
    values = np.random.default_rng(length).choice([0.1, 0.2, 0.5], 30 * length)
    starts = np.arange(31) * length
    expected = np.concatenate([lo + np.argsort(values[lo:lo + length])[::-1] for lo in starts[:-1]])
    assert_array_equal(numpy_descending_order(values, starts), expected)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 127, 128, 129, 300, 1000, 4099])
def test_pairwise_sum_is_numpys_sum(n):
    rng = np.random.default_rng(n)
    a = rng.random(n) * 10.0 ** rng.uniform(-8, 8, n)
    assert _pairwise_sum(a, 0, n) == a.sum()


# ---------------------------------------------------------------------------------------------
# NMS's one-pass kernel (nms_images): classes large enough for numba's quicksort to partition,
# scores drawn from few values (ties) or from many (the branch-free ranking), several models


@st.composite
def nms_case(draw):
    n_models = draw(st.integers(1, 3))
    n_images = draw(st.integers(1, 3))
    counts = draw(st.lists(st.integers(0, 70), min_size=n_images * n_models, max_size=n_images * n_models))
    total = sum(counts)
    grid = draw(st.sampled_from([4, 10, 1000]))
    xs = np.array(draw(st.lists(st.integers(0, grid), min_size=4 * total, max_size=4 * total)),
                  dtype=np.float64).reshape(-1, 4) / grid
    boxes = np.column_stack([np.minimum(xs[:, 0], xs[:, 2]), np.minimum(xs[:, 1], xs[:, 3]),
                             np.maximum(xs[:, 0], xs[:, 2]), np.maximum(xs[:, 1], xs[:, 3])])
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes[~ok] = [0.25, 0.25, 0.75, 0.75]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scores = (rng.choice([0.1, 0.3, 0.3, 0.7, 0.9], total) if draw(st.booleans())
              else rng.random(total).round(draw(st.sampled_from([2, 6]))))
    labels = rng.integers(0, draw(st.integers(1, 3)), total) + draw(st.sampled_from([0, 5, 100_000]))
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    starts = np.array([starts[i * n_models:(i + 1) * n_models + 1] for i in range(n_images)])
    weights = draw(st.none() | st.lists(st.sampled_from([0.3, 1.0, 2.5]), min_size=n_models,
                                        max_size=n_models).map(tuple))
    config = EnsembleConfig("nms", iou_thr=draw(st.sampled_from([0.0, 0.3, 0.5, 0.6, 1.0])),
                            skip_box_thr=draw(st.sampled_from([0.0, 0.3])), weights=weights)
    return starts, boxes, scores, labels.astype(np.int64), config


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nms_case())
def test_nms_on_large_tied_classes_equals_ensemble_boxes(case):
    starts, boxes, scores, labels, config = case
    assert_same(ensemble_grouped(starts, boxes, scores, labels, config),
                library_per_image(starts, boxes, scores, labels, config))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 13, 30, 48])
def test_rank_if_distinct_is_the_argsort_or_reports_a_tie(n):
    rng = np.random.default_rng(n)
    values = np.concatenate([rng.random(3), rng.permutation(n) / n + 0.5])   # distinct from position 3
    order = np.empty(n, np.int64)
    assert _rank_if_distinct(values, 3, n, order)
    assert_array_equal(order, np.argsort(values[3:3 + n]))
    if n > 1:
        for a, b in ((0, n - 1), (n // 2, n // 3), (n - 2, n - 1)):
            if a != b:
                tied = values.copy()
                tied[3 + a] = tied[3 + b]
                assert not _rank_if_distinct(tied, 3, n, order)
        signed = values.copy()
        signed[3], signed[4] = 0.0, -0.0        # equal to each other as the library's argsort sees them
        assert not _rank_if_distinct(signed, 3, n, order)


@njit
def _numba_argsort(keys):
    return keys.argsort()


@pytest.mark.parametrize("n", [0, 1, 2, 14, 15, 16, 31, 100, 1000])
@pytest.mark.parametrize("values", [[0.5], [0.1, 0.2, 0.2, 0.9], "random"])
def test_argsort_as_numba_orders_ties_as_numba(n, values):
    rng = np.random.default_rng(n)
    keys = rng.random(n) if values == "random" else rng.choice(values, n)
    order, sorted_keys = np.empty(n, np.int64), keys.copy()
    _argsort_as_numba(sorted_keys, order, n, np.empty(100, np.int64), np.empty(100, np.int64))
    assert_array_equal(order, _numba_argsort(keys))
    assert_array_equal(sorted_keys, keys[order])


# ---------------------------------------------------------------------------------------------
# One ensemble gathers its inputs chunk by chunk (core.ensemble._ensemble_located), a sweep
# once (prepare_inputs); both locate each (image, model) group's rows in the inputs first.


def grouped_by_numpy(inputs, dataset):
    """prepare_inputs' grouping written plainly: boxes normalised by their image's size, corners
    ordered, clipped to [0, 1], zero-area or non-finite-score boxes left out, then a stable sort
    by (union image, model) -> (starts [R, M+1], boxes, scores, labels)."""
    from core.ensemble import image_sizes, image_union

    union, positions, _ = image_union(inputs)
    sizes, _ = image_sizes(union, dataset=dataset)
    parts = []
    for m, (p, pos) in enumerate(zip(inputs, positions)):
        image = pos[p.image_pos]
        scale = np.tile(sizes[image], 2)                                   # [N, 4]
        b = p.boxes_xyxy / scale
        b = np.clip(np.column_stack([np.minimum(b[:, 0], b[:, 2]), np.minimum(b[:, 1], b[:, 3]),
                                     np.maximum(b[:, 0], b[:, 2]), np.maximum(b[:, 1], b[:, 3])]), 0.0, 1.0)
        keep = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) > 0) & np.isfinite(p.scores)
        parts.append((image[keep], np.full(keep.sum(), m), b[keep], p.scores[keep], p.labels[keep]))
    image, model, boxes, scores, labels = (np.concatenate(c) for c in zip(*parts))
    order = np.lexsort((model, image))                                     # stable
    slot = image[order] * len(inputs) + model[order]
    counts = np.bincount(slot, minlength=len(union) * len(inputs))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    starts = offsets[np.arange(len(union))[:, None] * len(inputs) + np.arange(len(inputs) + 1)]
    return starts, boxes[order], scores[order], labels[order]


def interleaved(preds):
    """The same boxes with the images' rows dealt round-robin (each image's own order kept)."""
    from core.tables import Predictions

    first = np.searchsorted(preds.image_pos, preds.image_pos)   # image_pos is sorted here
    rank = np.arange(len(preds)) - first
    order = np.lexsort((preds.image_pos, rank))
    return Predictions(preds.image_keys, preds.image_pos[order], preds.labels[order], preds.scores[order],
                       preds.boxes_xyxy[order], preds.lines, source=preds.source)


@pytest.fixture(scope="module")
def real_fold_inputs():
    dataset = load_coco(need(REAL_TRASH / "fold3_gt.json"))
    inputs = [read_submission(REAL_TRASH / name, dataset=dataset)
              for name in ("fold3_deta_swinL.csv", "fold3_deta_swinL_hflip.csv")]
    # boxes out of the image or of no area (cleaning) and a third input lacking images (union)
    third = inputs[1].subset(inputs[1].image_pos % 3 != 0)
    third.boxes_xyxy[::7] *= np.array([1.0, 1.0, 40.0, 40.0])
    third.boxes_xyxy[1::11, 2] = third.boxes_xyxy[1::11, 0]
    return dataset, [inputs[0], inputs[1], third]


class TestChunkByChunk:
    def test_grouping_equals_a_stable_sort_also_from_interleaved_rows(self, real_fold_inputs):
        dataset, inputs = real_fold_inputs
        assert np.all(np.diff(inputs[0].image_pos) >= 0)
        shuffled = [inputs[0], interleaved(inputs[1]), inputs[2]]
        assert np.any(np.diff(shuffled[1].image_pos) < 0)
        starts, boxes, scores, labels = grouped_by_numpy(inputs, dataset)
        for given_inputs in (inputs, shuffled):
            prepared = prepare_inputs(given_inputs, dataset=dataset)
            assert_array_equal(prepared.starts, starts)
            assert_array_equal(prepared.boxes, boxes)
            assert_array_equal(prepared.scores, scores)
            assert_array_equal(prepared.labels, labels)

    @pytest.mark.parametrize("method", ["wbf", "nms", "soft_nms", "nmw"])
    def test_chunks_of_a_few_images_equal_the_whole_set(self, real_fold_inputs, method, monkeypatch):
        import core.ensemble as ensemble

        dataset, inputs = real_fold_inputs
        config = EnsembleConfig(method, weights=(1.0, 2.0, 0.5))
        whole = ensemble.ensemble_prepared(prepare_inputs(inputs, dataset=dataset), config).predictions
        monkeypatch.setattr(ensemble, "_STREAM_CHUNK_BOXES", 300)    # ~50 chunks, buffers reused
        monkeypatch.setattr(ensemble, "_prepare_located", None)      # the chunked path only
        for given_inputs in (inputs, [inputs[0], interleaved(inputs[1]), inputs[2]]):
            chunked = ensemble_predictions(given_inputs, config, dataset=dataset).predictions
            assert_array_equal(chunked.image_pos, whole.image_pos)
            assert_array_equal(chunked.labels, whole.labels)
            assert_array_equal(chunked.boxes_xyxy, whole.boxes_xyxy)
            assert_array_equal(chunked.scores, whole.scores)

    def test_chunked_nms_equals_ensemble_boxes(self, real_fold_inputs, monkeypatch):
        import core.ensemble as ensemble

        dataset, inputs = real_fold_inputs
        config = EnsembleConfig("nms", iou_thr=0.6)
        ref = ensemble_predictions(inputs, config, dataset=dataset, engine="ensemble-boxes", workers=1).predictions
        monkeypatch.setattr(ensemble, "_STREAM_CHUNK_BOXES", 300)
        monkeypatch.setattr(ensemble, "_prepare_located", None)
        ours = ensemble_predictions(inputs, config, dataset=dataset).predictions
        assert_array_equal(ours.image_pos, ref.image_pos)
        assert_array_equal(ours.labels, ref.labels)
        assert_allclose(ours.boxes_xyxy, ref.boxes_xyxy, rtol=0, atol=1e-3)
        assert_allclose(ours.scores, ref.scores, rtol=0, atol=ATOL)
