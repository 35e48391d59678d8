"""Slices: which subsets of the boxes or images a model does worst on, exactly as COCO scores them.

    index = build_slices(ev)          # matching per slice (compiled), TIDE per slice: once
    table = index.table(score_thr)    # AP, mAP, recall, counts per slice: cheap, any threshold

A *box* slice (size, aspect ratio, position in the image) scores as pycocotools does with an
`areaRng`: ground truth outside it is ignored, and so are predictions that match it or that
lie outside it unmatched, each prediction judged by its own box. An *image* slice (objects
per image, classes per image, class pairs) scores as pycocotools with `imgIds` restricted.
Both re-run COCO's matching inside the slice (core.slice_kernels), so AP equals pycocotools'
on the same restriction (tested to 1e-9). AP columns: `ap50` at the evaluation's IoU
threshold, `ap` over IoU .50:.95, both over the classes with ground truth in the slice.
TIDE dAP per slice keeps the whole set's matching: a prediction belongs to the slice of the
ground truth that decided its outcome, or, with none, to that of its own box.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from core.outcomes import ERROR_TYPES, Outcome
from core.matching_kernels import COCO_FP, COCO_IGNORED, COCO_TP
from core.metrics import COCO_AREA_RANGES, COCO_IOU_THRS, COCO_RECALL_THRS
from core.tide import TideInput, tide_dap_by_group
from core.tide_per_class import tide_input_from

BOX, IMAGE = "box", "image"
MIN_BOXES = 30          # slices with fewer ground-truth boxes are marked tiny (greyed, ranked last)
TOP_PAIRS = 5           # class pairs that share the most images, each an image slice
BORDER_FRACTION = 0.01  # a box within 1% of the image side (at least 1 px) touches the border
# dimensions scored at once (the compiled kernels and numpy's sorts release the GIL)
_THREADS = max(1, min(4, (os.cpu_count() or 1) // 2))
_COCO_SIZE_NAMES = ["small (< 32²)", "medium (32²–96²)", "large (> 96²)"]
_ASPECT_BINS = [(0.0, 0.5, "tall (w/h < 1/2)"), (0.5, 0.8, "portrait (1/2–0.8)"),
                (0.8, 1.25, "square (0.8–1.25)"), (1.25, 2.0, "landscape (1.25–2)"),
                (2.0, np.inf, "wide (w/h ≥ 2)")]
_COUNT_BINS = [(0, 0, "no objects"), (1, 1, "1 object"), (2, 4, "2–4 objects"),
               (5, 9, "5–9 objects"), (10, 19, "10–19 objects"), (20, np.inf, "20+ objects")]


@dataclass(frozen=True)
class Dimension:
    """One way of cutting the data into named slices (they may overlap, e.g. class pairs).

    gt_in [G, S], det_in [N, S] bool: membership of each annotation and prediction (ev.dets
    rows); image_in [I, S] bool for image slices, None for box slices.
    """

    name: str
    kind: str
    slices: list[str]
    gt_in: np.ndarray
    det_in: np.ndarray
    image_in: np.ndarray | None = None
    ranges: list | None = None   # (lo, hi) per slice of a closed-range box dimension (sizes)
    coco_area: list | None = None  # indices into COCO_AREA_RANGES when the slices are COCO's areas


@dataclass
class _Scored:
    """A dimension after matching: TPs per (IoU threshold, slice, class) and TIDE per slice."""

    dimension: Dimension
    group_start: np.ndarray      # [T*S*K+1]
    tp_pos: np.ndarray
    tp_score: np.ndarray
    n_gt: np.ndarray             # [S, K] regular ground truth in the slice
    counted_scores: list         # per slice: sorted scores of the predictions counted at iou_thr
    tide: np.ndarray             # [S, len(ERROR_TYPES)] dAP
    images: list                 # per slice: image indices with a box in it (click-through)


@dataclass
class SliceIndex:
    """Every slice of one evaluation, matched once; `table(score_thr)` is cheap."""

    iou_thr: float
    thrs: np.ndarray             # IoU thresholds matched: COCO's ten, then iou_thr if not one of them
    eval_t: int                  # index of iou_thr in thrs
    n_classes: int
    scored: list = field(default_factory=list)

    @property
    def dimensions(self) -> list[str]:
        return [s.dimension.name for s in self.scored]

    def table(self, score_thr: float = -np.inf, min_boxes: int = MIN_BOXES) -> pd.DataFrame:
        """One row per slice: dimension, kind, slice, n_gt, n_pred, ap50, ap, recall, delta_ap50
        (slice minus the whole set), tiny, dap_<error> per TIDE type; worst first, tiny last."""
        rows = []
        k = self.n_classes
        n_coco = len(COCO_IOU_THRS)
        for sc in self.scored:
            n_sl = len(sc.dimension.slices)
            n_gt_g = np.tile(sc.n_gt.reshape(-1), len(self.thrs)).astype(np.float64)
            ap, n_tp = _kernels().group_ap(sc.group_start, sc.tp_pos, sc.tp_score, n_gt_g,
                                           float(score_thr), COCO_RECALL_THRS)
            ap = ap.reshape(len(self.thrs), n_sl, k)
            n_tp = n_tp.reshape(len(self.thrs), n_sl, k)
            for s, name in enumerate(sc.dimension.slices):
                has_gt = sc.n_gt[s] > 0
                n_gt = int(sc.n_gt[s].sum())
                row = {
                    "dimension": sc.dimension.name, "kind": sc.dimension.kind, "slice": name,
                    "n_gt": n_gt,
                    "n_pred": int(len(sc.counted_scores[s]) - np.searchsorted(sc.counted_scores[s], score_thr)),
                    "n_images": int(len(sc.images[s])),
                    "ap50": float(ap[self.eval_t, s, has_gt].mean()) if has_gt.any() else np.nan,
                    "ap": float(ap[:n_coco, s][:, has_gt].mean()) if has_gt.any() else np.nan,
                    "recall": n_tp[self.eval_t, s].sum() / n_gt if n_gt else np.nan,
                }
                for error, dap in zip(ERROR_TYPES, sc.tide[s]):
                    row[f"dap_{error.value}"] = dap
                rows.append(row)
        table = pd.DataFrame(rows)
        if table.empty:
            return table
        whole = self.whole(score_thr)
        table["delta_ap50"] = table["ap50"] - whole["ap50"]
        table["tiny"] = table["n_gt"] < min_boxes
        order = np.lexsort((table["delta_ap50"].fillna(np.inf).to_numpy(), table["tiny"].to_numpy()))
        return table.iloc[order].reset_index(drop=True)

    def whole(self, score_thr: float = -np.inf) -> dict:
        """ap50, ap of the whole set at score_thr (the reference the slices are ranked against)."""
        return self._whole(float(score_thr))

    def _whole(self, score_thr: float) -> dict:
        sc = self._everything
        n_gt_g = np.tile(sc.n_gt.reshape(-1), len(self.thrs)).astype(np.float64)
        ap, _ = _kernels().group_ap(sc.group_start, sc.tp_pos, sc.tp_score, n_gt_g, score_thr, COCO_RECALL_THRS)
        ap = ap.reshape(len(self.thrs), self.n_classes)
        has_gt = sc.n_gt[0] > 0
        if not has_gt.any():
            return {"ap50": np.nan, "ap": np.nan}
        return {"ap50": float(ap[self.eval_t, has_gt].mean()),
                "ap": float(ap[:len(COCO_IOU_THRS)][:, has_gt].mean())}

    _everything: _Scored = None

    def images_of(self, dimension: str, slice_name: str) -> np.ndarray:
        """Image indices with a box (ground truth or prediction) in the slice, or in it (image slices)."""
        for sc in self.scored:
            if sc.dimension.name == dimension and slice_name in sc.dimension.slices:
                return sc.images[sc.dimension.slices.index(slice_name)]
        raise ValueError(f"Invalid slice {dimension!r} / {slice_name!r}. Only {self.dimensions} are supported.")


def _kernels():
    from core import slice_kernels  # compiled on first use (cache=True: once per checkout)

    return slice_kernels


# ------------------------------------------------------------------------------ dimensions
def automatic_dimensions(ev) -> list[Dimension]:
    """Size (COCO and GT-area quartiles), aspect ratio, position, objects per image, classes
    per image and the most frequent class pairs, for the evaluation's boxes."""
    ctx = _Context.of(ev)
    coco_sizes = _box_ranges("size (COCO areas)", ctx.gt_area, ctx.det_area,
                             [(lo, hi, n) for (lo, hi), n in zip(COCO_AREA_RANGES[1:], _COCO_SIZE_NAMES)], ctx)
    dims = [
        replace(coco_sizes, coco_area=[1, 2, 3]),
        _size_quartiles(ctx),
        _box_bins("aspect ratio", ctx.gt_aspect, ctx.det_aspect, _ASPECT_BINS, ctx),
        _position(ctx),
        _image_bins("objects per image", ctx.objects_per_image, _COUNT_BINS, ctx),
        _classes_per_image(ctx),
        _class_pairs(ctx),
    ]
    return [d for d in dims if d is not None and len(d.slices)]


@dataclass
class _Context:
    """The boxes of an evaluation as plain arrays (ground truth in annotation order)."""

    det_image: np.ndarray
    det_cls: np.ndarray
    det_xyxy: np.ndarray
    gt_image: np.ndarray
    gt_cls: np.ndarray
    gt_xywh: np.ndarray
    gt_area: np.ndarray
    gt_crowd: np.ndarray
    width: np.ndarray
    height: np.ndarray
    names: list

    @classmethod
    def of(cls, ev) -> "_Context":
        from core.evaluation import _gt_arrays

        det = ev._arrays[0]
        gt = _gt_arrays(ev.dataset)
        images = ev.dataset.images
        return cls(det_image=det.image, det_cls=det.cls, det_xyxy=det.xyxy, gt_image=gt.image,
                   gt_cls=gt.cls, gt_xywh=gt.xywh, gt_area=gt.area, gt_crowd=gt.crowd,
                   width=images["width"].to_numpy(np.float64), height=images["height"].to_numpy(np.float64),
                   names=ev.dataset.categories["name"].astype(str).tolist())

    @property
    def n_images(self) -> int:
        return len(self.width)

    @property
    def det_area(self) -> np.ndarray:
        w, h = self.det_xyxy[:, 2] - self.det_xyxy[:, 0], self.det_xyxy[:, 3] - self.det_xyxy[:, 1]
        return w * h  # as pycocotools' loadRes: bb[2] * bb[3]

    @property
    def gt_aspect(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.gt_xywh[:, 2] / self.gt_xywh[:, 3]

    @property
    def det_aspect(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.det_xyxy[:, 2] - self.det_xyxy[:, 0]) / (self.det_xyxy[:, 3] - self.det_xyxy[:, 1])

    @property
    def objects_per_image(self) -> np.ndarray:
        return np.bincount(self.gt_image[~self.gt_crowd], minlength=self.n_images)


def _box_ranges(name, gt_value, det_value, ranges, ctx) -> Dimension:
    """Closed ranges [lo, hi] on a box value, as pycocotools' areaRng (a value on an edge is in both)."""
    lo = np.array([r[0] for r in ranges], float)
    hi = np.array([r[1] for r in ranges], float)
    gt_in = (gt_value[:, None] >= lo) & (gt_value[:, None] <= hi)
    det_in = (det_value[:, None] >= lo) & (det_value[:, None] <= hi)
    return Dimension(name, BOX, [r[2] for r in ranges], gt_in, det_in,
                     ranges=[(float(a), float(b)) for a, b in zip(lo, hi)])


def _box_bins(name, gt_value, det_value, bins, ctx) -> Dimension:
    """Half-open bins [lo, hi) on a box value: every box in exactly one (NaN: in none)."""
    lo = np.array([b[0] for b in bins], float)
    hi = np.array([b[1] for b in bins], float)
    gt_in = (gt_value[:, None] >= lo) & (gt_value[:, None] < hi)
    det_in = (det_value[:, None] >= lo) & (det_value[:, None] < hi)
    return Dimension(name, BOX, [b[2] for b in bins], gt_in, det_in)


def _size_quartiles(ctx) -> Dimension | None:
    area = ctx.gt_area[~ctx.gt_crowd]
    if len(area) < 4:
        return None
    q = np.unique(np.quantile(area, [0.25, 0.5, 0.75]))
    edges = np.r_[0.0, q, 1e5 ** 2]
    ranges = [(edges[i], edges[i + 1], f"area {_px(edges[i])}–{_px(edges[i + 1])}" if i < len(edges) - 2
               else f"area > {_px(edges[i])}") for i in range(len(edges) - 1)]
    return _box_ranges("size (GT area quartiles)", ctx.gt_area, ctx.det_area, ranges, ctx)


def _px(area: float) -> str:
    return f"{np.sqrt(area):.0f}²"


def _position(ctx) -> Dimension:
    """touching the border (a truncated object?), centre (centre in the middle third both
    ways), off-centre (the rest)."""
    def where(xyxy, image):
        w, h = ctx.width[image], ctx.height[image]
        margin_x, margin_y = np.maximum(1.0, BORDER_FRACTION * w), np.maximum(1.0, BORDER_FRACTION * h)
        touch = ((xyxy[:, 0] <= margin_x) | (xyxy[:, 1] <= margin_y)
                 | (xyxy[:, 2] >= w - margin_x) | (xyxy[:, 3] >= h - margin_y))
        cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2 / w, (xyxy[:, 1] + xyxy[:, 3]) / 2 / h
        centre = ~touch & (np.abs(cx - 0.5) <= 1 / 6) & (np.abs(cy - 0.5) <= 1 / 6)
        return np.stack([touch, centre, ~touch & ~centre], axis=1)

    gt_xyxy = ctx.gt_xywh.copy()
    gt_xyxy[:, 2:] += gt_xyxy[:, :2]
    return Dimension("position", BOX, ["touching the border", "centre", "off-centre"],
                     where(gt_xyxy, ctx.gt_image), where(ctx.det_xyxy, ctx.det_image))


def _image_dimension(name, image_in: np.ndarray, slices: list[str], ctx) -> Dimension:
    """Every box of an image in the slice is in it: pycocotools with imgIds restricted."""
    keep = image_in.any(axis=0)
    image_in = image_in[:, keep]
    return Dimension(name, IMAGE, [s for s, k in zip(slices, keep) if k],
                     image_in[ctx.gt_image], image_in[ctx.det_image], image_in)


def _image_bins(name, value, bins, ctx) -> Dimension:
    image_in = np.stack([(value >= lo) & (value <= hi) for lo, hi, _ in bins], axis=1)
    return _image_dimension(name, image_in, [b[2] for b in bins], ctx)


def _image_classes(ctx) -> np.ndarray:
    """[I, K] bool: the image has regular ground truth of the class."""
    k = len(ctx.names)
    has = np.zeros((ctx.n_images, k), bool)
    regular = ~ctx.gt_crowd
    has[ctx.gt_image[regular], ctx.gt_cls[regular]] = True
    return has


def _classes_per_image(ctx) -> Dimension:
    n = _image_classes(ctx).sum(axis=1)
    return _image_bins("classes per image", n, [(1, 1, "1 class"), (2, 2, "2 classes"),
                                                (3, np.inf, "3+ classes")], ctx)


def _class_pairs(ctx) -> Dimension | None:
    """The TOP_PAIRS class pairs found together in the most images."""
    has = _image_classes(ctx).astype(np.int64)
    together = has.T @ has                                               # [K, K]
    a, b = np.triu_indices(len(ctx.names), k=1)
    counts = together[a, b]
    best = np.argsort(-counts, kind="stable")[:TOP_PAIRS]
    best = best[counts[best] > 0]
    if not len(best):
        return None
    image_in = np.stack([(has[:, a[i]] > 0) & (has[:, b[i]] > 0) for i in best], axis=1)
    return _image_dimension("class pairs", image_in,
                            [f"{ctx.names[a[i]]} + {ctx.names[b[i]]}" for i in best], ctx)


STATS_SIDE = 256  # images are reduced to at most this side before their statistics are taken


def image_statistics(root, file_names, roots=None, progress=None) -> np.ndarray:
    """[I, 2] mean luminance and its standard deviation (RMS contrast), 0..255, of each image,
    read by core.images.read_image and reduced to STATS_SIDE first; NaN where the file is
    missing, refused or unreadable. progress(i, n) is called after each image."""
    from core.images import read_image, resolve_image_path

    stats = np.full((len(file_names), 2), np.nan)
    for i, name in enumerate(file_names):
        found = resolve_image_path(root, str(name), roots)
        if found.found:
            try:
                image, _ = read_image(found.path, name=str(name))
                image.thumbnail((STATS_SIDE, STATS_SIDE))
                luma = np.asarray(image.convert("L"), np.float64)
                stats[i] = luma.mean(), luma.std()
            except (OSError, ValueError):
                pass
        if progress is not None:
            progress(i + 1, len(file_names))
    return stats


def pixel_dimensions(ev, stats: np.ndarray) -> list[Dimension]:
    """Image slices by brightness and by contrast (thirds of the images with a readable file)."""
    ctx = _Context.of(ev)
    dims = []
    for column, name, labels in ((0, "brightness", ["dark", "medium brightness", "bright"]),
                                 (1, "contrast", ["low contrast", "medium contrast", "high contrast"])):
        value = stats[:, column]
        known = np.isfinite(value)
        if known.sum() < 3:
            continue
        lo, hi = np.quantile(value[known], [1 / 3, 2 / 3])
        image_in = np.stack([known & (value < lo), known & (value >= lo) & (value < hi), known & (value >= hi)],
                            axis=1)
        ranges = [f"< {lo:.0f}", f"{lo:.0f}–{hi:.0f}", f"≥ {hi:.0f}"]
        dims.append(_image_dimension(f"image {name}", image_in,
                                     [f"{t} ({r})" for t, r in zip(labels, ranges)], ctx))
    return dims


_COCO_IMAGE_KEYS = {"id", "file_name", "width", "height", "license", "flickr_url", "coco_url", "date_captured"}
_COCO_ANN_KEYS = {"id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation", "keypoints",
                  "num_keypoints", "score", "ignore"}
MAX_FIELD_VALUES = 12


def json_field_dimensions(ev, doc: dict, max_values: int = MAX_FIELD_VALUES) -> list[Dimension]:
    """User slices from the ground-truth json: every image or annotation key beyond COCO's own
    (one level into a dict, e.g. `attributes.occluded`) with 2..max_values distinct scalar values.

    An image field gives image slices (pycocotools with imgIds restricted). An annotation field
    gives box slices: ground truth by its value; a prediction goes with the ground truth that
    decided its outcome and a background box (IoU <= 0.1 with every object) in no slice, so its
    false positive is not charged to any value of a field predictions do not have.
    """
    dims = []
    images, anns = doc.get("images") or [], doc.get("annotations") or []
    ctx = _Context.of(ev)
    if len(images) == ctx.n_images:
        for key, values in _fields(images, _COCO_IMAGE_KEYS, max_values):
            image_in = np.stack([values == v for v in _distinct(values)], axis=1)
            dims.append(_image_dimension(f"image field {key}", image_in,
                                         [f"{key} = {v}" for v in _distinct(values)], ctx))
    det, outcome, _ = ev._arrays
    if len(anns) == len(ctx.gt_image):
        decided = (outcome.gt >= 0) & (outcome.code != Outcome.BACKGROUND.code)  # near no object: none
        for key, values in _fields(anns, _COCO_ANN_KEYS, max_values):
            gt_in = np.stack([values == v for v in _distinct(values)], axis=1)       # [G, S]
            det_in = np.zeros((len(det.score), gt_in.shape[1]), bool)
            det_in[decided] = gt_in[outcome.gt[decided]]
            dims.append(Dimension(f"box field {key}", BOX, [f"{key} = {v}" for v in _distinct(values)],
                                  gt_in, det_in))
    return [d for d in dims if len(d.slices)]


def _fields(entries: list, standard: set, max_values: int):
    """(key, values [n] object array, None where absent) of the non-standard scalar keys."""
    found: dict[str, list] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            if key in standard:
                continue
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, v in items:
                if isinstance(v, (str, bool, int, float)) and not (isinstance(v, float) and np.isnan(v)):
                    found.setdefault(key if sub is None else f"{key}.{sub}", [None] * len(entries))[i] = v
    for key in sorted(found):
        values = np.array(found[key], dtype=object)
        n = len(_distinct(values))
        if 2 <= n <= max_values:
            yield key, values


def _distinct(values: np.ndarray) -> list:
    present = [v for v in values if v is not None]
    return sorted(set(present), key=lambda v: (str(type(v)), v))


# ------------------------------------------------------------------------------- scoring
def build_slices(ev, dimensions: list[Dimension] | None = None) -> SliceIndex:
    """Match every slice of `dimensions` (default: automatic_dimensions) once."""
    from core.evaluation import MAX_DETS, _gt_arrays, class_order_and_position

    if dimensions is None:
        dimensions = automatic_dimensions(ev)
    det, outcome, _ = ev._arrays
    gt = _gt_arrays(ev.dataset)
    n_images, k = len(ev.dataset.images), len(ev.dataset.categories)
    thrs = COCO_IOU_THRS if np.any(COCO_IOU_THRS == ev.iou_thr) else np.r_[COCO_IOU_THRS, ev.iou_thr]
    eval_t = int(np.flatnonzero(thrs == ev.iou_thr)[0])
    class_order, position = class_order_and_position(det, ev.dataset)
    gt_order = np.argsort(gt.image, kind="stable")
    det_start = np.searchsorted(det.image, np.arange(n_images + 1))
    gt_start = np.searchsorted(gt.image[gt_order], np.arange(n_images + 1))
    tide_data, tide_rows = tide_input_from(ev, class_order, position)  # TIDE's view, for every slice
    by_score = np.empty(len(det.score), np.int64)                        # class-order rows, best score first
    by_score[position[class_order]] = np.arange(len(det.score))
    common = dict(det=det, det_xywh=det.xywh, outcome=outcome, gt=gt, k=k, thrs=thrs, eval_t=eval_t,
                  class_order=class_order, whole_status=_whole_status(outcome, thrs)[class_order][:, :, None],
                  cls_c=det.cls[class_order], score_c=det.score[class_order],
                  ascending=by_score[::-1],
                  tide_data=tide_data, tide_rows=tide_rows, gt_order=gt_order,
                  det_start=det_start, gt_start=gt_start, max_dets=MAX_DETS)
    index = SliceIndex(iou_thr=ev.iou_thr, thrs=thrs, eval_t=eval_t, n_classes=k)
    everything = Dimension("all", IMAGE, ["all"], np.ones((len(gt.image), 1), bool),
                           np.ones((len(det.score), 1), bool), np.ones((n_images, 1), bool))
    # dimensions in parallel: the compiled kernels release the GIL, as do numpy's sorts
    def score(d):
        return _score(d, with_tide=d is not everything, **common)

    if _THREADS > 1:
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            index._everything, *index.scored = list(pool.map(score, [everything, *dimensions]))
    else:
        index._everything, *index.scored = [score(d) for d in [everything, *dimensions]]
    return index


def _score(dim: Dimension, *, det, det_xywh, outcome, gt, k, thrs, eval_t, class_order, whole_status, ascending, cls_c, score_c,
           tide_data, tide_rows, gt_order, det_start, gt_start, max_dets, with_tide: bool = True) -> _Scored:
    kern = _kernels()
    gt_in = np.ascontiguousarray(dim.gt_in, dtype=np.bool_)
    det_in = np.ascontiguousarray(dim.det_in, dtype=np.bool_)
    no_member = np.zeros((len(det.score), 0), np.bool_)
    # every per-prediction array in class order, so that the kernel reads memory in order
    if dim.kind == IMAGE:  # whole images: the whole set's matching holds
        status, member = whole_status, det_in[class_order]
    elif dim.coco_area is not None and len(thrs) == len(COCO_IOU_THRS):  # matched with COCO's areas
        status, member = outcome.coco[class_order][:, :, dim.coco_area], no_member
    else:
        status = kern.match_slices(det_start, det.cls, det_xywh, gt_start, gt.cls[gt_order], gt.xywh[gt_order],
                                   gt.crowd[gt_order], gt_in[gt_order], det_in, thrs, max_dets)[class_order]
        member = no_member
    group_start, tp_pos, tp_score, counted = kern.true_positives(status, member, cls_c, score_c, k, eval_t)
    n_sl = len(dim.slices)
    regular = ~gt.crowd
    n_gt = np.zeros((n_sl, k), np.int64)
    for s in range(n_sl):
        n_gt[s] = np.bincount(gt.cls[regular & gt_in[:, s]], minlength=k)
    scores = score_c[ascending]                                          # ascending
    counted_scores = [scores[counted[ascending, s]] for s in range(n_sl)]
    tide = np.full((n_sl, len(ERROR_TYPES)), np.nan)
    if with_tide:
        tide = _dimension_tide(tide_data, tide_rows, outcome, det_in, gt_in, k)
    if dim.image_in is not None:
        images = [np.flatnonzero(dim.image_in[:, s]) for s in range(n_sl)]
    else:
        images = [np.unique(np.r_[gt.image[gt_in[:, s] & regular], det.image[det_in[:, s]]])
                  for s in range(n_sl)]
    return _Scored(dimension=dim, group_start=group_start, tp_pos=tp_pos, tp_score=tp_score, n_gt=n_gt,
                   counted_scores=counted_scores, tide=tide, images=images)


def _whole_status(outcome, thrs: np.ndarray) -> np.ndarray:
    """[N, T] COCO status of every prediction in the whole set (area all) at each of thrs."""
    status = outcome.coco[:, :, 0]
    if len(thrs) > status.shape[1]:  # iou_thr is not one of COCO's: its outcomes say the same
        at_iou = np.where(outcome.code == Outcome.TP.code, COCO_TP,
                          np.where(outcome.code == Outcome.IGNORED.code, COCO_IGNORED, COCO_FP))
        status = np.concatenate([status, at_iou[:, None].astype(np.uint8)], axis=1)
    return status


def _dimension_tide(data: TideInput, rows: np.ndarray, outcome, det_in, gt_in, k: int) -> np.ndarray:
    """TIDE dAP [S, len(ERROR_TYPES)] of every slice in one run: class c of slice s becomes class
    s*K + c, ground truth and predictions repeated once per slice they are in. A prediction is
    in the slice of the ground truth that decided its outcome, else in that of its own box."""
    n_sl, n_gt = gt_in.shape[1], len(data.gt_class)
    decided = data.det_gt >= 0
    member = det_in[rows]                                                # [E, S]
    member[decided] = gt_in[data.det_gt[decided]]
    sl, row = np.nonzero(member.T)                                       # by slice, then class order
    gt_class = np.where(gt_in.T & (data.gt_class >= 0)[None, :],
                        np.arange(n_sl)[:, None] * k + data.gt_class[None, :], -1).reshape(-1)
    composite = TideInput(
        det_class=sl * k + data.det_class[row], det_order=data.det_order[row], det_code=data.det_code[row],
        det_gt=np.where(data.det_gt[row] >= 0, sl * n_gt + data.det_gt[row], -1),
        gt_class=gt_class, gt_used=np.tile(data.gt_used, n_sl), n_classes=n_sl * k)
    dap, _ = tide_dap_by_group(composite, np.arange(n_sl * k) // k, n_sl)
    has_gt = np.bincount(gt_class[gt_class >= 0] // k, minlength=n_sl) > 0
    dap[~has_gt] = np.nan
    return dap
