"""What the YOLO and Pascal VOC readers and writers share: tables from rows, image sizes, folders.

Inside DetLens boxes are absolute-pixel xyxy; these formats are converted at entry and exit only.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from core.data_roots import HOW_TO_ADD, DataRoots
from core.output_files import OutputError
from core.problems import Problem, Severity
from core.tables import ANNOTATION_COLUMNS, CATEGORY_COLUMNS, IMAGE_COLUMNS, Dataset, Predictions

# Ultralytics' IMG_FORMATS (ultralytics/data/utils.py), the images a YOLO dataset may hold
IMAGE_SUFFIXES = (".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic")
# Text formats carry decimals; rebuilding pixels from them (cx * W - w * W / 2, x + w) adds float
# noise of ~1e-13 px. Rounding to 1e-6 px removes it, so a round trip gives back the exact numbers.
COORDINATE_DECIMALS = 6
MAX_LISTED = 50                    # problems of one kind listed one by one


def snap(values) -> np.ndarray:
    """Pixel coordinates rounded to COORDINATE_DECIMALS (removes the float noise of a conversion)."""
    return np.round(np.asarray(values, dtype=np.float64), COORDINATE_DECIMALS)


def format_number(value: float) -> str:
    """Shortest text that reads back as the same float; whole numbers without '.0'."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def image_ids_for(file_names: list[str]) -> np.ndarray:
    """Numeric image ids: the file stems when all are unique integers (Ultralytics' COCO ids), else 0..N-1."""
    stems = [Path(f).stem for f in file_names]
    if stems and all(s.isdigit() for s in stems) and len(set(map(int, stems))) == len(stems):
        return np.array([int(s) for s in stems], dtype=np.int64)
    return np.arange(len(file_names), dtype=np.int64)


def build_dataset(images: list[tuple[str, int, int]], boxes: list[tuple[int, int, float, float, float, float, int]],
                  names: list[str], *, problems: list[Problem], source: str, root: Path | None,
                  category_ids: list[int] | None = None, upright_pixels: bool = False) -> Dataset:
    """A Dataset from (file_name, width, height) rows and (image_row, category_id, x1, y1, x2, y2, iscrowd) boxes.

    Boxes are absolute xyxy pixels; annotation ids are 1..A in the given order (never 0: pycocotools
    cannot match id 0). Category ids default to 0..len(names)-1.
    """
    file_names = [row[0] for row in images]
    image_ids = image_ids_for(file_names)
    image_table = pd.DataFrame({
        "id": image_ids, "file_name": pd.Series(file_names, dtype=object),
        "width": np.array([row[1] for row in images], dtype=np.int64),
        "height": np.array([row[2] for row in images], dtype=np.int64),
    }, columns=IMAGE_COLUMNS)
    ids = list(range(len(names))) if category_ids is None else list(category_ids)
    categories = pd.DataFrame({"id": np.array(ids, dtype=np.int64), "name": pd.Series(names, dtype=object)},
                              columns=CATEGORY_COLUMNS).sort_values("id", kind="stable").reset_index(drop=True)
    rows = np.array([b[0] for b in boxes], dtype=np.int64)
    xyxy = snap(np.array([b[2:6] for b in boxes], dtype=np.float64).reshape(-1, 4))   # [A,4]
    wh = snap(xyxy[:, 2:] - xyxy[:, :2])                                                 # [A,2]
    annotations = pd.DataFrame({
        "id": np.arange(1, len(boxes) + 1, dtype=np.int64), "image_index": rows, "image_id": image_ids[rows],
        "category_id": np.array([b[1] for b in boxes], dtype=np.int64),
        "x": xyxy[:, 0], "y": xyxy[:, 1], "w": wh[:, 0], "h": wh[:, 1],
        "x1": xyxy[:, 0], "y1": xyxy[:, 1], "x2": xyxy[:, 2], "y2": xyxy[:, 3],
        "area": wh[:, 0] * wh[:, 1],   # no masks in these formats: COCO's area of a plain box
        "iscrowd": np.array([b[6] for b in boxes], dtype=np.int64),
    }, columns=ANNOTATION_COLUMNS)
    return Dataset(images=image_table, annotations=annotations, categories=categories, problems=problems,
                   source=source, root=root, upright_pixels=upright_pixels)


def stem_index(dataset: Dataset) -> tuple[dict[str, int], set[str]]:
    """({file stem: image index} for stems naming one image, the stems several images share)."""
    stems = pd.Series([Path(str(f)).stem for f in dataset.images["file_name"]], dtype=object)
    shared = set(stems[stems.duplicated(keep=False)])
    return {s: i for i, s in enumerate(stems) if s not in shared}, shared


def predictions_from_rows(dataset: Dataset, image_index: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                          boxes_xyxy: np.ndarray, problems: list[Problem], source: str) -> Predictions:
    """Predictions keyed by the dataset's file names, images in order of first appearance, boxes grouped."""
    first_seen = pd.unique(image_index)
    image_pos = pd.Index(first_seen).get_indexer(image_index).astype(np.int64)
    order = np.argsort(image_pos, kind="stable")
    return Predictions(
        image_keys=dataset.images["file_name"].to_numpy(dtype=object)[first_seen],
        image_pos=image_pos[order], labels=np.asarray(labels, np.int64)[order],
        scores=np.asarray(scores, np.float64)[order], boxes_xyxy=np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)[order],
        lines=np.zeros(len(first_seen), dtype=np.int64), problems=problems, source=source)


def class_index_of(dataset: Dataset, labels: np.ndarray) -> np.ndarray:
    """[N] 0-based class index (position among the sorted category ids) of each label; -1 if unknown."""
    ids = dataset.category_ids
    pos = np.clip(np.searchsorted(ids, labels), 0, max(len(ids) - 1, 0))
    found = ids[pos] == labels if len(ids) else np.zeros(len(labels), dtype=bool)
    return np.where(found, pos, -1).astype(np.int64)


def capped(problems: list[Problem], severity: Severity, items: list[tuple[str, int | None, str]],
           what: str) -> None:
    """One Problem per (file, line, message), at most MAX_LISTED, then one '... and N more' line."""
    for file, line, message in items[:MAX_LISTED]:
        problems.append(Problem(severity, message, file=file, line=line))
    if len(items) > MAX_LISTED:
        file, line, message = items[MAX_LISTED]
        problems.append(Problem(severity, f"... and {len(items) - MAX_LISTED} more {what} like "
                                f"{file}:{line}: {message}", file=file))


def inside_roots(paths: list[Path], roots: DataRoots | None, problems: list[Problem], what: str,
                 shown_from: Path) -> list[Path]:
    """The paths `roots` allows to be opened (all of them when unrestricted); one ERROR for the
    rest, naming the first and the setting that allows it (a data.yaml may point anywhere)."""
    if roots is None or not roots.restricted:
        return paths
    allowed = [p for p in paths if roots.allows(p)]
    refused = [p for p in paths if not roots.allows(p)] if len(allowed) < len(paths) else []
    if refused:
        try:
            first = refused[0].relative_to(shown_from).as_posix()
        except ValueError:
            first = str(refused[0])
        problems.append(Problem(Severity.ERROR, f"{len(refused)} {what} resolve outside DetLens' data "
                                f"roots and are left out unread (first: {first}); to allow them, "
                                f"{HOW_TO_ADD}", file=first))
    return allowed


# ---------------------------------------------------------------- writing folders whole


def check_new_folder(path: Path | str, option: str) -> Path:
    """`path` as a Path when a folder can be written there: absent or empty, parent writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file; give a folder path for this format")
    if path.is_dir() and any(path.iterdir()):
        raise OutputError(f"{option} {path} exists and is not empty; give a new folder (nothing is overwritten)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot create {path.parent}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: the folder {path.parent} is not writable; give another path")
    return path


@contextlib.contextmanager
def atomic_folder(path: Path | str):
    """A temporary sibling folder, renamed onto `path` (absent or empty) only if the block succeeds."""
    path = Path(path)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part"))
    try:
        yield temporary
        os.chmod(temporary, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual mode
        if path.is_dir():
            path.rmdir()  # empty (check_new_folder); a file appearing meanwhile makes this fail, not vanish
        os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def place_image(source: Path | None, target: Path, mode: str) -> bool:
    """Put the image at target: 'link' (symlink, copy where links fail), 'copy' or 'none'; True if placed."""
    if mode == "none" or source is None or not source.is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "link":
        try:
            target.symlink_to(source.resolve())
            return True
        except OSError:
            pass  # e.g. a file system without symlinks: copy instead
    shutil.copy2(source, target)
    return True
