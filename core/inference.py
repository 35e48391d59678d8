"""Run a detection checkpoint: load it safely, predict on images, and batch-predict a dataset.

A checkpoint is a pickle, so it is only ever read with `torch.load(weights_only=True)`: plain
tensors and containers load, anything that would import and call code is refused.
Model labels follow the torchvision baseline (see core.models): label j (1..K) is the j-th
category in id order; label 0 (background) never reaches the caller.
torch is imported inside functions only.
"""
from __future__ import annotations

import io
import pickletools
import re
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from core import models
from core.data_roots import DataRoots
from core.images import contained_path, read_image, size_mismatch
from core.problems import Problem, Severity
from core.tables import Dataset, Predictions

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

# Where a training script may have put the state_dict inside a checkpoint dict, in the order tried.
STATE_DICT_KEYS = ("model", "state_dict", "model_state_dict")
# Wrappers that prefix every key: DataParallel/DDP ("module.") and torch.compile ("_orig_mod.").
KEY_PREFIXES = ("module.", "_orig_mod.")
CHECKPOINT_FORMAT = "detlens-checkpoint/1"
DEFAULT_SCORE_FLOOR = 0.01  # boxes below it are dropped inside the model

ProgressFn = Callable[[int, int], None]  # (images done, images in total)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message saying what is wrong and what to do."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds: its weights and whatever it records about itself.

    meta: the checkpoint dict's other entries DetLens understands (arch, category_ids,
    category_names, input_size); empty for a bare state_dict.
    """

    state_dict: dict[str, Any]
    meta: dict[str, Any]
    source: str


@dataclass
class Detector:
    """A model ready to predict: in eval mode on `device`, with its label -> category mapping.

    category_ids: [K] dataset category id of model labels 1..K; category_names alike.
    """

    model: "nn.Module"
    arch: str
    category_ids: np.ndarray
    category_names: list[str]
    device: str
    source: str
    input_size: int
    warnings: list[str] = field(default_factory=list)
    train_info: dict = field(default_factory=dict)  # what the checkpoint records of its training

    @property
    def names_by_id(self) -> dict[int, str]:
        return dict(zip(self.category_ids.tolist(), self.category_names))


@dataclass
class ImageDetections:
    """One image's detections: boxes_xyxy [N, 4] absolute pixels, scores [N], category ids [N]."""

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    width: int
    height: int
    elapsed_s: float = 0.0

    def above(self, score_thr: float) -> "ImageDetections":
        keep = self.scores >= score_thr
        return ImageDetections(self.boxes_xyxy[keep].reshape(-1, 4), self.scores[keep],
                               self.labels[keep], self.width, self.height, self.elapsed_s)


def pick_device() -> str:
    """"cuda" when a CUDA GPU is usable, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# --- reading checkpoint files ------------------------------------------------------------------

def read_checkpoint(source: str | Path | bytes, *, name: str | None = None) -> Checkpoint:
    """Read a checkpoint file (path or uploaded bytes) without executing any of it.

    Accepts a bare state_dict or a dict holding one under STATE_DICT_KEYS; strips KEY_PREFIXES.
    Raises CheckpointError for a missing, empty, corrupt, unsafe or weightless file.
    """
    import torch

    name = name or (Path(source).name if not isinstance(source, bytes) else "<upload>")
    data = _read_bytes(source, name)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... here
        raise CheckpointError(_load_failure_message(data, exc, name)) from None
    state_dict, meta = _split_checkpoint(obj, name)
    return Checkpoint(state_dict=_strip_prefixes(state_dict), meta=meta, source=name)


def _read_bytes(source: str | Path | bytes, name: str) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if path.is_dir():
            raise CheckpointError(f"{path}: is a folder; give the checkpoint file in it (.pt/.pth)")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"{path}: no such checkpoint file; check the path") from None
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot read the checkpoint: {exc.strerror or exc}") from None
    if not data:
        raise CheckpointError(f"{name}: the file is empty, not a checkpoint")
    return data


def _load_failure_message(data: bytes, exc: Exception, name: str) -> str:
    """Tell an unsafe pickle (would run code) from a file that is simply not a checkpoint."""
    unsafe = _pickle_globals(data)
    if unsafe:
        shown = ", ".join(unsafe[:5])
        return (
            f"{name}: refused for safety: loading it would import and call {shown}, so it could run "
            "code on this machine. DetLens only loads plain weights (torch.load with "
            "weights_only=True); a whole pickled model (torch.save(model)) is refused for the same "
            "reason. If you trust the file, re-save only its weights: "
            "torch.save(model.state_dict(), 'weights.pt')."
        )
    # Say what the file is not, never quote it: torch's messages can carry the file's bytes
    # ("invalid load key, 'x'"), which would leak a file the user may not read otherwise.
    zip_reason = re.search(r"failed reading zip archive: ([a-z ]{3,60})", str(exc))
    if zip_reason or data[:4] == b"PK\x03\x04":
        what = ("a damaged or truncated zip archive, the format of torch.save"
                + (f" (failed reading zip archive: {zip_reason.group(1).strip()})" if zip_reason else ""))
    elif data[:1] == b"\x80":
        what = "a pickle that does not load as plain weights (corrupt, truncated, or another format)"
    else:
        what = "neither a torch.save zip archive nor a pickle: another kind of file"
    return (f"{name}: not a readable PyTorch checkpoint: it is {what}. Give the .pt/.pth file "
            "written by torch.save")


def _pickle_globals(data: bytes) -> list[str]:
    """Dotted names a pickle would import while loading, other than torch's own (parsed, not run)."""
    if zipfile.is_zipfile(io.BytesIO(data)):  # torch's zip format: the pickle is */data.pkl
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                data = archive.read(member) if member else b""
        except (zipfile.BadZipFile, OSError, KeyError):
            return []
    found, strings = [], []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(arg)
            elif opcode.name == "GLOBAL":  # arg is "module name"
                found.append(arg.replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # not a pickle (or a broken one): nothing it could import
        pass
    safe_roots = ("torch.", "collections.OrderedDict", "builtins.set", "builtins.frozenset")
    return [g for g in dict.fromkeys(found) if not g.startswith(safe_roots)]


def _is_tensor_dict(obj: Any) -> bool:
    import torch

    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _split_checkpoint(obj: Any, name: str) -> tuple[dict, dict]:
    if _is_tensor_dict(obj):
        return dict(obj), {}
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            if _is_tensor_dict(obj.get(key)):
                meta_keys = ("arch", "category_ids", "category_names", "input_size", "format", "train")
                return dict(obj[key]), {k: obj[k] for k in meta_keys if k in obj}
        top = ", ".join(repr(k) for k in list(obj)[:10]) or "none"
        raise CheckpointError(
            f"{name}: holds no model weights: expected a state_dict (name -> tensor) or a dict with "
            f"one under {' / '.join(repr(k) for k in STATE_DICT_KEYS)}; its top-level keys are {top}"
        )
    raise CheckpointError(
        f"{name}: holds a {type(obj).__name__}, not model weights (a state_dict of tensors)")


def _strip_prefixes(state_dict: dict) -> dict:
    for prefix in KEY_PREFIXES:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


# --- matching a checkpoint to an architecture and a category list ------------------------------

def _ignorable(key: str) -> bool:
    # FrozenBatchNorm2d (torchvision's layer when trained from pretrained weights) has no
    # num_batches_tracked; our from-scratch builds use BatchNorm2d, which does. Same inference.
    return key.endswith("num_batches_tracked")


def _resolve_arch(ckpt: Checkpoint, arch: str | None) -> str:
    if arch:
        models.get_architecture(arch)  # ValueError listing the known ones
        return arch
    recorded = ckpt.meta.get("arch")
    if isinstance(recorded, str) and recorded in models.ARCHITECTURES:
        return recorded
    keys = set(ckpt.state_dict)
    exact = [n for n in models.ARCHITECTURES
             if {k for k in models.state_dict_shapes(n) if not _ignorable(k)}
             == {k for k in keys if not _ignorable(k)}]
    if len(exact) == 1:
        return exact[0]
    if exact:
        raise CheckpointError(
            f"{ckpt.source}: the weights fit several architectures ({', '.join(exact)}); "
            "choose one (--arch)")
    guesses, overlap = models.guess_architecture(keys)
    hint = f"; the closest is {' or '.join(guesses)} ({overlap:.0%} of keys shared)" if overlap > 0.2 else ""
    raise CheckpointError(
        f"{ckpt.source}: cannot tell the architecture: it records none and its keys fit no "
        f"known architecture{hint}. Choose one (--arch): {', '.join(models.ARCHITECTURES)}")


def _check_keys(ckpt: Checkpoint, arch: str) -> None:
    """Raise CheckpointError naming the missing and unexpected keys when they are not arch's."""
    expected = models.state_dict_shapes(arch)
    got = {k: tuple(v.shape) for k, v in ckpt.state_dict.items()}
    missing = sorted(k for k in expected.keys() - got.keys() if not _ignorable(k))
    unexpected = sorted(k for k in got.keys() - expected.keys() if not _ignorable(k))
    if missing or unexpected:
        guesses, overlap = models.guess_architecture(got)
        recorded = ckpt.meta.get("arch")
        if recorded:
            hint = f" The checkpoint says it is {recorded}."
        elif guesses and arch not in guesses and overlap > 0.5:
            hint = f" It looks like {' or '.join(guesses)} ({overlap:.0%} of keys shared)."
        else:
            hint = ""
        raise CheckpointError(
            f"{ckpt.source}: not a {arch} checkpoint: {_some(missing)} missing, "
            f"{_some(unexpected)} unexpected.{hint} Choose the architecture it was trained with.")


def _check_fits(ckpt: Checkpoint, arch: str, num_classes: int) -> None:
    """Raise CheckpointError naming missing/unexpected keys, the class count or shape mismatches."""
    _check_keys(ckpt, arch)
    expected = models.state_dict_shapes(arch, num_classes)
    got = {k: tuple(v.shape) for k, v in ckpt.state_dict.items()}
    have = models.num_classes_in(arch, got)
    if have is not None and have != num_classes:
        hint = (" It looks trained without a background class; DetLens follows the torchvision "
                "baseline: num_classes = categories + 1." if have == num_classes - 1 else "")
        raise CheckpointError(
            f"{ckpt.source}: wrong class count: the checkpoint has {have} classes "
            f"({have - 1} + background), the dataset needs {num_classes} "
            f"({num_classes - 1} categories + background).{hint} Was it trained on another dataset?")
    wrong = [f"{k} {got[k]} vs {expected[k]}" for k in sorted(expected.keys() & got.keys())
             if got[k] != expected[k]]
    if wrong:
        raise CheckpointError(
            f"{ckpt.source}: weights do not fit {arch}: {len(wrong)} tensor(s) of another shape "
            f"(checkpoint vs model), e.g. {'; '.join(wrong[:3])}")


def _some(keys: list[str]) -> str:
    """'N key(s) (group: count, ...)', grouped by the first two name parts (the module)."""
    if not keys:
        return "0 keys"
    groups: dict[str, int] = {}
    for key in keys:
        group = ".".join(key.split(".")[:2])
        groups[group] = groups.get(group, 0) + 1
    shown = ", ".join(f"{g}.* x{n}" for g, n in list(groups.items())[:4])
    return f"{len(keys)} key(s) ({shown}{', ...' if len(groups) > 4 else ''})"


def _categories_for(ckpt: Checkpoint, arch: str, categories: pd.DataFrame | None,
                    warnings: list[str]) -> tuple[np.ndarray, list[str]]:
    """Category ids/names for model labels 1..K: the dataset's, else the checkpoint's own."""
    recorded_ids = ckpt.meta.get("category_ids")
    recorded_names = ckpt.meta.get("category_names")
    if categories is not None and len(categories):
        cats = categories.sort_values("id")
        ids = cats["id"].to_numpy(np.int64)
        names = [str(n) for n in cats["name"]]
        if recorded_names and len(recorded_names) == len(names) and list(recorded_names) != names:
            warnings.append(
                f"{ckpt.source} was trained on categories {list(recorded_names)}, the dataset has "
                f"{names}; labels are mapped by category order")
        return ids, names
    if recorded_ids is not None:
        ids = np.asarray(recorded_ids, dtype=np.int64)
        names = [str(n) for n in (recorded_names or ids.tolist())]
        return ids, names
    have = models.num_classes_in(arch, {k: tuple(v.shape) for k, v in ckpt.state_dict.items()})
    if have is None:
        raise CheckpointError(f"{ckpt.source}: cannot read its class count; give the dataset's categories")
    # The baseline's convention without a dataset: category ids 0..K-1 shifted by one.
    warnings.append(f"{ckpt.source} records no categories: model label j is taken as category id j-1")
    ids = np.arange(have - 1, dtype=np.int64)
    return ids, [f"class {i}" for i in ids]


def load_detector(
    source: str | Path | bytes | Checkpoint,
    *,
    arch: str | None = None,
    categories: pd.DataFrame | None = None,
    device: str | None = None,
    input_size: int | None = None,
    score_floor: float = DEFAULT_SCORE_FLOOR,
    name: str | None = None,
) -> Detector:
    """Load a checkpoint into a Detector, checking it fits `arch` and the dataset's categories.

    arch: None = the architecture the checkpoint records, or the one its keys fit exactly.
    categories: the dataset's categories table (id, name); None = the checkpoint's own.
    input_size: shorter-side resize (None = recorded in the checkpoint, else the arch's default).
    Raises CheckpointError (a ValueError) with a message naming what does not match.
    """
    ckpt = source if isinstance(source, Checkpoint) else read_checkpoint(source, name=name)
    arch = _resolve_arch(ckpt, arch)
    _check_keys(ckpt, arch)
    warnings: list[str] = []
    ids, names = _categories_for(ckpt, arch, categories, warnings)
    num_classes = len(ids) + 1
    _check_fits(ckpt, arch, num_classes)

    size = int(input_size or ckpt.meta.get("input_size") or models.get_architecture(arch).default_size)
    model = models.build_model(arch, num_classes, min_size=size, score_thresh=score_floor)
    # strict=False only so that num_batches_tracked may be absent; everything else was checked.
    result = model.load_state_dict(ckpt.state_dict, strict=False)
    leftover = [k for k in [*result.missing_keys, *result.unexpected_keys] if not _ignorable(k)]
    if leftover:  # pragma: no cover - _check_fits makes this unreachable
        raise CheckpointError(f"{ckpt.source}: keys do not fit {arch}: {leftover[:5]}")
    device = device or pick_device()
    model.to(device).eval()
    return Detector(model=model, arch=arch, category_ids=ids, category_names=names,
                    device=device, source=ckpt.source, input_size=size, warnings=warnings,
                    train_info=train if isinstance(train := ckpt.meta.get("train"), dict) else {})


def load_pretrained_detector(arch: str, *, device: str | None = None,
                             score_floor: float = DEFAULT_SCORE_FLOOR) -> Detector:
    """torchvision's COCO-trained `arch` (91 COCO labels); RuntimeError "unavailable offline: ..."."""
    model, names = models.build_pretrained_model(arch, score_thresh=score_floor)
    device = device or pick_device()
    model.to(device).eval()
    # COCO weights use the COCO category ids themselves as labels (1..90, some "N/A").
    ids = np.arange(1, len(names), dtype=np.int64)
    return Detector(model=model, arch=arch, category_ids=ids, category_names=names[1:],
                    device=device, source=f"torchvision COCO weights ({arch})",
                    input_size=models.get_architecture(arch).default_size,
                    warnings=["COCO classes, not this dataset's: its predictions cannot be scored here"])


# --- predicting ----------------------------------------------------------------------------------

def _to_tensor(image: Image.Image | np.ndarray, device: str):
    import torch

    array = np.array(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got an array of shape {array.shape}")
    tensor = torch.from_numpy(array).permute(2, 0, 1)  # [3,H,W] uint8
    return tensor.to(device).float().div_(255.0)


def detect(detector: Detector, images: Sequence[Image.Image | np.ndarray]) -> list[ImageDetections]:
    """Run the model on a batch of RGB images; boxes in each image's own pixels, labels as category ids."""
    import torch

    tensors = [_to_tensor(image, detector.device) for image in images]
    start = time.perf_counter()
    with torch.inference_mode():
        outputs = detector.model(tensors)
    if detector.device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / max(len(tensors), 1)
    return [_to_detections(out, tensor.shape[2], tensor.shape[1], detector.category_ids, elapsed)
            for out, tensor in zip(outputs, tensors)]


def _to_detections(output: dict, width: int, height: int, category_ids: np.ndarray,
                   elapsed: float) -> ImageDetections:
    # float32 outputs carry ~7 digits: 0.01 px and 1e-6 of score keep the CSV short, lose nothing
    boxes = output["boxes"].detach().cpu().double().numpy().reshape(-1, 4).round(2)
    scores = output["scores"].detach().cpu().double().numpy().round(6)
    labels = output["labels"].detach().cpu().numpy().astype(np.int64)
    # Sigmoid heads (RetinaNet, FCOS) also score label 0, the background slot: never a category.
    # Boxes clipped to the image edge can collapse to zero width; a submission forbids them.
    keep = ((labels >= 1) & (labels <= len(category_ids))
            & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
    order = np.argsort(-scores[keep], kind="stable")
    return ImageDetections(
        boxes_xyxy=boxes[keep][order].reshape(-1, 4), scores=scores[keep][order],
        labels=category_ids[labels[keep][order] - 1], width=int(width), height=int(height),
        elapsed_s=elapsed)


def predict_image(detector: Detector, image: Image.Image | np.ndarray | str | Path | bytes, *,
                  score_thr: float = 0.0) -> ImageDetections:
    """Detections on one image (a PIL image, an RGB array, a path or bytes) at or above score_thr."""
    if isinstance(image, (str, Path, bytes)):
        image, _ = read_image(image)
    return detect(detector, [image])[0].above(score_thr)


def dataset_image_items(dataset: Dataset, *, limit: int | None = None, roots: DataRoots | None = None
                        ) -> tuple[list[tuple[str, Path]], list[Problem]]:
    """(image key = file_name, path) for each dataset image, in dataset order, plus problems.

    A file_name refused by core.images.contained_path (absolute, a `..` escape, a target outside
    restricted `roots`) is a problem, not read.
    """
    if dataset.root is None:
        raise ValueError(f"{dataset.source}: no image folder (an uploaded json): give the dataset folder")
    items, problems = [], []
    for file_name in dataset.images["file_name"].tolist()[:limit]:
        path, refusal = contained_path(dataset.root, file_name, roots)
        if path is None:
            problems.append(Problem(Severity.ERROR, refusal, file=dataset.source, image_id=file_name))
            continue
        items.append((str(file_name), path))
    return items, problems


def expected_image_sizes(dataset: Dataset) -> dict[str, tuple[float, float]]:
    """file_name -> (width, height) as the json records them, for predict_images' size check."""
    images = dataset.images
    return dict(zip(images["file_name"].astype(str),
                    zip(images["width"].to_numpy(np.float64), images["height"].to_numpy(np.float64))))


def predict_images(
    detector: Detector,
    items: Sequence[tuple[str, str | Path]],
    *,
    score_thr: float = 0.05,
    batch_size: int = 1,
    progress: ProgressFn | None = None,
    source: str = "<inference>",
    expected_sizes: dict[str, tuple[float, float]] | None = None,
    upright: bool = False,
) -> Predictions:
    """Predictions (boxes >= score_thr) for images given as (image key, path), in that order.

    upright: read the images EXIF-upright (Dataset.upright_pixels: a YOLO dataset's grid).
    An image that cannot be read (or is over the pixel limit) becomes an ERROR problem and is
    left out of image_keys; the others still run. The reader's notices (EXIF rotation ignored,
    16-bit scaled) and a size other than expected_sizes[key] (the json's) are WARNING problems.
    progress(done, total) is called after each batch.
    """
    keys, detections, problems = [], [], []
    step = max(batch_size, 1)
    total = len(items)
    for start in range(0, total, step):
        batch, batch_keys = [], []
        for key, path in items[start:start + step]:
            try:
                image, notices = read_image(path, name=str(path), upright=upright)
            except ValueError as exc:  # the message starts with the path, which Problem shows
                problems.append(Problem(Severity.ERROR, str(exc).removeprefix(f"{path}: "),
                                        file=str(path), image_id=key))
                continue
            mismatch = size_mismatch(str(path), image.size, (expected_sizes or {}).get(key))
            problems += [Problem(Severity.WARNING, notice.removeprefix(f"{path}: "), file=str(path),
                                 image_id=key) for notice in [*notices, mismatch] if notice]
            batch.append(image)
            batch_keys.append(key)
        if batch:
            keys += batch_keys
            detections += [d.above(score_thr) for d in detect(detector, batch)]
        if progress is not None:
            progress(min(start + step, total), total)
    preds = to_predictions(keys, detections, source=source)
    preds.problems = problems
    return preds


def to_predictions(image_keys: Sequence[str], detections: Sequence[ImageDetections], *,
                   source: str = "<inference>") -> Predictions:
    """Per-image detections as one Predictions table (image i of image_keys has detections[i])."""
    counts = [len(d.scores) for d in detections]
    return Predictions(
        image_keys=np.array(list(image_keys), dtype=object),
        image_pos=np.repeat(np.arange(len(counts), dtype=np.int64), counts),
        labels=np.concatenate([d.labels for d in detections]).astype(np.int64) if counts else np.zeros(0, np.int64),
        scores=np.concatenate([d.scores for d in detections]) if counts else np.zeros(0),
        boxes_xyxy=(np.concatenate([d.boxes_xyxy for d in detections]).reshape(-1, 4) if counts
                    else np.zeros((0, 4))),
        lines=np.zeros(len(counts), np.int64), source=source,
    )
