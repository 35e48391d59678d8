"""How many injected label errors DetLens' suspects find, against cleanlab's ObjectLab scores alone.

    python bench/bench_label_issues.py [--per-kind 20] [--seeds 0 1 2]

core.label_noise drops, relabels, shifts and duplicates `--per-kind` boxes each of a ground
truth; the predictions see the real objects (the noise is put in the labels after the model was
made). Settings: sample_data/train.json (clean by construction) with the simulator's STRONG
model run on the clean labels, and with the demo FCOS model's CSV (trained on the clean labels;
90 of its 100 images are in-sample); the real fold3_gt.json (4x as many errors) with the DETA
Swin-L out-of-fold predictions; its own label errors are found too and count as false alarms.
For each kind K with n injected errors: R@2n, the share of them in the top 2n suspects of kind
K, and P@50, the share of the top 50 suspects of kind K that are injected errors (at most
n/50). "all": the whole ranking, top 2N and top 50. Rows: DetLens (rules + cleanlab blended,
the shipped ranking), DetLens' rules alone, cleanlab alone with its defaults, and cleanlab
alone with its confidence threshold lowered to 0.5. Means over seeds. Also: the time of one
find_label_issues call next to cleanlab's scoring of the same boxes, and what the fixes are
worth: mAP@0.5 of another model (the demo FCOS) on the clean, noisy and reviewed labels.
CLEANLAB_WEIGHT (0.1) was chosen here from 0, 0.1, 0.2, 0.3: differences of at most 0.02.
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
from core.label_noise import found_shares, inject_label_noise, match_truth  # noqa: E402
from core.review import ACCEPT, apply_decisions, decide  # noqa: E402
from core.prediction_files import load_predictions  # noqa: E402
from core.simulate import STRONG, simulate_predictions  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


REAL = Path(__file__).resolve().parents[2] / "shared" / "real-trash"


def settings(per_kind: int):
    """(name, clean COCO dict, clean Dataset, predictions maker(seed), errors per kind) to measure on."""
    clean_doc = json.loads((SAMPLE / "train.json").read_text())
    clean = load_coco(SAMPLE / "train.json")
    yield ("sample + simulated STRONG", clean_doc, clean,
           lambda seed: simulate_predictions(clean, STRONG, seed=100 + seed), per_kind)
    yield ("sample + demo FCOS (90% in-sample)", clean_doc, clean,
           lambda seed: load_predictions(SAMPLE / "predictions_trained_fcos.csv", dataset=clean), per_kind)
    if (REAL / "fold3_gt.json").exists():
        fold_doc = json.loads((REAL / "fold3_gt.json").read_text())
        fold = load_coco(REAL / "fold3_gt.json")
        preds = load_predictions(REAL / "fold3_deta_swinL.csv", dataset=fold)
        yield ("real fold3 + DETA Swin-L (out of fold; its own label errors count as false alarms)",
               fold_doc, fold, lambda seed: preds, per_kind * 4)


def oracle_fixed(noisy_doc: dict, suspects, truth) -> dict:
    """The noisy ground truth after a reviewer who accepts every suspect in the top 2N that finds an
    injected error and rejects the rest (the fixes suggested by the suspects, not the truth)."""
    top = suspects.head(2 * len(truth))
    found = match_truth(top, truth)
    decisions = {r["suspect_id"]: decide(r, ACCEPT) for r, f in zip(top.to_dict(orient="records"), found) if f >= 0}
    fixed, _, problems = apply_decisions(noisy_doc, decisions)
    assert not any(p.is_error for p in problems), problems
    return fixed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    fcos = SAMPLE / "predictions_trained_fcos.csv"
    for setting, clean_doc, clean, make, n in settings(args.per_kind):
        results: dict[str, list[dict]] = {}
        timings, worth = [], []
        for seed in args.seeds:
            noisy_doc, truth = inject_label_noise(clean_doc, n_drop=n, n_swap=n, n_shift=n, n_duplicate=n, seed=seed)
            noisy = load_coco(json.dumps(noisy_doc).encode(), name="noisy.json")
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
            if setting.startswith("sample + simulated"):  # the fixes judged by another model: the demo FCOS
                fixed = load_coco(json.dumps(oracle_fixed(noisy_doc, shipped, truth)).encode(), name="fixed.json")
                judge = load_predictions(fcos, dataset=clean)
                worth.append([evaluate(gt, judge).stats["map50"] for gt in (clean, noisy, fixed)])
        print(f"\n== {setting}: {len(clean.annotations)} boxes, {n} drop / swap / shift / duplicate per seed, "
              f"seeds {args.seeds} ==")
        heads = [k.value for k in SUSPECT_KINDS] + ["all"]
        print(f"{'R@2n / P@50':32s}" + "".join(f"{h:>22s}" for h in heads))
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
        if worth:
            w = np.array(worth)
            print("mAP@0.5 of the demo FCOS model (not the one that found the suspects) on the clean / noisy / "
                  "reviewed labels (the true suspects of the top 2N accepted): "
                  + " / ".join(f"{w[:, k].min():.4f}-{w[:, k].max():.4f}" for k in range(3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
