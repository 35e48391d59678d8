"""YOLO (Ultralytics) datasets and prediction txt folders, in and out.

Dataset: a `data.yaml` (`path`, `train`/`val`/`test`, `names`) or a folder with `images/` and
`labels/`; one label file per image (Ultralytics' rule: the last `/images/` of the image path
becomes `/labels/`, the suffix `.txt`), one `class cx cy w h` line per box, normalised to the
image size read from the image header (EXIF rotation applied, as Ultralytics does). An image
without a label file has no boxes. `file_name` is the image path relative to the `images/`
folder (`train/0000.jpg`), so submission CSVs made for a COCO original still match.
Predictions: a folder of `STEM.txt` files with `class cx cy w h conf` lines (`yolo predict
save_txt=True save_conf=True`), matched to the dataset's images by file stem.
Class index i is the i-th category of the dataset in id order (the id itself for 0..n-1).
Bad lines are ERROR Problems naming file and line and are left out; the rest loads.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.data_roots import DataRoots
from core.format_tables import (IMAGE_SUFFIXES, build_dataset, capped, class_index_of, format_number, inside_roots,
                                place_image, predictions_from_rows, snap, stem_index)
from core.images import image_size
from core.problems import Problem, Severity, ValidationError
from core.tables import Dataset, Predictions

SPLITS = ("train", "val", "test")
YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml")
CLASS_FILES = ("classes.txt", "obj.names")


class _YoloError(ValueError):
    pass


# ---------------------------------------------------------------- recognising


def find_data_yaml(folder: Path) -> Path | None:
    """The folder's data.yaml (or the one *.yaml holding `names`), if any."""
    for name in YAML_NAMES:
        if (folder / name).is_file():
            return folder / name
    candidates = [p for p in sorted(folder.glob("*.y*ml")) if b"names" in _head(p)]
    return candidates[0] if len(candidates) == 1 else None


def is_yolo_dataset(path: Path) -> bool:
    """A data.yaml, or a folder holding one or holding `images/` and `labels/`."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() in (".yaml", ".yml")
    return path.is_dir() and (find_data_yaml(path) is not None
                              or ((path / "images").is_dir() and (path / "labels").is_dir()))


def is_yolo_predictions(path: Path) -> bool:
    """A folder of *.txt files (or one with `labels/` of them, as `yolo predict` writes)."""
    path = Path(path)
    return path.is_dir() and (any(path.glob("*.txt")) or any((path / "labels").glob("*.txt")))


def _head(path: Path, size: int = 1 << 16) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


# ---------------------------------------------------------------- reading a dataset


def read_yolo_dataset(path: Path | str, *, split: str | None = None, roots: DataRoots | None = None) -> Dataset:
    """Read a YOLO dataset (data.yaml or folder) as a `Dataset` with ids 0..n-1 in `names` order.

    split: 'train', 'val', 'test' or 'all' (data.yaml), default 'val' when the yaml has it (what
    `yolo val` evaluates), else 'train'; for a folder without yaml, a subfolder of images/
    (default: all images). Images and labels outside `roots` (restricted) are left out unread.
    Raises ValidationError only when there is no usable dataset at all.
    """
    path = Path(path)
    problems: list[Problem] = []
    try:
        if path.is_dir() and find_data_yaml(path) is None:
            names, image_paths, source = _folder_layout(path, split, problems)
            base = path
        else:
            yaml_path = path if path.is_file() else find_data_yaml(path)
            names, image_paths, base = _yaml_layout(yaml_path, split, problems)
            source = yaml_path.name
    except _YoloError as exc:
        raise ValidationError([Problem(Severity.ERROR, str(exc), file=str(path))],
                              summary=f"{path}: not a usable YOLO dataset") from None
    if not image_paths:
        raise ValidationError([Problem(Severity.ERROR, "no images found (looked for "
                                       f"{', '.join(IMAGE_SUFFIXES)} files); check the folder or data.yaml",
                                       file=str(path))], summary=f"{path}: no images")
    image_paths = inside_roots(image_paths, roots, problems, "images", base)
    if not image_paths:
        raise ValidationError(problems, summary=f"{path}: no image inside the data roots")
    root, file_names = _images_root(base, image_paths)
    images, boxes = [], []
    bad_lines: list[tuple[str, int | None, str]] = []
    for image_path, file_name in zip(image_paths, file_names):
        size = image_size(image_path, upright=True)
        if size is None:
            problems.append(Problem(Severity.ERROR, "not a readable image, so its size (which YOLO labels are "
                                    "normalised by) is unknown; this image and its labels are left out",
                                    file=file_name))
            continue
        label_path = label_path_of(image_path)
        row = len(images)
        images.append((file_name, size[0], size[1]))
        if label_path.is_file() and (roots is None or roots.allows(label_path)):
            boxes += _read_label_file(label_path, _display(label_path, base), size, row, len(names), bad_lines)
    capped(problems, Severity.ERROR, bad_lines, "bad label lines")
    _warn_orphan_labels(base, image_paths, problems)
    # Ultralytics reads images EXIF-upright and normalises labels by that size: draw that grid
    return build_dataset(images, boxes, names, problems=problems, source=source, root=root, upright_pixels=True)


def label_path_of(image_path: Path) -> Path:
    """Ultralytics' img2label_paths: the last `/images/` becomes `/labels/`, the suffix `.txt`."""
    text = image_path.as_posix()
    head, sep, tail = text.rpartition("/images/")
    text = f"{head}/labels/{tail}" if sep else text
    return Path(text).with_suffix(".txt")


def _yaml_layout(yaml_path: Path, split: str | None, problems: list[Problem]):
    import yaml  # only YOLO datasets need it

    try:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _YoloError(f"cannot read {yaml_path.name}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _YoloError(f"{yaml_path.name}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict):
        raise _YoloError(f"{yaml_path.name}: expected a mapping with 'names' and 'train'/'val', "
                         f"got a {type(doc).__name__}")
    names = _names(doc.get("names"), doc.get("nc"), yaml_path.name)
    base = _yaml_root(doc.get("path"), yaml_path)
    present = [s for s in SPLITS if doc.get(s)]
    if not present:
        raise _YoloError(f"{yaml_path.name}: no 'train', 'val' or 'test' entry; say where the images are "
                         "(e.g. val: images/val)")
    chosen = present if split == "all" else [split or ("val" if "val" in present else present[0])]
    if chosen[0] not in present:
        raise _YoloError(f"{yaml_path.name}: split {chosen[0]!r} is not in the yaml (it has {present})")
    paths: list[Path] = []
    for key in chosen:
        entries = doc[key] if isinstance(doc[key], list) else [doc[key]]
        for entry in entries:
            paths += _images_of(base, str(entry), yaml_path.name, problems)
    return names, sorted(set(paths)), base


def _names(names, nc, where: str) -> list[str]:
    """Class names in index order from a list or an {index: name} mapping."""
    if isinstance(names, list):
        result = [str(n) for n in names]
    elif isinstance(names, dict):
        names = {int(k) if isinstance(k, str) and k.strip().isdigit() else k: v for k, v in names.items()}
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in names):
            raise _YoloError(f"{where}: 'names' keys must be class indices 0..n-1, got {list(names)[:5]}")
        if sorted(names) != list(range(len(names))):
            raise _YoloError(f"{where}: 'names' indices must be 0..{len(names) - 1} without gaps, "
                             f"got {sorted(names)[:10]}")
        result = [str(names[i]) for i in range(len(names))]
    elif names is None and isinstance(nc, int) and nc > 0:
        result = [str(i) for i in range(nc)]
    else:
        raise _YoloError(f"{where}: 'names' is {names!r}; give the class names as a list or a mapping "
                         "{0: name, 1: name, ...}")
    if isinstance(nc, int) and nc != len(result):
        raise _YoloError(f"{where}: nc is {nc} but 'names' has {len(result)} entries; make them agree")
    return result


def _yaml_root(path_value, yaml_path: Path) -> Path:
    """The dataset root: `path` (absolute, or relative to the yaml's folder), else the yaml's folder."""
    if path_value in (None, ""):
        return _absolute(yaml_path.parent)
    candidate = Path(str(path_value)).expanduser()
    if not candidate.is_absolute():
        candidate = yaml_path.parent / candidate
    if not candidate.is_dir():
        raise _YoloError(f"{yaml_path.name}: path {path_value!r} is not a folder (looked at {candidate}); fix "
                         "'path' or remove it (the yaml's own folder is then the root)")
    return _absolute(candidate)


def _images_of(base: Path, entry: str, where: str, problems: list[Problem]) -> list[Path]:
    """The images of one split entry: a folder (searched recursively) or a .txt list of image paths."""
    target = Path(entry).expanduser()
    target = target if target.is_absolute() else base / target
    if not target.exists() and entry.startswith("../"):  # Roboflow's `train: ../train/images`, as Ultralytics
        target = base / entry[3:]
    if target.is_dir():
        return [p for p in target.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if target.is_file() and target.suffix == ".txt":
        listed = []
        for line in target.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                p = Path(line)
                listed.append(p if p.is_absolute() else (base / p if line.startswith("./") else target.parent / p))
        return listed
    problems.append(Problem(Severity.ERROR, f"split entry {entry!r} is neither a folder nor a .txt list "
                            f"(looked at {target}); its images are left out", file=where))
    return []


def _folder_layout(folder: Path, split: str | None, problems: list[Problem]):
    images_dir = folder / "images" / split if split and split != "all" else folder / "images"
    if not images_dir.is_dir():
        raise _YoloError(f"no {images_dir.relative_to(folder)}/ folder; a YOLO dataset folder holds images/ "
                         "and labels/ (or a data.yaml)")
    names = None
    for name in CLASS_FILES:
        for candidate in (folder / name, folder / "labels" / name):
            if names is None and candidate.is_file():
                names = [n.strip() for n in candidate.read_text(encoding="utf-8").splitlines() if n.strip()]
    paths = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if names is None:  # no class names anywhere: number the classes the labels use
        top = -1
        for p in paths:
            label = label_path_of(p)
            if label.is_file():
                for line in label.read_text(encoding="utf-8", errors="replace").splitlines():
                    head = line.split()[:1]
                    if head and head[0].isdigit():
                        top = max(top, int(head[0]))
        names = [str(i) for i in range(top + 1)]
        problems.append(Problem(Severity.WARNING, f"no data.yaml or classes.txt: classes are named by their "
                                f"index 0..{top}; add a data.yaml with 'names' for real names", file=str(folder)))
    return names, paths, folder.name


def _images_root(base: Path, image_paths: list[Path]) -> tuple[Path, list[str]]:
    """(root, file names): relative to the dataset's images/ folder when every image is in it, else to the root."""
    absolute = [_absolute(p) for p in image_paths]  # not resolve(): linked images stay where they are linked
    root = _absolute(base / "images")
    if not all(p.is_relative_to(root) for p in absolute):
        root = _absolute(base)
    names = []
    for p in absolute:
        try:
            names.append(p.relative_to(root).as_posix())
        except ValueError:  # an image outside the dataset root (absolute path in a list): keep it addressable
            names.append(p.as_posix())
    return root, names


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _display(path: Path, base: Path) -> str:
    try:
        return _absolute(path).relative_to(_absolute(base)).as_posix()
    except ValueError:
        return str(path)


def _read_label_file(path: Path, shown: str, size: tuple[int, int], row: int, n_classes: int,
                     bad: list) -> list[tuple]:
    """The boxes of one label file as (row, class, x1, y1, x2, y2, 0); bad lines go to `bad`."""
    width, height = size
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        bad.append((shown, None, f"cannot read the label file ({exc}); its boxes are left out"))
        return []
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        problem = _label_line_problem(tokens, n_classes)
        if problem:
            bad.append((shown, number, f"{problem}; this box is left out"))
            continue
        cls, cx, cy, w, h = int(float(tokens[0])), *map(float, tokens[1:])
        boxes.append((row, cls, width * (cx - w / 2), height * (cy - h / 2),
                      width * (cx + w / 2), height * (cy + h / 2), 0))
    return boxes


def _label_line_problem(tokens: list[str], n_classes: int) -> str | None:
    """Why a ground-truth label line cannot be used, or None."""
    if len(tokens) != 5:
        hint = (" (a 6th number is a confidence: this looks like a prediction file, not ground truth)"
                if len(tokens) == 6 else " (a segmentation polygon? DetLens reads boxes only)"
                if len(tokens) > 6 else "")
        return f"{len(tokens)} numbers, expected 5: class cx cy w h{hint}"
    values = _floats(tokens)
    if values is None:
        return f"{' '.join(tokens)!r} has a value that is not a finite number"
    cls = values[0]
    if cls != int(cls) or cls < 0:
        return f"class {tokens[0]!r} is not a class index (0, 1, ...)"
    if cls >= n_classes:
        return (f"class {int(cls)} is beyond 'names' ({n_classes} classes: 0..{n_classes - 1}); "
                "fix the label or add the class to names")
    outside = [t for t, v in zip(tokens[1:], values[1:]) if not 0.0 <= v <= 1.0]
    if outside:
        return (f"coordinate(s) {', '.join(outside)} outside [0, 1]; YOLO labels are normalised by the image "
                "size (pixels given instead?)")
    if values[3] <= 0 or values[4] <= 0:
        return f"width {tokens[3]} or height {tokens[4]} is not positive"
    return None


def _floats(tokens: list[str]) -> list[float] | None:
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        return None
    return values if all(np.isfinite(values)) else None


def _warn_orphan_labels(base: Path, image_paths: list[Path], problems: list[Problem]) -> None:
    """A WARNING for label files next to the images read that have no image."""
    expected = {_absolute(label_path_of(p)) for p in image_paths}
    folders = {p.parent for p in expected if p.parent.is_dir()}
    orphans = sorted(_display(p, base) for folder in folders for p in folder.glob("*.txt")
                     if _absolute(p) not in expected and p.name not in CLASS_FILES)
    if orphans:
        problems.append(Problem(Severity.WARNING, f"{len(orphans)} label file(s) have no image and are left out "
                                f"(first: {orphans[0]}); add the images or remove the labels", file=orphans[0]))


# ---------------------------------------------------------------- reading predictions


def read_yolo_predictions(folder: Path | str, *, dataset: Dataset) -> Predictions:
    """Read a folder of `STEM.txt` (`class cx cy w h conf`) as `Predictions` on the dataset's images.

    Files are matched to images by stem; a stem the dataset lacks or shares between images is a
    Problem and its boxes are left out. Problems name file and line: a line that cannot be read is
    an ERROR and left out; a box pycocotools would score (confidence outside [0, 1], width or
    height <= 0, unknown class) is an ERROR (a server may reject it) and kept.
    """
    folder = Path(folder)
    if not any(folder.glob("*.txt")) and (folder / "labels").is_dir():
        folder = folder / "labels"
    files = sorted(p for p in folder.glob("*.txt") if p.name not in CLASS_FILES)
    by_stem, shared = stem_index(dataset)
    widths = dataset.images["width"].to_numpy(np.float64)
    heights = dataset.images["height"].to_numpy(np.float64)
    n_classes = len(dataset.categories)
    identity = np.array_equal(dataset.category_ids, np.arange(n_classes))  # class index = category id
    problems: list[Problem] = []
    bad: list[tuple[str, int | None, str]] = []
    unknown, ambiguous = [], []
    rows: list[tuple[int, int, float, float, float, float, float]] = []  # lines checked one by one
    chunks: list[np.ndarray] = []                                          # [k,7] of files read whole
    for path in files:
        index = by_stem.get(path.stem)
        if index is None:
            (ambiguous if path.stem in shared else unknown).append(path.name)
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            bad.append((path.name, None, f"cannot read the file ({exc}); its boxes are left out"))
            continue
        clean = _clean_table(text, 6)
        if clean is not None and ((clean[:, 0] >= 0) & (clean[:, 0] < n_classes)).all() \
                and ((clean[:, 5] >= 0) & (clean[:, 5] <= 1)).all() and (clean[:, 3:5] > 0).all():
            chunks.append(np.column_stack([np.full(len(clean), index, np.float64), clean]))  # no per-line checks
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            tokens = line.split()
            if not tokens:
                continue
            problem = _prediction_line_problem(tokens, n_classes, identity)
            if problem:
                bad.append((path.name, number, f"{problem}; this box is left out"))
                continue
            cls, cx, cy, w, h, conf = (float(t) for t in tokens)
            flag = _kept_line_problem(int(cls), w, h, conf, n_classes)
            if flag:
                bad.append((path.name, number, flag))
            rows.append((index, int(cls), cx, cy, w, h, conf))
    capped(problems, Severity.ERROR, bad, "bad prediction lines")
    _stem_problems(problems, unknown, ambiguous, dataset, str(folder))
    chunks.append(np.array(rows, dtype=np.float64).reshape(-1, 7))
    table = np.concatenate(chunks)                                                      # [N,7]
    image_index = table[:, 0].astype(np.int64)
    width, height = widths[image_index], heights[image_index]
    cx, cy, w, h = table[:, 2], table[:, 3], table[:, 4], table[:, 5]
    boxes = snap(np.stack([width * (cx - w / 2), height * (cy - h / 2), width * (cx + w / 2),
                           height * (cy + h / 2)], axis=1))                             # [N,4]
    cls = table[:, 1].astype(np.int64)
    known = (cls >= 0) & (cls < n_classes)
    labels = np.where(known, dataset.category_ids[np.where(known, cls, 0)], cls) if len(table) else cls
    return predictions_from_rows(dataset, image_index, labels, table[:, 6], boxes, problems, folder.name)


def _clean_table(text: str, width: int) -> np.ndarray | None:
    """[L, width] float64 of a file whose every non-blank line holds `width` finite numbers with an integer
    first column; None when any line does not (then each line is checked on its own)."""
    tokens = text.split()
    lines = [line for line in text.splitlines() if line.strip()]
    if len(tokens) != width * len(lines) or any(len(line.split()) != width for line in lines):
        return None
    try:
        table = np.array(tokens, dtype=np.float64).reshape(-1, width)
    except ValueError:
        return None
    if not np.isfinite(table).all() or (table[:, 0] != np.round(table[:, 0])).any():
        return None
    return table


def _prediction_line_problem(tokens: list[str], n_classes: int, identity: bool) -> str | None:
    """Why a prediction line cannot be read (it is then left out), or None."""
    if len(tokens) != 6:
        hint = " (no confidence: run `yolo predict` with save_conf=True)" if len(tokens) == 5 else ""
        return f"{len(tokens)} numbers, expected 6: class cx cy w h conf{hint}"
    values = _floats(tokens)
    if values is None:
        return f"{' '.join(tokens)!r} has a value that is not a finite number"
    if values[0] != int(values[0]):
        return f"class {tokens[0]!r} is not a class index (0, 1, ...)"
    if not identity and not 0 <= values[0] < n_classes:
        return f"class {tokens[0]} is no class index of the ground truth (0..{n_classes - 1})"
    return None


def _kept_line_problem(cls: int, w: float, h: float, conf: float, n_classes: int) -> str | None:
    """What a scorer would score but a server may reject (the box is kept), or None."""
    if not 0.0 <= conf <= 1.0:
        return f"confidence {conf!r} is outside [0, 1]; kept and ranked by it, as pycocotools does"
    if w <= 0 or h <= 0:
        return f"width {w!r} or height {h!r} is not positive; kept, it overlaps nothing (a false positive)"
    if not 0 <= cls < n_classes:
        return (f"class {cls} is no class of the ground truth (0..{n_classes - 1}); kept, and ignored by the "
                "evaluation as pycocotools ignores classes the ground truth lacks")
    return None


def _stem_problems(problems: list[Problem], unknown: list[str], ambiguous: list[str], dataset: Dataset,
                   where: str) -> None:
    if unknown:
        problems.append(Problem(Severity.WARNING, f"{len(unknown)} file(s) name no image of {dataset.source} "
                                f"by stem (first: {unknown[0]}); their boxes are left out (another split?)",
                                file=where))
    if ambiguous:
        problems.append(Problem(Severity.ERROR, f"{len(ambiguous)} file(s) match several images of "
                                f"{dataset.source} by stem (first: {ambiguous[0]}); files are matched by stem "
                                "only, so these boxes are left out", file=where))


# ---------------------------------------------------------------- writing


def write_yolo_dataset(dataset: Dataset, folder: Path, *, images: str = "link") -> list[Problem]:
    """Write data.yaml, labels/<file_name>.txt and images/<file_name> (linked, copied or 'none') into folder.

    Crowd boxes have no YOLO form and are left out; boxes reaching outside the image are clipped
    to it (YOLO coordinates must lie in [0, 1]). Returns what was left out or changed.
    """
    import yaml

    problems: list[Problem] = []
    width = dataset.images["width"].to_numpy(np.float64)
    height = dataset.images["height"].to_numpy(np.float64)
    ann = dataset.annotations
    crowd = ann["iscrowd"].to_numpy() != 0
    if crowd.any():
        problems.append(Problem(Severity.WARNING, f"{int(crowd.sum())} crowd box(es) left out: YOLO has no "
                                "crowd / ignore flag", file=dataset.source))
    keep = ann[~crowd]
    index = keep["image_index"].to_numpy()
    xyxy = keep[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    bounds = np.stack([width[index], height[index]], axis=1)                               # [A,2]
    clipped = np.concatenate([np.clip(xyxy[:, :2], 0, bounds), np.clip(xyxy[:, 2:], 0, bounds)], axis=1)
    if (clipped != xyxy).any():
        problems.append(Problem(Severity.WARNING, f"{int((clipped != xyxy).any(axis=1).sum())} box(es) reaching "
                                "outside their image were clipped to it (YOLO coordinates lie in [0, 1])",
                                file=dataset.source))
    cls = class_index_of(dataset, keep["category_id"].to_numpy())
    lines = _yolo_lines(cls, clipped, bounds)
    per_image: dict[int, list[str]] = {}
    for i, line in zip(index.tolist(), lines):
        per_image.setdefault(i, []).append(line)
    file_names = dataset.images["file_name"].tolist()
    missing = 0
    for i, file_name in enumerate(file_names):
        relative = _safe_relative(file_name)
        label = label_path_of(folder / "images" / relative)  # where Ultralytics looks for it
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(f"{line}\n" for line in per_image.get(i, [])), encoding="utf-8")
        source = (dataset.root / file_name) if dataset.root is not None else None
        if images != "none" and not place_image(source, folder / "images" / relative, images):
            missing += 1
    if missing:
        problems.append(Problem(Severity.WARNING, f"{missing} image(s) not found under {dataset.root}, so not "
                                "placed in images/; a YOLO dataset needs them (its labels are normalised by "
                                "their size)", file=dataset.source))
    names = dict(enumerate(dataset.categories["name"].astype(str).tolist()))
    doc = {"train": "images", "val": "images", "nc": len(names), "names": names}
    (folder / "data.yaml").write_text(
        "# written by DetLens (python -m core convert); 'path' omitted: the root is this file's folder\n"
        + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return problems


def _safe_relative(file_name: str) -> str:
    """file_name as a relative path that stays inside the output folder."""
    parts = [p for p in str(file_name).replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts)


def _yolo_lines(cls: np.ndarray, boxes_xyxy: np.ndarray, sizes_wh: np.ndarray, scores=None) -> list[str]:
    """'class cx cy w h [conf]' lines, normalised, in full precision (the round trip is exact)."""
    wh = np.concatenate([sizes_wh, sizes_wh], axis=1)                                   # [N,4]
    norm = boxes_xyxy / wh
    cx, cy = (norm[:, 0] + norm[:, 2]) / 2, (norm[:, 1] + norm[:, 3]) / 2
    w, h = norm[:, 2] - norm[:, 0], norm[:, 3] - norm[:, 1]
    columns = [list(map(str, cls.tolist()))] + [list(map(format_number, c.tolist())) for c in (cx, cy, w, h)]
    if scores is not None:
        columns.append(list(map(format_number, np.asarray(scores).tolist())))
    return list(map(" ".join, zip(*columns)))


def write_yolo_predictions(preds: Predictions, dataset: Dataset, folder: Path) -> list[Problem]:
    """Write one `STEM.txt` per image with boxes (`class cx cy w h conf`), as `yolo predict` does.

    Boxes on images the dataset lacks or with labels that are no category are left out (reported).
    """
    problems: list[Problem] = []
    image_index = preds.image_index_in(dataset)
    cls = class_index_of(dataset, preds.labels)
    keep = (image_index >= 0) & (cls >= 0)
    if (~keep).any():
        problems.append(Problem(Severity.WARNING, f"{int((~keep).sum())} box(es) left out: on images the ground "
                                "truth lacks or with labels that are no category (YOLO needs both)",
                                file=preds.source))
    index = image_index[keep]
    sizes = dataset.images[["width", "height"]].to_numpy(np.float64)[index]
    lines = _yolo_lines(cls[keep], preds.boxes_xyxy[keep], sizes, preds.scores[keep])
    stems = [Path(str(f)).stem for f in dataset.images["file_name"]]
    _, shared = stem_index(dataset)
    if shared:
        raise ValueError(f"several images of {dataset.source} share a file stem ({sorted(shared)[:3]}); YOLO "
                         "prediction files are named by stem, so they cannot be told apart")
    per_image: dict[int, list[str]] = {}
    for i, line in zip(index.tolist(), lines):
        per_image.setdefault(i, []).append(line)
    for i, rows in per_image.items():
        (folder / f"{stems[i]}.txt").write_text("".join(f"{r}\n" for r in rows), encoding="utf-8")
    return problems
