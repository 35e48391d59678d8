"""Cached loading and evaluation, keyed on file content (sha256), never on file names.

Large immutable results (datasets, predictions, evaluations, threshold views, uploaded bytes)
are held by reference, not copied, in caches bounded by the memory budget
(core.memory_budget, DETLENS_MEMORY_BUDGET_MB): treat everything returned as read-only. A
threshold view, or a table derived from evaluations, lives only as long as its evaluations stay
cached, so the view cache never keeps an evicted evaluation alive.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from core.images import ImageLookup, read_image, resolve_image_path, size_mismatch
from core.memory_budget import ENV_VAR as BUDGET_ENV_VAR
from core.memory_budget import BoundedCache, cache_capacity, read_budget
from core.problems import Problem, Severity, ValidationError
from core.tables import Dataset, Predictions
from ui.state import data_roots


@dataclass(frozen=True)
class Source:
    """An input file: a path in the dataset folder, or uploaded bytes. `label` is what the user sees."""

    label: str
    name: str
    path: Path | None = None
    data: bytes | None = None
    sha256: str | None = None  # an upload: its bytes are in the shared store under this key

    def read(self):
        """What the core loaders take: the path, or the bytes (None: an upload since dropped)."""
        if self.data is not None:
            return self.data
        if self.sha256 is not None:
            return upload_bytes(self.sha256)
        return self.path

    @property
    def available(self) -> bool:
        """False for an upload whose bytes were dropped to stay under the memory budget."""
        return self.path is not None or self.data is not None or (
            self.sha256 is not None and upload_bytes(self.sha256) is not None)


@dataclass
class Loaded:
    """A load's outcome: the value (None when rejected), its content key and the problems found."""

    value: object | None
    key: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]


@st.cache_data(max_entries=256, show_spinner=False)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------- memory budget, caches
BUDGET = read_budget()  # read once, at server start
# Shares of what the budget leaves after core.memory_budget.RESERVED_MB. One evaluation of
# 490,000 boxes is ~120 MB with its tables (bench/bench_memory.py).
SHARES = {"evaluations": 0.50, "derived": 0.15, "predictions": 0.15, "uploads": 0.10,
          "datasets": 0.05, "images": 0.05}
BUDGET_HINT = f"to stay under the memory budget ({BUDGET_ENV_VAR}={BUDGET.mb})"


def _bounded(name: str, **kwargs) -> BoundedCache:
    return BoundedCache(cache_capacity(SHARES[name], BUDGET), name, **kwargs)


def _lazy_parts(value) -> tuple:
    """Which lazy parts value (or the Comparison it holds) built: cached_property results and
    Comparison's views are kept in __dict__; unchanged means no need to size it again."""
    parts = tuple(getattr(value, "__dict__", ()))
    inner = getattr(value, "comparison", None)
    return parts + tuple(getattr(inner, "__dict__", ()))


# threshold views and tables made from evaluations; every entry depends on its evaluations
_DERIVED = _bounded("derived", max_entries=512, signature=_lazy_parts)
_EVALUATIONS = _bounded("evaluations", signature=_lazy_parts,
                        on_evict=lambda key, ev: _DERIVED.discard_dependents(ev))
_PREDICTIONS = _bounded("predictions", max_entries=32)
# an evaluation holds its dataset: it goes when the dataset does
_DATASETS = _bounded("datasets", max_entries=16,
                     on_evict=lambda key, loaded: _EVALUATIONS.discard_dependents(loaded.value))
_UPLOADS = _bounded("uploads")  # sha256 -> bytes, shared by every session
# decoded RGB images (crops): width * height * 3 bytes each
_IMAGES = _bounded("images", sizeof=lambda image: 0 if image is None else image.width * image.height * 3)


def caches() -> dict[str, BoundedCache]:
    """The bounded caches by name (for benchmarks and tests)."""
    return {"evaluations": _EVALUATIONS, "derived": _DERIVED, "predictions": _PREDICTIONS,
            "datasets": _DATASETS, "uploads": _UPLOADS, "images": _IMAGES}


def store_upload(data: bytes) -> str:
    """Keep uploaded bytes in the process-wide store; returns their sha256, the key to read them."""
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 not in _UPLOADS:
        _UPLOADS.put(sha256, bytes(data))
    else:
        _UPLOADS.get(sha256)  # now the most recently used
    return sha256


def upload_bytes(sha256: str) -> bytes | None:
    """Bytes stored under sha256, or None once dropped to stay under the memory budget."""
    return _UPLOADS.get(sha256)


def dropped_upload_message(name: str) -> str:
    """What to tell the user about an upload whose bytes the store dropped."""
    return (f"Uploaded {name} was dropped {BUDGET_HINT} MB, with the least recently used "
            "files; upload it again.")


def content_key(source: Source) -> str:
    """sha256 of the source's bytes; a file is hashed again only when its mtime or size changes."""
    if source.sha256 is not None:
        return source.sha256
    if source.data is not None:
        return hashlib.sha256(source.data).hexdigest()
    if is_dataset_folder(source.path):
        from core.formats import ground_truth_fingerprint
        return ground_truth_fingerprint(source.path)  # every label file's name, size and mtime
    stat = source.path.stat()
    return _file_sha256(str(source.path), stat.st_mtime_ns, stat.st_size)


def _problem(name: str, exc: Exception) -> Problem:
    return Problem(Severity.ERROR, f"cannot be read: {exc}", file=name)


def is_dataset_folder(path: Path | None) -> bool:
    """A YOLO / VOC ground truth (a folder or a data.yaml), read by core.formats, not as one json."""
    return path is not None and (path.is_dir() or path.suffix.lower() in (".yaml", ".yml"))


def _load_dataset(key: str, root: str | None, name: str, _source) -> Loaded:
    from core.dataset import load_coco
    from core.formats import load_ground_truth

    try:
        if isinstance(_source, Path) and is_dataset_folder(_source):
            # its root: where the format puts the images; a data.yaml may point anywhere
            dataset = load_ground_truth(_source, roots=data_roots())
        else:
            dataset = load_coco(_source, name=name, root=Path(root) if root else None)
    except ValidationError as exc:
        return Loaded(None, key, exc.problems)
    except (ValueError, OSError, KeyError, TypeError) as exc:  # e.g. invalid json, unreadable file
        return Loaded(None, key, [_problem(name, exc)])
    if root is None:
        dataset.root = None
    return Loaded(dataset, key, list(dataset.problems))


def _content(source: Source) -> tuple[str, object] | Loaded:
    """(content key, what the core loaders read) of `source`, or the Loaded saying why not."""
    try:
        key = content_key(source)
    except OSError as exc:
        return Loaded(None, "", [_problem(source.name, exc)])
    content = source.read()  # an upload's bytes: now the most recently used
    if content is None:
        return Loaded(None, key, [Problem(Severity.ERROR, dropped_upload_message(source.name))])
    return key, content


def load_dataset(source: Source, root: Path | None) -> Loaded:
    """The COCO ground truth in `source`, images resolving under `root` (cached on content + root)."""
    found = _content(source)
    if isinstance(found, Loaded):
        return found
    key, content = found
    cache_key = (key, str(root) if root else None, source.name)
    loaded = _DATASETS.get(cache_key)
    if loaded is None:
        with st.spinner("Loading the ground truth ..."):
            loaded = _DATASETS.get_or_create(cache_key, lambda: _load_dataset(*cache_key, content))
    return loaded


def _load_predictions(key: str, dataset_key: str, name: str, _source, _dataset) -> Loaded:
    from core.formats import load_any_predictions

    try:  # CSV, COCO results json or Ultralytics json, told apart by content
        predictions = load_any_predictions(_source, _dataset, name=name)
    except ValidationError as exc:
        return Loaded(None, key, exc.problems)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        return Loaded(None, key, [_problem(name, exc)])
    # Loaded even with errors: they are what the competition server may reject, while the boxes
    # are those pycocotools scores (only what cannot be read is left out); the page shows them.
    return Loaded(predictions, key, list(predictions.problems))


def load_predictions(source: Source, dataset: Dataset, dataset_key: str) -> Loaded:
    """Predictions (CSV, COCO results or Ultralytics json) checked against `dataset`; loaded with
    their problems unless unreadable."""
    found = _content(source)
    if isinstance(found, Loaded):
        return found
    key, content = found
    cache_key = (key, dataset_key, source.name)
    loaded = _PREDICTIONS.get(cache_key)
    if loaded is None:  # the CSV parser is compiled with the matching kernels: the first load builds them
        first = ("Building the compiled kernels (once per checkout, about 15 s), then loading "
                 "predictions ..." if kernels_to_build() else None)
        with st.spinner(first or "Loading predictions ..."):
            loaded = _PREDICTIONS.get_or_create(
                cache_key, lambda: _load_predictions(*cache_key, content, dataset))
    return loaded


@st.cache_resource(max_entries=16, show_spinner=False)
def _label_set(key: str, _predictions: Predictions) -> tuple[int, ...]:
    return tuple(int(c) for c in np.unique(_predictions.labels))


def label_set(key: str, predictions: Predictions) -> tuple[int, ...]:
    """The sorted class ids the predictions use (cached on their content key)."""
    return _label_set(key, predictions)


def predictions_key(predictions: Predictions) -> str:
    """A content key for predictions made in memory (inference, ensembles)."""
    digest = hashlib.sha256()
    for array in (predictions.image_pos, predictions.labels, predictions.scores,
                  predictions.boxes_xyxy):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update("\n".join(map(str, predictions.image_keys)).encode())
    return digest.hexdigest()


# ------------------------------------------------------------------------------- evaluation
def evaluation(dataset: Dataset, dataset_key: str, predictions: Predictions, pred_key: str,
               iou_thr: float):
    """The cached Evaluation of predictions against dataset at iou_thr (the heavy part, once)."""
    from core.evaluation import evaluate

    key = (dataset_key, pred_key, round(float(iou_thr), 4))
    ev = _EVALUATIONS.get(key)
    if ev is None:
        first = ("Building the compiled kernels (once per checkout, about 15 s), then matching "
                 "predictions to the ground truth ..." if kernels_to_build() else None)
        with st.spinner(first or "Matching predictions to the ground truth (once per file) ..."):
            ev = _EVALUATIONS.get_or_create(
                key, lambda: evaluate(dataset, predictions, iou_thr=key[2]), depends_on=(dataset,))
    else:
        _EVALUATIONS.remeasure(key)  # its tables (dets, gts) are built on first use
    return ev


def kernels_to_build() -> bool:
    """Whether the next CSV load or evaluation builds the compiled kernels first (core.kernel_build:
    once per checkout, when no build for this source and these versions is there and none is loaded)."""
    import importlib.machinery
    import os

    from core import kernel_build

    if os.environ.get("DETLENS_KERNELS") == "jit" or kernel_build.kernels.cache_info().currsize:
        return False
    folder, name = kernel_build.default_build_dir(), kernel_build.module_name()
    return not any((folder / f"{name}{suffix}").exists() for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def derived(key: tuple, create, evaluations: list):
    """create(), cached under key for as long as every one of `evaluations` stays cached (a
    view or table made from them); computed afresh when one of them is not in the cache."""
    if not all(_EVALUATIONS.holds(ev) for ev in evaluations):
        return create()
    key = (*key, *(id(ev) for ev in evaluations))
    value = _DERIVED.get(key)
    if value is None:
        value = _DERIVED.get_or_create(key, create, depends_on=evaluations)
        for ev in evaluations:  # evicted meanwhile (another session): the entry must not keep it
            if not _EVALUATIONS.holds(ev):
                _DERIVED.discard_dependents(ev)
    else:
        _DERIVED.remeasure(key)  # lazy parts (a view's dets) count once built
    return value


def threshold_view(ev, dataset_key: str, pred_key: str, iou_thr: float, score_thr: float):
    """ev.at(score_thr), cached: moving the slider back to a value costs nothing."""
    score_thr = round(float(score_thr), 4)
    return derived(("view", dataset_key, pred_key, round(float(iou_thr), 4), score_thr),
                   lambda: ev.at(score_thr), [ev])


def threshold_curve(ev, category_id: int | None = None):
    """ev.threshold_curve(category_id), cached with ev: one per evaluation and class, shared by
    every session and run (at 490,000 boxes it is ~0.2 s, once per page run before)."""
    key = ("curve", None if category_id is None else int(category_id))
    return derived(key, lambda: ev.threshold_curve(key[1]), [ev])


# ----------------------------------------------------------------------------------- images
@st.cache_data(max_entries=48, show_spinner=False)
def _image_uri(path: str, mtime_ns: int, name: str, upright: bool = False
               ) -> tuple[str | None, tuple[str, ...], tuple[int, int] | None]:
    """(JPEG data URI at most 1024 px a side, reader notices, decoded (width, height)).

    Holds at most 48 URIs of ~0.1-0.3 MB; the decoded image is dropped at once.
    """
    from core.drawing import image_data_uri

    try:
        image, notices = read_image(Path(path), name=name, upright=upright)
    except ValueError as exc:
        return None, (f"{exc}; drawn as a blank canvas",), None
    return image_data_uri(image), tuple(notices), image.size


@dataclass(frozen=True)
class ImageRef:
    """One image ready to draw: its key, pixel size, data URI (None: blank canvas) and notice."""

    key: str
    width: float
    height: float
    uri: str | None
    notice: str | None


def image_ref(root: Path | None, file_name: str, size: tuple[float, float] | None,
              fallback_size: tuple[float, float] = (1024.0, 1024.0), *, upright: bool = False) -> ImageRef:
    """Resolve and encode an image (cached); missing or refused files give a notice instead.

    size: (width, height) from the ground truth; None for an image it lacks (a test image),
    then it is read from the file header, else fallback_size. upright: the dataset's boxes are
    in the EXIF-upright grid (Dataset.upright_pixels).
    """
    lookup: ImageLookup = resolve_image_path(root, file_name, data_roots())
    uri, notices = None, [lookup.message] if lookup.message else []
    if lookup.found:
        uri, read_notices, decoded = _image_uri(str(lookup.path), _mtime_ns(lookup.path), file_name, upright)
        notices += read_notices
        if decoded is not None:
            notices += [n for n in [size_mismatch(file_name, decoded, size)] if n]
            size = size if size is not None else decoded
    width, height = size if size is not None else fallback_size
    return ImageRef(file_name, float(width), float(height), uri, "\n\n".join(notices) or None)


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # unreadable: the reader says why
        return 0


def _decode(path: str, upright: bool):
    try:
        image, _ = read_image(Path(path), upright=upright)
    except ValueError:
        return None
    return image


def _pil_image(path: str, mtime_ns: int, upright: bool = False):
    """Decoded RGB image or None, held in the budget's image share (an image over it alone is
    still kept, as the newest entry: one image under the pixel limit, 192 MB at most)."""
    return _IMAGES.get_or_create((path, mtime_ns, upright), lambda: _decode(path, upright))


def pil_image(root: Path | None, file_name: str, *, upright: bool = False):
    """The decoded image (cached, read-only) or None when missing/unreadable/refused/too large;
    upright: in the EXIF-upright grid (Dataset.upright_pixels)."""
    lookup = resolve_image_path(root, file_name, data_roots())
    if not lookup.found:
        return None
    return _pil_image(str(lookup.path), _mtime_ns(lookup.path), upright)


@st.cache_data(max_entries=512, show_spinner=False)
def _crop_png(path: str | None, mtime_ns: int, size: tuple[float, float],
              focus_xyxy: tuple[float, ...], outlines: tuple, out_side: int = 180,
              upright: bool = False) -> bytes:
    from core.drawing import render_crop

    image = _pil_image(path, mtime_ns, upright) if path is not None else None
    crop = render_crop(image, size, np.array(focus_xyxy),
                       [(np.array(box), color) for box, color in outlines], out_side=out_side)
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG")
    return buffer.getvalue()


def crop_png(root: Path | None, file_name: str, size: tuple[float, float], focus_xyxy,
             outlines: list[tuple[object, str]], *, out_side: int = 180, upright: bool = False) -> bytes:
    """A thumbnail around focus_xyxy with the (box_xyxy, colour) outlines, PNG bytes, cached per
    (image file, boxes): a threshold change re-renders no crop, and the same bytes give the
    browser the same media URL. A missing image gives a blank-canvas crop."""
    lookup = resolve_image_path(root, file_name, data_roots())
    path, mtime_ns = (str(lookup.path), _mtime_ns(lookup.path)) if lookup.found else (None, 0)
    as_tuple = lambda box: tuple(float(v) for v in np.asarray(box, dtype=np.float64).ravel())  # noqa: E731
    return _crop_png(path, mtime_ns, (float(size[0]), float(size[1])), as_tuple(focus_xyxy),
                     tuple((as_tuple(box), str(color)) for box, color in outlines), int(out_side), upright)
