"""Ensembling N prediction sets as `ensemble-boxes` does (WBF, NMS, Soft-NMS, NMW), image by image.

ensemble-boxes works on normalised [0, 1] coordinates, so every image's boxes are divided by
that image's own width and height (from the dataset, else read from the image file, else a
default size, else the boxes' own extent) and multiplied back afterwards. Inputs may list
different images: the union is ensembled and each gap is reported as a Problem.

The work runs in compiled kernels (core.ensemble_kernels) that give ensemble-boxes' output;
the library itself stays available as engine="ensemble-boxes", the reference the tests compare
with, whose per-image Python is split into image chunks run in worker processes at scale.
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.data_roots import DataRoots
from core.images import image_size, resolve_image_path
from core.problems import Problem, Severity
from core.tables import Dataset, Predictions

METHODS = ("wbf", "nms", "soft_nms", "nmw")
METHOD_NAMES = {
    "wbf": "Weighted boxes fusion",
    "nms": "Non-maximum suppression",
    "soft_nms": "Soft-NMS (gaussian, decayed scores)",
    "nmw": "Non-maximum weighted",
}
METHOD_SHORT_NAMES = {"wbf": "WBF", "nms": "NMS", "soft_nms": "Soft-NMS", "nmw": "NMW"}
CONF_TYPES = ("avg", "max", "box_and_model_avg", "absent_model_aware_avg")  # WBF only
# "numba": core.ensemble_kernels; "ensemble-boxes": the library itself (the reference)
ENGINES = ("numba", "ensemble-boxes")

# Progress callback: called with (images done, images total).
ProgressFn = Callable[[int, int], None]

OUTPUT_BOX_DECIMALS = 3     # pixels
OUTPUT_SCORE_DECIMALS = 7

# Below this many boxes in all, worker processes cost more than they save.
_PARALLEL_MIN_BOXES = 150_000


@dataclass(frozen=True)
class EnsembleConfig:
    """One ensembling variant. `weights` (one per input, > 0) default to 1 each.

    iou_thr: boxes of one class overlapping more than this are fused / suppressed (not used by
        gaussian Soft-NMS, whose decay depends on `sigma` only).
    skip_box_thr: boxes scoring below this are dropped before ensembling.
    conf_type: how WBF scores a fused box (CONF_TYPES); ignored by the other methods.
    sigma, soft_nms_min_score: Soft-NMS gaussian width and the score under which it drops boxes.
    """

    method: str = "wbf"
    iou_thr: float = 0.55
    skip_box_thr: float = 0.0
    conf_type: str = "avg"
    weights: tuple[float, ...] | None = None
    sigma: float = 0.5
    soft_nms_min_score: float = 0.001

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"Invalid ensemble method {self.method!r}. Only {', '.join(METHODS)} are supported.")
        if self.conf_type not in CONF_TYPES:
            raise ValueError(f"Invalid conf_type {self.conf_type!r}. Only {', '.join(CONF_TYPES)} are supported.")
        if not 0.0 <= self.iou_thr <= 1.0:
            raise ValueError(f"Invalid iou_thr {self.iou_thr}: it must lie in [0, 1].")
        if not 0.0 <= self.skip_box_thr <= 1.0:
            raise ValueError(f"Invalid skip_box_thr {self.skip_box_thr}: it must lie in [0, 1].")
        if self.sigma <= 0:
            raise ValueError(f"Invalid sigma {self.sigma}: it must be > 0.")
        if self.weights is not None:
            weights = tuple(float(w) for w in self.weights)
            if not weights or any(not np.isfinite(w) or w <= 0 for w in weights):
                raise ValueError(f"Invalid weights {list(self.weights)}: every weight must be a number > 0.")
            object.__setattr__(self, "weights", weights)

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. `wbf iou=0.55 conf=max`."""
        parts = [self.method]
        if self.method == "soft_nms":
            parts.append(f"sigma={self.sigma:g}")
        else:
            parts.append(f"iou={self.iou_thr:g}")
        if self.method == "wbf":
            parts.append(f"conf={self.conf_type}")
        if self.skip_box_thr > 0:
            parts.append(f"skip={self.skip_box_thr:g}")
        if self.weights is not None and len(set(self.weights)) > 1:
            parts.append("w=" + ",".join(f"{w:g}" for w in self.weights))
        return " ".join(parts)


@dataclass
class EnsembleResult:
    """The ensembled predictions (union of the inputs' images), what was reported, and timing."""

    predictions: Predictions
    config: EnsembleConfig
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# Image union and sizes


def image_union(inputs: Sequence[Predictions]) -> tuple[np.ndarray, list[np.ndarray], list[Problem]]:
    """Union of the inputs' image keys in first-seen order, each input's key -> union position map
    ([R_i] int64), and one WARNING per input that lacks images another input has."""
    first = inputs[0].image_keys if len(inputs) else np.zeros(0, object)
    # the usual case, one test set listed in one order by every input: no lookup per key
    if all(np.array_equal(p.image_keys, first) for p in inputs[1:]) and len(set(first.tolist())) == len(first):
        return first.astype(object), [np.arange(len(first)) for _ in inputs], []
    keys: dict[str, int] = {}
    positions = []
    for preds in inputs:
        pos = np.empty(len(preds.image_keys), dtype=np.int64)
        for i, key in enumerate(preds.image_keys.tolist()):
            pos[i] = keys.setdefault(key, len(keys))
        positions.append(pos)
    union = np.array(list(keys), dtype=object)
    problems = []
    if len(inputs) > 1:
        for preds, pos in zip(inputs, positions):
            present = np.zeros(len(union), dtype=bool)
            present[pos] = True
            missing = union[~present]
            if len(missing):
                examples = ", ".join(missing[:5].tolist()) + (", ..." if len(missing) > 5 else "")
                problems.append(Problem(
                    Severity.WARNING,
                    f"lacks {len(missing)} of the {len(union)} images the inputs list together "
                    f"({examples}); those images are ensembled from the other inputs only "
                    "(as if this model had found nothing there). Check that all CSVs cover the same images.",
                    file=preds.source,
                ))
    return union, positions, problems


def image_sizes(
    image_keys: np.ndarray,
    *,
    dataset: Dataset | None = None,
    image_root: str | Path | None = None,
    default_size: tuple[float, float] | None = None,
    roots: DataRoots | None = None,
) -> tuple[np.ndarray, list[Problem]]:
    """[R, 2] (width, height) per image key: from the dataset, else the image file under
    `image_root` (default: the dataset's root; only inside `roots`), else `default_size`."""
    sizes = np.full((len(image_keys), 2), np.nan)
    if dataset is not None and len(image_keys):
        index = dataset.image_index_of_file(image_keys)
        known = index >= 0
        sizes[known] = dataset.images[["width", "height"]].to_numpy(np.float64)[index[known]]
    root = Path(image_root) if image_root is not None else (dataset.root if dataset is not None else None)
    problems = []
    if root is not None:
        for i in np.flatnonzero(np.isnan(sizes[:, 0])):
            lookup = resolve_image_path(root, str(image_keys[i]), roots)
            size = image_size(lookup.path) if lookup.found else None
            if size is not None:
                sizes[i] = size
    unknown = np.isnan(sizes[:, 0])
    if unknown.any() and default_size is not None:
        sizes[unknown] = default_size
        problems.append(Problem(
            Severity.WARNING,
            f"{int(unknown.sum())} image(s) are neither in the dataset nor readable as files "
            f"(e.g. {image_keys[unknown][0]}); assumed {default_size[0]:g}x{default_size[1]:g}.",
        ))
    elif unknown.any():
        problems.append(Problem(
            Severity.WARNING,
            f"{int(unknown.sum())} image(s) have no known size (not in the dataset, no image file; "
            f"e.g. {image_keys[unknown][0]}): their boxes are normalised by the boxes' own extent and "
            "not clipped to the image. Give the dataset json, the image folder or a default size.",
        ))
    return sizes, problems


# ---------------------------------------------------------------------------------------------
# Per-image ensembling (runs in worker processes)


@dataclass
class _Chunk:
    """Boxes of a run of consecutive union images, grouped by (image, model), normalised."""

    image_ids: np.ndarray   # [C] union image positions
    starts: np.ndarray      # [C, M+1] offsets into the arrays below for each image's models
    boxes: np.ndarray       # [K, 4] normalised xyxy, clipped to [0, 1], positive area
    scores: np.ndarray      # [K]
    labels: np.ndarray      # [K]


def _ensemble_one_image(boxes_list, scores_list, labels_list, config: EnsembleConfig):
    import ensemble_boxes  # numba compile on first import; keep it off the dashboard's start

    weights = list(config.weights) if config.weights is not None else None
    if config.method == "wbf":
        return ensemble_boxes.weighted_boxes_fusion(
            boxes_list, scores_list, labels_list, weights=weights, iou_thr=config.iou_thr,
            skip_box_thr=config.skip_box_thr, conf_type=config.conf_type)
    if config.method == "nmw":
        return ensemble_boxes.non_maximum_weighted(
            boxes_list, scores_list, labels_list, weights=weights, iou_thr=config.iou_thr,
            skip_box_thr=config.skip_box_thr)
    # NMS variants have no skip threshold of their own: filter first.
    if config.skip_box_thr > 0:
        keeps = [s >= config.skip_box_thr for s in scores_list]
        boxes_list = [b[k] for b, k in zip(boxes_list, keeps)]
        scores_list = [s[k] for s, k in zip(scores_list, keeps)]
        labels_list = [lab[k] for lab, k in zip(labels_list, keeps)]
    if sum(len(s) for s in scores_list) == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0)
    if config.method == "nms":
        return ensemble_boxes.nms(boxes_list, scores_list, labels_list, iou_thr=config.iou_thr, weights=weights)
    return _soft_nms(boxes_list, scores_list, labels_list, config, weights)


def _soft_nms(boxes_list, scores_list, labels_list, config: EnsembleConfig, weights):
    """Gaussian Soft-NMS with the decayed scores.

    ensemble_boxes.soft_nms keeps the boxes whose decayed score stays above the floor but
    returns their ORIGINAL scores, so duplicates are never down-ranked (on the real-trash fold
    that costs 0.24 mAP@0.5). Its kernel `cpu_soft_nms_float` decays the scores array in place,
    in the order of the kept indices, so we run the same kernel and read the decayed scores back.
    """
    from ensemble_boxes.ensemble_boxes_nms import cpu_soft_nms_float

    if weights is not None:  # as ensemble_boxes.nms_method weighs scores
        total = float(np.sum(weights))
        scores_list = [s * w / total for s, w in zip(scores_list, weights)]
    boxes = np.concatenate(boxes_list)
    scores = np.concatenate(scores_list)
    labels = np.concatenate(labels_list)
    out_boxes, out_scores, out_labels = [], [], []
    for label in np.unique(labels):
        in_class = labels == label
        decayed = scores[in_class].copy()
        keep = cpu_soft_nms_float(boxes[in_class].copy(), decayed, Nt=config.iou_thr, sigma=config.sigma,
                                  thresh=config.soft_nms_min_score, method=2)
        out_boxes.append(boxes[in_class][keep])
        out_scores.append(decayed[decayed > config.soft_nms_min_score])
        out_labels.append(labels[in_class][keep])
    return np.concatenate(out_boxes), np.concatenate(out_scores), np.concatenate(out_labels)


def _run_chunk(chunk: _Chunk, config: EnsembleConfig, n_models: int, engine: str = "numba", nms_out=None):
    """Ensemble every image of a chunk -> (image ids [K], boxes [K, 4] normalised, scores, labels).
    nms_out: buffers NMS writes its results to (see `ensemble_grouped`), reused chunk after chunk."""
    if engine == "numba":
        from core.ensemble_kernels import ensemble_grouped

        local, boxes, scores, labels = ensemble_grouped(chunk.starts, chunk.boxes, chunk.scores, chunk.labels,
                                                        config, nms_out=nms_out)
        return chunk.image_ids[local], boxes, scores, labels
    return _run_chunk_reference(chunk, config, n_models)


def _run_chunk_reference(chunk: _Chunk, config: EnsembleConfig, n_models: int):
    """`_run_chunk` with ensemble-boxes itself, image by image (the reference, and the peer in bench)."""
    out_ids, out_boxes, out_scores, out_labels = [], [], [], []
    # The inputs are pre-cleaned, so ensemble-boxes' per-box warnings and prints cannot fire;
    # silence them anyway so a library change cannot flood a terminal.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for image_id, starts in zip(chunk.image_ids.tolist(), chunk.starts):
            if starts[-1] == starts[0]:
                continue
            slices = [slice(starts[m], starts[m + 1]) for m in range(n_models)]
            boxes, scores, labels = _ensemble_one_image(
                [chunk.boxes[s] for s in slices], [chunk.scores[s].copy() for s in slices],
                [chunk.labels[s] for s in slices], config)
            if len(scores):
                out_ids.append(np.full(len(scores), image_id, dtype=np.int64))
                out_boxes.append(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
                out_scores.append(np.asarray(scores, dtype=np.float64))
                out_labels.append(np.asarray(labels))
    if not out_ids:
        return np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    return (np.concatenate(out_ids), np.concatenate(out_boxes), np.concatenate(out_scores),
            np.rint(np.concatenate(out_labels)).astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Whole ensemble


@dataclass
class PreparedInputs:
    """Inputs grouped once by (union image, model) and normalised; reused across a sweep."""

    image_keys: np.ndarray  # [R] union of the inputs' images
    sizes: np.ndarray       # [R, 2] width, height used for normalising
    starts: np.ndarray      # [R, M+1] box offsets of each image's models
    boxes: np.ndarray       # [K, 4] normalised xyxy
    scores: np.ndarray      # [K]
    labels: np.ndarray      # [K]
    n_models: int
    problems: list[Problem]


@dataclass
class _LocatedInputs:
    """The inputs' rows located by (union image, model), none copied yet: `gather` writes a run
    of images' boxes cleaned, normalised and grouped (all images for a sweep, chunk by chunk for
    one ensemble: then the whole grouped copy, ~70 MB of fresh memory at competition scale, never
    exists)."""

    image_keys: np.ndarray  # [R] union of the inputs' images
    sizes: np.ndarray       # [R, 2] width, height used for normalising
    run_lo: np.ndarray      # [R, M] each image's rows [run_lo, run_hi) in each input
    run_hi: np.ndarray      # [R, M]
    boxes: tuple            # M arrays [N_m, 4] pixels, each image's rows together
    scores: tuple           # M arrays [N_m]
    labels: tuple           # M arrays [N_m] int64
    problems: list[Problem]

    @property
    def n_models(self) -> int:
        return len(self.boxes)

    def image_starts(self) -> np.ndarray:
        """[R+1] first row of each image (and the total) were every row kept."""
        return np.concatenate([[0], np.cumsum((self.run_hi - self.run_lo).sum(axis=1))])

    def gather(self, lo: int, hi: int, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> _Chunk:
        """Images [lo, hi) cleaned, normalised and grouped into the first rows of boxes [>=k, 4],
        scores, labels (k: their kept boxes, at most their rows)."""
        from core.ensemble_kernels import gather_clean_boxes

        starts = np.empty((hi - lo, self.n_models + 1), np.int64)
        n = gather_clean_boxes(self.run_lo, self.run_hi, self.boxes, self.scores, self.labels, self.sizes, lo, hi,
                               starts, boxes, scores, labels)
        return _Chunk(image_ids=np.arange(lo, hi), starts=starts, boxes=boxes[:n], scores=scores[:n],
                      labels=labels[:n])

    def dropped(self, n_kept: int) -> list[Problem]:
        """The warning for the boxes cleaning left out, given how many it kept."""
        n_dropped = sum(len(s) for s in self.scores) - n_kept
        if not n_dropped:
            return []
        return [Problem(
            Severity.WARNING,
            f"{n_dropped} box(es) have no area inside their image (or no finite score) and were left out.",
        )]


def _locate_inputs(
    inputs: Sequence[Predictions],
    *,
    dataset: Dataset | None = None,
    image_root: str | Path | None = None,
    default_size: tuple[float, float] | None = None,
    roots: DataRoots | None = None,
) -> _LocatedInputs:
    """Union the images, find each image's size and locate each input's rows of each image."""
    if len(inputs) < 1:
        raise ValueError("Nothing to ensemble: give at least one prediction set.")
    union, positions, problems = image_union(inputs)
    if dataset is not None:
        outside = union[dataset.image_index_of_file(union) < 0]
        if len(outside):
            problems.append(Problem(
                Severity.WARNING,
                f"{len(outside)} image(s) of the inputs are not in the dataset (e.g. {outside[0]}); "
                "they are ensembled but cannot be evaluated.",
                file=dataset.source,
            ))
    sizes, size_problems = image_sizes(union, dataset=dataset, image_root=image_root,
                                       default_size=default_size, roots=roots)
    problems += size_problems

    from core.ensemble_kernels import locate_rows

    n_models = len(inputs)
    columns = [(pos, np.ascontiguousarray(p.image_pos, np.int64),
                np.ascontiguousarray(p.boxes_xyxy.reshape(-1, 4), np.float64),
                np.ascontiguousarray(p.scores, np.float64), np.ascontiguousarray(p.labels, np.int64))
               for p, pos in zip(inputs, positions)]
    unknown = np.isnan(sizes[:, 0])
    if unknown.any():  # the boxes' own extent: no clipping at all for these images
        extent = np.zeros((len(union), 2))
        for pos, image_pos, boxes, _, _ in columns:
            np.maximum.at(extent, pos[image_pos], boxes[:, 2:])
            np.maximum.at(extent, pos[image_pos], boxes[:, :2])
        sizes[unknown] = np.maximum(extent[unknown], 1.0)

    run_lo = np.zeros((len(union), n_models), np.int64)
    run_hi = np.zeros_like(run_lo)
    for m, (pos, image_pos, boxes, scores, labels) in enumerate(columns):
        if not locate_rows(pos, image_pos, m, run_lo, run_hi):
            # an image's rows apart (Predictions built by hand): brought together, file order kept
            order = np.argsort(image_pos, kind="stable")
            columns[m] = pos, image_pos, boxes, scores, labels = (
                pos, image_pos[order], boxes[order], scores[order], labels[order])
            run_lo[:, m], run_hi[:, m] = 0, 0
            locate_rows(pos, image_pos, m, run_lo, run_hi)
    return _LocatedInputs(
        image_keys=union, sizes=sizes, run_lo=run_lo, run_hi=run_hi,
        boxes=tuple(c[2] for c in columns), scores=tuple(c[3] for c in columns),
        labels=tuple(c[4] for c in columns), problems=problems,
    )


def prepare_inputs(
    inputs: Sequence[Predictions],
    *,
    dataset: Dataset | None = None,
    image_root: str | Path | None = None,
    default_size: tuple[float, float] | None = None,
    roots: DataRoots | None = None,
) -> PreparedInputs:
    """Union the images, find each image's size, normalise, clip to the image and group boxes."""
    located = _locate_inputs(inputs, dataset=dataset, image_root=image_root, default_size=default_size,
                             roots=roots)
    return _prepare_located(located)


def _prepare_located(located: _LocatedInputs) -> PreparedInputs:
    """All images gathered at once: the grouped copy a sweep reuses variant after variant."""
    n = sum(len(s) for s in located.scores)
    boxes, scores, labels = np.empty((n, 4)), np.empty(n), np.empty(n, np.int64)
    whole = located.gather(0, len(located.image_keys), boxes, scores, labels)
    n_kept = len(whole.scores)
    for column in (boxes, scores, labels):  # only this function refers to them: shrunk in place
        column.resize((n_kept,) + column.shape[1:], refcheck=False)
    return PreparedInputs(
        image_keys=located.image_keys, sizes=located.sizes, starts=whole.starts, boxes=boxes, scores=scores,
        labels=labels, n_models=located.n_models, problems=located.problems + located.dropped(n_kept),
    )


def _chunks(prepared: PreparedInputs, n_chunks: int) -> list[_Chunk]:
    n_images = len(prepared.image_keys)
    bounds = np.linspace(0, n_images, max(1, min(n_chunks, n_images)) + 1).astype(int)
    chunks = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi <= lo:
            continue
        first, last = prepared.starts[lo, 0], prepared.starts[hi - 1, -1]
        chunks.append(_Chunk(
            image_ids=np.arange(lo, hi), starts=prepared.starts[lo:hi] - first,
            boxes=prepared.boxes[first:last], scores=prepared.scores[first:last],
            labels=prepared.labels[first:last],
        ))
    return chunks


def _default_workers(n_boxes: int, engine: str = "numba") -> int:
    # The compiled kernels do 3 x 490,000 boxes in about a second: worker processes cost more.
    if engine == "numba" or n_boxes < _PARALLEL_MIN_BOXES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _check_variant(config: EnsembleConfig, engine: str, n_models: int) -> None:
    if engine not in ENGINES:
        raise ValueError(f"Invalid engine {engine!r}. Only {', '.join(ENGINES)} are supported.")
    if config.weights is not None and len(config.weights) != n_models:
        raise ValueError(
            f"Invalid weights {list(config.weights)}: give one weight per input ({n_models}).")


def ensemble_prepared(
    prepared: PreparedInputs,
    config: EnsembleConfig,
    *,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    name: str | None = None,
    engine: str = "numba",
) -> EnsembleResult:
    """Run one variant on already prepared inputs (see `prepare_inputs`). engine: "numba" (the
    compiled kernels of core.ensemble_kernels) or "ensemble-boxes" (the library itself, image by
    image: the reference the kernels equal, ~20x slower)."""
    _check_variant(config, engine, prepared.n_models)
    _warm_up(config, engine)  # numba compiles (or loads) kernels on first use; keep that out of timings
    started = time.perf_counter()
    workers = _default_workers(len(prepared.scores), engine) if workers is None else max(1, int(workers))
    # Enough chunks for a smooth progress bar and for balancing the workers.
    chunks = _chunks(prepared, (10 if engine == "numba" else 50) if workers == 1 else 25 * workers)
    output = _Output(len(prepared.scores))
    n_images = len(prepared.image_keys)
    if workers == 1:
        _collect(((c, _run_chunk(c, config, prepared.n_models, engine)) for c in chunks), output,
                 prepared.sizes, n_images, progress)
    else:
        with ProcessPoolExecutor(workers, mp_context=_mp_context()) as pool:
            futures = [pool.submit(_run_chunk, c, config, prepared.n_models, engine) for c in chunks]
            _collect(((c, f.result()) for c, f in zip(chunks, futures)), output, prepared.sizes, n_images,
                     progress)
    return _result(output, prepared.image_keys, prepared.problems, config, name, started)


# Boxes per chunk when one ensemble gathers its inputs chunk by chunk: the chunk's buffers (~50
# bytes a box in, as much out for NMS) are allocated once and stay in cache.
_STREAM_CHUNK_BOXES = 32_768


def _ensemble_located(located: _LocatedInputs, config: EnsembleConfig, *, progress: ProgressFn | None,
                      name: str | None) -> EnsembleResult:
    """One variant with the numba kernels in this process, its inputs gathered chunk by chunk
    into buffers reused by every chunk (no grouped copy of the whole set)."""
    _warm_up(config)
    started = time.perf_counter()
    image_starts = located.image_starts()                                     # [R+1] rows
    n_images, n_rows = len(located.image_keys), int(image_starts[-1])
    n_chunks = min(max(10, -(-n_rows // _STREAM_CHUNK_BOXES)), max(n_images, 1))
    targets = np.linspace(0, n_rows, n_chunks + 1)[1:-1]
    bounds = np.unique(np.concatenate([[0], np.searchsorted(image_starts, targets), [n_images]]))
    largest = int(np.max(np.diff(image_starts[bounds]), initial=0))
    buffers = np.empty((largest, 4)), np.empty(largest), np.empty(largest, np.int64)
    nms_out = ((np.empty(largest, np.int64), np.empty((largest, 4)), np.empty(largest), np.empty(largest, np.int64))
               if config.method == "nms" else None)
    output = _Output(n_rows)
    n_kept = 0

    def chunk_results():
        nonlocal n_kept
        # each chunk is done (its results copied to output) before the next one reuses the buffers
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            chunk = located.gather(lo, hi, *buffers)
            n_kept += len(chunk.scores)
            yield chunk, _run_chunk(chunk, config, located.n_models, nms_out=nms_out)

    _collect(chunk_results(), output, located.sizes, n_images, progress)
    return _result(output, located.image_keys, located.problems + located.dropped(n_kept), config, name, started)


def _collect(results, output: "_Output", sizes: np.ndarray, n_images: int, progress: ProgressFn | None) -> None:
    """Adds each (chunk, `_run_chunk` result) to output, reporting progress by images."""
    done = 0
    if progress:
        progress(0, n_images)
    for chunk, result in results:
        output.add(result, sizes)
        done += len(chunk.image_ids)
        if progress:
            progress(done, n_images)


def _result(output: "_Output", image_keys: np.ndarray, problems: list[Problem], config: EnsembleConfig,
            name: str | None, started: float) -> EnsembleResult:
    image_ids, labels, boxes_xyxy, scores = output.finish()
    predictions = Predictions(
        image_keys=image_keys, image_pos=image_ids, labels=labels, scores=scores,
        boxes_xyxy=boxes_xyxy.reshape(-1, 4), lines=np.zeros(len(image_keys), np.int64),
        problems=list(problems), source=name or f"ensemble ({config.label})",
    )
    return EnsembleResult(predictions=predictions, config=config, problems=list(problems),
                          seconds=time.perf_counter() - started)


class _Output:
    """The ensembled boxes, chunk by chunk, back in absolute pixels and rounded, written in place.

    Sized for the most boxes a method can yield (one per input box) so that no chunk result is
    kept or concatenated; `finish` shrinks the arrays in place (realloc: nothing is copied)."""

    def __init__(self, capacity: int):
        self.image = np.empty(capacity, np.int64)
        self.labels = np.empty(capacity, np.int64)
        self.boxes = np.empty((capacity, 4))
        self.scores = np.empty(capacity)
        self.size = 0

    def add(self, result, sizes: np.ndarray) -> None:
        """Append one `_run_chunk` result (normalised boxes) in pixels of its images (sizes [R, 2])."""
        from core.ensemble_kernels import to_pixels

        image, boxes, scores, labels = result
        end = self.size + len(scores)
        if end > len(self.scores):   # cannot happen (no method adds boxes); grow rather than fail
            for column in (self.image, self.labels, self.boxes, self.scores):
                column.resize((max(end, 2 * len(self.scores)),) + column.shape[1:], refcheck=False)
        # WBF and NMW average in float32: round off that noise (1e-4 px, 1e-8 in score) so the
        # CSV holds 366.755, not 366.7554931640625.
        to_pixels(np.ascontiguousarray(image, np.int64), np.ascontiguousarray(boxes, np.float64).reshape(-1, 4),
                  np.ascontiguousarray(scores, np.float64), np.ascontiguousarray(labels, np.int64), sizes,
                  10.0 ** OUTPUT_BOX_DECIMALS, 10.0 ** OUTPUT_SCORE_DECIMALS, self.size,
                  self.image, self.boxes, self.scores, self.labels)
        self.size = end

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(image [k], labels [k], boxes_xyxy [k, 4], scores [k]), the arrays shrunk to k rows."""
        columns = (self.image, self.labels, self.boxes, self.scores)
        for column in columns:   # only this object refers to them
            column.resize((self.size,) + column.shape[1:], refcheck=False)
        return columns


_WARM: set[str] = set()


def _warm_up(config: EnsembleConfig, engine: str = "numba") -> None:
    """Run the method once on one box so its numba kernels compile in this process (and are
    inherited by forked workers) before any timing starts."""
    if (config.method, engine) in _WARM:
        return
    box = np.array([[0.1, 0.1, 0.5, 0.5]])
    chunk = _Chunk(image_ids=np.zeros(1, np.int64), starts=np.array([[0, 1, 2]]), boxes=np.vstack([box, box]),
                   scores=np.array([0.9, 0.8]), labels=np.zeros(2, np.int64))
    output = _Output(2)
    output.add(_run_chunk(chunk, replace(config, weights=None), 2, engine), np.ones((1, 2)))
    _WARM.add((config.method, engine))


def _mp_context():
    # fork shares the already-imported modules and needs no re-import of the caller's __main__
    # (a Streamlit script or stdin); spawn where fork does not exist.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def ensemble_predictions(
    inputs: Sequence[Predictions],
    config: EnsembleConfig = EnsembleConfig(),
    *,
    dataset: Dataset | None = None,
    image_root: str | Path | None = None,
    default_size: tuple[float, float] | None = None,
    roots: DataRoots | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    name: str | None = None,
    engine: str = "numba",
) -> EnsembleResult:
    """Ensemble N prediction sets image by image with `config`; boxes come back in absolute pixels.

    inputs: the prediction sets (absolute-pixel xyxy); their image sets may differ (union used,
        reported). dataset / image_root / default_size: where image sizes come from (files
        only inside `roots`, the app's data roots).
    progress: called with (images done, images total). workers: processes (default: by size).
    engine: "numba" (compiled, the default) or "ensemble-boxes" (the library, the reference).
    """
    located = _locate_inputs(inputs, dataset=dataset, image_root=image_root, default_size=default_size,
                             roots=roots)
    _check_variant(config, engine, located.n_models)
    n_boxes = sum(len(s) for s in located.scores)
    if engine == "numba" and (_default_workers(n_boxes, engine) if workers is None else int(workers)) <= 1:
        return _ensemble_located(located, config, progress=progress, name=name)
    return ensemble_prepared(_prepare_located(located), config, progress=progress, workers=workers, name=name,
                             engine=engine)
