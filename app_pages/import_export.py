"""Import / export: bring candidates in from CSV files and take them out again."""

import streamlit as st

from app_pages import common
from crm import candidates

st.title("Import / export", anchor=False)
common.read_only_caption()

st.info(
    "CSV import (LinkedIn, Google and Outlook contacts, ATS exports) with a preview, "
    "duplicate handling and undo, and CSV export of any view or pool, are being built "
    "for this page. Until then use the command line: `crm demo` loads example data."
)
st.metric("Candidates in the database", f"{candidates.count(common.engine()):,}")
