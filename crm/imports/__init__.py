"""The CSV core every importer shares: what is the same whatever a file holds.

Reading and detection live in crm.csvfile; here are the cell escape (cells), header
aliases as data (aliases), the refused rows' report and the size limit (report), date
order and date, time and amount cells (values), the bulk writer (bulk) and the helper
process that parses a big file beside the one that writes it (parsing). Each importer
(crm.importer, crm.ats_import, crm.content_calendar.files) keeps only what is particular
to its kind.
"""
