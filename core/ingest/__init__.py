"""Ingest of behaviour data into the store: the generic events format here, a domain's data-set
formats in its package (``domains.formats()`` is the whole registry).

``ingest_file(path, factory, formats=...)`` parses, cleans and writes in atomic batches, returning
an ``IngestReport`` that lists every rejected row with its line number and reason.
"""

from core.ingest.events_format import parse_records
from core.ingest.formats import EVENTS, GENERIC, Format, Formats, Parsed
from core.ingest.report import IngestReport, Rejection
from core.ingest.writer import ingest_file, write_events, write_items

__all__ = [
    "EVENTS",
    "GENERIC",
    "Format",
    "Formats",
    "IngestReport",
    "Parsed",
    "Rejection",
    "ingest_file",
    "parse_records",
    "write_events",
    "write_items",
]
