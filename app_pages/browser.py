"""Sending the browser to another address of this app (a full page load, not a rerun).

The sign-in cookie is set and cleared by the server (crm/session_cookie.py), which takes a
real request from the browser; Streamlit's reruns never make one. This tiny component
(CCv2, drawn in the page itself) does, with a URL relative to the page, so it also works
under a path prefix.
"""

from __future__ import annotations

import streamlit as st

_JS = """
export default function (component) {
  const { data } = component;
  if (data && typeof data.url === "string") {
    window.location.replace(new URL(data.url, window.location.href).href);
  }
}
"""

_GO = st.components.v2.component("crm_go_to", js=_JS)


def go_to(url: str, *, key: str) -> None:
    """Load url (relative to the current page) in place of the current page."""
    _GO(key=key, data={"url": url})
