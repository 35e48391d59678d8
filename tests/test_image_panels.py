"""ui.image_panels' page: what it loads is in its folder, and the plotly.js it ships is the basic
bundle of the plotly.js the installed plotly writes figures for (same major version)."""
from __future__ import annotations

import re

from plotly.offline import get_plotlyjs_version

from ui import image_panels


def test_the_page_loads_only_files_of_its_folder():
    page = (image_panels.FOLDER / "index.html").read_text()
    sources = re.findall(r'<script src="([^"]+)"', page)
    assert sources == ["plotly-basic.min.js"]
    assert all((image_panels.FOLDER / source).is_file() for source in sources)
    assert (image_panels.FOLDER / "PLOTLY_LICENSE").read_text().startswith("MIT License")


def test_the_bundle_is_plotly_basic_of_the_installed_major_version():
    header = (image_panels.FOLDER / "plotly-basic.min.js").read_text()[:200]
    version = re.search(r"plotly\.js \(basic - minified\) v(\d+)\.(\d+)\.(\d+)", header)
    assert version, header
    assert version.group(1) == get_plotlyjs_version().split(".")[0], (version.group(0), get_plotlyjs_version())
