"""Streamlit glue for live inference: the model picker, the cached model, cached predictions.

torch is imported only when a model is actually loaded (core.inference imports it lazily).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from core import models
from core.data_roots import PathRefused
from core.inference import (CheckpointError, Detector, ImageDetections, detect, load_detector,
                            load_pretrained_detector, pick_device)
from ui import loaders
from ui import state as S
from ui.loaders import Source

DEMO_CHECKPOINT = S.SAMPLE_DIR / "demo_model.pt"
AUTO_ARCH = "auto (as recorded in the checkpoint)"
SOURCE_DEMO = "Bundled demo model"
SOURCE_PATH = "Checkpoint file path"
SOURCE_UPLOAD = "Upload a checkpoint"
SOURCE_PRETRAINED = "torchvision COCO weights"
MODEL_SOURCES = [SOURCE_DEMO, SOURCE_PATH, SOURCE_UPLOAD, SOURCE_PRETRAINED]


@dataclass
class ModelChoice:
    """A loaded model with the key its cached predictions go under, or the reason there is none."""

    detector: Detector | None
    key: str
    label: str
    error: str | None = None


@st.cache_resource(max_entries=3, show_spinner="Loading the model…")
def _checkpoint_detector(weights_key: str, arch: str | None, categories_key: str, device: str,
                         name: str, _source, _categories) -> Detector:
    # one model per (weights, architecture, categories, device); eval mode, never mutated
    return load_detector(_source, arch=arch, categories=_categories, device=device, name=name)


@st.cache_resource(max_entries=2, show_spinner="Loading torchvision's COCO weights…")
def _pretrained_detector(arch: str, device: str) -> Detector:
    return load_pretrained_detector(arch, device=device)


def _categories_key(categories: pd.DataFrame | None) -> str:
    if categories is None:
        return ""
    return hashlib.sha256(categories[["id", "name"]].to_json().encode()).hexdigest()


def model_picker(categories: pd.DataFrame | None, root: Path | None) -> ModelChoice:
    """Widgets choosing the checkpoint and architecture; returns the (cached) loaded model.

    root: the dataset folder a relative checkpoint path is read from. A typed path must pass
    the data roots (ui.state.data_roots) before it is opened.
    """
    cols = st.columns([1.3, 2.2, 1.5])
    source_kind = cols[0].radio("Model", MODEL_SOURCES, key="_infer_source")
    arch_options = [AUTO_ARCH] + models.architecture_names()
    if source_kind == SOURCE_PRETRAINED:
        arch_options = [n for n in models.architecture_names() if models.get_architecture(n).weights]
    arch_choice = cols[2].selectbox(
        "Architecture", arch_options, key="_infer_arch",
        help="The torchvision detector the checkpoint was trained as. 'auto' uses the one the "
             "checkpoint records, or the one whose layer names it fits exactly.")
    arch = None if arch_choice == AUTO_ARCH else arch_choice
    if arch:
        cols[2].caption(models.get_architecture(arch).description)
    device = pick_device()

    if source_kind == SOURCE_PRETRAINED:
        reason = models.pretrained_unavailable_reason(arch)
        # without a local copy, only try the download when asked: offline it fails after a pause
        if reason and not cols[1].button("Download and load the COCO weights", key="_infer_pretrained"):
            cols[1].info(f"**{arch}**: {reason}.", icon=":material/cloud_off:")
            return ModelChoice(None, "", arch, error="")
        try:
            detector = _pretrained_detector(arch, device)
        except RuntimeError as exc:
            return ModelChoice(None, "", arch, error=str(exc))
        return ModelChoice(detector, f"pretrained:{arch}:{device}", f"{arch} (COCO weights)")

    if source_kind == SOURCE_DEMO:
        source = Source("demo", DEMO_CHECKPOINT.name, path=DEMO_CHECKPOINT)
        cols[1].caption(f"`sample_data/{DEMO_CHECKPOINT.name}`: a small FCOS trained on the sample "
                        "images by `scripts/train_demo_model.py`.")
    elif source_kind == SOURCE_PATH:
        typed = cols[1].text_input("Checkpoint path", key="_infer_path",
                                   placeholder="/path/to/model.pth (or relative to the dataset folder)")
        if not typed:
            return ModelChoice(None, "", "", error="")
        path = Path(typed).expanduser()
        if not path.is_absolute() and root is not None:
            path = root / path
        try:  # on a network only the data roots may be read; never a byte of a refused file
            path = S.data_roots().check(path)
            found = path.is_file()
        except PathRefused as exc:
            return ModelChoice(None, "", typed, error=str(exc))
        except OSError as exc:
            return ModelChoice(None, "", typed, error=f"{typed}: cannot be read ({exc.strerror or exc})")
        if not found:
            return ModelChoice(None, "", typed, error=f"{typed}: no such file (or a folder); type "
                                                      "the checkpoint file's path")
        source = Source(typed, path.name, path=path)
    else:
        upload = cols[1].file_uploader("Checkpoint (.pt, .pth)", type=["pt", "pth", "ckpt", "bin"],
                                       key="_infer_upload")
        if upload is None:
            return ModelChoice(None, "", "", error="")
        source = Source(upload.name, upload.name, data=upload.getvalue())

    try:
        weights_key = loaders.content_key(source)
    except OSError as exc:
        return ModelChoice(None, "", source.name, error=f"{source.name}: cannot be read "
                                                        f"({exc.strerror or exc}); check its permissions")
    try:
        detector = _checkpoint_detector(weights_key, arch, _categories_key(categories), device,
                                        source.name, source.read(), categories)
    except (CheckpointError, ValueError) as exc:
        return ModelChoice(None, "", source.name, error=str(exc))
    key = f"{weights_key}:{detector.arch}:{_categories_key(categories)}:{device}"
    return ModelChoice(detector, key, f"{source.name} ({detector.arch})")


@st.cache_resource(max_entries=32, show_spinner="Running the model…")
def _detections(model_key: str, image_key: str, _detector: Detector, _image) -> ImageDetections:
    return detect(_detector, [_image])[0]


def image_detections(choice: ModelChoice, image_key: str, image) -> ImageDetections:
    """The model's detections on one image (all boxes above the model's floor), cached per model+image."""
    return _detections(choice.key, image_key, choice.detector, image)


def first_image_found(root: Path | None, names: list[str], preferred: str | None, limit: int = 500) -> str:
    """`preferred` when its file exists, else the first of `names` (up to `limit` looked at) whose
    file exists, else names[0]: the page opens on an image it can show."""
    from core.images import resolve_image_path

    roots = S.data_roots()
    candidates = ([preferred] if preferred in names else []) + names[:limit]
    return next((n for n in candidates if resolve_image_path(root, n, roots).found), names[0])
