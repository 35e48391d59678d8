"""Model loading and inference: the bundled demo checkpoint, checkpoint formats, clear errors, `infer`."""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import urllib.error

import numpy as np
import pandas as pd
import pytest
import torch

from core import models
from core.boxes import box_iou
from core.cli import main
from core.dataset import load_coco
from core.evaluation import evaluate
from core.inference import (CheckpointError, dataset_image_items, load_detector, load_pretrained_detector,
                            pick_device, predict_image, predict_images, read_checkpoint)
from core.submission import read_submission
from tests.conftest import REAL_TRASH, REPO, SAMPLE, need

DEMO = SAMPLE / "demo_model.pt"
IMAGE = "train/0009.jpg"  # image id 9: held out of the demo model's training (every 10th image)


@pytest.fixture(scope="module")
def sample():
    return load_coco(SAMPLE / "train.json")


@pytest.fixture(scope="module")
def demo(sample):
    return load_detector(DEMO, categories=sample.categories, device="cpu")


@pytest.fixture(scope="module")
def demo_state():
    return read_checkpoint(DEMO).state_dict


@pytest.fixture(scope="module")
def reference_detections(demo):
    return predict_image(demo, SAMPLE / IMAGE, score_thr=0.05)


def gt_of(dataset, file_name):
    index = int(dataset.image_index_of_file([file_name])[0])
    anns = dataset.annotations[dataset.annotations["image_index"] == index]
    return anns[["x1", "y1", "x2", "y2"]].to_numpy(), anns["category_id"].to_numpy()


class TestDemoCheckpoint:
    def test_is_small_and_records_what_it_is(self, sample):
        assert DEMO.stat().st_size < 10 * 2**20
        meta = read_checkpoint(DEMO).meta
        assert meta["arch"] == models.DEMO_ARCH
        assert meta["category_ids"] == sample.category_ids.tolist()
        assert meta["category_names"] == sample.categories["name"].tolist()
        assert meta["input_size"] > 0

    def test_loads_without_arch_or_dataset(self, sample):
        detector = load_detector(DEMO, device="cpu")  # everything from the checkpoint itself
        assert detector.arch == models.DEMO_ARCH
        assert detector.category_ids.tolist() == sample.category_ids.tolist()
        assert not detector.model.training and detector.warnings == []

    def test_finds_most_boxes_on_a_held_out_sample_image(self, sample, reference_detections):
        assert 9 in read_checkpoint(DEMO).meta["train"]["holdout_image_ids"]
        gt_boxes, gt_labels = gt_of(sample, IMAGE)
        dets = reference_detections.above(0.3)
        iou = box_iou(gt_boxes, dets.boxes_xyxy)  # [G, D]
        same_class = gt_labels[:, None] == dets.labels[None, :]
        found = ((iou >= 0.5) & same_class).any(axis=1)
        assert len(gt_boxes) >= 5
        assert found.mean() >= 0.7, (found, dets.labels, dets.scores)
        # and the confident boxes are mostly right, not a carpet of guesses
        confident = dets.scores >= 0.5
        hit = ((iou >= 0.5) & same_class).any(axis=0)
        assert confident.sum() >= 1 and hit[confident].mean() >= 0.75

    def test_boxes_are_in_original_pixels_and_sorted(self, reference_detections):
        dets = reference_detections
        assert (dets.width, dets.height) == (1024, 1024)
        assert dets.boxes_xyxy.max() > 400  # the model sees 320 px; boxes come back at 1024
        assert (dets.boxes_xyxy[:, 2] > dets.boxes_xyxy[:, 0]).all()
        assert (dets.boxes_xyxy >= 0).all() and (dets.boxes_xyxy <= 1024).all()
        assert (np.diff(dets.scores) <= 0).all() and dets.scores.min() >= 0.05
        assert set(dets.labels.tolist()) <= set(range(10))

    def test_bundled_csv_is_this_models_output_with_the_recorded_map(self, sample, reference_detections):
        preds = read_submission(SAMPLE / "predictions_trained_fcos.csv", dataset=sample)
        assert not preds.problems and preds.image_keys.tolist() == sample.images["file_name"].tolist()
        rows = preds.image_pos == preds.image_keys.tolist().index(IMAGE)
        np.testing.assert_allclose(preds.boxes_xyxy[rows], reference_detections.boxes_xyxy, atol=0.05)
        np.testing.assert_array_equal(preds.labels[rows], reference_detections.labels)
        recorded = read_checkpoint(DEMO).meta["train"]
        assert recorded["map50_all"] >= 0.5 and recorded["map50_holdout"] >= 0.5
        # pycocotools' figure in the checkpoint, DetLens's evaluator on the CSV: the same number
        assert evaluate(sample, preds).stats["map50"] == pytest.approx(recorded["map50_all"], abs=1e-4)

    def test_non_contiguous_category_ids_map_by_order(self, sample, reference_detections):
        categories = sample.categories.assign(id=sample.categories["id"] * 10 + 7)
        detector = load_detector(DEMO, categories=categories, device="cpu")
        dets = predict_image(detector, SAMPLE / IMAGE, score_thr=0.05)
        np.testing.assert_array_equal(dets.labels, reference_detections.labels * 10 + 7)


class TestCheckpointFormats:
    """The same weights saved the ways training scripts save them give the same detections."""

    @pytest.mark.parametrize("wrap", ["bare", "state_dict", "model_state_dict+module", "frozen_bn"])
    def test_loads(self, tmp_path, wrap, demo_state, sample, reference_detections):
        state = {k: v.float() if v.is_floating_point() else v for k, v in demo_state.items()}
        if wrap == "frozen_bn":  # FrozenBatchNorm2d has no num_batches_tracked
            saved = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
        elif wrap == "state_dict":
            saved = {"epoch": 12, "state_dict": state, "optimizer": {"lr": 0.01}}
        elif wrap == "model_state_dict+module":
            saved = {"model_state_dict": {f"module.{k}": v for k, v in state.items()}}
        else:
            saved = state
        path = tmp_path / "ckpt.pth"
        torch.save(saved, path)
        # no arch recorded: guessed from the keys; input size given as the demo's
        size = read_checkpoint(DEMO).meta["input_size"]
        detector = load_detector(path, categories=sample.categories, device="cpu", input_size=size)
        assert detector.arch == models.DEMO_ARCH
        dets = predict_image(detector, SAMPLE / IMAGE, score_thr=0.05)
        np.testing.assert_allclose(dets.boxes_xyxy, reference_detections.boxes_xyxy, atol=0.05)
        np.testing.assert_array_equal(dets.labels, reference_detections.labels)

    def test_uploaded_bytes(self, sample):
        detector = load_detector(DEMO.read_bytes(), categories=sample.categories, device="cpu", name="up.pt")
        assert detector.source == "up.pt" and detector.arch == models.DEMO_ARCH


class TestCheckpointErrors:
    def test_corrupt_file(self, tmp_path):
        path = tmp_path / "bad.pt"
        path.write_bytes(os.urandom(4096))
        with pytest.raises(CheckpointError, match=r"bad\.pt: not a readable PyTorch checkpoint"):
            read_checkpoint(path)

    def test_truncated_file(self, tmp_path):
        path = tmp_path / "half.pt"
        path.write_bytes(DEMO.read_bytes()[:100_000])
        with pytest.raises(CheckpointError, match=r"half\.pt: not a readable PyTorch checkpoint.*failed reading zip"):
            read_checkpoint(path)

    def test_empty_and_missing_files(self, tmp_path):
        (tmp_path / "empty.pt").write_bytes(b"")
        with pytest.raises(CheckpointError, match="empty.pt: the file is empty"):
            read_checkpoint(tmp_path / "empty.pt")
        with pytest.raises(CheckpointError, match="no such checkpoint file"):
            read_checkpoint(tmp_path / "nope.pt")
        with pytest.raises(CheckpointError, match="is a folder; give the checkpoint file in it"):
            read_checkpoint(tmp_path)

    @pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
    def test_pickle_that_would_run_code_is_refused(self, tmp_path, writer):
        marker = tmp_path / "pwned"

        class RunsCode:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        path = tmp_path / "evil.pt"
        if writer == "torch.save":
            torch.save({"model": RunsCode()}, path)
        else:
            path.write_bytes(pickle.dumps(RunsCode(), protocol=4))
        with pytest.raises(CheckpointError, match=r"evil\.pt: refused for safety: loading it would import "
                                                   r"and call (posix|os|nt)\.system"):
            load_detector(path, device="cpu")
        assert not marker.exists()

    def test_whole_pickled_model_is_refused(self, tmp_path, demo):
        path = tmp_path / "whole.pt"
        torch.save(demo.model, path)  # torch.save(model) instead of its state_dict
        with pytest.raises(CheckpointError, match=r"refused for safety: .*torchvision\.models\.detection"):
            read_checkpoint(path)

    def test_another_architecture(self, tmp_path, sample):
        # a Faster R-CNN MobileNet checkpoint's keys (tiny tensors: the keys are what is checked)
        state = {k: torch.zeros(1) for k in models.state_dict_shapes("fasterrcnn_mobilenet_v3_large_fpn")}
        path = tmp_path / "frcnn.pth"
        torch.save(state, path)
        with pytest.raises(CheckpointError) as info:
            load_detector(path, arch=models.DEMO_ARCH, categories=sample.categories, device="cpu")
        message = str(info.value)
        assert f"frcnn.pth: not a {models.DEMO_ARCH} checkpoint" in message
        assert "missing" in message and "unexpected" in message and "roi_heads.box_head.* x4" in message
        assert ("It looks like fasterrcnn_mobilenet_v3_large_fpn or fasterrcnn_mobilenet_v3_large_320_fpn "
                "(100% of keys shared)") in message

    def test_demo_checkpoint_as_another_architecture(self, sample):
        with pytest.raises(CheckpointError, match=r"not a fasterrcnn_resnet50_fpn checkpoint: \d+ key\(s\) .*"
                                                  r"missing, \d+ key\(s\) .*unexpected\. The checkpoint says "
                                                  rf"it is {models.DEMO_ARCH}"):
            load_detector(DEMO, arch="fasterrcnn_resnet50_fpn", categories=sample.categories, device="cpu")

    def test_another_class_count(self, sample):
        five = sample.categories.head(5)
        with pytest.raises(CheckpointError, match=r"wrong class count: the checkpoint has 11 classes "
                                                  r"\(10 \+ background\), the dataset needs 6 "
                                                  r"\(5 categories \+ background\)"):
            load_detector(DEMO, categories=five, device="cpu")

    def test_trained_without_background_class(self, sample):
        # 11 categories need 11 + 1 outputs; the demo's 11 look like a model without background
        eleven = pd.concat([sample.categories, pd.DataFrame({"id": [10], "name": ["Extra"]})])
        with pytest.raises(CheckpointError, match=r"has 11 classes .* needs 12 .*without a background class"):
            load_detector(DEMO, categories=eleven, device="cpu")

    def test_tensor_of_another_shape(self, tmp_path, demo_state, sample):
        state = dict(demo_state)
        state["backbone.body.layer2.0.weight"] = torch.zeros(32, 32, 3, 3)
        with pytest.raises(CheckpointError, match=r"weights do not fit fcos_tiny_fpn: 1 tensor\(s\) of another "
                                                  r"shape .*backbone\.body\.layer2\.0\.weight"):
            load_detector(_saved(tmp_path, state), categories=sample.categories, device="cpu")

    def test_no_weights_inside(self, tmp_path):
        path = tmp_path / "opt.pt"
        torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, path)
        with pytest.raises(CheckpointError, match=r"opt\.pt: holds no model weights: .*'epoch', 'optimizer'"):
            read_checkpoint(path)

    def test_unknown_architecture_name(self):
        with pytest.raises(ValueError, match="Unknown architecture 'yolo'. Known architectures: fasterrcnn_resnet50_fpn"):
            load_detector(DEMO, arch="yolo", device="cpu")

    def test_unrecognisable_keys_without_arch(self, tmp_path):
        with pytest.raises(CheckpointError, match="cannot tell the architecture.*Choose one"):
            load_detector(_saved(tmp_path, {"fc.weight": torch.zeros(2, 2)}), device="cpu")


def _saved(tmp_path, obj, name="ckpt.pt"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


class TestPredictImages:
    def test_batch_progress_and_unreadable_image(self, demo, sample, tmp_path):
        items, problems = dataset_image_items(sample, limit=3)
        assert problems == [] and [k for k, _ in items] == sample.images["file_name"].tolist()[:3]
        broken = tmp_path / "broken.jpg"
        broken.write_bytes(b"not a jpeg")
        items = [items[0], ("train/broken.jpg", broken), items[1]]
        calls = []
        preds = predict_images(demo, items, score_thr=0.2, batch_size=2,
                               progress=lambda done, total: calls.append((done, total)))
        assert calls == [(2, 3), (3, 3)]
        assert preds.image_keys.tolist() == [items[0][0], items[2][0]]
        assert [p.image_id for p in preds.problems] == ["train/broken.jpg"]
        assert "not a readable image" in preds.problems[0].message and preds.has_errors
        assert preds.scores.min() >= 0.2 and len(preds.image_pos) == len(preds)
        first = predict_image(demo, items[0][1], score_thr=0.2)
        np.testing.assert_allclose(preds.boxes_xyxy[preds.image_pos == 0], first.boxes_xyxy, atol=0.05)

    def test_path_outside_the_dataset_is_not_read(self, sample):
        escaping = sample.images.copy()
        escaping.loc[0, "file_name"] = "../../etc/passwd"
        dataset = type(sample)(images=escaping, annotations=sample.annotations, categories=sample.categories,
                               source="train.json", root=sample.root)
        items, problems = dataset_image_items(dataset, limit=2)
        assert len(items) == 1 and problems[0].image_id == "../../etc/passwd"
        assert "points outside the dataset folder" in problems[0].message

    def test_device_is_cuda_when_available(self, monkeypatch):
        assert pick_device() == ("cuda" if torch.cuda.is_available() else "cpu")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert pick_device() == "cuda"


class TestInferCli:
    def test_writes_a_valid_submission(self, tmp_path, capsys, sample):
        out = tmp_path / "pred.csv"
        code = main(["infer", "--checkpoint", str(DEMO), "--data", str(SAMPLE), "--split", "train",
                     "--out", str(out), "--limit", "2", "--score-threshold", "0.1"])
        printed = capsys.readouterr().out
        assert code == 0, printed
        assert f"wrote {out}: 2 images" in printed
        preds = read_submission(out, dataset=sample)
        assert not preds.has_errors, preds.problems
        assert preds.image_keys.tolist() == sample.images["file_name"].tolist()[:2]
        assert len(preds) > 0 and preds.scores.min() >= 0.1

    def test_images_from_a_folder_without_json(self, tmp_path, capsys):
        data = tmp_path / "data"
        (data / "test").mkdir(parents=True)
        shutil.copy(SAMPLE / "train.json", data / "train.json")  # categories only
        for name in ["0001.jpg", "0000.jpg"]:
            shutil.copy(SAMPLE / "train" / name, data / "test" / name)
        out = tmp_path / "sub" / "test.csv"
        assert main(["infer", "--checkpoint", str(DEMO), "--data", str(data), "--out", str(out)]) == 0
        preds = read_submission(out)
        assert preds.image_keys.tolist() == ["test/0000.jpg", "test/0001.jpg"] and not preds.has_errors

    def test_real_test_json_with_missing_images(self, tmp_path, capsys):
        # the real competition test.json; of its first three images only test/0001.jpg is shipped
        test_json = need(REAL_TRASH / "test.json")
        need(REAL_TRASH / "test" / "0001.jpg")
        out = tmp_path / "real.csv"
        code = main(["infer", "--checkpoint", str(DEMO), "--data", str(REAL_TRASH), "--split", "test",
                     "--out", str(out), "--limit", "3"])
        printed = capsys.readouterr().out
        assert code == 1
        assert "error: image_id 'test/0000.jpg': image file not found" in printed
        assert "2 image(s) could not be predicted and are missing from" in printed
        preds = read_submission(out, dataset=load_coco(test_json))
        assert preds.image_keys.tolist() == ["test/0001.jpg"] and not preds.has_errors

    def test_bad_checkpoint_exits_1_with_the_reason(self, tmp_path, capsys):
        bad = tmp_path / "bad.pt"
        bad.write_bytes(b"\x80\x02garbage")
        code = main(["infer", "--checkpoint", str(bad), "--data", str(SAMPLE), "--split", "train",
                     "--out", str(tmp_path / "p.csv"), "--limit", "1"])
        printed = capsys.readouterr().out
        assert code == 1 and "error: bad.pt: not a readable PyTorch checkpoint" in printed
        assert not (tmp_path / "p.csv").exists()

    def test_missing_split_exits_1(self, tmp_path, capsys):
        code = main(["infer", "--checkpoint", str(DEMO), "--data", str(tmp_path), "--out", str(tmp_path / "p.csv")])
        assert code == 1 and "has neither test.json nor a test/ folder" in capsys.readouterr().out

    @pytest.mark.parametrize("option", ["--limit", "--batch-size", "--input-size"])
    def test_counts_below_1_are_refused(self, tmp_path, capsys, option):
        code = main(["infer", "--checkpoint", str(DEMO), "--data", str(SAMPLE), "--split", "train",
                     "--out", str(tmp_path / "p.csv"), option, "0"])
        assert code == 1 and f"error: {option} 0: must be at least 1" in capsys.readouterr().out
        assert not (tmp_path / "p.csv").exists()

    def test_missing_data_folder_exits_1(self, tmp_path, capsys):
        code = main(["infer", "--checkpoint", str(DEMO), "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "p.csv")])
        assert code == 1 and "nope: no such folder" in capsys.readouterr().out

    def test_dashboard_modules_do_not_import_torch(self):
        code = ("import sys, core.models, core.inference, core.cli.infer; "
                "assert 'torch' not in sys.modules, 'torch imported'")
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


class TestPretrainedWeights:
    def test_offline_gives_a_reason(self, tmp_path, monkeypatch):
        monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

        def no_network(*args, **kwargs):
            raise urllib.error.URLError("[Errno -2] Name or service not known")

        monkeypatch.setattr(torch.hub, "urlopen", no_network)
        reason = models.pretrained_unavailable_reason("fasterrcnn_resnet50_fpn")
        assert "not in the local cache" in reason and "needs internet" in reason
        with pytest.raises(RuntimeError, match=r"unavailable offline: torchvision's COCO weights for "
                                               r"fasterrcnn_resnet50_fpn could not be loaded .*Name or service"):
            load_pretrained_detector("fasterrcnn_resnet50_fpn", device="cpu")

    def test_demo_architecture_has_none(self):
        assert "no torchvision pretrained weights" in models.pretrained_unavailable_reason(models.DEMO_ARCH)
