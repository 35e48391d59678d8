"""How many injected label errors DetLens' suspects find, against cleanlab's ObjectLab scores alone.

    python bench/bench_label_issues.py [--per-kind 20] [--seeds 0 1 2]

On sample_data/train.json (clean by construction), core.label_noise drops, relabels, shifts and
duplicates `--per-kind` boxes each; the model's predictions see the real objects (the noise is
put in the labels after the model was made): the simulator's STRONG model run on the clean
ground truth, and the demo FCOS model's CSV (trained on the clean labels; 90 of its 100 images
are in-sample). For each kind K with n injected errors: recall of them in the top 2n suspects
of kind K, and precision at 50 (share of the top 50 suspects of kind K that are injected
errors; at most n/50). "all": the whole ranking, top 2N and top 50. Rows: DetLens (rules +
cleanlab blended, the shipped ranking), DetLens' rules alone, cleanlab alone with its defaults,
and cleanlab alone with its confidence threshold lowered to 0.5. Averages over seeds; the time
of one find_label_issues call is printed next to cleanlab's scoring of the same boxes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.dataset import load_coco  # noqa: E402
from core.evaluation import evaluate  # noqa: E402
from core.label_issues import SUSPECT_KINDS, cleanlab_suspects, find_label_issues  # noqa: E402
from core.label_noise import found_shares, inject_label_noise  # noqa: E402
from core.predictions import load_predictions  # noqa: E402
from core.simulate import STRONG, simulate_predictions  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    clean_doc = json.loads((SAMPLE / "train.json").read_text())
    clean = load_coco(SAMPLE / "train.json")
    models = {"simulated STRONG": lambda seed: simulate_predictions(clean, STRONG, seed=100 + seed),
              "demo FCOS": lambda seed: load_predictions(SAMPLE / "predictions_trained_fcos.csv", dataset=clean)}
    n = args.per_kind
    print(f"sample_data/train.json: {len(clean.annotations)} boxes; injected per seed: {n} drop, {n} swap, "
          f"{n} shift, {n} duplicate; seeds {args.seeds}")
    for model_name, make in models.items():
        results: dict[str, list[dict]] = {}
        timings = []
        for seed in args.seeds:
            noisy_doc, truth = inject_label_noise(clean_doc, n_drop=n, n_swap=n, n_shift=n, n_duplicate=n, seed=seed)
            noisy = load_coco(json.dumps(noisy_doc).encode(), name="noisy train.json")
            preds = make(seed)
            ev = evaluate(noisy, preds, iou_thr=0.5)
            t0 = time.perf_counter()
            shipped = find_label_issues(noisy, preds, evaluation=ev).suspects
            t1 = time.perf_counter()
            rules = find_label_issues(noisy, preds, evaluation=ev, use_cleanlab=False).suspects
            t2 = time.perf_counter()
            cl_default = cleanlab_suspects(noisy, ev.dets, None)
            t3 = time.perf_counter()
            cl_low = cleanlab_suspects(noisy, ev.dets, 0.5)
            timings.append((t1 - t0, t2 - t1, t3 - t2))
            for name, table in (("DetLens (shipped)", shipped), ("DetLens rules alone", rules),
                                ("cleanlab alone (defaults)", cl_default), ("cleanlab alone (threshold 0.5)", cl_low)):
                results.setdefault(name, []).append(found_shares(table, truth))
        print(f"\n== {model_name} predictions ==   R@2n = recall in the top 2n of that kind; P@50")
        heads = [k.value for k in SUSPECT_KINDS] + ["all"]
        print(f"{'ranking':32s}" + "".join(f"{h:>22s}" for h in heads))
        for name, runs in results.items():
            cells = []
            for h in heads:
                r = np.mean([run[h][0] for run in runs])
                p = np.mean([run[h][1] for run in runs])
                cells.append(f"R {r:0.2f} / P {p:0.2f}")
            print(f"{name:32s}" + "".join(f"{c:>22s}" for c in cells))
        t = np.array(timings)
        print(f"time per run: find_label_issues {t[:, 0].min():.2f}-{t[:, 0].max():.2f} s (rules alone "
              f"{t[:, 1].min():.2f}-{t[:, 1].max():.2f} s), cleanlab's box scores alone {t[:, 2].min():.2f}-"
              f"{t[:, 2].max():.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
