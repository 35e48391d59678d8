"""ui.image_panels' page folder: index.html beside the installed plotly's plotly.min.js, written
whole, found again by the next server, and made elsewhere when the temporary folder refuses it."""
from __future__ import annotations

import tempfile

from ui import image_panels


def test_the_folder_holds_the_page_and_the_installed_plotly(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    folder = image_panels._frontend_folder()
    assert folder.parent == tmp_path
    assert (folder / "index.html").read_bytes() == image_panels.PAGE.read_bytes()
    assert (folder / "plotly.min.js").read_bytes() == image_panels.PLOTLY_JS.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "plotly.min.js"]  # no partial file left
    # a copy cut short (a server killed while writing) is written again, whole
    (folder / "plotly.min.js").write_bytes(b"/* cut */")
    assert image_panels._frontend_folder() == folder
    assert (folder / "plotly.min.js").read_bytes() == image_panels.PLOTLY_JS.read_bytes()


def test_a_shared_name_that_is_taken_gives_a_private_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    shared = image_panels._frontend_folder()
    for child in shared.iterdir():
        child.unlink()
    shared.rmdir()
    shared.write_text("a file (another user's, say) where the shared folder would go")
    folder = image_panels._frontend_folder()
    assert folder != shared and folder.parent.parent == tmp_path
    assert (folder / "plotly.min.js").read_bytes() == image_panels.PLOTLY_JS.read_bytes()
