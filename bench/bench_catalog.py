"""Benchmark the submission catalog at competition scale (4,883 images, ~488,000 boxes per model).

    python bench/bench_catalog.py [--postgres URL] [--skip-hotcoco] [--repeats 3]

Prints, measured in this run on the same files:
- first evaluation (GT json + CSV in, evaluated, registered with its compressed bytes, results
  cached) against reopening it from the store (a fresh connection, the file hashed, the cached
  numbers read) and listing the Submissions table; on SQLite, and on PostgreSQL with --postgres;
- the paired bootstrap of mAP@0.5 (1,000 resamples, two models); and both DetLens and hotcoco's
  compare(..., n_bootstrap=100) on the same files (hotcoco's covers all 12 stats; at 1,000 it
  took 554 s on this machine, so the peer row uses 100).
Data comes from bench/make_competition_scale.py (generated when missing).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.catalog.bootstrap import paired_bootstrap  # noqa: E402
from core.catalog.results import result_payload  # noqa: E402
from core.catalog.service import cached_result, file_sha256, register_predictions_file  # noqa: E402
from core.catalog.store import Catalog  # noqa: E402
from core.dataset import load_coco  # noqa: E402
from core.evaluation import evaluate  # noqa: E402
from core.prediction_files import load_predictions  # noqa: E402

DATA = REPO / "bench" / "data" / "competition"
PEER_RESAMPLES = 100


def ensure_data() -> tuple[Path, Path, Path]:
    gt, a, b = DATA / "train.json", DATA / "submission.csv", DATA / "model_b.csv"
    if not gt.exists() or not a.exists():
        subprocess.run([sys.executable, str(REPO / "bench" / "make_competition_scale.py"), "--out", str(DATA)], check=True)
    if not b.exists():
        subprocess.run([sys.executable, str(REPO / "bench" / "make_competition_scale.py"), "--out", str(DATA),
                        "--pred-seed", "2", "--pred-name", "model_b.csv"], check=True)
    return gt, a, b


def first_and_reopen(url: str, gt_path: Path, pred_path: Path) -> tuple[float, float, float]:
    """(first evaluation + registration, reopen from the cache, list) in seconds."""
    start = time.perf_counter()
    catalog = Catalog(url)
    dataset = load_coco(gt_path)
    data = pred_path.read_bytes()
    preds = load_predictions(data, dataset=dataset, name=pred_path.name)
    ev = evaluate(dataset, preds)
    sub, _ = register_predictions_file(catalog, data, pred_path.name, preds)
    gt_key = file_sha256(gt_path)
    catalog.save_result(gt_key, sub.sha256, 0.5, result_payload(ev), gt_name=gt_path.name)
    first = time.perf_counter() - start
    catalog.close()

    start = time.perf_counter()
    catalog = Catalog(url)
    payload = cached_result(catalog, file_sha256(gt_path), file_sha256(pred_path), 0.5)
    reopen = time.perf_counter() - start
    assert payload["stats"]["map50"] == ev.stats["map50"]
    start = time.perf_counter()
    catalog.list()
    catalog.results_for(gt_key, 0.5)
    listing = time.perf_counter() - start
    catalog.close()
    return first, reopen, listing


def hotcoco_bootstrap(gt_path: Path, preds: list, dataset) -> float:
    import hotcoco

    from core.formats import coco_results

    doc = json.loads(gt_path.read_text())
    for ann in doc["annotations"]:
        ann["id"] += 1  # its id-0 rule is pycocotools'
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "gt.json").write_text(json.dumps(doc))
        gt = hotcoco.COCO(str(Path(tmp) / "gt.json"))
        evs = []
        for i, p in enumerate(preds):
            path = Path(tmp) / f"{i}.json"
            path.write_text(json.dumps(coco_results(p, dataset)[0]))
            with contextlib.redirect_stdout(io.StringIO()):
                ev = hotcoco.COCOeval(gt, gt.loadRes(str(path)), "bbox")
                ev.evaluate()
                ev.accumulate()
            evs.append(ev)
        start = time.perf_counter()
        hotcoco.compare(evs[0], evs[1], n_bootstrap=PEER_RESAMPLES)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=None, metavar="URL", help="an empty PostgreSQL database to use too")
    parser.add_argument("--skip-hotcoco", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    gt_path, a_path, b_path = ensure_data()

    stores = {"sqlite": None}
    if args.postgres:
        stores["postgresql"] = args.postgres
    for name, url in stores.items():
        rows = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                if url is None:
                    rows.append(first_and_reopen(f"sqlite:///{tmp}/c.sqlite", gt_path, a_path))
                else:
                    rows.append(first_and_reopen(url, gt_path, a_path))
                    _empty_postgres(url)
        first, reopen, listing = (sorted(col) for col in zip(*rows))
        print(f"{name}: first evaluation + registration {first[0]:.2f}-{first[-1]:.2f} s · reopen from the cache "
              f"{reopen[0] * 1000:.0f}-{reopen[-1] * 1000:.0f} ms ({first[0] / reopen[-1]:.0f}-"
              f"{first[-1] / reopen[0]:.0f}x faster) · Submissions table query {listing[0] * 1000:.0f}-"
              f"{listing[-1] * 1000:.0f} ms")

    dataset = load_coco(gt_path)
    preds = [load_predictions(p, dataset=dataset) for p in (a_path, b_path)]
    evs = [evaluate(dataset, p) for p in preds]
    paired_bootstrap(evs[0], evs[1], n_resamples=20)  # compiled kernel loaded (numba cache) before timing
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = paired_bootstrap(evs[0], evs[1], n_resamples=1000)
        times.append(time.perf_counter() - start)
    print(f"paired bootstrap, 1,000 resamples, {len(dataset.images):,} images, {len(preds[0]):,} + {len(preds[1]):,} "
          f"boxes: {min(times):.2f}-{max(times):.2f} s (target < 5 s) · {result.sentence('submission', 'model_b')}")
    if not args.skip_hotcoco:  # hotcoco needs ~9 min for 1,000 here: both sides at PEER_RESAMPLES
        start = time.perf_counter()
        paired_bootstrap(evs[0], evs[1], n_resamples=PEER_RESAMPLES)
        ours = time.perf_counter() - start
        peer = hotcoco_bootstrap(gt_path, preds, dataset)
        print(f"{PEER_RESAMPLES} resamples, same files: DetLens paired_bootstrap (mAP@0.5) {ours:.2f} s vs hotcoco "
              f"compare(n_bootstrap={PEER_RESAMPLES}) (all 12 stats) {peer:.2f} s ({peer / ours:.0f}x)")


def _empty_postgres(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for table in ("detlens_results", "detlens_submissions", "detlens_schema"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


if __name__ == "__main__":
    main()
