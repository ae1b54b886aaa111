"""The hello-world floor: two trivial pages in a sidebar navigation, like the app's.

Served by the benchmark with `streamlit run benchmarks/hello.py`; each page is one
st.title and one st.write, so a sidebar click measures Streamlit's own cost of a page
switch (websocket round trip, script run, render) and nothing else.
"""

import streamlit as st


def hello() -> None:
    st.title("Hello", anchor=False)
    st.write("Hello, world.")


def other() -> None:
    st.title("Other", anchor=False)
    st.write("Another trivial page.")


st.navigation(
    [st.Page(hello, title="Hello", default=True), st.Page(other, title="Other")],
    position="sidebar",
).run()
