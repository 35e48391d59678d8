"""The one image reader (issue 10, item 5 and the image parts of item 4): stored pixel grid,
EXIF rotation noted not applied, 16-bit scaled, a pixel limit checked before decoding, and a
warning when a file's size disagrees with the json."""
from __future__ import annotations

import io
import json
import shutil
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.cli import main
from core.images import MAX_PIXELS, MAX_PIXELS_ENV, image_size, read_image, size_mismatch
from core.inference import load_detector, predict_images
from core.submission import read_submission
from tests.conftest import REPO, SAMPLE
from ui import state as S

DEMO = SAMPLE / "demo_model.pt"


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (a decompression bomb's header)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    # signature (8) | length (4) | b"IHDR" | width (4) | height (4) | 5 more bytes | CRC (4)
    data[16:20], data[20:24] = width.to_bytes(4, "big"), height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


@pytest.fixture(scope="module")
def demo():
    return load_detector(DEMO, device="cpu")


@pytest.fixture
def stored_pixels() -> Image.Image:
    """A non-square crop of a sample image, so a rotation would change its size too."""
    with Image.open(SAMPLE / "train" / "0000.jpg") as image:
        return image.convert("RGB").crop((0, 0, 1024, 700))


def dataset_with(root: Path, files: dict[str, bytes | Image.Image], sizes: dict[str, tuple[int, int]]) -> Path:
    """root/train.json listing `files` (written under root) with the json sizes given."""
    categories = json.loads((SAMPLE / "train.json").read_text())["categories"]
    images, annotations = [], []
    for i, (name, content) in enumerate(files.items(), start=1):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Image.Image):
            content.save(path)
        else:
            path.write_bytes(content)
        width, height = sizes[name]
        images.append({"id": i, "file_name": name, "width": width, "height": height})
        annotations.append({"id": i, "image_id": i, "category_id": categories[0]["id"],
                            "bbox": [2, 2, 20, 20], "area": 400, "iscrowd": 0})
    (root / "train.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}))
    return root


def open_explorer(root: Path) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240)
    at.session_state[S.DATA_DIR] = str(root)
    at.run()
    at.switch_page("pages/2_Image_explorer.py").run()
    return at


def notices(at: AppTest) -> str:
    return "\n".join(e.value for kind in ("info", "warning", "error") for e in getattr(at, kind))


# ------------------------------------------------------------------------------ EXIF rotation
class TestExifOrientation:
    def test_reader_returns_the_stored_pixels_and_says_the_rotation_is_ignored(self, tmp_path, stored_pixels):
        exif = Image.Exif()
        exif[0x0112] = 6
        rotated, plain = tmp_path / "rotated.jpg", tmp_path / "plain.jpg"
        stored_pixels.save(rotated, "JPEG", quality=95, exif=exif.tobytes())
        stored_pixels.save(plain, "JPEG", quality=95)
        image, notes = read_image(rotated)
        with Image.open(plain) as reference:  # same encoder, same pixels, no EXIF
            np.testing.assert_array_equal(np.asarray(image), np.asarray(reference.convert("RGB")))
        assert image.size == (1024, 700)
        assert notes == [f"{rotated}: EXIF orientation 6 is ignored: boxes are in the stored pixel "
                         "grid, as COCO and the competition use"]
        assert read_image(plain)[1] == []

    def test_predictions_are_those_of_the_stored_pixels(self, tmp_path, stored_pixels, demo):
        exif = Image.Exif()
        exif[0x0112] = 6
        rotated, plain = tmp_path / "rotated.jpg", tmp_path / "plain.jpg"
        stored_pixels.save(rotated, "JPEG", quality=95, exif=exif.tobytes())
        stored_pixels.save(plain, "JPEG", quality=95)
        preds = predict_images(demo, [("rotated", rotated), ("plain", plain)], score_thr=0.05)
        assert preds.image_keys.tolist() == ["rotated", "plain"] and len(preds) > 0
        np.testing.assert_array_equal(preds.boxes_xyxy[preds.image_pos == 0],
                                      preds.boxes_xyxy[preds.image_pos == 1])
        np.testing.assert_array_equal(preds.scores[preds.image_pos == 0], preds.scores[preds.image_pos == 1])
        assert [(p.image_id, p.is_error) for p in preds.problems] == [("rotated", False)]
        assert "EXIF orientation 6 is ignored" in preds.problems[0].message


    def test_upright_predictions_are_those_of_the_turned_pixels(self, tmp_path, stored_pixels, demo):
        """`infer` on a YOLO dataset (upright=True) sees what Ultralytics saw: the turned image."""
        exif = Image.Exif()
        exif[0x0112] = 6
        rotated, turned = tmp_path / "rotated.png", tmp_path / "turned.png"
        stored_pixels.save(rotated, exif=exif.tobytes())
        stored_pixels.transpose(Image.Transpose.ROTATE_270).save(turned)
        preds = predict_images(demo, [("rotated", rotated), ("turned", turned)], score_thr=0.05, upright=True)
        assert preds.image_keys.tolist() == ["rotated", "turned"] and len(preds) > 0
        np.testing.assert_array_equal(preds.boxes_xyxy[preds.image_pos == 0],
                                      preds.boxes_xyxy[preds.image_pos == 1])
        assert preds.problems == []

    @pytest.mark.parametrize("orientation", range(1, 9))
    def test_upright_reading_equals_pillows_exif_transpose(self, tmp_path, orientation):
        """A YOLO dataset's boxes are in the upright grid (Ultralytics reads images upright): for
        it the reader applies each of the 8 orientations as PIL.ImageOps.exif_transpose does."""
        from PIL import ImageOps

        pixels = Image.fromarray((np.arange(40 * 60 * 3) % 251).astype(np.uint8).reshape(40, 60, 3))
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / "oriented.png"  # lossless: the comparison is exact
        pixels.save(path, exif=exif.tobytes())
        with Image.open(path) as raw:
            reference = np.asarray(ImageOps.exif_transpose(raw).convert("RGB"))
        image, notes = read_image(path, upright=True)
        np.testing.assert_array_equal(np.asarray(image), reference)
        assert notes == [] and image.size == image_size(path, upright=True)
        stored, stored_notes = read_image(path)  # COCO: the stored grid, the rotation noted
        assert stored.size == (60, 40) and bool(stored_notes) == (orientation != 1)


# ---------------------------------------------------------------------------- high bit depth
class TestHighBitDepth:
    def test_16_bit_png_is_scaled_by_its_range_not_clipped(self, tmp_path):
        values = np.linspace(1000, 3000, 32 * 48).reshape(32, 48).astype(np.uint16)
        path = tmp_path / "depth.png"
        Image.fromarray(values).save(path)
        with Image.open(path) as raw:
            assert raw.mode.startswith("I")  # what PIL makes of a 16-bit grey PNG
            assert np.asarray(raw.convert("RGB")).mean() == 255  # the old, clipped conversion
        image, notes = read_image(path)
        pixels = np.asarray(image)
        expected = np.round((values.astype(np.float64) - 1000) * 255 / 2000)
        np.testing.assert_allclose(pixels[..., 0], expected, atol=1)
        assert (pixels[..., 0] == pixels[..., 2]).all() and pixels.min() == 0 and pixels.max() == 255
        assert len(notes) == 1 and "16-bit image" in notes[0] and "1000..3000" in notes[0]

    def test_float_image_is_scaled_too(self, tmp_path):
        values = np.linspace(-1.0, 1.0, 100, dtype=np.float32).reshape(10, 10)
        path = tmp_path / "float.tif"
        Image.fromarray(values, "F").save(path)
        pixels = np.asarray(read_image(path)[0])
        assert pixels[0, 0, 0] == 0 and pixels[-1, -1, 0] == 255


# ------------------------------------------------------------------------------ pixel limit
class TestPixelLimit:
    def test_bomb_header_is_refused_before_decoding(self, tmp_path):
        path = tmp_path / "bomb.png"
        path.write_bytes(png_declaring(50000, 50000))
        with pytest.raises(ValueError) as info:
            read_image(path)
        message = str(info.value)
        assert message.startswith(f"{path}: refused") and f"{MAX_PIXELS:,}" in message
        assert MAX_PIXELS_ENV in message and "not decoded" in message
        assert image_size(path) is None

    def test_large_image_under_pils_own_limit_is_refused_without_a_warning(self, tmp_path):
        path = tmp_path / "large.png"
        path.write_bytes(png_declaring(13000, 13000))  # 169 MP: PIL would only warn, then decode
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=r"13000x13000 = 169,000,000 pixels, over DetLens' limit"):
                read_image(path.read_bytes(), name="large.png")

    def test_limit_is_set_by_the_environment(self, tmp_path, monkeypatch):
        path = tmp_path / "small.png"
        Image.new("RGB", (64, 48)).save(path)
        monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
        with pytest.raises(ValueError, match=rf"64x48 = 3,072 pixels, over DetLens' limit of 1,000 .*{MAX_PIXELS_ENV}"):
            read_image(path)
        monkeypatch.setenv(MAX_PIXELS_ENV, "4000")
        assert read_image(path)[0].size == (64, 48)

    def test_one_bomb_among_good_images_is_a_problem_and_the_rest_is_predicted(self, tmp_path, demo):
        bomb = tmp_path / "bomb.png"
        bomb.write_bytes(png_declaring(50000, 50000))
        items = [("a", SAMPLE / "train" / "0000.jpg"), ("bomb", bomb), ("b", SAMPLE / "train" / "0001.jpg")]
        preds = predict_images(demo, items, score_thr=0.05)
        assert preds.image_keys.tolist() == ["a", "b"]
        assert [(p.image_id, p.is_error) for p in preds.problems] == [("bomb", True)]

    def test_infer_writes_the_good_images_when_one_is_a_bomb(self, tmp_path, capsys):
        data = tmp_path / "data"
        (data / "test").mkdir(parents=True)
        for name in ("0000.jpg", "0001.jpg"):
            shutil.copy(SAMPLE / "train" / name, data / "test" / name)
        (data / "test" / "0002.png").write_bytes(png_declaring(50000, 50000))
        out = tmp_path / "pred.csv"
        code = main(["infer", "--checkpoint", str(DEMO), "--data", str(data), "--split", "test",
                     "--out", str(out), "--device", "cpu"])
        printed = capsys.readouterr().out
        assert code == 1 and "test/0002.png" in printed and MAX_PIXELS_ENV in printed
        assert "1 image(s) could not be predicted" in printed
        assert read_submission(out).image_keys.tolist() == ["test/0000.jpg", "test/0001.jpg"]

    def test_explorer_shows_a_bomb_as_a_notice(self, tmp_path):
        root = dataset_with(tmp_path, {"train/bomb.png": png_declaring(50000, 50000)},
                            {"train/bomb.png": (640, 480)})
        at = open_explorer(root)
        assert not at.exception, [e.value for e in at.exception]
        assert "over DetLens' limit" in notices(at) and MAX_PIXELS_ENV in notices(at)

    def test_live_upload_of_a_bomb_is_an_error(self):
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240)
        at.session_state[S.DATA_DIR] = str(SAMPLE)
        at.run()
        at.switch_page("pages/6_Live_inference.py").run()
        at.radio(key="_infer_image_source").set_value("Upload an image").run()
        at.file_uploader(key="_infer_image_upload").set_value(
            ("bomb.png", png_declaring(50000, 50000), "image/png")).run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("bomb.png: refused" in e.value and MAX_PIXELS_ENV in e.value for e in at.error)


# ------------------------------------------------------------------------------ size mismatch
class TestSizeMismatch:
    def test_message(self):
        assert size_mismatch("a.jpg", (64, 48), (64.0, 48.0)) is None
        assert size_mismatch("a.jpg", (64, 48), None) is None
        assert size_mismatch("a.jpg", (64, 48), (100, 100)).startswith(
            "a.jpg: the file is 64x48 pixels but the json says 100x100")

    def test_predict_images_warns_per_image(self, tmp_path, demo):
        small = tmp_path / "small.png"
        Image.new("RGB", (64, 48), "gray").save(small)
        items = [("small", small), ("right", SAMPLE / "train" / "0000.jpg")]
        preds = predict_images(demo, items, expected_sizes={"small": (100, 100), "right": (1024, 1024)})
        assert preds.image_keys.tolist() == ["small", "right"]
        assert [(p.image_id, p.is_error) for p in preds.problems] == [("small", False)]
        assert "64x48 pixels but the json says 100x100" in preds.problems[0].message

    def test_infer_prints_the_warning(self, tmp_path, capsys):
        data = dataset_with(tmp_path, {"train/small.png": Image.new("RGB", (64, 48), "gray")},
                            {"train/small.png": (100, 100)})
        code = main(["infer", "--checkpoint", str(DEMO), "--data", str(data), "--split", "train",
                     "--out", str(tmp_path / "p.csv"), "--device", "cpu"])
        printed = capsys.readouterr().out
        assert code == 0 and "64x48 pixels but the json says 100x100" in printed

    def test_explorer_shows_it_above_the_panels(self, tmp_path):
        root = dataset_with(tmp_path, {"train/small.png": Image.new("RGB", (64, 48), "gray")},
                            {"train/small.png": (100, 100)})
        at = open_explorer(root)
        assert not at.exception
        assert "train/small.png: the file is 64x48 pixels but the json says 100x100" in notices(at)
