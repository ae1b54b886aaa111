"""Import / export: CSV in (with preview, mapping, duplicates and undo) and CSV out."""

import pandas as pd
import streamlit as st

from app_pages import common
from crm import ats_import, auth, clock, duplicates, exporter, importer, mapping, pools
from crm.candidate_fields import CONSENT_LABELS
from crm.csvfile import DELIMITER_NAMES, ENCODINGS
from crm.errors import CrmError
from crm.imports import ats_tables

engine = common.engine()
user = common.current_user()
writable = common.can_write()
IGNORE = "(ignore)"
DUPLICATE_CHOICES = {
    "skip": "Skip them",
    "update_empty": "Fill in their empty fields",
    "update_all": "Update all fields (never consent or unsubscribe state)",
}

st.title("Import / export", anchor=False)
notice = st.session_state.pop("io_notice", None)
if notice:
    st.success(notice)
# Lazy tabs: only the open one runs, so the duplicate search (a scan of every candidate)
# and the history never slow down an import.
import_tab, export_tab, history_tab, duplicates_tab = st.tabs(
    ["Import", "Export", "Import history", "Duplicates"], key="io_tab", on_change="rerun"
)

# --- import -------------------------------------------------------------------------------


def import_section() -> None:
    if not writable:
        common.read_only_caption()
    upload = st.file_uploader(
        "CSV file",
        type=["csv", "txt", "tsv"],
        disabled=not writable,
        help="LinkedIn connections, Google or Outlook contacts, an ATS export or any "
        "spreadsheet saved as CSV.",
    )
    if upload is None:
        st.caption(
            "Upload a file to see how it will be read. Nothing is written until you press Import."
        )
    else:
        data = upload.getvalue()
        overrides_key = f"io_overrides_{upload.file_id}"
        overrides = st.session_state.setdefault(overrides_key, {})
        try:
            shape = importer.inspect_file(data, **overrides)
        except CrmError as error:
            st.error(str(error))
            shape = None
        with st.expander("How the file is read", expanded=shape is None):
            cols = st.columns(3)
            # A detected encoding beyond the usual ones (Cyrillic, Japanese...) is offered too.
            detected = (shape.encoding,) if shape and shape.encoding not in ENCODINGS else ()
            encodings = [*ENCODINGS, *detected]
            encoding = cols[0].selectbox(
                "Encoding",
                encodings,
                index=encodings.index(shape.encoding) if shape else 0,
                key=f"io_enc_{upload.file_id}",
            )
            delimiter = cols[1].selectbox(
                "Separator",
                list(DELIMITER_NAMES),
                index=list(DELIMITER_NAMES).index(shape.delimiter)
                if shape and shape.delimiter in DELIMITER_NAMES
                else 0,
                format_func=DELIMITER_NAMES.get,
                key=f"io_delim_{upload.file_id}",
            )
            header_line = cols[2].number_input(
                "Header on line",
                min_value=1,
                value=(shape.header_line + 1) if shape else 1,
                key=f"io_header_{upload.file_id}",
            )
            if st.button("Read it this way"):
                st.session_state[overrides_key] = {
                    "encoding": encoding,
                    "delimiter": delimiter,
                    "header_line": int(header_line) - 1,
                }
                st.rerun()
        if shape is not None:
            st.caption(
                f"{shape.data_rows:,} rows · {shape.encoding} · {shape.delimiter_name}-separated"
                + (f" · {shape.header_line} line(s) of notes skipped" if shape.header_line else "")
            )
            suggested = importer.suggest_mapping(engine, shape)
            field_labels = {IGNORE: IGNORE} | mapping.CANDIDATE_FIELDS
            editor = st.data_editor(
                pd.DataFrame(
                    {
                        "column in the file": list(shape.headers),
                        "goes to": [suggested.get(h) or IGNORE for h in shape.headers],
                    }
                ),
                column_config={
                    "column in the file": st.column_config.TextColumn(disabled=True),
                    "goes to": st.column_config.SelectboxColumn(
                        options=list(field_labels), required=True
                    ),
                },
                hide_index=True,
                width="stretch",
                key=f"io_mapping_{upload.file_id}",
                disabled=not writable,
            )
            chosen_mapping = {
                header: (None if target == IGNORE else target)
                for header, target in zip(
                    editor["column in the file"], editor["goes to"], strict=True
                )
            }
            with st.form(f"io_options_{upload.file_id}", border=False):
                cols = st.columns(3)
                source = cols[0].text_input(
                    "Source for new people", placeholder="e.g. LinkedIn, Meetup March 2026"
                )
                consent = cols[1].selectbox(
                    "Lawful basis for new people",
                    list(CONSENT_LABELS),
                    index=1,
                    format_func=CONSENT_LABELS.get,
                )
                on_duplicate = cols[2].selectbox(
                    "People already in the database",
                    list(DUPLICATE_CHOICES),
                    format_func=DUPLICATE_CHOICES.get,
                )
                remember = st.text_input(
                    "Remember this column mapping as (optional)",
                    placeholder="e.g. Our ATS export",
                )
                preview_clicked = st.form_submit_button("Preview", disabled=not writable)
            options = importer.ImportOptions(
                on_duplicate=on_duplicate,
                source=source or None,
                consent_status=consent,
                mapping=chosen_mapping,
                **st.session_state[overrides_key],
            )
            preview_key = f"io_preview_{upload.file_id}"
            if preview_clicked:
                try:
                    if remember.strip():
                        importer.save_mapping(
                            engine,
                            actor=user,
                            name=remember,
                            headers=list(shape.headers),
                            mapping=chosen_mapping,
                        )
                    with st.spinner("Checking every row…"):
                        st.session_state[preview_key] = (
                            options,
                            importer.preview(engine, data, options),
                        )
                except CrmError as error:
                    st.error(str(error))
                    st.session_state.pop(preview_key, None)
            stored = st.session_state.get(preview_key)
            if stored and stored[0] == options:
                result = stored[1]
                counts = st.columns(4)
                counts[0].metric("New people", f"{result.new:,}")
                counts[1].metric("Updates", f"{result.updates:,}")
                counts[2].metric("Duplicates", f"{result.duplicates:,}")
                counts[3].metric("Refused rows", f"{result.errors:,}")
                sample = pd.DataFrame(result.sample)
                if not sample.empty:
                    if "problems" in sample:
                        sample["problems"] = ["; ".join(p) for p in sample["problems"]]
                    st.dataframe(sample, hide_index=True, width="stretch")
                if st.button(
                    f"Import {result.new + result.updates:,} people",
                    type="primary",
                    disabled=not writable or (result.new + result.updates) == 0,
                ):
                    bar = st.progress(0.0, text="Importing…")
                    try:
                        done = importer.run_import(
                            engine,
                            data,
                            options,
                            actor=user,
                            filename=upload.name,
                            progress=lambda fraction: bar.progress(
                                min(max(fraction, 0.0), 1.0), text="Importing…"
                            ),
                        )
                    except CrmError as error:
                        bar.empty()
                        st.error(str(error))
                    else:
                        st.session_state.pop(preview_key, None)
                        st.session_state["io_last_result"] = done
                        st.session_state["io_notice"] = (
                            f"Imported {upload.name}: {done.created:,} new, {done.updated:,} "
                            f"updated, {done.duplicates:,} duplicates, {done.errors:,} refused."
                        )
                        st.rerun()
            elif stored:
                st.caption("The options changed since the preview: press Preview again.")
    last = st.session_state.get("io_last_result")
    if last is not None and last.errors:
        st.download_button(
            f"Download the error report ({last.errors:,} refused rows)",
            data=last.error_report_csv(),
            file_name="import-errors.csv",
            mime="text/csv",
            icon=":material/download:",
        )


# --- jobs, applications and costs from an ATS ------------------------------------------------

ATS_KINDS = {
    "jobs": "Jobs (requisitions)",
    "applications": "Applications (people on a job's pipeline)",
    "costs": "Hiring costs",
}


def ats_section() -> None:
    st.divider()
    st.subheader("Jobs, applications and costs from your ATS", anchor=False)
    st.caption(
        "Import jobs first, then applications (they name a job by its ATS ID or title and a "
        "person by email or LinkedIn URL), then costs. Importing the same file again creates "
        "nothing twice."
    )
    kind = st.radio(
        "What the file holds",
        list(ATS_KINDS),
        format_func=ATS_KINDS.get,
        horizontal=True,
        key="io_ats_kind",
    )
    upload = st.file_uploader(
        "ATS export (CSV)",
        type=["csv", "txt", "tsv"],
        disabled=not writable,
        key=f"io_ats_file_{kind}",
        help="A Greenhouse, Lever, Workable or similar export saved as CSV.",
    )
    last = st.session_state.get("io_ats_last_result")
    if last is not None and last.errors:
        st.download_button(
            f"Download the error report ({len(last.errors):,} refused rows)",
            data=last.error_report_csv(),
            file_name=f"import-{last.kind}-errors.csv",
            mime="text/csv",
            icon=":material/download:",
            key="io_ats_report",
        )
    if upload is None:
        return
    data = upload.getvalue()
    try:
        shape, detected = ats_import.detect(data, kind=kind)
    except CrmError as error:
        st.error(str(error))
        return
    st.caption(
        f"{shape.data_rows:,} rows · {shape.encoding_name} · {shape.delimiter_name}-separated"
        + (f" · {shape.header_line} line(s) of notes skipped" if shape.header_line else "")
    )
    labels = {IGNORE: IGNORE} | ats_tables.FIELDS[kind]
    chosen: dict[str, str | None] = {}
    with st.expander("Columns", expanded=True):
        cols = st.columns(3)
        for position, header in enumerate(dict.fromkeys(shape.headers)):
            suggested = detected.get(header) or IGNORE
            target = cols[position % 3].selectbox(
                header or "(no header)",
                list(labels),
                index=list(labels).index(suggested),
                format_func=labels.get,
                key=f"io_ats_map_{kind}_{upload.file_id}_{position}",
                disabled=not writable,
            )
            chosen[header] = None if target == IGNORE else target
    preview_key = f"io_ats_preview_{kind}_{upload.file_id}"
    if st.button("Preview", key="io_ats_preview", disabled=not writable):
        try:
            with st.spinner("Checking every row…"):
                st.session_state[preview_key] = (
                    chosen,
                    ats_import.preview(engine, data, kind=kind, mapping=chosen),
                )
        except CrmError as error:
            st.error(str(error))
            st.session_state.pop(preview_key, None)
    stored = st.session_state.get(preview_key)
    if not stored:
        return
    if stored[0] != chosen:
        st.caption("The columns changed since the preview: press Preview again.")
        return
    result = stored[1]
    counts = st.columns(4)
    counts[0].metric("New", f"{result.created:,}")
    counts[1].metric("Updated", f"{result.updated:,}")
    counts[2].metric("Already here", f"{result.skipped:,}")
    counts[3].metric("Refused rows", f"{result.error_count:,}")
    if result.candidates_created:
        st.caption(
            f"{result.candidates_created:,} people not yet in the CRM will be added "
            f'(source "{ats_import.NEW_CANDIDATE_SOURCE}").'
        )
    if result.problems:
        st.dataframe(
            pd.DataFrame(result.problems, columns=["row", "column", "problem"]),
            hide_index=True,
            width="stretch",
        )
        if result.error_count > len(result.problems):
            st.caption(
                f"The first {len(result.problems):,} of {result.error_count:,} refused rows; "
                "the error report after the import lists them all."
            )
    if st.button(
        f"Import {result.created + result.updated:,} {kind}",
        type="primary",
        key="io_ats_import",
        disabled=not writable,
    ):
        try:
            with st.spinner("Importing…"):
                done = ats_import.import_file(
                    engine,
                    actor=user,
                    data=data,
                    filename=upload.name,
                    kind=kind,
                    mapping=chosen,
                )
        except CrmError as error:
            st.error(str(error))
        else:
            st.session_state.pop(preview_key, None)
            st.session_state["io_ats_last_result"] = done
            added = f", {done.candidates_created:,} people added" if done.candidates_created else ""
            st.session_state["io_notice"] = (
                f"Imported {upload.name}: {done.created:,} new, {done.updated:,} updated, "
                f"{done.skipped:,} already here, {len(done.errors):,} refused{added}."
            )
            st.rerun()


# --- export -------------------------------------------------------------------------------


def export_section() -> None:
    what = st.radio(
        "Which candidates",
        ["Everyone", "A search", "A talent pool"],
        horizontal=True,
        key="io_export_what",
    )
    text, pool_name = "", None
    if what == "A search":
        text = st.text_input(
            "Search", placeholder="As on the Candidates page: name, email, company, a skill…"
        )
    elif what == "A talent pool":
        names = list(pools.pool_names(engine).values())
        pool_name = st.selectbox("Pool", names, placeholder="No pools yet")
    bom = st.checkbox(
        "For Excel (UTF-8 with a byte order mark)",
        help="Excel on Windows needs the mark to show accented letters correctly.",
    )
    stamp = clock.today().isoformat()
    name = pool_name or ("search" if text else "candidates")
    st.download_button(
        "Download CSV",
        data=lambda: exporter.export_to_bytes(
            engine,
            actor=user,
            scope=exporter.ExportScope(text=text, pool_name=pool_name),
            bom=bom,
        )[0],
        file_name=f"{name.lower().replace(' ', '-')}-{stamp}.csv",
        mime="text/csv",
        icon=":material/download:",
        type="primary",
        disabled=what == "A talent pool" and not pool_name,
    )
    st.caption(
        "Cells that start with = + - @ are prefixed with a quote so a spreadsheet never runs "
        "them as formulas. Every export is recorded in the audit log."
    )


# --- history --------------------------------------------------------------------------------


def history_section() -> None:
    batches = importer.list_batches(engine)
    if not batches:
        st.caption("No imports yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    "when": [b.created_at.strftime("%Y-%m-%d %H:%M") for b in batches],
                    "file": [b.filename for b in batches],
                    "by": [b.created_by or "" for b in batches],
                    "rows": [b.rows_read for b in batches],
                    "new": [b.created for b in batches],
                    "updated": [b.updated for b in batches],
                    "duplicates": [b.duplicates for b in batches],
                    "refused": [b.errors for b in batches],
                    "undone": [
                        b.undone_at.strftime("%Y-%m-%d %H:%M") if b.undone_at else ""
                        for b in batches
                    ],
                }
            ),
            hide_index=True,
            width="stretch",
        )
        undoable = {
            b.id: f"{b.filename} ({b.created_at:%Y-%m-%d %H:%M})" for b in batches if b.can_undo
        }
        if undoable:
            cols = st.columns([3, 1], vertical_alignment="bottom")
            chosen = cols[0].selectbox("Undo an import", list(undoable), format_func=undoable.get)
            confirm = st.checkbox(
                "I understand: the people it created are removed and the fields it changed "
                "are restored.",
                key="io_undo_confirm",
            )
            if cols[1].button("Undo import", disabled=not writable or not confirm):
                try:
                    removed, restored = importer.undo_import(engine, actor=user, batch_id=chosen)
                except CrmError as error:
                    st.error(str(error))
                else:
                    st.session_state["io_notice"] = (
                        f"Undone: {removed:,} people removed, {restored:,} restored."
                    )
                    st.rerun()


# --- duplicates -----------------------------------------------------------------------------


def duplicates_section() -> None:
    pairs = duplicates.suspected_duplicates(engine, limit=50)
    if not pairs:
        st.caption(
            "No suspected duplicates. People with the same name and company, or the same "
            "phone, show up here."
        )
    for pair in pairs:
        with st.container(border=True):
            st.markdown(
                f"**{common.md(pair.a_name)}** and **{common.md(pair.b_name)}** · "
                f":gray[{pair.reason}]  \n{common.md(pair.a_summary)}  \n"
                f"{common.md(pair.b_summary)}"
            )
            cols = st.columns(3)
            if cols[0].button(
                "Merge…", key=f"merge_{pair.a_id}_{pair.b_id}", disabled=not writable
            ):
                st.session_state["io_merge"] = (pair.a_id, pair.b_id)
            if cols[1].button(
                "Not a duplicate", key=f"dismiss_{pair.a_id}_{pair.b_id}", disabled=not writable
            ):
                duplicates.dismiss(engine, actor=user, a_id=pair.a_id, b_id=pair.b_id)
                st.session_state["io_notice"] = "Remembered: they are different people."
                st.rerun()


@st.dialog(
    "Merge two records", width="large", on_dismiss=lambda: st.session_state.pop("io_merge", None)
)
def merge_dialog(a_id: int, b_id: int) -> None:
    from crm import candidates

    first = candidates.get_candidate(engine, a_id)
    second = candidates.get_candidate(engine, b_id)
    if first is None or second is None:
        st.warning("One of the two records no longer exists.")
        return
    st.caption(
        "Pick which value to keep for each field. Skills, tags, the timeline, pools, "
        "applications and emails of both are kept; the stricter lawful basis always wins."
    )
    keep_first = st.radio(
        "Keep the record of",
        ["a", "b"],
        format_func=lambda side: (
            (first if side == "a" else second).full_name
            + f" (#{(first if side == 'a' else second).id})"
        ),
        horizontal=True,
    )
    keep, other = (first, second) if keep_first == "a" else (second, first)
    names = {u.id: u.display_name for u in auth.list_users(engine)}

    def shown(field: str, value: object) -> str:
        if value in (None, ""):
            return "(empty)"
        if field == "owner_id":
            return names.get(value, "someone")
        if field == "consent_status":
            return CONSENT_LABELS.get(str(value), str(value))
        return str(value)

    choices: dict[str, str] = {}
    for field in duplicates.MERGEABLE_FIELDS:
        mine, theirs = getattr(keep, field), getattr(other, field)
        if mine == theirs or theirs in (None, ""):
            continue
        label = field.replace("_", " ")
        picked = st.radio(
            label.capitalize(),
            ["keep", "remove"],
            format_func=lambda side, m=mine, t=theirs: (
                str(m if side == "keep" else t)
                if (m if side == "keep" else t) not in (None, "")
                else "(empty)"
            ),
            horizontal=True,
            key=f"merge_choice_{field}",
        )
        choices[field] = picked
    if st.button("Merge", type="primary", disabled=not writable):
        try:
            duplicates.merge(
                engine, actor=user, keep_id=keep.id, remove_id=other.id, choices=choices
            )
        except CrmError as error:
            st.error(str(error))
            return
        st.session_state.pop("io_merge", None)
        st.session_state["io_notice"] = f"Merged into {common.md(keep.full_name)}."
        st.rerun()


for tab, section in (
    (import_tab, import_section),
    (export_tab, export_section),
    (history_tab, history_section),
    (duplicates_tab, duplicates_section),
):
    if tab.open:
        with tab:
            section()

if import_tab.open:
    with import_tab:
        ats_section()

if st.session_state.get("io_merge"):
    merge_dialog(*st.session_state["io_merge"])
