"""Finding the input files in a dataset folder: COCO ground truths and prediction files.

The kind of a json is read from its content (a COCO ground truth is an object with "images";
a COCO results file is a list, or an object with "annotations" but no "images"), not its name.
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path

PREDICTION_SUFFIXES = (".csv", ".json")
_SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}


@dataclass
class FolderScan:
    """Input files found in a dataset folder, as paths relative to it, sorted."""

    root: Path
    ground_truths: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    problem: str | None = None   # why the folder cannot be used, if it cannot


def json_kind(path: Path) -> str:
    """'gt' (COCO ground truth), 'results' (COCO results) or 'unknown', from the content."""
    try:
        with open(path, "rb") as handle:
            size = Path(path).stat().st_size
            if size == 0:
                return "unknown"
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
                if head.startswith(b"["):
                    return "results"
                if not head.startswith(b"{"):
                    return "unknown"
                if data.find(b'"images"') >= 0:
                    return "gt"
                if data.find(b'"annotations"') >= 0:
                    return "results"
                return "unknown"
    except OSError:
        return "unknown"


def scan_folder(root: Path | str, *, depth: int = 1) -> FolderScan:
    """Ground-truth jsons and prediction files (CSV, results json) in root and `depth` levels below."""
    root = Path(root).expanduser()
    if not root.exists():
        return FolderScan(root, problem=f"folder {root} does not exist")
    if not root.is_dir():
        return FolderScan(root, problem=f"{root} is a file, not a folder; give the dataset folder")
    root = root.resolve()
    scan = FolderScan(root)
    folders = [root]
    for _ in range(depth):
        folders += [d for f in folders for d in sorted(f.iterdir())
                    if d.is_dir() and d.name not in _SKIP_DIRS and not d.name.startswith(".")
                    and d not in folders]
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix.lower() not in PREDICTION_SUFFIXES:
                continue
            relative = path.relative_to(root).as_posix()
            if path.suffix.lower() == ".csv":
                scan.predictions.append(relative)
            elif (kind := json_kind(path)) == "gt":
                scan.ground_truths.append(relative)
            elif kind == "results":
                scan.predictions.append(relative)
    return scan


def default_ground_truth(candidates: list[str]) -> str | None:
    """train.json when present (the competition's name), else the first candidate."""
    for name in candidates:
        if Path(name).name == "train.json":
            return name
    return candidates[0] if candidates else None


def first_csv_image_id(path: Path, limit: int = 1 << 16) -> str | None:
    """The image_id of a submission CSV's first data row, read from the file's head only."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = head.splitlines()
    if len(lines) < 2:
        return None
    columns = [c.strip() for c in lines[0].split(",")]
    if "image_id" not in columns:
        return None
    position = columns.index("image_id")
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) == len(columns):
            return cells[position].strip()
    return None


def default_predictions(root: Path, candidates: list[str], gt_file_names) -> str | None:
    """The first CSV whose first image_id is an image of the ground truth, else the first file."""
    known = set(gt_file_names)
    for name in candidates:
        if name.lower().endswith(".csv") and first_csv_image_id(root / name) in known:
            return name
    return candidates[0] if candidates else None
