"""The content calendar: what each pool hears, on which channel, and when.

The package holds one concept per module: labels (the words and colours of channels,
themes and statuses), values (reading what people type), recurrence (how a series
repeats, on dateutil.rrule), drafts (what an item must hold), occurrences (what is on the
calendar in a window), items (creating and changing items), cadence (how often pools hear
from us) and files (iCalendar and CSV export, CSV import). Import from the modules.
"""
