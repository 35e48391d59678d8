"""Any ground truth and any predictions in, any format out: the one entry point the CLI and app share.

Ground truth: COCO json (core.dataset), YOLO dataset (core.yolo), Pascal VOC folder (core.voc).
Predictions: submission CSV (core.submission), COCO results json (core.results_json),
Ultralytics predictions.json (core.ultralytics_json), YOLO txt folder (core.yolo).
Each is recognised from the content and layout, not the name. Python pickles (MMDetection /
Detectron2 `--out`) are refused unread: unpickling runs code.
"""
from __future__ import annotations

import json
import mmap
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.boxes import xyxy_to_xywh
from core.problems import Problem, Severity, ValidationError
from core.tables import Dataset, Predictions

if TYPE_CHECKING:  # only named in annotations: a COCO json's load never needs these modules
    from core.data_roots import DataRoots
    from core.submission import ParsedSubmission

GT_COCO, GT_YOLO, GT_VOC = "coco", "yolo", "voc"
PRED_CSV, PRED_COCO, PRED_ULTRALYTICS, PRED_YOLO = "csv", "coco", "ultralytics", "yolo"
GT_WRITERS = (GT_COCO, GT_YOLO, GT_VOC)
PRED_WRITERS = (PRED_CSV, PRED_COCO, PRED_YOLO, PRED_ULTRALYTICS)

PICKLE_HELP = (
    "this is a Python pickle (MMDetection / Detectron2 `--out` file?). DetLens never unpickles a file: "
    "loading a pickle runs whatever code it holds. Write COCO json instead: MMDetection 3.x `tools/test.py "
    "CONFIG CHECKPOINT --cfg-options test_evaluator.format_only=True test_evaluator.outfile_prefix=./results` "
    "(gives results.bbox.json); Detectron2: COCOEvaluator(dataset, output_dir=DIR) writes "
    "DIR/coco_instances_results.json. Both load here as COCO results json.")


def _fail(message: str, path) -> ValidationError:
    return ValidationError([Problem(Severity.ERROR, message, file=str(path))], summary=f"{path}: unusable")


_ULTRALYTICS_HEAD = re.compile(rb'"file_name"\s*:|"image_id"\s*:\s*"')


def _looks_pickled(head: bytes) -> bool:
    """Pickle protocol 2+ starts with 0x80 then the protocol; torch.save files are zips holding data.pkl."""
    return (len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5) or (head[:2] == b"PK" and b".pkl" in head)


def _head(path: Path, size: int = 4096) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


# ---------------------------------------------------------------- ground truth


def detect_ground_truth_format(path: Path | str) -> str:
    """GT_COCO, GT_YOLO or GT_VOC from the path's content and layout; ValidationError when none fits."""
    path = Path(path)
    if not path.exists():
        return GT_COCO  # the COCO loader says the file cannot be read, with the reason
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            return GT_YOLO
        if _looks_pickled(_head(path)):
            raise _fail(PICKLE_HELP, path)
        return GT_COCO
    from core.voc import is_voc_dataset  # folders only (they import PIL for image sizes)
    from core.yolo import is_yolo_dataset

    if is_voc_dataset(path):
        return GT_VOC
    if is_yolo_dataset(path):
        return GT_YOLO
    raise _fail("is a folder that is neither a Pascal VOC dataset (Annotations/*.xml) nor a YOLO dataset "
                "(data.yaml, or images/ and labels/); for COCO give the json file itself", path)


def is_ground_truth(path: Path | str) -> bool:
    """True for a YOLO or VOC dataset, a data.yaml, or a COCO json with "images" (not predictions)."""
    path = Path(path)
    if path.is_dir():
        from core.voc import is_voc_dataset
        from core.yolo import is_yolo_dataset

        return is_voc_dataset(path) or is_yolo_dataset(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return True
    head = _head(path).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"{"):
        return False
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b'"images"') >= 0
    except (OSError, ValueError):
        return False


def dataset_folder(path: Path | str) -> Path:
    """A VOC `Annotations/` or YOLO `labels/` folder stands for the dataset folder holding it."""
    path = Path(path)
    if path.name in ("Annotations", "labels") and path.is_dir():
        from core.voc import is_voc_dataset
        from core.yolo import is_yolo_dataset

        if is_voc_dataset(path.parent) or is_yolo_dataset(path.parent):
            return path.parent
    return path


def ground_truth_fingerprint(path: Path | str) -> str:
    """sha256 over the names, sizes and mtimes of a YOLO / VOC dataset's files (a cache key that
    changes when any label, annotation or yaml changes); a plain file's own sha256 is the caller's."""
    import hashlib

    root = dataset_folder(path)
    digest = hashlib.sha256(str(Path(path).resolve()).encode())
    base = root if root.is_dir() else root.parent
    for sub in ("Annotations", "ImageSets", "JPEGImages", "images", "labels", ""):
        folder = base / sub
        if not folder.is_dir():
            continue
        files = folder.rglob("*") if sub else folder.glob("*.*")
        for file in sorted(f for f in files if f.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(base)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_ground_truth(path: Path | str, *, split: str | None = None, roots: DataRoots | None = None) -> Dataset:
    """Read a COCO json, YOLO dataset or VOC folder as a `Dataset` (format from detect_ground_truth_format).

    split: YOLO 'train'/'val'/'test'/'all', VOC an ImageSets/Main name; not used for COCO. A VOC
    `Annotations/` or YOLO `labels/` folder reads the dataset folder holding it. Files outside
    `roots` (the app's data roots, when restricted) are not opened.
    """
    path = dataset_folder(path)
    kind = detect_ground_truth_format(path)
    if kind == GT_YOLO:
        from core.yolo import read_yolo_dataset
        return read_yolo_dataset(path, split=split, roots=roots)
    if kind == GT_VOC:
        from core.voc import read_voc_dataset
        return read_voc_dataset(path, split=split, roots=roots)
    from core.dataset import load_coco
    return load_coco(path)


# ---------------------------------------------------------------- predictions


def detect_predictions_format(path: Path | str) -> str:
    """PRED_CSV, PRED_COCO, PRED_ULTRALYTICS or PRED_YOLO; ValidationError for a pickle or an empty folder."""
    from core.yolo import is_yolo_predictions

    path = Path(path)
    if path.is_dir():
        if is_yolo_predictions(path):
            return PRED_YOLO
        raise _fail("is a folder without *.txt prediction files (YOLO `save_txt` output); give a file or "
                    "the labels/ folder", path)
    return predictions_format_of(_head(path), path)


def predictions_format_of(head: bytes, name) -> str:
    """PRED_CSV, PRED_COCO or PRED_ULTRALYTICS from a file's first bytes; ValidationError for a pickle."""
    if _looks_pickled(head):
        raise _fail(PICKLE_HELP, name)
    start = head.lstrip(b"\xef\xbb\xbf").lstrip()[:1]
    if start not in (b"[", b"{"):
        return PRED_CSV
    # Ultralytics names images by file_name or a string stem; a COCO results json by numeric id.
    # Its first entries tell (the file is not parsed twice).
    return PRED_ULTRALYTICS if start == b"[" and _ULTRALYTICS_HEAD.search(head[:4096]) else PRED_COCO


def load_any_predictions(source, dataset: Dataset | None, *, name: str | None = None,
                         early: ParsedSubmission | None = None) -> Predictions:
    """Read predictions in any accepted format (a path, a YOLO txt folder, bytes or a file-like upload)
    as `Predictions` keyed by the dataset's file names.

    YOLO txt folders and Ultralytics json need `dataset` (images matched by stem, boxes
    normalised by its image sizes); a COCO results json needs it for its numeric ids.
    early: what read_predictions_early gave for this source (the reading is then finished).
    """
    from core.dataset import read_source

    if early is not None:
        return early.finish(dataset)
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        detect_predictions_format(source)  # a folder without txt files is a clear error
        _need_dataset(PRED_YOLO, dataset, source)
        from core.yolo import read_yolo_predictions
        return read_yolo_predictions(source, dataset=dataset)
    data, name, _ = read_source(source, name)
    kind = predictions_format_of(data[:4096], name)
    _need_dataset(kind, dataset, name)
    if kind == PRED_ULTRALYTICS:
        from core.ultralytics_json import read_ultralytics_json
        return read_ultralytics_json(data, dataset=dataset, name=name)
    from core.prediction_files import load_predictions
    return load_predictions(data, dataset=dataset, name=name)


def read_predictions_early(path: Path | str) -> ParsedSubmission | None:
    """The part of load_any_predictions(path, ...) that needs no ground truth, done now, so that it
    can run while the ground truth loads: a submission CSV's rows, numbers and box checks
    (core.submission.parse_submission; pass the result as `early`). None for other formats, read
    whole by load_any_predictions. Raises ValidationError as load_any_predictions would."""
    from core.dataset import read_source

    if Path(path).is_dir():
        return None
    data, name, _ = read_source(path, None)
    if predictions_format_of(data[:4096], name) != PRED_CSV:
        return None
    from core.submission import parse_submission

    return parse_submission(data, name=name)


def _need_dataset(kind: str, dataset: Dataset | None, name) -> None:
    if kind in (PRED_YOLO, PRED_ULTRALYTICS) and dataset is None:
        what = "YOLO txt predictions name" if kind == PRED_YOLO else "an Ultralytics predictions.json names"
        raise _fail(f"{what} images by file stem; give the ground truth (--gt) to match them", name)


# ---------------------------------------------------------------- writing


def write_ground_truth(dataset: Dataset, fmt: str, out: Path | str, *, images: str = "link") -> list[Problem]:
    """Write the dataset as COCO json (a file) or YOLO / VOC (a new folder), whole or not at all.

    images: 'link', 'copy' or 'none' (YOLO, VOC: where the image files go). Returns what was
    left out or changed (crowd boxes in YOLO, clipped boxes, images not found).
    """
    from core.format_tables import atomic_folder, check_new_folder
    from core.output_files import atomic_output, check_writable

    if fmt not in GT_WRITERS:
        raise ValueError(f"Invalid ground-truth format {fmt!r}. Only {', '.join(GT_WRITERS)} are supported.")
    if fmt == GT_COCO:
        with atomic_output(check_writable(out, "--out")) as handle:
            handle.write(json.dumps(coco_ground_truth(dataset)))
        return []
    out = check_new_folder(out, "--out")
    with atomic_folder(out) as folder:
        if fmt == GT_YOLO:
            from core.yolo import write_yolo_dataset
            return write_yolo_dataset(dataset, folder, images=images)
        from core.voc import write_voc_dataset
        return write_voc_dataset(dataset, folder, images=images)


def write_predictions(preds: Predictions, fmt: str, out: Path | str, *, dataset: Dataset | None) -> list[Problem]:
    """Write predictions as a submission CSV, COCO results json, Ultralytics json or YOLO txt folder.

    Everything but the CSV needs `dataset` (numeric ids, stems, image sizes). A CSV written with
    a dataset has a row for every dataset image (empty when it has no boxes), as submissions do.
    """
    from core.format_tables import atomic_folder, check_new_folder
    from core.output_files import atomic_output, check_writable

    if fmt not in PRED_WRITERS:
        raise ValueError(f"Invalid predictions format {fmt!r}. Only {', '.join(PRED_WRITERS)} are supported.")
    if fmt != PRED_CSV and dataset is None:
        raise ValueError(f"writing {fmt} predictions needs the ground truth (--gt): it names images by "
                         "id or stem and normalises by their size")
    if fmt == PRED_YOLO:
        from core.yolo import write_yolo_predictions
        out = check_new_folder(out, "--out")
        with atomic_folder(out) as folder:
            return write_yolo_predictions(preds, dataset, folder)
    with atomic_output(check_writable(out, "--out")) as handle:
        if fmt == PRED_CSV:
            from core.submission import write_submission
            write_submission(with_every_image(preds, dataset) if dataset is not None else preds, handle)
            return []
        if fmt == PRED_ULTRALYTICS:
            from core.ultralytics_json import write_ultralytics_json
            return write_ultralytics_json(preds, dataset, handle)
        entries, problems = coco_results(preds, dataset)
        handle.write(json.dumps(entries))
        return problems


def coco_ground_truth(dataset: Dataset) -> dict:
    """The dataset as a COCO ground-truth dict (bbox xywh as held, area, iscrowd)."""
    images = [{"id": int(r.id), "file_name": str(r.file_name), "width": _plain(r.width), "height": _plain(r.height)}
              for r in dataset.images.itertuples(index=False)]
    ann = dataset.annotations
    annotations = [{"id": int(r.id), "image_id": int(r.image_id), "category_id": int(r.category_id),
                    "bbox": [float(r.x), float(r.y), float(r.w), float(r.h)], "area": float(r.area),
                    "iscrowd": int(r.iscrowd)} for r in ann.itertuples(index=False)]
    categories = [{"id": int(r.id), "name": str(r.name)} for r in dataset.categories.itertuples(index=False)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_results(preds: Predictions, dataset: Dataset) -> tuple[list[dict], list[Problem]]:
    """COCO results entries (the dataset's numeric image ids, bbox xywh); boxes on unknown images left out."""
    image_index = preds.image_index_in(dataset)
    keep = image_index >= 0
    problems = []
    if (~keep).any():
        problems.append(Problem(Severity.WARNING, f"{int((~keep).sum())} box(es) on images the ground truth "
                                "lacks were left out (a COCO results json names images by its ids)",
                                file=preds.source))
    ids = dataset.images["id"].to_numpy()[image_index[keep]]
    xywh = xyxy_to_xywh(preds.boxes_xyxy[keep]).tolist()
    entries = [{"image_id": int(i), "category_id": int(c), "bbox": b, "score": float(s)}
               for i, c, b, s in zip(ids.tolist(), preds.labels[keep].tolist(), xywh, preds.scores[keep].tolist())]
    return entries, problems


def with_every_image(preds: Predictions, dataset: Dataset) -> Predictions:
    """The same boxes over every dataset image in dataset order (no boxes where the file had none),
    then the images the dataset lacks."""
    keys = np.asarray(preds.image_keys, dtype=object)
    file_names = dataset.images["file_name"].to_numpy(dtype=object)
    unknown = keys[dataset.image_index_of_file(keys) < 0]
    all_keys = np.concatenate([file_names, unknown])
    new_pos = pd.Index(all_keys).get_indexer(pd.Index(keys)).astype(np.int64)           # [R] old -> new
    lines = np.zeros(len(all_keys), np.int64)
    lines[new_pos] = preds.lines
    return Predictions(image_keys=all_keys, image_pos=new_pos[preds.image_pos], labels=preds.labels,
                       scores=preds.scores, boxes_xyxy=preds.boxes_xyxy, lines=lines, problems=preds.problems,
                       source=preds.source)


def _plain(value):
    return value.item() if hasattr(value, "item") else value
