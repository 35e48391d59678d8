"""Train DetLens's bundled demo detector on the sample dataset, from scratch, on the CPU.

    python scripts/train_demo_model.py --threads 1  # how the bundled model was made (20 min)
    python scripts/train_demo_model.py --eval-only  # re-score an existing checkpoint, rewrite the CSV

Writes `sample_data/demo_model.pt` (architecture `fcos_tiny_fpn`, 1.2 M params stored as
float16, 2.4 MB, with its categories, input size, training settings and scores recorded) and
`sample_data/predictions_trained_fcos.csv` (its detections on every sample train image, scores
>= 0.05 like the competition baseline). No pretrained weights: everything is learnt from the
90 training images (320 px, flips/turns, repeat-factor sampling for rare classes, 70 epochs).
Every `--holdout-every`-th image (ids 9, 19, ..., 99) is kept out of training, and mAP@0.5
(pycocotools) is reported on the training images and on the held-out ones separately.

Bundled model (torch 2.14.1, 1 thread of a shared 2-core CPU, 20.1 min of training):
mAP@0.5 0.855 on the 90 training images, 0.761 on the 10 held-out images, 0.836 on all 100.
Seeds are fixed; a rerun with the same thread count repeats the weights (other thread counts
differ by floating-point summation order).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO))

from core import models  # noqa: E402
from core.inference import CHECKPOINT_FORMAT, dataset_image_items, load_detector, predict_images  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=REPO / "sample_data", help="folder with train.json and train/")
    p.add_argument("--out", type=Path, default=REPO / "sample_data" / "demo_model.pt")
    p.add_argument("--predictions", type=Path, default=REPO / "sample_data" / "predictions_trained_fcos.csv")
    p.add_argument("--size", type=int, default=320, help="shorter image side the model sees (px)")
    p.add_argument("--epochs", type=int, default=70)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--repeat-threshold", type=float, default=0.3,
                   help="repeat-factor sampling: classes in fewer than this fraction of images are oversampled")
    p.add_argument("--holdout-every", type=int, default=10, help="every N-th image is held out (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-only", action="store_true", help="skip training; score --out and rewrite the CSV")
    return p.parse_args(argv)


# --- data ------------------------------------------------------------------------------------

def load_split(data: Path):
    """(coco json dict, sorted category ids) of data/train.json."""
    coco = json.loads((data / "train.json").read_text())
    category_ids = sorted(c["id"] for c in coco["categories"])
    return coco, category_ids


def training_items(coco: dict, data: Path, category_ids: list[int], image_ids: list[int], size: int):
    """Per image: uint8 tensor [3, H', W'] resized so the shorter side is `size`, boxes [n, 4] xyxy
    in those pixels, labels [n] = category position + 1 (0 is background)."""
    import torch

    label_of = {cid: i + 1 for i, cid in enumerate(category_ids)}
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    images = {im["id"]: im for im in coco["images"]}
    items = []
    for image_id in image_ids:
        info = images[image_id]
        image = Image.open(data / info["file_name"]).convert("RGB")
        scale = size / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
        anns = [a for a in by_image.get(image_id, []) if not a.get("iscrowd", 0)]
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # COCO xywh -> xyxy
        items.append((torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1),
                      boxes * scale, torch.tensor([label_of[a["category_id"]] for a in anns], dtype=torch.int64)))
    return items


def augment(image, boxes, generator):
    """Random horizontal/vertical flips and 90-degree turns (the scenes have no up or down)."""
    import torch

    _, h, w = image.shape
    boxes = boxes.clone()
    if torch.rand(1, generator=generator) < 0.5:
        image = image.flip(2)
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    if torch.rand(1, generator=generator) < 0.5:
        image = image.flip(1)
        boxes[:, [1, 3]] = h - boxes[:, [3, 1]]
    if torch.rand(1, generator=generator) < 0.5:  # transpose = 90-degree turn + flip
        image = image.transpose(1, 2)
        boxes = boxes[:, [1, 0, 3, 2]]
    return image, boxes


# --- training ----------------------------------------------------------------------------------

def repeat_factors(items, threshold: float) -> np.ndarray:
    """LVIS repeat-factor sampling: [N] how often each image is seen per epoch (>= 1), so that
    images with rare classes (Battery, Clothing) come round more often."""
    label_sets = [set(labels.tolist()) for _, _, labels in items]
    counts: dict[int, int] = {}
    for labels in label_sets:
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    per_class = {c: max(1.0, math.sqrt(threshold / (n / len(items)))) for c, n in counts.items()}
    return np.array([max([per_class[c] for c in labels], default=1.0) for labels in label_sets])


def epoch_order(factors: np.ndarray, generator) -> list[int]:
    """Image indices for one epoch: each repeated floor(f) or ceil(f) times (stochastic rounding)."""
    import torch

    fraction = torch.rand(len(factors), generator=generator).numpy()
    repeats = np.floor(factors).astype(int) + (fraction < factors - np.floor(factors))
    order = np.repeat(np.arange(len(factors)), repeats)
    return order[torch.randperm(len(order), generator=generator).numpy()].tolist()


def train(model, items, args, log) -> None:
    import torch

    generator = torch.Generator().manual_seed(args.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    factors = repeat_factors(items, args.repeat_threshold)
    log(f"repeat-factor sampling: {factors.sum():.0f} image visits per epoch (of {len(items)} images)")
    warmup_epochs = min(max(args.epochs / 20, 1.0), args.epochs / 2)

    def lr_at(progress: float) -> float:  # progress in epochs; linear warm-up, then cosine to zero
        if progress < warmup_epochs:
            return args.lr * (progress + 0.05) / warmup_epochs
        return args.lr * 0.5 * (1 + math.cos(math.pi * (progress - warmup_epochs) / (args.epochs - warmup_epochs)))

    model.train()
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = epoch_order(factors, generator)
        steps = math.ceil(len(order) / args.batch_size)
        sums: dict[str, float] = {}
        for b in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch + b / steps)
            images, targets = [], []
            for i in order[b * args.batch_size:(b + 1) * args.batch_size]:
                image, boxes = augment(items[i][0], items[i][1], generator)
                images.append(image.float() / 255.0)
                targets.append({"boxes": boxes, "labels": items[i][2]})
            losses = model(images, targets)
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optimizer.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        parts = " ".join(f"{k.replace('bbox_', '')[:6]} {v / steps:.3f}" for k, v in sums.items())
        log(f"epoch {epoch + 1}/{args.epochs}  {parts}  lr {lr_at(epoch + 1):.2e}  "
            f"{time.perf_counter() - start:.0f}s")


def save_checkpoint(model, path: Path, *, category_ids, category_names, size, train_meta) -> None:
    """The DetLens checkpoint dict: float16 weights (float32 again on load) plus what they are."""
    import torch

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "arch": models.DEMO_ARCH, "model": state,
                "category_ids": list(category_ids), "category_names": list(category_names),
                "input_size": size, "train": train_meta}, path)


# --- scoring -----------------------------------------------------------------------------------

def map50(coco: dict, preds, image_ids: list[int]) -> float:
    """pycocotools mAP@0.5 of `preds` on the images `image_ids` of `coco`."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = dict(coco)
    # pycocotools marks "unmatched" with annotation id 0, and the competition's ids start at 0:
    # renumber from 1 so the first box can be matched.
    gt["annotations"] = [dict(a, id=i + 1) for i, a in enumerate(coco["annotations"])]
    id_of_file = {im["file_name"]: im["id"] for im in coco["images"]}
    results = []
    for pos, key in enumerate(preds.image_keys):
        sel = preds.image_pos == pos
        for label, score, (x1, y1, x2, y2) in zip(preds.labels[sel], preds.scores[sel], preds.boxes_xyxy[sel]):
            results.append({"image_id": id_of_file[key], "category_id": int(label), "score": float(score),
                            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results) if results else COCO()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[1])


def score_and_export(args, coco, train_ids, holdout_ids, log) -> dict:
    """Reload the saved checkpoint as a user would, predict every train image, score, write the CSV."""
    import torch

    from core.dataset import load_coco
    from core.submission import write_submission

    dataset = load_coco(args.data / "train.json")
    detector = load_detector(args.out, categories=dataset.categories, device="cpu")
    items, problems = dataset_image_items(dataset)
    if problems:
        raise SystemExit("\n".join(str(p) for p in problems))
    start = time.perf_counter()
    with torch.inference_mode():
        preds = predict_images(detector, items, score_thr=0.05, batch_size=4, source=args.predictions.name)
    seconds = time.perf_counter() - start
    if preds.problems:
        raise SystemExit("\n".join(str(p) for p in preds.problems))
    write_submission(preds, args.predictions)
    scores = {"map50_all": map50(coco, preds, [im["id"] for im in coco["images"]]),
              "map50_train": map50(coco, preds, train_ids)}
    if holdout_ids:
        scores["map50_holdout"] = map50(coco, preds, holdout_ids)
    log(f"predicted {len(items)} images in {seconds:.0f}s ({len(preds)} boxes >= 0.05) -> {args.predictions}")
    log("mAP@0.5 (pycocotools): " + ", ".join(f"{k[6:]} {v:.3f}" for k, v in scores.items()))
    return scores


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    log = lambda msg: print(msg, flush=True)  # noqa: E731

    coco, category_ids = load_split(args.data)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    image_ids = sorted(im["id"] for im in coco["images"])
    holdout_ids = image_ids[args.holdout_every - 1::args.holdout_every] if args.holdout_every else []
    train_ids = [i for i in image_ids if i not in set(holdout_ids)]

    if not args.eval_only:
        items = training_items(coco, args.data, category_ids, train_ids, args.size)
        log(f"training {models.DEMO_ARCH} on {len(items)} images at {args.size}px "
            f"({len(holdout_ids)} held out), {args.epochs} epochs, {torch.get_num_threads()} threads")
        model = models.build_model(models.DEMO_ARCH, len(category_ids) + 1, min_size=args.size)
        start = time.perf_counter()
        train(model, items, args, log)
        minutes = (time.perf_counter() - start) / 60
        train_meta = {"seed": args.seed, "epochs": args.epochs, "size": args.size, "lr": args.lr,
                      "batch_size": args.batch_size, "repeat_threshold": args.repeat_threshold, "train_images": len(train_ids),
                      "holdout_image_ids": holdout_ids, "train_minutes": round(minutes, 1),
                      "threads": torch.get_num_threads(), "torch": str(torch.__version__)}
        save_checkpoint(model, args.out, category_ids=category_ids,
                        category_names=[names[c] for c in category_ids], size=args.size, train_meta=train_meta)
        log(f"trained in {minutes:.1f} min -> {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    scores = score_and_export(args, coco, train_ids, holdout_ids, log)
    # record the scores in the checkpoint so the app can show them
    checkpoint = torch.load(args.out, map_location="cpu", weights_only=True)
    checkpoint["train"] = {**checkpoint.get("train", {}), **{k: round(v, 4) for k, v in scores.items()}}
    torch.save(checkpoint, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
