"""Ingest of behaviour data into the store: Foursquare check-ins, GETNext CSV, generic events.

``ingest_file(path, session_factory)`` parses, cleans and writes in atomic batches, returning an
``IngestReport`` that lists every rejected row with its line number and reason.
"""

from core.ingest.formats import FORMATS, detect_format, parse_file, parse_records
from core.ingest.report import IngestReport, Rejection
from core.ingest.writer import ingest_file, write_events

__all__ = [
    "FORMATS",
    "IngestReport",
    "Rejection",
    "detect_format",
    "ingest_file",
    "parse_file",
    "parse_records",
    "write_events",
]
