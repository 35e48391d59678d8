"""A dataset's image files: which file a file_name means, and THE one way DetLens reads an image.

File names: a file_name must be relative and must not leave the dataset folder lexically (no
absolute path, no `..` above the folder; normalised, not resolved). Symlinks inside the folder
are then followed, and in restricted mode (core.data_roots) the target must lie in a data root.

Pixels: boxes are in the stored pixel grid (COCO), so `read_image` applies EXIF orientation only
for a dataset whose boxes are upright (YOLO, as Ultralytics reads it; otherwise it says the
rotation is ignored), scales 16/32-bit images to 8 bits by their range, and refuses images over
`max_image_pixels()` before decoding them.
"""
from __future__ import annotations

import functools
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.data_roots import DataRoots, PathRefused

MAX_PIXELS = 64_000_000  # 64 MP: an 8000x8000 photo; a 13000x13000 PNG (1.7 GB decoded) is over
MAX_PIXELS_ENV = "DETLENS_MAX_IMAGE_PIXELS"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
EXIF_ORIENTATION = 0x0112
_HIGH_BIT_MODES = {"I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 32, "F": 32}


@dataclass(frozen=True)
class ImageLookup:
    """Where an image's file is: path when it exists and is readable, else a message saying why not."""

    file_name: str
    path: Path | None
    message: str | None = None

    @property
    def found(self) -> bool:
        return self.path is not None


def max_image_pixels() -> int:
    """The pixel limit: DETLENS_MAX_IMAGE_PIXELS when set to a positive integer, else MAX_PIXELS."""
    try:
        value = int(os.environ.get(MAX_PIXELS_ENV, "").replace("_", ""))
    except ValueError:
        return MAX_PIXELS
    return value if value > 0 else MAX_PIXELS


def contained_path(root: Path, file_name: str, roots: DataRoots | None = None
                   ) -> tuple[Path | None, str | None]:
    """(root/file_name with symlinks followed, None), or (None, why it is refused).

    Refused: an absolute path, a `..` that leaves root (checked lexically, so a symlink inside
    root may point elsewhere), and, when `roots` is restricted, a target outside the data roots.
    """
    name = str(file_name)
    relative = Path(name)
    if relative.is_absolute() or relative.drive:
        return None, (f"{name}: absolute image paths are refused; file_name must be "
                      f"relative to the dataset folder {root}")
    normal = os.path.normpath(name)  # lexical: 'a/../b' -> 'b', '../x' stays
    if normal == ".." or normal.startswith("../"):
        return None, f"{name}: refused, it points outside the dataset folder {root} (a '../' escape)"
    try:
        candidate = Path(root).expanduser() / normal
        return (roots or DataRoots.unrestricted()).check(candidate), None
    except PathRefused as exc:
        return None, str(exc)


def resolve_image_path(root: Path | None, file_name: str, roots: DataRoots | None = None) -> ImageLookup:
    """Find `file_name` under `root` by `contained_path`'s rule; the message says why not when it fails."""
    if root is None:
        return ImageLookup(file_name, None,
                           f"{file_name}: no image folder is chosen for this ground truth (an "
                           "uploaded json), so it is drawn as a blank canvas; type the folder its "
                           "file_names are relative to in the sidebar, under 'Ground truth'")
    candidate, refusal = contained_path(root, file_name, roots)
    if candidate is None:
        return ImageLookup(file_name, None, refusal)
    try:
        exists = candidate.is_file()
    except OSError as exc:  # e.g. an unreadable subfolder
        return ImageLookup(file_name, None,
                           f"{file_name}: cannot be read under {root} ({exc.strerror or exc}); "
                           "check the folder's permissions; drawn as a blank canvas")
    if not exists:
        return ImageLookup(file_name, None,
                           f"{file_name}: image file not found under {root}; drawn as a blank "
                           "canvas of its size")
    return ImageLookup(file_name, candidate)


def folder_images(root: Path, folder: str, roots: DataRoots | None = None
                  ) -> tuple[list[tuple[str, Path]], list[str]]:
    """([(file_name 'folder/x.jpg', path)], refusals) for the image files directly in root/folder.

    The same rule as a json's file names (contained_path). ValueError when the folder is
    refused, missing or unreadable.
    """
    base, refusal = contained_path(root, folder, roots)
    if base is None:
        raise ValueError(refusal)
    try:
        entries = sorted(base.iterdir())
    except FileNotFoundError:
        raise ValueError(f"{Path(root) / folder}: no such folder") from None
    except NotADirectoryError:
        raise ValueError(f"{Path(root) / folder}: is a file, not a folder of images") from None
    except OSError as exc:
        raise ValueError(f"{Path(root) / folder}: cannot be listed ({exc.strerror or exc}); "
                         "check its permissions") from None
    items, refusals = [], []
    prefix = os.path.normpath(folder)
    for entry in entries:
        if entry.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        file_name = entry.name if prefix == "." else f"{prefix}/{entry.name}"
        path, refusal = contained_path(root, file_name, roots)
        if path is None:
            refusals.append(refusal)
        else:
            items.append((file_name, path))
    return items, refusals


def _over_limit(name: str, pixels: int | None, size: tuple[int, int] | None, limit: int) -> ValueError:
    declared = (f"{size[0]}x{size[1]} = {pixels:,} pixels" if size else
                f"{pixels:,} pixels" if pixels else "more pixels than PIL's own limit")
    return ValueError(
        f"{name}: refused: the image declares {declared}, over DetLens' limit of {limit:,} "
        f"pixels (a decompression bomb, or a very large scan); it was not decoded. Shrink the "
        f"image, or raise the limit with the environment variable {MAX_PIXELS_ENV}=N")


def _open(source: str | Path | bytes, name: str, limit: int) -> Image.Image:
    """The opened (not yet decoded) image; ValueError with a precise message."""
    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit  # PIL's own bomb check must not stay below ours
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check below
            return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _over_limit(name, int(found.group(1)) if found else None, None, limit) from None
    except FileNotFoundError:
        raise ValueError(f"{name}: image file not found") from None
    except PermissionError:
        raise ValueError(f"{name}: cannot be read (permission denied); check the file's "
                         "permissions") from None
    except IsADirectoryError:
        raise ValueError(f"{name}: is a folder, not an image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        kind = "not an image format PIL knows" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise ValueError(f"{name}: not a readable image ({kind})") from None


# EXIF orientation -> the transpose that makes the image upright (PIL.ImageOps.exif_transpose's table)
_EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                   6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                   8: Image.Transpose.ROTATE_90}


def _to_8bit_rgb(image: Image.Image, name: str, notices: list[str]) -> Image.Image:
    """RGB uint8; high-bit-depth modes scaled by their real range (min..max -> 0..255), not clipped."""
    bits = _HIGH_BIT_MODES.get(image.mode)
    if bits is None:
        return image.convert("RGB")
    values = np.asarray(image, dtype=np.float32)  # [H,W]
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    scaled = np.zeros(values.shape, np.float32) if high <= low else (values - low) * (255.0 / (high - low))
    gray = np.nan_to_num(scaled, nan=0.0).round().clip(0, 255).astype(np.uint8)
    notices.append(f"{name}: {bits}-bit image (mode {image.mode}, values {low:g}..{high:g}) "
                   "scaled to 8 bits by its range for display and inference")
    return Image.fromarray(gray, "L").convert("RGB")


def read_image(source: str | Path | bytes, *, name: str | None = None, upright: bool = False
               ) -> tuple[Image.Image, list[str]]:
    """(RGB uint8 PIL image, notices); ValueError naming the file.

    The one image reader of DetLens (explorer, crops, live inference, `infer`):
    - EXIF orientation is NOT applied unless `upright` (Dataset.upright_pixels: a YOLO dataset,
      whose labels Ultralytics made on upright images): COCO boxes are in the stored pixel grid;
      a file whose orientation is then ignored gets a notice.
    - 16-bit and other high-bit-depth images (modes I;16, I, F) are scaled to 8 bits by their
      min..max range, with a notice.
    - An image over `max_image_pixels()` (MAX_PIXELS = 64 MP, env DETLENS_MAX_IMAGE_PIXELS) is
      refused from its header, before any decoding.
    """
    name = name or ("<upload>" if isinstance(source, bytes) else str(source))
    limit = max_image_pixels()
    notices: list[str] = []
    with _open(source, name, limit) as image:
        width, height = image.size
        if width * height > limit:
            raise _over_limit(name, width * height, (width, height), limit)
        try:
            orientation = image.getexif().get(EXIF_ORIENTATION)
        except Exception:  # noqa: BLE001 - a broken EXIF block must not cost the pixels
            orientation = None
        if orientation not in (None, 1) and not upright:
            notices.append(f"{name}: EXIF orientation {orientation} is ignored: boxes are in the "
                           "stored pixel grid, as COCO and the competition use")
        try:
            image.load()
            rgb = _to_8bit_rgb(image, name, notices)
            if upright and orientation in _EXIF_TRANSPOSE:
                rgb = rgb.transpose(_EXIF_TRANSPOSE[orientation])
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt pixel data
            raise ValueError(f"{name}: not a readable image ({exc})") from None
    return rgb, notices


# EXIF orientations that swap width and height (a quarter turn)
_QUARTER_TURN_EXIF = {5, 6, 7, 8}


@functools.lru_cache(maxsize=1 << 16)
def _header_size(path: str, mtime_ns: int, size: int, upright: bool) -> tuple[int, int] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only, no pixel decoding
                width, height = image.size
                orientation = image.getexif().get(0x0112) if upright else None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return (height, width) if orientation in _QUARTER_TURN_EXIF else (width, height)


def image_size(path: Path, *, upright: bool = False) -> tuple[int, int] | None:
    """(width, height) from the file header only (cached per file version), or None if unreadable.

    upright: with the EXIF rotation applied, as Ultralytics' `exif_size` (YOLO labels are
    normalised by that size); otherwise the stored pixel grid, which read_image draws.
    """
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return _header_size(str(path), stat.st_mtime_ns, stat.st_size, upright)


def size_mismatch(name: str, actual: tuple[int, int], expected: tuple[float, float] | None) -> str | None:
    """A warning when the decoded (width, height) differs from the json's, else None."""
    if expected is None or not all(np.isfinite(expected)):
        return None
    want = (int(round(float(expected[0]))), int(round(float(expected[1]))))
    if tuple(int(v) for v in actual) == want:
        return None
    return (f"{name}: the file is {actual[0]}x{actual[1]} pixels but the json says {want[0]}x"
            f"{want[1]}: boxes are in the json's grid, so they may sit in the wrong place; fix "
            "the json's width/height or use the image it was made for")
