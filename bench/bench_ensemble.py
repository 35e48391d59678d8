"""Ensembling at competition scale: three submission CSVs of ~490,000 boxes each, vs ensemble-boxes.

    python bench/bench_ensemble.py [--data bench/data/competition] [--methods wbf nms soft_nms nmw]
                                   [--no-peer] [--no-sweep] [--workers N]

Model A is bench/make_competition_scale.py's submission.csv (written first if absent); models
B and C are A with every box edge moved by N(0, 3% of the box side) and scores scaled by
U(0.8, 1.2), written once beside it. For each method it times DetLens' compiled kernels
(core.ensemble_kernels; and the whole CLI path: read 3 CSVs, ensemble, write) and, as the peer
in the same run, the plain loop most notebooks write: ensemble-boxes called image by image in
one process on the same normalised boxes. Then the default 25-variant sweep (ensemble + score
each variant), its peer estimated from this run's per-method ensemble-boxes times. Prints wall
and CPU seconds (CPU time shows the work when other processes share the cores), the system
part of the CPU time (DetLens' arrays are fresh memory, whose first touch the kernel pays for,
more on a loaded machine; the peer's small per-image arrays are recycled), and ratios.
"""
from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys
import time
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.dataset import load_coco  # noqa: E402
from core.ensemble import EnsembleConfig, ensemble_predictions  # noqa: E402
from core.ensemble_sweep import run_sweep, sweep_grid  # noqa: E402
from core.submission import read_submission, write_submission  # noqa: E402
from core.tables import Predictions  # noqa: E402

def ensure_inputs(data: Path) -> list[Path]:
    """A (the generated submission) plus perturbed copies B and C; made once."""
    if not (data / "submission.csv").exists():
        subprocess.run([sys.executable, str(REPO / "bench" / "make_competition_scale.py"), "--out", str(data)],
                       check=True)
    paths = [data / "submission.csv", data / "model_b.csv", data / "model_c.csv"]
    # (re)made when absent or older than A, which make_competition_scale.py may have rewritten
    if not all(p.exists() and p.stat().st_mtime >= paths[0].stat().st_mtime for p in paths[1:]):
        base = read_submission(paths[0])
        for seed, path in zip((1, 2), paths[1:]):
            write_submission(perturb(base, seed), path)
    return paths


def perturb(preds: Predictions, seed: int) -> Predictions:
    """Another 'model': edges moved by N(0, 3% of the side), scores scaled by U(0.8, 1.2)."""
    rng = np.random.default_rng(seed)
    boxes = preds.boxes_xyxy.copy()
    wh = boxes[:, 2:] - boxes[:, :2]                                   # [N,2]
    boxes += rng.normal(0, 0.03, boxes.shape) * np.tile(wh, 2)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1.0)
    scores = np.clip(preds.scores * rng.uniform(0.8, 1.2, len(preds)), 0.05, 1.0).round(6)
    return Predictions(preds.image_keys, preds.image_pos, preds.labels, scores, boxes.round(3),
                       preds.lines, source=f"model_{seed}")


def plain_loop(inputs: list[Predictions], sizes: dict, config: EnsembleConfig) -> tuple[int, float]:
    """The peer: ensemble-boxes image by image in one process, as a notebook would call it."""
    import ensemble_boxes

    started = time.perf_counter()
    per_image = []
    for preds in inputs:
        order = np.argsort(preds.image_pos, kind="stable")
        bounds = np.searchsorted(preds.image_pos[order], np.arange(len(preds.image_keys) + 1))
        per_image.append({k: order[bounds[i]:bounds[i + 1]] for i, k in enumerate(preds.image_keys.tolist())})
    n_boxes = 0
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for key in per_image[0]:
            w, h = sizes[key]
            scale = np.array([w, h, w, h])
            boxes = [p.boxes_xyxy[idx[key]] / scale for p, idx in zip(inputs, per_image)]
            scores = [p.scores[idx[key]] for p, idx in zip(inputs, per_image)]
            labels = [p.labels[idx[key]] for p, idx in zip(inputs, per_image)]
            if config.method == "wbf":
                out = ensemble_boxes.weighted_boxes_fusion(boxes, scores, labels, iou_thr=config.iou_thr,
                                                           conf_type=config.conf_type)
            elif config.method == "nms":
                out = ensemble_boxes.nms(boxes, scores, labels, iou_thr=config.iou_thr)
            elif config.method == "nmw":
                out = ensemble_boxes.non_maximum_weighted(boxes, scores, labels, iou_thr=config.iou_thr)
            else:
                out = ensemble_boxes.soft_nms(boxes, scores, labels, sigma=config.sigma)
            n_boxes += len(out[1])
    return n_boxes, time.perf_counter() - started


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the worker processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def system_seconds() -> float:
    """The kernel's part of cpu_seconds (page faults: first touches of fresh memory)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "bench" / "data" / "competition")
    parser.add_argument("--methods", nargs="+", default=["wbf", "nms", "soft_nms", "nmw"])
    parser.add_argument("--no-peer", action="store_true", help="skip the single-process plain loop")
    parser.add_argument("--no-sweep", action="store_true", help="skip the 25-variant sweep")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    paths = ensure_inputs(args.data)
    dataset = load_coco(args.data / "train.json")
    started = time.perf_counter()
    inputs = [read_submission(p, dataset=dataset) for p in paths]
    read_s = time.perf_counter() - started
    n_in = [len(p) for p in inputs]
    print(f"inputs: {', '.join(f'{p.name} {n:,}' for p, n in zip(paths, n_in))} boxes; "
          f"{len(inputs[0].image_keys):,} images; read in {read_s:.1f} s")
    sizes = dict(zip(dataset.images["file_name"], dataset.images[["width", "height"]].to_numpy().tolist()))

    peer_seconds = {}
    for method in args.methods:
        config = EnsembleConfig(method, iou_thr=0.6 if method == "nms" else 0.55)
        # compile both sides' numba kernels first, so neither pays for it in the timing
        first_image = [Predictions(p.image_keys[:1], p.image_pos[p.image_pos == 0], p.labels[p.image_pos == 0],
                                   p.scores[p.image_pos == 0], p.boxes_xyxy[p.image_pos == 0], p.lines[:1],
                                   source=p.source) for p in inputs]
        ensemble_predictions(first_image, config, dataset=dataset, workers=1)
        if not args.no_peer:
            plain_loop(first_image, sizes, config)
        started, cpu_started, sys_started = time.perf_counter(), cpu_seconds(), system_seconds()
        result = ensemble_predictions(inputs, config, dataset=dataset, workers=args.workers)
        ens_s = time.perf_counter() - started
        ens_cpu = cpu_seconds() - cpu_started
        ens_sys = system_seconds() - sys_started
        out = io.StringIO()
        started = time.perf_counter()
        write_submission(result.predictions, out)
        write_s = time.perf_counter() - started
        total = read_s + ens_s + write_s
        line = (f"{config.label:<22} detlens: ensemble {ens_s:5.2f} s wall ({ens_cpu:5.2f} s CPU, "
                f"{ens_sys:4.2f} s of it system), "
                f"read+ensemble+write {total:5.1f} s ({len(result.predictions):,} boxes)")
        if not args.no_peer:
            cpu_started, sys_started = cpu_seconds(), system_seconds()
            n_peer, peer_s = plain_loop(inputs, sizes, config)
            peer_cpu = cpu_seconds() - cpu_started
            peer_sys = system_seconds() - sys_started
            peer_seconds[method] = peer_s
            line += (f"; ensemble-boxes {peer_s:5.1f} s wall ({peer_cpu:5.1f} s CPU, {peer_sys:4.2f} s of it "
                     f"system, {n_peer:,} boxes): "
                     f"{peer_s / ens_s:.1f}x faster wall, {peer_cpu / max(ens_cpu, 1e-9):.1f}x CPU")
        print(line, flush=True)

    if not args.no_sweep:
        grid = sweep_grid()
        started, cpu_started = time.perf_counter(), cpu_seconds()
        sweep = run_sweep(inputs, dataset, grid, names=[p.name for p in paths], workers=args.workers)
        sweep_s = time.perf_counter() - started
        sweep_cpu = cpu_seconds() - cpu_started
        ens_total = float(sweep.table["seconds"].sum())
        line = (f"sweep of {len(grid)} variants (ensemble + evaluate each, 3 inputs scored too): "
                f"{sweep_s:5.1f} s wall ({sweep_cpu:5.1f} s CPU), of which ensembling {ens_total:5.1f} s; "
                f"best {sweep.best.label}")
        if set(peer_seconds) == {c.method for c in grid}:
            # one ensemble-boxes run per variant, at this run's per-method time
            peer_total = sum(peer_seconds[c.method] for c in grid)
            line += (f"; ensemble-boxes would spend ~{peer_total:,.0f} s ensembling alone "
                     f"(estimated: {len(grid)} x this run's per-method times), "
                     f"{peer_total / ens_total:.0f}x the kernels")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
