"""Write a deterministic competition-scale case: a train.json-like ground truth and a submission CSV.

    python bench/make_competition_scale.py [--out bench/data/competition] [--scale 10] [--seed 0]

Writes OUT/train.json (COCO, 4,883 x scale images of 1024x1024, ~23,000 x scale boxes over the
10 trash classes in the competition's skewed mix, annotation ids from 0) and OUT/submission.csv
(`PredictionString,image_id`, 100 boxes per image, scores >= 0.05, VOC xyxy), shaped like a
real model's output: most objects found with jittered boxes at high scores, some under the wrong
class, duplicates, and many low-score background boxes filling each image's top 100.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

CLASS_NAMES = [
    "General trash", "Paper", "Paper pack", "Metal", "Glass",
    "Plastic", "Styrofoam", "Plastic bag", "Battery", "Clothing",
]
# Box counts per class in the competition's train.json (23,144 boxes): the skewed mix to copy.
CLASS_COUNTS = np.array([3966, 6352, 897, 936, 982, 2943, 1263, 5178, 159, 468])
N_IMAGES = 4883
IMAGE_SIZE = 1024
BOXES_PER_IMAGE = 100   # detectors keep their top 100 per image
SCORE_THR = 0.05        # the baselines' hard-coded threshold


def make_ground_truth(rng: np.random.Generator, n_images: int) -> dict:
    """COCO dict with ~4.74 boxes per image (at least one), log-uniform box sizes."""
    per_image = 1 + rng.poisson(3.74, n_images)                      # [I]
    image_ids = np.repeat(np.arange(n_images), per_image)             # [A]
    n = len(image_ids)
    labels = rng.choice(len(CLASS_NAMES), n, p=CLASS_COUNTS / CLASS_COUNTS.sum())
    wh = np.exp(rng.uniform(np.log(16), np.log(900), (n, 2)))         # [A,2]
    xy = rng.uniform(0, 1, (n, 2)) * (IMAGE_SIZE - wh)                # inside the image
    xywh = np.round(np.hstack([xy, wh]), 1)
    area = np.round(xywh[:, 2] * xywh[:, 3], 2)
    width = len(str(n_images - 1)) if n_images > 10000 else 4
    images = [
        {"width": IMAGE_SIZE, "height": IMAGE_SIZE, "file_name": f"train/{i:0{width}d}.jpg",
         "license": 0, "id": i}
        for i in range(n_images)
    ]
    annotations = [
        {"image_id": i, "category_id": c, "area": a, "bbox": b, "iscrowd": 0, "id": k}
        for k, (i, c, a, b) in enumerate(zip(
            image_ids.tolist(), labels.tolist(), area.tolist(), xywh.tolist()))
    ]
    categories = [{"id": i, "name": name, "supercategory": name} for i, name in enumerate(CLASS_NAMES)]
    return {"info": {"description": "DetLens synthetic competition-scale case"},
            "images": images, "annotations": annotations, "categories": categories}


def _jitter(rng, boxes_xyxy: np.ndarray, rel_sigma: float) -> np.ndarray:
    """Move each edge by N(0, rel_sigma * side); keeps x2 > x1, y2 > y1."""
    wh = boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]                        # [N,2]
    noise = rng.normal(0, rel_sigma, (len(boxes_xyxy), 4)) * np.tile(wh, 2)
    out = boxes_xyxy + noise
    out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 1.0)
    return out


def make_predictions(rng: np.random.Generator, gt: dict) -> tuple[np.ndarray, np.ndarray]:
    """[I*100, 6] rows (label, score, x1, y1, x2, y2) and [I*100] image id, sorted by score per image."""
    anns = gt["annotations"]
    n_images = len(gt["images"])
    k = len(CLASS_NAMES)
    img = np.array([a["image_id"] for a in anns])
    lab = np.array([a["category_id"] for a in anns])
    xywh = np.array([a["bbox"] for a in anns], dtype=np.float64)
    gt_xyxy = np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])

    # Found objects: 88% of GTs, mostly right class, a high score; 10% labelled with another class.
    found = rng.random(len(anns)) < 0.88
    f_lab = np.where(rng.random(len(anns)) < 0.9, lab, rng.integers(0, k, len(anns)))
    f_score = np.clip(rng.beta(5, 1.6, len(anns)), SCORE_THR, 1.0)
    f_box = _jitter(rng, gt_xyxy, 0.04)
    # Duplicates and second-guess classes on the same objects, at lower scores.
    dup_n = rng.poisson(1.5, len(anns))
    d_src = np.repeat(np.arange(len(anns)), dup_n)
    d_lab = np.where(rng.random(len(d_src)) < 0.5, lab[d_src], rng.integers(0, k, len(d_src)))
    d_score = SCORE_THR + (f_score[d_src] - SCORE_THR) * rng.beta(1.2, 3, len(d_src))
    d_box = _jitter(rng, gt_xyxy[d_src], 0.12)

    img_all = np.concatenate([img[found], img[d_src]])
    rows = np.vstack([
        np.column_stack([f_lab[found], f_score[found], f_box[found]]),
        np.column_stack([d_lab, d_score, d_box]),
    ])
    # Keep at most 100 per image (highest scores) and fill the rest with background boxes.
    order = np.lexsort((-rows[:, 1], img_all))
    img_all, rows = img_all[order], rows[order]
    rank = np.arange(len(img_all)) - np.searchsorted(img_all, img_all)
    keep = rank < BOXES_PER_IMAGE
    img_all, rows = img_all[keep], rows[keep]
    n_fill = BOXES_PER_IMAGE - np.bincount(img_all, minlength=n_images)
    b_img = np.repeat(np.arange(n_images), n_fill)
    wh = np.exp(rng.uniform(np.log(10), np.log(700), (len(b_img), 2)))
    xy = rng.uniform(-20, IMAGE_SIZE - 20, (len(b_img), 2))
    b_score = SCORE_THR + rng.exponential(0.06, len(b_img))
    b_rows = np.column_stack([rng.integers(0, k, len(b_img)), np.minimum(b_score, 0.9), xy, xy + wh])

    img_all = np.concatenate([img_all, b_img])
    rows = np.vstack([rows, b_rows])
    order = np.lexsort((-rows[:, 1], img_all))
    return rows[order], img_all[order]


def format_submission(rows: np.ndarray, image_ids: np.ndarray, file_names: list[str]) -> str:
    """Submission text: labels as integers, scores 6 decimals, coordinates 3 decimals."""
    starts = np.searchsorted(image_ids, np.arange(len(file_names)))
    ends = np.searchsorted(image_ids, np.arange(len(file_names)), side="right")
    flat = rows.tolist()
    out = ["PredictionString,image_id"]
    for i, name in enumerate(file_names):
        chunk = flat[starts[i]:ends[i]]
        values = [v for row in chunk for v in row]
        out.append(("%d %.6f %.3f %.3f %.3f %.3f " * len(chunk)) % tuple(values) + "," + name)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder to write (default: bench/data/competition, "
                        "or bench/data/competition_xSCALE with --scale)")
    parser.add_argument("--scale", type=int, default=1, help="multiply the image count (10 = COCO-train scale)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pred-seed", type=int, help="seed of the predictions alone: another model on the "
                        "same ground truth (default: continue the --seed stream)")
    parser.add_argument("--pred-name", default="submission.csv", help="file name of the CSV in --out")
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be >= 1")

    if args.out is None:
        suffix = f"_x{args.scale}" if args.scale > 1 else ""
        args.out = Path(__file__).resolve().parent / "data" / f"competition{suffix}"
    rng = np.random.default_rng(args.seed)
    gt = make_ground_truth(rng, N_IMAGES * args.scale)
    pred_rng = rng if args.pred_seed is None else np.random.default_rng(args.pred_seed)
    rows, image_ids = make_predictions(pred_rng, gt)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train.json").write_text(json.dumps(gt))
    file_names = [im["file_name"] for im in gt["images"]]
    (args.out / args.pred_name).write_text(format_submission(rows, image_ids, file_names))
    print(f"wrote {args.out}/train.json ({len(gt['images'])} images, {len(gt['annotations'])} boxes) "
          f"and {args.out}/{args.pred_name} ({len(rows)} boxes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
