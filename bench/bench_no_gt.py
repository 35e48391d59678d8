"""Test-set analysis figures (issue 12), each printed with its peer from the same run.

    python bench/bench_no_gt.py          # needs ../shared/real-trash

- agree on the real fold's TTA pair, against evaluating the same file on the real ground truth;
- the no-GT Overview computations on the real test submission, against loading it;
- the label-free threshold on the real fold (prior = its own GT), against the best-F1 threshold.
The machine is shared: run it a few times and report the range.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REAL = REPO.parent / "shared" / "real-trash"


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    from core.agreement import agreement
    from core.charts import best_f1_threshold
    from core.dataset import load_coco
    from core.evaluation import evaluate
    from core.no_gt import (ALL_CLASSES, boxes_per_image, class_mix, class_prior, images_without_boxes,
                            suggest_thresholds)
    from core.prediction_files import load_predictions

    fold = load_coco(REAL / "fold3_gt.json")
    base = load_predictions(REAL / "fold3_deta_swinL.csv", dataset=fold)
    hflip = load_predictions(REAL / "fold3_deta_swinL_hflip.csv", dataset=fold)
    evaluate(fold, base)  # compiled kernels loaded before any timing
    ag, t_agree = timed(lambda: agreement(base, hflip, ref_thr=0.5, dataset=fold))
    ev_h, t_eval = timed(lambda: evaluate(fold, hflip))
    ev_b = evaluate(fold, base)
    print(f"agree hflip vs base (pseudo GT: {len(ag.pseudo_gt.annotations):,} boxes >= 0.5): "
          f"{t_agree:.2f} s | peer: evaluate hflip on the real GT {t_eval:.2f} s")
    print(f"agreement mAP@0.5 {ag.map50:.4f} | peers: real mAP@0.5 base {ev_b.stats['map50']:.4f}, "
          f"hflip {ev_h.stats['map50']:.4f}")

    test = load_coco(REAL / "test.json")
    sub, t_load = timed(lambda: load_predictions(REAL / "test_submission_cascade.csv", dataset=test))
    prior = class_prior(fold)

    def overview():
        return (class_mix(sub, test, prior, 0.05), suggest_thresholds(sub, test, prior),
                boxes_per_image(sub, test, 0.05), images_without_boxes(sub, test, 0.05))

    (mix, table, _, empty), t_overview = timed(overview)
    overall = table[table["category_id"] == ALL_CLASSES].iloc[0]
    print(f"no-GT overview of the test submission ({len(sub):,} boxes): {t_overview * 1000:.0f} ms | "
          f"peer: loading it {t_load * 1000:.0f} ms")
    print(f"test submission: suggested overall threshold {overall['threshold']:.3f} keeps {overall['kept']:,} "
          f"boxes for {overall['expected']:,.0f} expected; {len(empty)} image(s) without a box >= 0.05")

    fold_table = suggest_thresholds(base, fold, prior)
    thr = float(fold_table.loc[fold_table["category_id"] == ALL_CLASSES, "threshold"].iloc[0])
    view = ev_b.at(thr)
    best = best_f1_threshold(ev_b.threshold_curve())
    best_view = ev_b.at(best)
    print(f"real fold, label-free threshold {thr:.3f}: P {view.precision:.3f} R {view.recall:.3f} "
          f"F1 {view.f1:.3f} | peer: best-F1 threshold {best:.3f}: F1 {best_view.f1:.3f}")


if __name__ == "__main__":
    main()
