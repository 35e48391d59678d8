"""Box format conversion and IoU on numpy arrays (absolute-pixel xyxy inside DetLens)."""
from __future__ import annotations

import numpy as np


def xywh_to_xyxy(boxes_xywh: np.ndarray) -> np.ndarray:
    """boxes_xywh ([N, 4], COCO x, y, w, h) -> [N, 4] (x1, y1, x2, y2), float64."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4).copy()  # guard against no boxes
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def xyxy_to_xywh(boxes_xyxy: np.ndarray) -> np.ndarray:
    """boxes_xyxy ([N, 4], x1, y1, x2, y2) -> [N, 4] COCO (x, y, w, h), float64."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4).copy()
    boxes[:, 2:] -= boxes[:, :2]
    return boxes


def box_area(boxes_xyxy: np.ndarray) -> np.ndarray:
    """[N, 4] xyxy -> [N] areas (0 for degenerate boxes)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _box_inter_union(boxes1: np.ndarray, boxes2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # [N,M,2]
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # [N,M,2]
    wh = np.clip(rb - lt, 0, None)  # [N,M,2]
    inter = wh[..., 0] * wh[..., 1]  # [N,M]
    union = area1[:, None] + area2[None, :] - inter
    return inter, union


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of every pair: boxes1 [N, 4], boxes2 [M, 4] in xyxy -> [N, M] (0 where the union is 0)."""
    boxes1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    inter, union = _box_inter_union(boxes1, boxes2)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou
