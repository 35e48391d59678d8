"""Where DetLens may read files from (issue 10, item 1 and the folder parts of item 4).

Local (loopback) use may open any folder; served on a network, or given explicit data roots,
only files inside them, symlinks followed. Each defect of the issue is reproduced here: the
app run under AppTest with DETLENS_DATA_ROOTS set (an AppTest cannot change server.address).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import main
from core.data_roots import ENV_VAR, SAMPLE_DIR, DataRoots, PathRefused, app_data_roots, is_loopback
from core.images import contained_path, folder_images, resolve_image_path
from core.inference import CheckpointError, dataset_image_items, read_checkpoint
from core.dataset import load_coco
from core.folder_scan import first_csv_image_id, json_kind, scan_folder
from core.submission import read_submission
from tests.conftest import REPO, SAMPLE, chart_figures, figure_image_sources, panel_figures
from ui import state as S

DEMO = SAMPLE / "demo_model.pt"
SECRET = "TOPSECRET_column_7f3a"  # the header of a file outside the roots: never shown


def small_dataset(root: Path, n: int = 2, image_dir: Path | None = None) -> Path:
    """root/train.json with the sample's first n images, files in image_dir (default root/train)."""
    doc = json.loads((SAMPLE / "train.json").read_text())
    doc["images"] = doc["images"][:n]
    ids = {im["id"] for im in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in ids]
    images = image_dir or root / "train"
    images.mkdir(parents=True, exist_ok=True)
    for im in doc["images"]:
        shutil.copy(SAMPLE / im["file_name"], images / Path(im["file_name"]).name)
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.json").write_text(json.dumps(doc))
    return root


def open_app(page: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=240)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "exception")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def image_sources(at: AppTest) -> list[str]:
    """The image URIs embedded in the page's figures (charts and image panels)."""
    found = []
    for spec in chart_figures(at) + panel_figures(at):
        found += figure_image_sources(spec)
    return found


# ------------------------------------------------------------------------------ DataRoots
class TestDataRoots:
    def test_roots_come_from_the_setting_the_flag_the_data_folder_and_sample_data(self, tmp_path):
        a, b, c, d = (tmp_path / n for n in "abcd")
        for folder in (a, b, c, d):
            folder.mkdir()
        roots = DataRoots.from_settings([c], data_dir=d, env={ENV_VAR: f"{a}{os.pathsep}{b}"})
        assert roots.restricted
        assert roots.roots == (a.resolve(), b.resolve(), c.resolve(), d.resolve(), SAMPLE_DIR)

    def test_check_allows_inside_and_refuses_outside_naming_the_setting(self, tmp_path):
        allowed, outside = tmp_path / "allowed", tmp_path / "outside"
        allowed.mkdir(), outside.mkdir()
        (outside / "secret.csv").write_text(f"{SECRET},x\n1,2\n")
        roots = DataRoots.from_settings(env={ENV_VAR: str(allowed)})
        assert roots.check(allowed / "x.json") == (allowed / "x.json").resolve()
        assert roots.check(SAMPLE / "train.json") == (SAMPLE / "train.json").resolve()
        with pytest.raises(PathRefused) as info:
            roots.check(outside / "secret.csv")
        message = str(info.value)
        assert str(outside / "secret.csv") in message and str(allowed.resolve()) in message
        assert ENV_VAR in message and "--data-root" in message and SECRET not in message
        # `..` and symlinks are resolved before the check: neither gets out
        with pytest.raises(PathRefused):
            roots.check(allowed / ".." / "outside" / "secret.csv")
        (allowed / "link.csv").symlink_to(outside / "secret.csv")
        with pytest.raises(PathRefused, match="resolves to"):
            roots.check(allowed / "link.csv")

    def test_unrestricted_allows_every_path(self, tmp_path):
        assert DataRoots.unrestricted().check("/etc/hostname") == Path("/etc/hostname").resolve()

    @pytest.mark.parametrize("address, restricted", [
        ("127.0.0.1", False), ("localhost", False), ("::1", False), ("[::1]", False),
        ("0.0.0.0", True), ("192.168.1.20", True), ("", True), (None, True)])
    def test_restricted_when_served_beyond_loopback(self, address, restricted):
        assert is_loopback(address) is not restricted
        assert app_data_roots(address, env={}).restricted is restricted

    def test_explicit_roots_restrict_even_on_loopback(self, tmp_path):
        assert app_data_roots("127.0.0.1", env={ENV_VAR: str(tmp_path)}).restricted
        roots = app_data_roots("127.0.0.1", extra=[tmp_path], data_dir=SAMPLE, env={})
        assert roots.restricted and roots.roots[0] == tmp_path.resolve()

    def test_data_root_flag_is_repeatable_after_the_double_dash(self):
        argv = ["app.py", "--data", "/d", "--data-root", "/r1", "--data-root=/r2", "--other"]
        assert S.data_roots_from_argv(argv) == ["/r1", "/r2"]
        assert S.data_dir_from_argv(argv) == "/d"
        assert S.data_roots_from_argv(["app.py"]) == []

    def test_streamlit_config_binds_to_loopback(self):
        import tomllib

        config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
        assert is_loopback(config["server"]["address"])


# --------------------------------------------------------------- folder scans and file heads
class TestFolderScan:
    def test_refused_folder_is_not_listed_and_no_header_is_read(self, tmp_path):
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret.csv").write_text(f"{SECRET},image_id\n1,train/0000.jpg\n")
        (outside / "gt.json").write_text('{"images": []}')
        roots = DataRoots.from_settings(env={ENV_VAR: str(tmp_path / "allowed")})
        scan = scan_folder(outside, roots=roots)
        assert scan.problem and ENV_VAR in scan.problem and SECRET not in scan.problem
        assert scan.predictions == [] and scan.ground_truths == []
        assert json_kind(outside / "gt.json", roots) == "unknown"
        assert first_csv_image_id(outside / "secret.csv", roots=roots) is None
        assert first_csv_image_id(outside / "secret.csv") == "train/0000.jpg"  # local: read

    def test_symlinked_files_outside_the_roots_are_skipped_and_reported(self, tmp_path):
        allowed, outside = tmp_path / "allowed", tmp_path / "outside"
        small_dataset(allowed, 1)
        outside.mkdir()
        (outside / "secret.csv").write_text(f"{SECRET},image_id\n")
        (allowed / "borrowed.csv").symlink_to(outside / "secret.csv")
        restricted = scan_folder(allowed, roots=DataRoots.from_settings(env={ENV_VAR: str(allowed)}))
        assert restricted.predictions == [] and restricted.refused == ["borrowed.csv"]
        assert ENV_VAR in restricted.notices[0] and "borrowed.csv" in restricted.notices[0]
        assert scan_folder(allowed).predictions == ["borrowed.csv"]  # local user: followed

    def test_unreadable_subfolder_and_file_are_skipped_not_raised(self, tmp_path, monkeypatch):
        # Tests run as root, where chmod 000 does not stop reads: make the OS calls fail instead.
        import core.folder_scan

        root = small_dataset(tmp_path / "data", 1)
        (root / "locked").mkdir()
        (root / "locked" / "preds.csv").write_text("PredictionString,image_id\n")
        (root / "other.json").write_text("[]")
        real_iterdir, real_open = Path.iterdir, open

        def iterdir(self):
            if self.name == "locked":
                raise PermissionError(13, "Permission denied", str(self))
            return real_iterdir(self)

        def guarded_open(path, *args, **kwargs):
            if Path(path).name == "other.json":
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(Path, "iterdir", iterdir)
        monkeypatch.setattr(core.folder_scan, "open", guarded_open, raising=False)
        scan = scan_folder(root)
        assert scan.problem is None and scan.ground_truths == ["train.json"]
        assert scan.unreadable == ["locked/", "other.json"]
        assert scan.notices == [f"2 entries of {root.resolve()} could not be read: first locked/; "
                                "check permissions (they are skipped)"]

    def test_unreadable_image_folder_is_a_message(self, tmp_path, monkeypatch):
        root = small_dataset(tmp_path / "data", 1)
        real_stat = Path.stat

        def stat(self, *args, **kwargs):
            if self.name == "0000.jpg":
                raise PermissionError(13, "Permission denied", str(self))
            return real_stat(self, *args, **kwargs)

        monkeypatch.setattr(Path, "stat", stat)
        lookup = resolve_image_path(root, "train/0000.jpg")
        assert not lookup.found and "Permission denied" in lookup.message
        assert "check the folder's permissions" in lookup.message

    def test_app_pages_survive_an_unreadable_subfolder(self, tmp_path, monkeypatch):
        root = small_dataset(tmp_path / "data", 2)
        (root / "locked").mkdir()
        real_iterdir = Path.iterdir

        def iterdir(self):
            if self.name == "locked":
                raise PermissionError(13, "Permission denied", str(self))
            return real_iterdir(self)

        monkeypatch.setattr(Path, "iterdir", iterdir)
        at = open_app(**{S.DATA_DIR: str(root)})
        assert not at.exception, [e.value for e in at.exception]
        assert any("could not be read: first locked/; check permissions" in w.value for w in at.warning)
        for page in ("pages/1_Overview.py", "pages/2_Image_explorer.py", "pages/4_Dataset.py"):
            at.switch_page(page).run()
            assert not at.exception, (page, [e.value for e in at.exception])


# --------------------------------------------------------------------- the app, restricted
class TestRestrictedApp:
    def test_dataset_folder_outside_the_roots_is_refused_without_its_headers(self, tmp_path, monkeypatch):
        outside = small_dataset(tmp_path / "outside", 1)
        (outside / "secret.csv").write_text(f"{SECRET},image_id\n1,2\n")
        monkeypatch.setenv(ENV_VAR, str(tmp_path / "allowed"))
        at = open_app(**{S.DATA_DIR: str(outside)})
        assert not at.exception
        shown = texts(at)
        assert "refused" in shown and ENV_VAR in shown and "--data-root" in shown
        assert SECRET not in shown
        assert at.session_state[S.ACTIVE_PREDICTIONS] in (None, "(none)")

    def test_same_folder_inside_a_root_works(self, tmp_path, monkeypatch):
        allowed = small_dataset(tmp_path / "allowed", 2)
        monkeypatch.setenv(ENV_VAR, str(allowed))
        at = open_app(**{S.DATA_DIR: str(allowed)})
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert image_sources(at)[0].startswith("data:image/jpeg;base64,")

    def test_uploaded_gt_cannot_embed_a_file_outside_the_roots(self, tmp_path, monkeypatch):
        secret = tmp_path / "outside" / "private.jpg"
        secret.parent.mkdir()
        shutil.copy(SAMPLE / "train" / "0000.jpg", secret)
        allowed = small_dataset(tmp_path / "allowed", 1)
        gt = {"images": [{"id": 1, "file_name": str(secret.relative_to("/")), "width": 1024,
                          "height": 1024}],
              "annotations": [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [1, 1, 5, 5],
                               "area": 25, "iscrowd": 0}],
              "categories": [{"id": 0, "name": "x"}]}
        monkeypatch.setenv(ENV_VAR, str(allowed))
        at = open_app(**{S.DATA_DIR: str(allowed)})
        at.file_uploader(key="_upload_gt").set_value(
            ("tiny.json", json.dumps(gt).encode(), "application/json")).run()
        assert not at.exception
        assert at.session_state[S.GT_CHOICE] == "uploaded: tiny.json"
        at.text_input(key="_upload_image_dir").input("/").run()  # the whole disk, as in the issue
        assert not at.exception
        shown = texts(at)
        assert "Image folder for uploaded: tiny.json: /: refused" in shown and ENV_VAR in shown
        assert image_sources(at) == []

    def test_checkpoint_path_outside_the_roots_is_not_read(self, tmp_path, monkeypatch):
        private = tmp_path / "outside" / "notes.pt"
        private.parent.mkdir()
        private.write_bytes(b"Zprivate content")  # torch: "Unsupported operand 90" (ord 'Z')
        monkeypatch.setenv(ENV_VAR, str(tmp_path / "allowed"))
        at = open_app("pages/6_Live_inference.py")
        at.radio(key="_infer_source").set_value("Checkpoint file path").run()
        at.text_input(key="_infer_path").input(str(private)).run()
        assert not at.exception
        errors = " ".join(e.value for e in at.error)
        assert "refused" in errors and ENV_VAR in errors
        assert "90" not in errors and "'Z'" not in errors and "private content" not in errors


class TestCheckpointMessages:
    @pytest.mark.parametrize("first", range(256))
    def test_not_a_checkpoint_says_what_it_is_not_without_quoting_it(self, first):
        data = bytes([first]) + b"private payload"
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(data, name="notes.pt")
        message = str(info.value)
        assert message.startswith("notes.pt: not a readable PyTorch checkpoint: it is ")
        # torch's own messages quote the first byte ("invalid load key, 'x'", "Unsupported
        # operand 90"): no digit, no quoted character and no content may reach the message
        assert not any(c.isdigit() for c in message) and "'" not in message
        assert "private" not in message and "payload" not in message


# ------------------------------------------------------------------------- uploaded GT images
class TestUploadedGroundTruthImages:
    def test_uploaded_gt_does_not_borrow_the_dataset_folders_images(self, tmp_path):
        at = open_app(**{S.DATA_DIR: str(SAMPLE)})
        at.file_uploader(key="_upload_gt").set_value(
            ("fold.json", (SAMPLE / "train.json").read_bytes(), "application/json")).run()
        assert not at.exception
        assert image_sources(at) == []  # blank canvas, not the sample folder's picture
        shown = texts(at)
        assert "No image folder chosen for uploaded: fold.json" in shown
        assert "no image folder chosen for uploaded: fold.json: blank canvases" in shown

        at.text_input(key="_upload_image_dir").input(str(SAMPLE)).run()  # the user says where
        assert not at.exception and not at.error
        assert image_sources(at)[0].startswith("data:image/jpeg;base64,")
        assert f"images from `{SAMPLE.resolve()}`" in texts(at)

    def test_compare_offers_the_dataset_folders_files_not_the_image_folders(self, tmp_path):
        images = tmp_path / "images"
        images.mkdir()
        shutil.copy(SAMPLE / "predictions_weak.csv", images / "stray.csv")
        at = open_app(**{S.DATA_DIR: str(SAMPLE)})
        at.file_uploader(key="_upload_gt").set_value(
            ("fold.json", (SAMPLE / "train.json").read_bytes(), "application/json")).run()
        at.text_input(key="_upload_image_dir").input(str(images)).run()
        at.switch_page("pages/7_Compare.py").run()
        assert not at.exception
        offered = at.multiselect(key=S.widget_key(S.COMPARE_SETS)).options
        assert "predictions_strong.csv" in offered and "stray.csv" not in offered

    def test_dataset_folder_gt_keeps_its_folder(self):
        at = open_app(**{S.DATA_DIR: str(SAMPLE)})
        assert f"images from `{SAMPLE.resolve()}`" in texts(at)
        assert image_sources(at)[0].startswith("data:image/jpeg;base64,")


# ---------------------------------------------------------------------- symlinked image folders
class TestSymlinkedImages:
    @pytest.fixture
    def linked(self, tmp_path) -> tuple[Path, Path]:
        """data/train.json with data/train -> store/train (a legitimate layout)."""
        store = tmp_path / "store"
        data = small_dataset(tmp_path / "data", 2, image_dir=store / "train")
        (data / "train").symlink_to(store / "train", target_is_directory=True)
        return data, store

    def test_symlinked_folder_works_locally(self, linked):
        data, store = linked
        lookup = resolve_image_path(data, "train/0000.jpg")
        assert lookup.found and lookup.path == (store / "train" / "0000.jpg").resolve()
        assert contained_path(data, "train/../train/0001.jpg")[0] == (store / "train" / "0001.jpg").resolve()

    def test_lexical_escapes_stay_refused(self, linked):
        data, _ = linked
        assert "a '../' escape" in resolve_image_path(data, "train/../../store/train/0000.jpg").message
        assert "absolute image paths are refused" in resolve_image_path(data, "/etc/hostname").message

    def test_restricted_follows_symlinks_into_the_roots_only(self, linked):
        data, store = linked
        only_data = DataRoots.from_settings(env={ENV_VAR: str(data)})
        refused = resolve_image_path(data, "train/0000.jpg", only_data)
        assert not refused.found and ENV_VAR in refused.message and str(store) in refused.message
        both = DataRoots.from_settings(env={ENV_VAR: f"{data}{os.pathsep}{store}"})
        assert resolve_image_path(data, "train/0000.jpg", both).found

    def test_restricted_app_shows_the_symlinked_images_when_the_target_is_a_root(self, linked, monkeypatch):
        data, store = linked
        monkeypatch.setenv(ENV_VAR, f"{data}{os.pathsep}{store}")
        at = open_app(**{S.DATA_DIR: str(data)})
        assert not at.exception and not at.error
        assert image_sources(at)[0].startswith("data:image/jpeg;base64,")
        monkeypatch.setenv(ENV_VAR, str(data))
        at = open_app(**{S.DATA_DIR: str(data)})
        assert image_sources(at) == [] and ENV_VAR in texts(at)

    def test_infer_follows_the_same_rule_with_a_json_and_a_plain_folder(self, linked, tmp_path, capsys):
        data, _ = linked
        dataset = load_coco(data / "train.json")
        items, problems = dataset_image_items(dataset)
        assert problems == [] and len(items) == 2
        assert folder_images(data, "train")[0] == [(f"train/{p.name}", p.resolve())
                                                   for p in sorted((data / "train").iterdir())]
        for split, out in (("train", tmp_path / "json.csv"), ("train_folder", tmp_path / "folder.csv")):
            if split == "train_folder":
                (data / "train.json").rename(data / "categories.json")
                split = "train"
            code = main(["infer", "--checkpoint", str(DEMO), "--data", str(data), "--split", split,
                         "--out", str(out), "--device", "cpu"])
            printed = capsys.readouterr().out
            assert code == 0, printed
            assert len(read_submission(out).image_keys) == 2
