"""One module per page; UI only. Rules, SQL and I/O live in crm/.

Not named pages/: Streamlit still auto-discovers a pages/ folder (its legacy multipage
mode), which lists every file as a page and, under AppTest, runs page files directly.
"""
