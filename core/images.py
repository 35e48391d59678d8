"""Finding a dataset's image files safely: file names resolve inside the dataset root only."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError


@dataclass(frozen=True)
class ImageLookup:
    """Where an image's file is: path when it exists and is readable, else a message saying why not."""

    file_name: str
    path: Path | None
    message: str | None = None

    @property
    def found(self) -> bool:
        return self.path is not None


def contained_path(root: Path, file_name: str) -> tuple[Path | None, str | None]:
    """(root/file_name resolved, None), or (None, why) for an absolute path or a `..` escape."""
    root = Path(root).resolve()
    relative = Path(str(file_name))
    if relative.is_absolute() or relative.drive:
        return None, (f"{file_name}: absolute image paths are refused; file_name must be "
                      f"relative to the dataset folder {root}")
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        return None, f"{file_name}: refused, it points outside the dataset folder {root} (a '../' escape)"
    return candidate, None


def resolve_image_path(root: Path | None, file_name: str) -> ImageLookup:
    """Resolve `file_name` against `root`; refuse absolute paths and `..` escapes from the root."""
    if root is None:
        return ImageLookup(file_name, None,
                           f"{file_name}: no dataset folder is set (uploaded json), so the image "
                           "cannot be shown; set a dataset folder in the sidebar")
    candidate, refusal = contained_path(root, file_name)
    if candidate is None:
        return ImageLookup(file_name, None, refusal)
    root = Path(root).resolve()
    if not candidate.is_file():
        return ImageLookup(file_name, None,
                           f"{file_name}: image file not found under {root}; drawn as a blank "
                           "canvas of its size")
    return ImageLookup(file_name, candidate)


def read_image(path: Path) -> tuple[Image.Image | None, str | None]:
    """(RGB image, None), or (None, message) when the file is not a readable image."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB"), None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return None, f"{path.name}: not a readable image ({exc}); drawn as a blank canvas"


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header only, or None if unreadable."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
