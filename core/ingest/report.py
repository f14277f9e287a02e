"""What an ingest did: counts and every rejected row (line number and reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rejection:
    line: int  # 1-based line in the file (the header is line 1 for CSV)
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass
class IngestReport:
    path: str
    format: str
    rows_read: int = 0
    rows_valid: int = 0
    inserted: int = 0
    already_present: int = 0  # valid rows whose event id was stored before (idempotent re-ingest)
    users_added: int = 0
    items_added: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    duplicates: list[Rejection] = field(default_factory=list)  # dropped rows: "duplicate of line N"
    warnings: list[str] = field(default_factory=list)  # the data contradicts an assumption
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    @property
    def duplicates_in_file(self) -> int:
        return len(self.duplicates)

    def nothing_stored(self) -> str | None:
        """Why this ingest failed: it stored no event because the input had no row or every row was
        rejected. None when events were stored, or when every valid row was stored before (an
        idempotent re-ingest is a success)."""
        if self.inserted or self.already_present:
            return None
        if self.rows_read == 0:
            return "the input has no rows (a header only?)"
        catalog = f"; {self.items_added:,} catalog items were added" if self.items_added else ""
        if self.rows_valid == 0:
            first = "; ".join(f"line {r.line}: {r.reason}" for r in self.rejections[:3])
            return (
                f"all {self.rows_read:,} rows were rejected"
                + (f" (first: {first})" if first else "")
                + catalog
            )
        return f"none of the {self.rows_valid:,} valid rows was stored{catalog}"

    def already_stored(self) -> bool:
        """Nothing new, because every valid row was stored before (a re-ingest)."""
        return self.inserted == 0 and self.already_present > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "inserted": self.inserted,
            "already_present": self.already_present,
            "duplicates_in_file": self.duplicates_in_file,
            "users_added": self.users_added,
            "items_added": self.items_added,
            "rejected": self.rejected,
            "rejections": [r.to_dict() for r in self.rejections],
            "duplicates": [r.to_dict() for r in self.duplicates],
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }
