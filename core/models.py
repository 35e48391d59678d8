"""Detection architectures DetLens can run: a registry of torchvision builders plus the demo model.

Class convention (the competition's torchvision baseline): a model for a dataset with K
categories has `num_classes = K + 1`; model label 0 is background and model label j (1..K)
is the dataset's j-th category in id order, so non-contiguous category ids work.

torch is imported inside functions only: the dashboard imports this module without it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

DEMO_ARCH = "fcos_tiny_fpn"


@dataclass(frozen=True)
class Architecture:
    """One buildable detector.

    builder: a torchvision.models.detection function name, or a callable in this module.
    weights: name of torchvision's COCO weights enum for it (None: no pretrained weights).
    class_key: state_dict key of the classifier weight; its first dim is
        `num_classes * anchors_per_location` (used to read a checkpoint's class count).
    default_size: the input size (shorter side) it was designed for.
    """

    name: str
    builder: str
    description: str
    class_key: str
    anchors_per_location: int = 1
    weights: str | None = None
    default_size: int = 800
    score_thresh_kwarg: str = "box_score_thresh"


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in [
    Architecture(
        "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn",
        "Faster R-CNN, ResNet-50 FPN (v1): the competition's torchvision baseline",
        "roi_heads.box_predictor.cls_score.weight",
        weights="FasterRCNN_ResNet50_FPN_Weights"),
    Architecture(
        "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_resnet50_fpn_v2",
        "Faster R-CNN, ResNet-50 FPN v2 (improved training recipe)",
        "roi_heads.box_predictor.cls_score.weight",
        weights="FasterRCNN_ResNet50_FPN_V2_Weights"),
    Architecture(
        "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
        "Faster R-CNN, MobileNetV3-Large FPN (fast)",
        "roi_heads.box_predictor.cls_score.weight",
        weights="FasterRCNN_MobileNet_V3_Large_FPN_Weights"),
    Architecture(
        "fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn",
        "Faster R-CNN, MobileNetV3-Large FPN at 320 px (fastest, low resolution)",
        "roi_heads.box_predictor.cls_score.weight",
        weights="FasterRCNN_MobileNet_V3_Large_320_FPN_Weights", default_size=320),
    Architecture(
        "retinanet_resnet50_fpn", "retinanet_resnet50_fpn",
        "RetinaNet, ResNet-50 FPN (v1)",
        "head.classification_head.cls_logits.weight", anchors_per_location=9,
        weights="RetinaNet_ResNet50_FPN_Weights", score_thresh_kwarg="score_thresh"),
    Architecture(
        "retinanet_resnet50_fpn_v2", "retinanet_resnet50_fpn_v2",
        "RetinaNet, ResNet-50 FPN v2",
        "head.classification_head.cls_logits.weight", anchors_per_location=9,
        weights="RetinaNet_ResNet50_FPN_V2_Weights", score_thresh_kwarg="score_thresh"),
    Architecture(
        "fcos_resnet50_fpn", "fcos_resnet50_fpn",
        "FCOS, ResNet-50 FPN (anchor-free)",
        "head.classification_head.cls_logits.weight",
        weights="FCOS_ResNet50_FPN_Weights", score_thresh_kwarg="score_thresh"),
    Architecture(
        DEMO_ARCH, "_build_fcos_tiny_fpn",
        "FCOS on a small from-scratch conv backbone, 64-channel FPN (DetLens demo model, 1.2 M params)",
        "head.classification_head.cls_logits.weight",
        default_size=512, score_thresh_kwarg="score_thresh"),
]}


def architecture_names() -> list[str]:
    return list(ARCHITECTURES)


def get_architecture(name: str) -> Architecture:
    """The registered architecture `name`; ValueError listing the known ones otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"Unknown architecture {name!r}. Known architectures: {', '.join(ARCHITECTURES)}."
        ) from None


def build_model(
    arch: str,
    num_classes: int,
    *,
    min_size: int | None = None,
    max_size: int | None = None,
    score_thresh: float = 0.01,
    detections_per_img: int = 100,
) -> "nn.Module":
    """A randomly initialised `arch` with `num_classes` outputs (background included); no downloads.

    min_size/max_size: the resize torchvision applies to every input (default: the architecture's).
    score_thresh: boxes below it are dropped inside the model (keep it at or below the CSV threshold).
    """
    spec = get_architecture(arch)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (background + at least one class), got {num_classes}")
    size = min_size or spec.default_size
    kwargs: dict[str, Any] = {
        "min_size": size,
        "max_size": max_size or max(size, round(size * 1333 / 800)),
        spec.score_thresh_kwarg: score_thresh,
        ("box_detections_per_img" if spec.score_thresh_kwarg == "box_score_thresh"
         else "detections_per_img"): detections_per_img,
    }
    return _builder(spec)(num_classes=num_classes, **kwargs)


def _builder(spec: Architecture) -> Callable[..., "nn.Module"]:
    if spec.builder.startswith("_"):
        return globals()[spec.builder]
    from torchvision.models import detection

    builder = getattr(detection, spec.builder)

    def build(**kwargs):
        # weights_backbone=None: never fetch ImageNet weights (and keep plain BatchNorm layers)
        return builder(weights=None, weights_backbone=None, **kwargs)

    return build


@lru_cache(maxsize=None)
def state_dict_shapes(arch: str, num_classes: int = 11) -> dict[str, tuple[int, ...]]:
    """{key: shape} of `arch`'s state_dict, built on the meta device (no memory, ~0.1 s)."""
    import torch

    with torch.device("meta"):
        model = build_model(arch, num_classes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def guess_architecture(keys) -> tuple[list[str], float]:
    """The registered architectures whose state_dict keys overlap `keys` most (ties: several,
    e.g. the two MobileNet Faster R-CNNs share every key), and that overlap (Jaccard, 0..1)."""
    keys = {k for k in keys if not k.endswith("num_batches_tracked")}
    scores = {}
    for name in ARCHITECTURES:
        known = {k for k in state_dict_shapes(name) if not k.endswith("num_batches_tracked")}
        scores[name] = len(keys & known) / max(len(keys | known), 1)
    best = max(scores.values(), default=0.0)
    return ([n for n, v in scores.items() if v == best] if best > 0 else []), best


def num_classes_in(arch: str, shapes: dict[str, tuple[int, ...]]) -> int | None:
    """Class count (background included) that a state_dict of `arch` was trained with, if readable."""
    spec = get_architecture(arch)
    shape = shapes.get(spec.class_key)
    if not shape:
        return None
    return shape[0] // spec.anchors_per_location


# --- pretrained COCO weights (need internet or torch's local cache) -----------------------------

def _weights_enum(arch: str):
    spec = get_architecture(arch)
    if spec.weights is None:
        return None
    from torchvision.models import detection

    return getattr(detection, spec.weights).DEFAULT


def pretrained_cache_path(arch: str) -> str | None:
    """Where torch keeps `arch`'s COCO weights once downloaded (None: no pretrained weights exist)."""
    weights = _weights_enum(arch)
    if weights is None:
        return None
    import torch

    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


def pretrained_unavailable_reason(arch: str) -> str | None:
    """None when `arch`'s COCO weights are in the local cache; otherwise why they may not load."""
    path = pretrained_cache_path(arch)
    if path is None:
        return f"{arch} has no torchvision pretrained weights"
    if os.path.exists(path):
        return None
    return (f"not in the local cache ({path}); DetLens will try to download "
            f"{_weights_enum(arch).url}, which needs internet")


def build_pretrained_model(arch: str, *, score_thresh: float = 0.01) -> tuple["nn.Module", list[str]]:
    """`arch` with torchvision's COCO weights and its 91 class names (index = model label).

    Raises RuntimeError("unavailable offline: ...") when the weights are neither cached nor
    downloadable.
    """
    weights = _weights_enum(arch)
    if weights is None:
        raise RuntimeError(f"{arch} has no torchvision pretrained weights; load a checkpoint instead")
    from torchvision.models import detection

    spec = get_architecture(arch)
    try:
        model = getattr(detection, spec.builder)(
            weights=weights, progress=False, **{spec.score_thresh_kwarg: score_thresh})
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad cache file a RuntimeError
        raise RuntimeError(
            f"unavailable offline: torchvision's COCO weights for {arch} could not be loaded "
            f"({exc}). With internet they download once to {pretrained_cache_path(arch)}; "
            f"or copy {os.path.basename(weights.url)} there by hand."
        ) from None
    return model, list(weights.meta["categories"])


# --- the demo architecture ----------------------------------------------------------------------

def _conv_bn(c_in: int, c_out: int, stride: int) -> list:
    from torch import nn

    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _tiny_backbone() -> "nn.Module":
    """Plain conv stages at strides 4, 8, 16, 32 (channels 32, 64, 128, 192), named for FPN taps."""
    from collections import OrderedDict

    from torch import nn

    stages = OrderedDict()
    stages["stem"] = nn.Sequential(*_conv_bn(3, 24, 2), *_conv_bn(24, 32, 2))         # /4
    stages["layer2"] = nn.Sequential(*_conv_bn(32, 64, 2), *_conv_bn(64, 64, 1))      # /8
    stages["layer3"] = nn.Sequential(*_conv_bn(64, 128, 2), *_conv_bn(128, 128, 1))   # /16
    stages["layer4"] = nn.Sequential(*_conv_bn(128, 192, 2), *_conv_bn(192, 192, 1))  # /32
    return nn.Sequential(stages)


def _build_fcos_tiny_fpn(num_classes: int, **kwargs) -> "nn.Module":
    """FCOS with `_tiny_backbone`, FPN P3-P7 of 64 channels and a 2-conv head: 1.2 M params."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.fcos import FCOS, FCOSHead
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    channels = 64
    backbone = BackboneWithFPN(
        _tiny_backbone(), return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
        in_channels_list=[64, 128, 192], out_channels=channels,
        extra_blocks=LastLevelP6P7(channels, channels),
    )
    # FCOS reads anchor sizes as the scale range of each level (x4 .. x8): P3 takes boxes up
    # to 64 px, P7 those over 512 px, as in fcos_resnet50_fpn.
    anchor_generator = AnchorGenerator(sizes=((8,), (16,), (32,), (64,), (128,)),
                                       aspect_ratios=((1.0,),) * 5)
    head = FCOSHead(channels, 1, num_classes, num_convs=2)
    return FCOS(backbone, num_classes, anchor_generator=anchor_generator, head=head, **kwargs)
