"""The month view's grid: one small Streamlit component (CCv2) instead of 42 columns.

Drawn with Streamlit's columns, a month was about 130 blocks and 42 markdown elements, and
the page took five times as long as a hello-world page to settle. Here the browser builds
the grid itself from plain data. Every piece of user text goes in through textContent,
never as HTML, and chip colours come from an allow-list, so nothing a user typed can
become markup. A click on a chip opens the item's dialog; "+N more" lists that day's
items under the grid. The month's title and its Previous / Today / Next buttons are drawn
above the grid, the count and the colour legend under it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import streamlit as st

# Streamlit's own palette names (the badges of the week view use the same colours).
COLOURS = ("blue", "green", "orange", "red", "violet", "gray", "primary")


class GridChip(TypedDict):
    id: int
    key: str
    text: str
    tooltip: str
    colour: str
    published: bool


class GridDay(TypedDict):
    date: str
    label: str
    today: bool
    muted: bool
    chips: list[GridChip]
    more: int


_CSS = """
.crm-grid {
  display: grid;
  grid-template-columns: repeat(7, minmax(0, 1fr));
  gap: 0.5rem;
  font-family: var(--st-font);
  font-size: 0.875rem;
  color: var(--st-text-color);
}
.crm-grid .head { font-weight: 600; padding: 0 0.25rem; }
.crm-grid .day {
  min-height: 7.5rem;
  border: 1px solid var(--st-border-color);
  border-radius: var(--st-base-radius);
  padding: 0.5rem;
  display: flex;
  flex-direction: column;
  gap: 0.2rem;
  min-width: 0;
}
.crm-grid .day.muted .number { color: var(--st-gray-color); }
.crm-grid .day.today { border-color: var(--st-primary-color); }
.crm-grid .day.today .number { font-weight: 700; color: var(--st-primary-color); }
.crm-grid .number { margin-bottom: 0.15rem; }
.crm-grid button {
  font: inherit;
  font-size: 0.8rem;
  text-align: left;
  border: none;
  border-radius: 0.4rem;
  padding: 0.05rem 0.4rem;
  cursor: pointer;
  white-space: nowrap;
  overflow: hidden;
  text-overflow: ellipsis;
  max-width: 100%;
}
.crm-grid button:focus-visible { outline: 2px solid var(--st-primary-color); }
.crm-grid .more { background: none; color: var(--st-gray-color); padding-left: 0; }
.crm-bar {
  display: flex;
  align-items: center;
  gap: 0.5rem;
  margin-bottom: 1rem;
  font-family: var(--st-font);
}
.crm-bar .nav {
  font: inherit;
  font-size: 0.875rem;
  color: var(--st-text-color);
  background: var(--st-background-color);
  border: 1px solid var(--st-border-color);
  border-radius: var(--st-button-radius);
  padding: 0.35rem 0.75rem;
  cursor: pointer;
}
.crm-bar .nav:hover { border-color: var(--st-primary-color); color: var(--st-primary-color); }
.crm-bar .nav:focus-visible { outline: 2px solid var(--st-primary-color); }
.crm-bar h2 {
  margin: 0 0 0 0.5rem;
  font-family: var(--st-heading-font);
  font-size: 1.5rem;
  font-weight: 600;
  color: var(--st-heading-color);
}
.crm-legend {
  margin-top: 0.75rem;
  font-family: var(--st-font);
  font-size: 0.875rem;
  color: var(--st-gray-color);
  display: flex;
  flex-wrap: wrap;
  gap: 0.35rem;
  align-items: center;
}
.crm-legend .chip { border-radius: 0.4rem; padding: 0.05rem 0.4rem; }
.crm-grid .chip.primary, .crm-legend .chip.primary {
  background: var(--st-secondary-background-color);
  color: var(--st-primary-color);
}
""" + "\n".join(
    f".crm-grid .chip.{colour}, .crm-legend .chip.{colour} {{ "
    f"background: var(--st-{colour}-background-color); "
    f"color: var(--st-{colour}-text-color); }}"
    for colour in COLOURS
    if colour != "primary"
)


# User text only ever reaches the page through textContent and title (never innerHTML).
_JS = """
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  // Above the grid: the month's name and the buttons that move through months.
  let bar = parentElement.querySelector(".crm-bar");
  if (!bar) {
    bar = document.createElement("div");
    bar.className = "crm-bar";
    for (const [name, label] of [["previous", "\u2039 Previous"], ["today", "Today"],
                                 ["next", "Next \u203a"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "nav";
      button.textContent = label;
      button.addEventListener("click", () => bar.trigger("nav", name));
      bar.appendChild(button);
    }
    const heading = document.createElement("h2");
    bar.appendChild(heading);
    parentElement.appendChild(bar);
  }
  bar.trigger = setTriggerValue;  // the buttons outlive this render: use the latest
  bar.querySelector("h2").textContent = data.title;
  let grid = parentElement.querySelector(".crm-grid");
  if (!grid) {
    grid = document.createElement("div");
    grid.className = "crm-grid";
    grid.setAttribute("role", "grid");
    parentElement.appendChild(grid);
  }
  const colours = new Set(data.colours);
  const cells = [];
  for (const name of data.weekdays) {
    const head = document.createElement("div");
    head.className = "head";
    head.setAttribute("role", "columnheader");
    head.textContent = name;
    cells.push(head);
  }
  for (const day of data.days) {
    const cell = document.createElement("div");
    cell.className = "day" + (day.muted ? " muted" : "") + (day.today ? " today" : "");
    cell.setAttribute("role", "gridcell");
    cell.dataset.date = day.date;
    const number = document.createElement("div");
    number.className = "number";
    number.textContent = day.label;
    cell.appendChild(number);
    for (const chip of day.chips) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "chip " + (colours.has(chip.colour) ? chip.colour : "gray");
      button.textContent = (chip.published ? "\\u2713 " : "") + chip.text;
      button.title = chip.tooltip;
      button.addEventListener("click", () => {
        setTriggerValue("opened", { item: chip.id, key: chip.key });
      });
      cell.appendChild(button);
    }
    if (day.more > 0) {
      const more = document.createElement("button");
      more.type = "button";
      more.className = "more";
      more.textContent = "+" + day.more + " more";
      more.title = "List every item of this day under the grid";
      more.addEventListener("click", () => setTriggerValue("day", day.date));
      cell.appendChild(more);
    }
    cells.push(cell);
  }
  grid.replaceChildren(...cells);
  // Under the grid: how many items, and which colour is which channel.
  let legend = parentElement.querySelector(".crm-legend");
  if (!legend) {
    legend = document.createElement("div");
    legend.className = "crm-legend";
    parentElement.appendChild(legend);
  }
  const parts = [document.createTextNode(data.summary + " Colours: ")];
  for (const entry of data.legend) {
    const swatch = document.createElement("span");
    swatch.className = "chip " + (colours.has(entry.colour) ? entry.colour : "gray");
    swatch.textContent = entry.label;
    parts.push(swatch);
  }
  legend.replaceChildren(...parts);
}
"""

_GRID = st.components.v2.component("crm_calendar_grid", css=_CSS, js=_JS)


def month_grid(
    days: list[GridDay],
    *,
    weekdays: list[str],
    legend: list[tuple[str, str]],
    summary: str,
    title: str,
    key: str,
    on_opened: Callable[[], None],
    on_day: Callable[[], None],
    on_nav: Callable[[], None],
) -> Any:
    """Draw the month (its title and Previous / Today / Next above the grid); a chip click
    calls on_opened, a "+N more" click on_day, a navigation button on_nav.

    In the callbacks, st.session_state[key].opened is {"item": id, "key": occurrence key},
    st.session_state[key].day an ISO date and st.session_state[key].nav "previous",
    "today" or "next".
    """
    return _GRID(
        key=key,
        data={
            "weekdays": weekdays,
            "days": days,
            "colours": list(COLOURS),
            "legend": [{"label": label, "colour": colour} for label, colour in legend],
            "summary": summary,
            "title": title,
        },
        on_opened_change=on_opened,
        on_day_change=on_day,
        on_nav_change=on_nav,
    )
