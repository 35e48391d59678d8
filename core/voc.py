"""Pascal VOC datasets (`Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/*.txt`), in and out.

Coordinates are read and written as they are in the XML (absolute-pixel xmin ymin xmax ymax,
the convention of the competition CSV); VOC's 1-based pixel indexing is not shifted.
`difficult` boxes become crowd boxes (`iscrowd` 1): COCO evaluation, and DetLens with it,
ignores detections matched to them and never counts them as missed.
Class ids: the order of `labels.txt` (or `classes.txt`) beside Annotations/ when present, else
the 20 VOC classes' order when every name is one of them, else the names sorted.
`file_name` is the image path relative to JPEGImages/ (the XML's folder below Annotations/
plus its `filename`). XML is parsed by expat with any DOCTYPE refused, so no entity can be
declared: neither external entities nor entity expansion bombs ("billion laughs").
"""
from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data_roots import DataRoots
from core.format_tables import (IMAGE_SUFFIXES, inside_roots, build_dataset, capped, format_number,
                                place_image, snap)
from core.images import image_size
from core.problems import Problem, Severity, ValidationError
from core.tables import Dataset

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
LABEL_FILES = ("labels.txt", "classes.txt")


def is_voc_dataset(path: Path) -> bool:
    """A folder holding Annotations/ with XML files."""
    path = Path(path)
    return path.is_dir() and (path / "Annotations").is_dir() and any((path / "Annotations").rglob("*.xml"))


# ---------------------------------------------------------------- safe XML


@dataclass
class Node:
    """One XML element: tag, its own text, children, and the line it starts on."""

    tag: str
    line: int
    text: str = ""
    children: list["Node"] = field(default_factory=list)

    def find(self, tag: str) -> "Node | None":
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list["Node"]:
        return [c for c in self.children if c.tag == tag]

    def value(self, tag: str) -> str | None:
        child = self.find(tag)
        return child.text.strip() if child is not None else None


class _Refused(Exception):
    pass


def parse_xml(data: bytes) -> Node:
    """Parse XML into Nodes with line numbers; a DOCTYPE (hence any entity declaration) is refused.

    Raises ValueError with the line and what is wrong.
    """
    parser = xml.parsers.expat.ParserCreate()
    stack: list[Node] = []
    top: list[Node] = []

    def refuse(*_):
        raise _Refused("a DOCTYPE / entity declaration is refused (VOC annotations have none; entities "
                       "can read local files or expand without bound)")

    def start(tag, _attrs):
        node = Node(tag, parser.CurrentLineNumber)
        (stack[-1].children if stack else top).append(node)
        stack.append(node)

    def end(_tag):
        stack.pop()

    def text(data):
        if stack:
            stack[-1].text += data

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise ValueError(f"line {parser.CurrentLineNumber}: {exc}") from None
    except xml.parsers.expat.ExpatError as exc:
        raise ValueError(f"line {exc.lineno}: invalid XML: {xml.parsers.expat.ErrorString(exc.code)}") from None
    return top[0]


# ---------------------------------------------------------------- reading


def read_voc_dataset(folder: Path | str, *, split: str | None = None, roots: DataRoots | None = None) -> Dataset:
    """Read a VOC folder as a `Dataset`; `split` names ImageSets/Main/<split>.txt (default: every XML).

    Bad objects and files are ERROR Problems naming file and line (left out); an XML without
    <size> takes the image's header size (WARNING) or, without a readable image, is left out.
    Raises ValidationError only when there is nothing to read.
    """
    folder = Path(folder)
    annotations_dir = folder / "Annotations"
    if not annotations_dir.is_dir():
        raise ValidationError([Problem(Severity.ERROR, "no Annotations/ folder; a Pascal VOC dataset holds "
                                       "Annotations/*.xml and JPEGImages/", file=str(folder))],
                              summary=f"{folder}: not a VOC dataset")
    problems: list[Problem] = []
    xml_paths = inside_roots(_xml_files(folder, annotations_dir, split, problems), roots, problems,
                             "annotation files", folder)
    parsed = []
    for path in xml_paths:
        shown = path.relative_to(folder).as_posix()
        try:
            parsed.append((path, shown, parse_xml(path.read_bytes())))
        except OSError as exc:
            problems.append(Problem(Severity.ERROR, f"cannot read: {exc.strerror or exc}; left out", file=shown))
        except ValueError as exc:
            line, _, message = str(exc).partition(": ")
            problems.append(Problem(Severity.ERROR, f"{message}; this file is left out", file=shown,
                                    line=int(line.split()[-1]) if line.startswith("line ") else None))
    names = _class_names(folder, [obj.value("name") or "" for _, _, root in parsed
                                  for obj in root.findall("object")])
    class_of = {name: i for i, name in enumerate(names)}
    images, boxes = [], []
    bad: list[tuple[str, int | None, str]] = []
    images_dir = folder / "JPEGImages"
    seen: set[str] = set()
    for path, shown, root in parsed:
        if root.tag != "annotation":
            bad.append((shown, root.line, f"root element is <{root.tag}>, expected <annotation>; file left out"))
            continue
        file_name = _file_name(path.relative_to(annotations_dir), root, images_dir)
        if file_name in seen:
            bad.append((shown, root.line, f"image {file_name} is already described by another XML; left out"))
            continue
        image_path = images_dir / file_name
        size = _size(root, shown, image_path if roots is None or roots.allows(image_path) else None,
                     bad, problems)
        if size is None:
            continue
        seen.add(file_name)
        row = len(images)
        images.append((file_name, size[0], size[1]))
        for obj in root.findall("object"):
            box = _object_box(obj, shown, class_of, bad)
            if box is not None:
                boxes.append((row, *box))
    capped(problems, Severity.ERROR, bad, "bad objects")
    if not images:
        raise ValidationError(problems or [Problem(Severity.ERROR, "no XML annotation could be read",
                                                   file=str(annotations_dir))],
                              summary=f"{folder}: no usable VOC annotation")
    return build_dataset(images, boxes, names, problems=problems, source=folder.name, root=images_dir)


def _xml_files(folder: Path, annotations_dir: Path, split: str | None, problems: list[Problem]) -> list[Path]:
    if split is None:
        return sorted(annotations_dir.rglob("*.xml"))
    listing = folder / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        raise ValidationError([Problem(Severity.ERROR, f"no ImageSets/Main/{split}.txt; give another split or "
                                       "none (every XML in Annotations/)", file=str(folder))],
                              summary=f"{folder}: split {split!r} not found")
    paths = []
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        path = annotations_dir / f"{fields[0]}.xml"
        if path.is_file() and path.resolve().is_relative_to(annotations_dir.resolve()):
            paths.append(path)
        else:
            problems.append(Problem(Severity.ERROR, f"{fields[0]!r} has no Annotations/{fields[0]}.xml; left out",
                                    file=listing.relative_to(folder).as_posix(), line=number))
    return paths


def _class_names(folder: Path, used: list[str]) -> list[str]:
    for name in LABEL_FILES:
        path = folder / name
        if path.is_file():
            return [n.strip() for n in path.read_text(encoding="utf-8").splitlines() if n.strip()]
    present = set(used) - {""}
    if present <= set(VOC_CLASSES):
        return list(VOC_CLASSES)
    return sorted(present)


def _file_name(xml_relative: Path, root: Node, images_dir: Path) -> str:
    """The image path relative to JPEGImages/: the XML's subfolder plus <filename> (or its stem + .jpg)."""
    sub = xml_relative.parent
    given = root.value("filename")
    if given:
        return (sub / Path(given.replace("\\", "/")).name).as_posix()
    for suffix in IMAGE_SUFFIXES:  # no <filename>: the image named like the XML
        if (images_dir / sub / f"{xml_relative.stem}{suffix}").is_file():
            return (sub / f"{xml_relative.stem}{suffix}").as_posix()
    return (sub / f"{xml_relative.stem}.jpg").as_posix()


def _size(root: Node, shown: str, image_path: Path | None, bad: list, problems: list[Problem]
          ) -> tuple[int, int] | None:
    """The <size>, else the image header's (image_path None: not to be opened); None: left out."""
    size = root.find("size")
    width = height = None
    if size is not None:
        width, height = _positive_int(size.value("width")), _positive_int(size.value("height"))
    if width and height:
        return width, height
    what = "has no <size>" if size is None else "has no positive <width> and <height> in <size>"
    header = image_size(image_path, upright=True) if image_path is not None and image_path.is_file() else None
    line = size.line if size is not None else root.line
    if header is None:
        bad.append((shown, line, f"<annotation> {what} and its image cannot be read; "
                    "add <size><width>W</width><height>H</height></size>; file left out"))
        return None
    problems.append(Problem(Severity.WARNING, f"<annotation> {what}; the size {header[0]}x{header[1]} was read "
                            "from the image header", file=shown, line=line))
    return header


def _positive_int(text: str | None) -> int | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return int(value) if value > 0 and value == int(value) else None


def _object_box(obj: Node, shown: str, class_of: dict[str, int], bad: list) -> tuple | None:
    """(class id, x1, y1, x2, y2, difficult) of an <object>, or None (reason appended to `bad`)."""
    name = obj.value("name")
    if not name:
        bad.append((shown, obj.line, "<object> without <name>; left out"))
        return None
    if name not in class_of:
        bad.append((shown, obj.line, f"class {name!r} is not in labels.txt ({len(class_of)} classes); left out"))
        return None
    bndbox = obj.find("bndbox")
    if bndbox is None:
        bad.append((shown, obj.line, f"<object> {name!r} without <bndbox>; left out"))
        return None
    values = []
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        child = bndbox.find(tag)
        try:
            value = float(child.text)
        except (AttributeError, ValueError):
            value = None
        if value is None or not np.isfinite(value):
            line = child.line if child is not None else bndbox.line
            bad.append((shown, line, f"<{tag}> is {None if child is None else child.text.strip()!r}, expected a "
                        "number; this object is left out"))
            return None
        values.append(value)
    x1, y1, x2, y2 = values
    if x2 <= x1 or y2 <= y1:
        bad.append((shown, bndbox.line, f"box {values} has xmax <= xmin or ymax <= ymin; left out"))
        return None
    difficult = obj.value("difficult") or "0"
    if difficult not in ("0", "1"):
        bad.append((shown, obj.find("difficult").line, f"<difficult> is {difficult!r}, expected 0 or 1; "
                    "read as 0"))
        difficult = "0"
    return class_of[name], x1, y1, x2, y2, int(difficult)


# ---------------------------------------------------------------- writing


def write_voc_dataset(dataset: Dataset, folder: Path, *, images: str = "link",
                      split: str = "default") -> list[Problem]:
    """Write Annotations/<file_name>.xml, labels.txt, ImageSets/Main/<split>.txt and JPEGImages/ into folder.

    Crowd boxes are written as difficult. Coordinates as they are (full precision).
    """
    problems: list[Problem] = []
    names = dataset.categories["name"].astype(str).tolist()
    name_of = dict(zip(dataset.category_ids.tolist(), names))
    ann = dataset.annotations
    per_image: dict[int, list] = {}
    for row in ann[["image_index", "category_id", "x1", "y1", "x2", "y2", "iscrowd"]].itertuples(index=False):
        per_image.setdefault(int(row.image_index), []).append(row)
    ids, missing = [], 0
    for i, image in enumerate(dataset.images.itertuples(index=False)):
        relative = "/".join(p for p in str(image.file_name).replace("\\", "/").split("/") if p not in ("", ".", ".."))
        stem_path = str(Path(relative).with_suffix(""))
        ids.append(stem_path)
        target = folder / "Annotations" / f"{stem_path}.xml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_xml(Path(relative), image.width, image.height, per_image.get(i, []), name_of),
                          encoding="utf-8")
        source = (dataset.root / image.file_name) if dataset.root is not None else None
        if images != "none" and not place_image(source, folder / "JPEGImages" / relative, images):
            missing += 1
    if missing:
        problems.append(Problem(Severity.WARNING, f"{missing} image(s) not found under {dataset.root}, so not "
                                "placed in JPEGImages/", file=dataset.source))
    (folder / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    (folder / "labels.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return problems


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml(relative: Path, width, height, rows: list, name_of: dict) -> str:
    parts = ["<annotation>", f"  <folder>{_escape(relative.parent.as_posix())}</folder>",
             f"  <filename>{_escape(relative.name)}</filename>",
             f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for row in rows:
        parts += ["  <object>", f"    <name>{_escape(name_of[int(row.category_id)])}</name>",
                  "    <pose>Unspecified</pose>", "    <truncated>0</truncated>",
                  f"    <difficult>{int(row.iscrowd != 0)}</difficult>",
                  "    <bndbox>" + "".join(f"<{t}>{format_number(v)}</{t}>" for t, v in
                                          zip(("xmin", "ymin", "xmax", "ymax"), snap([row.x1, row.y1, row.x2, row.y2])))
                  + "</bndbox>", "  </object>"]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"
