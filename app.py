"""DetLens: error analysis for object detection. Start with `streamlit run app.py`.

The router (st.navigation): the pages under pages/, grouped in the sidebar, "Home" first. Every
page keeps its file (pages/N_Name.py) and URL (/Name), so links and switch_page calls are paths.
"""
from __future__ import annotations

import streamlit as st

HOME = "pages/0_Home.py"
SECTIONS = {
    "": [HOME],
    "Results": ["pages/1_Overview.py", "pages/2_Image_explorer.py", "pages/3_Class_errors.py",
                "pages/11_Slices.py", "pages/12_Calibration.py"],
    "Data": ["pages/4_Dataset.py", "pages/10_Label_review.py"],
    "Models": ["pages/6_Live_inference.py", "pages/7_Compare.py", "pages/8_Ensemble.py",
               "pages/9_Submissions.py", "pages/5_Export.py"],
}

pages = {section: [st.Page(path, title="Home", default=True) if path == HOME
                   else st.Page(path) for path in paths] for section, paths in SECTIONS.items()}
st.navigation(pages, expanded=True).run()
