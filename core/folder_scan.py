"""Finding the input files in a dataset folder: ground truths (COCO json, YOLO, VOC) and prediction files.

The kind of a json is read from its content (a COCO ground truth is an object with "images";
a COCO results file is a list, or an object with "annotations" but no "images"), not its name.
With restricted data roots (core.data_roots) nothing outside them is opened, not even its head.
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path

from core.data_roots import HOW_TO_ADD, DataRoots, PathRefused

PREDICTION_SUFFIXES = (".csv", ".json")
_SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}


@dataclass
class FolderScan:
    """Input files found in a dataset folder, as paths relative to it, sorted.

    unreadable / refused: entries skipped because they could not be read (permissions) or lead
    outside the data roots (a symlink), as paths relative to the folder.
    """

    root: Path
    ground_truths: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    problem: str | None = None   # why the folder cannot be used, if it cannot
    unreadable: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def notices(self) -> list[str]:
        """One line per kind of skipped entry, naming the first and what to do."""
        lines = []
        if self.unreadable:
            lines.append(f"{len(self.unreadable)} entries of {self.root} could not be read: first "
                         f"{self.unreadable[0]}; check permissions (they are skipped)")
        if self.refused:
            lines.append(f"{len(self.refused)} entries of {self.root} lead outside the data roots "
                         f"and were skipped: first {self.refused[0]}; to use them, {HOW_TO_ADD}")
        return lines


def _json_kind(path: Path) -> str:
    """json_kind, raising OSError when the file cannot be read."""
    with open(path, "rb") as handle:
        if Path(path).stat().st_size == 0:
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


def json_kind(path: Path, roots: DataRoots | None = None) -> str:
    """'gt' (COCO ground truth), 'results' (COCO results) or 'unknown', from the content.

    A file outside `roots` or unreadable is 'unknown', without being opened.
    """
    if roots is not None and not roots.allows(path):
        return "unknown"
    try:
        return _json_kind(path)
    except (OSError, ValueError):
        return "unknown"


def _entries(folder: Path, root: Path, scan: FolderScan) -> list[Path]:
    """folder's entries, sorted; an unreadable folder is recorded and gives none."""
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        if folder == root:
            scan.problem = (f"{root} cannot be listed ({exc.strerror or exc}); check its "
                            "permissions, or choose another folder")
        else:
            scan.unreadable.append(folder.relative_to(root).as_posix() + "/")
        return []


def _kind(path: Path, root: Path, scan: FolderScan, roots: DataRoots) -> str | None:
    """'dir', 'file' or None (skipped: not readable, or outside the roots; recorded in scan)."""
    relative = path.relative_to(root).as_posix()
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError:
        scan.unreadable.append(relative)
        return None
    if not (is_dir or is_file):
        return None
    if not roots.allows(path):
        scan.refused.append(relative)
        return None
    return "dir" if is_dir else "file"


def scan_folder(root: Path | str, *, depth: int = 1, roots: DataRoots | None = None) -> FolderScan:
    """Ground-truth jsons and prediction files (CSV, results json) in root and `depth` levels below.

    Never raises: a refused or unusable folder sets `problem`; unreadable entries and symlinks
    leading outside `roots` are skipped and listed (see FolderScan.notices).
    """
    roots = roots or DataRoots.unrestricted()
    root = Path(root).expanduser()
    try:
        roots.check(root)
        if not root.exists():
            return FolderScan(root, problem=f"folder {root} does not exist")
        if not root.is_dir():
            return FolderScan(root, problem=f"{root} is a file, not a folder; give the dataset folder")
        root = root.resolve()
    except PathRefused as exc:
        return FolderScan(root, problem=str(exc))
    except OSError as exc:
        return FolderScan(root, problem=f"{root} cannot be read ({exc.strerror or exc}); check "
                                        "its permissions")
    scan = FolderScan(root)
    folders, files = [root], []
    level = [root]
    for step in range(depth + 1):
        below = []
        for folder in level:
            for path in _entries(folder, root, scan):
                if path.suffix.lower() not in PREDICTION_SUFFIXES and (
                        step == depth or path.name in _SKIP_DIRS or path.name.startswith(".")):
                    continue  # neither an input file nor a folder to look into: not even stat'd
                kind = _kind(path, root, scan, roots)
                if kind == "dir" and step < depth and path.name not in _SKIP_DIRS \
                        and not path.name.startswith(".") and path not in folders:
                    below.append(path)
                    folders.append(path)
                elif kind == "file" and path.suffix.lower() in PREDICTION_SUFFIXES:
                    files.append(path)
        level = below
    for path in sorted(files, key=lambda p: (folders.index(p.parent), p.name)):
        relative = path.relative_to(root).as_posix()
        try:
            if path.suffix.lower() == ".csv":
                open(path, "rb").close()  # listed only when it can be read
                scan.predictions.append(relative)
            elif (kind := _json_kind(path)) == "gt":
                scan.ground_truths.append(relative)
            elif kind == "results":
                scan.predictions.append(relative)
        except (OSError, ValueError):
            scan.unreadable.append(relative)
    scan.ground_truths[:0] = _folder_ground_truths(folders, root, roots)
    return scan


def _folder_ground_truths(folders: list[Path], root: Path, roots: DataRoots) -> list[str]:
    """YOLO (its data.yaml, or labels/ beside images/) and Pascal VOC (Annotations/) datasets among
    the scanned folders, as the paths core.formats.load_ground_truth reads."""
    from core.voc import is_voc_dataset
    from core.yolo import find_data_yaml, is_yolo_dataset

    found = []
    for folder in folders:
        try:
            if is_voc_dataset(folder):
                entry = folder / "Annotations"
            elif (yaml := find_data_yaml(folder)) is not None:
                entry = yaml
            elif is_yolo_dataset(folder):
                entry = folder / "labels"
            else:
                continue
        except OSError:
            continue  # an unreadable folder was recorded by the scan
        if roots.allows(entry):
            found.append(entry.relative_to(root).as_posix())
    return found


def default_ground_truth(candidates: list[str]) -> str | None:
    """train.json when present (the competition's name), else the first candidate."""
    for name in candidates:
        if Path(name).name == "train.json":
            return name
    return candidates[0] if candidates else None


def first_csv_image_id(path: Path, limit: int = 1 << 16, roots: DataRoots | None = None) -> str | None:
    """The image_id of a submission CSV's first data row, read from the file's head only.

    None when it has none, cannot be read, or lies outside `roots` (then it is not opened).
    """
    if roots is not None and not roots.allows(path):
        return None
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


def default_predictions(root: Path, candidates: list[str], gt_file_names,
                        roots: DataRoots | None = None) -> str | None:
    """The first CSV whose first image_id is an image of the ground truth, else the first file."""
    known = set(gt_file_names)
    for name in candidates:
        if name.lower().endswith(".csv") and first_csv_image_id(root / name, roots=roots) in known:
            return name
    return candidates[0] if candidates else None
