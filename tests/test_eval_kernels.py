"""The ahead-of-time build of the kernels computes exactly what numba's JIT computes."""
from __future__ import annotations

import numpy as np

from core import kernel_build, matching_kernels
from core.evaluation import _gt_arrays, _known_predictions
from core.metrics import COCO_AREA_RANGES, COCO_IOU_THRS, COCO_RECALL_THRS
from tests.eval_support import dataset_of, fresh_kernels, predictions_of, random_case


def test_ahead_of_time_build_equals_jit(tmp_path, monkeypatch):
    assert kernel_build.load_built(tmp_path) is None
    # first use builds the kernels where they are missing
    monkeypatch.setattr(kernel_build, "default_build_dir", lambda: tmp_path)
    monkeypatch.delenv("DETLENS_KERNELS", raising=False)
    built = fresh_kernels()
    assert built is not matching_kernels and built.__name__ == kernel_build.module_name()
    assert kernel_build.load_built(tmp_path) is not None

    doc, *arrays = random_case(4, n_images=25, crowd_rate=0.1)
    dataset = dataset_of(doc)
    det, _, _ = _known_predictions(dataset, predictions_of(dataset, *arrays))
    gt = _gt_arrays(dataset)
    order = np.argsort(gt.image, kind="stable")
    args = (np.searchsorted(det.image, np.arange(len(dataset.images) + 1)), det.cls, det.score, det.xywh,
            np.searchsorted(gt.image[order], np.arange(len(dataset.images) + 1)), gt.cls[order], gt.xywh[order],
            gt.crowd[order], gt.area[order], 0.5, 0.1, COCO_IOU_THRS, COCO_AREA_RANGES, 100)
    jit, aot = matching_kernels.match_images(*args), built.match_images(*args)
    for a, b in zip(jit, aot):
        np.testing.assert_array_equal(a, b)
    rank, coco, never = jit[0], jit[8], jit[9]
    class_order = np.lexsort((np.arange(len(det.score)), -det.score, det.cls))
    acc_args = (coco[class_order], never[class_order],
                np.searchsorted(det.cls[class_order], np.arange(len(doc["categories"]) + 1)), rank[class_order],
                np.array([1, 10, 100]), np.full((len(doc["categories"]), 4), 5, np.int64), COCO_RECALL_THRS)
    for a, b in zip(matching_kernels.accumulate(*acc_args), built.accumulate(*acc_args)):
        np.testing.assert_array_equal(a, b)


def test_a_failed_build_falls_back_to_the_jit(tmp_path, monkeypatch):
    def no_compiler(folder):
        raise OSError("no C compiler")

    monkeypatch.setattr(kernel_build, "default_build_dir", lambda: tmp_path)
    monkeypatch.setattr(kernel_build, "build", no_compiler)
    monkeypatch.delenv("DETLENS_KERNELS", raising=False)
    assert fresh_kernels() is matching_kernels


def test_jit_forced_by_the_environment(monkeypatch):
    monkeypatch.setenv("DETLENS_KERNELS", "jit")
    monkeypatch.setattr(kernel_build, "build", lambda folder: (_ for _ in ()).throw(AssertionError("built")))
    assert fresh_kernels() is matching_kernels
