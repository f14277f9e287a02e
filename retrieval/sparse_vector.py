"""A catalog-length vector that is zero almost everywhere, read at chosen rows.

The per-query kernel scores a few hundred candidate places, not the whole catalog, yet some of
its features are ranks over the whole catalog (co-visitation, neighbours). ``SparseVector`` keeps
only the non-zero entries and answers "value at these rows", "rank of these rows in the
descending, index-stable order of the whole vector" and "the first k of that order" exactly as
the dense vector would, in O(non-zeros) instead of O(catalog).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class SparseVector:
    n: int
    indices: np.ndarray  # sorted, unique
    values: np.ndarray  # float64, non-zero

    @classmethod
    def empty(cls, n: int) -> SparseVector:
        return cls(n, np.zeros(0, dtype=np.int64), np.zeros(0))

    @classmethod
    def from_sparse_row(cls, row: sp.spmatrix, n: int) -> SparseVector:
        """From a 1 x n scipy matrix (any format)."""
        r = sp.csr_matrix(row)
        r.sum_duplicates()  # also sorts the indices
        keep = r.data != 0
        return cls(n, r.indices[keep].astype(np.int64), r.data[keep].astype(np.float64))

    @classmethod
    def from_dense(cls, v: np.ndarray) -> SparseVector:
        nz = np.flatnonzero(v)
        return cls(len(v), nz.astype(np.int64), np.asarray(v, dtype=np.float64)[nz])

    def slots(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row, its position among the stored entries and whether it is stored there:
        one lookup that any number of entry-aligned arrays can then be read through."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(self.indices):
            return np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=bool)
        pos = np.minimum(np.searchsorted(self.indices, rows), len(self.indices) - 1)
        return pos, self.indices[pos] == rows

    def at(self, rows: np.ndarray) -> np.ndarray:
        return gather(self.values, *self.slots(rows))

    def _entry_ranks(self) -> np.ndarray:
        """Rank in the dense order of each stored entry: positives first (value descending, index
        ascending), then the zeros, then the negatives."""
        order = np.lexsort((self.indices, -self.values))
        n_pos = int((self.values > 0).sum())
        n_zero = self.n - len(self.values)
        r = np.arange(len(order), dtype=np.float64)
        r[n_pos:] += n_zero  # negatives sort after every zero
        out = np.empty(len(order))
        out[order] = r
        return out

    def ranks(self, rows: np.ndarray) -> np.ndarray:
        """Position of each row in ``np.argsort(-dense, kind="stable")``."""
        rows = np.asarray(rows, dtype=np.int64)
        n_pos = int((self.values > 0).sum())
        # a zero comes after the positives, by index: i minus the stored entries before i
        rank = n_pos + rows - np.searchsorted(self.indices, rows).astype(np.float64)
        pos, hit = self.slots(rows)
        if hit.any():
            rank[hit] = self._entry_ranks()[pos[hit]]
        return rank

    def rank_score(self, rows: np.ndarray) -> np.ndarray:
        """1 / (1 + rank / 10) by descending value: scale-free, so users with long and short
        histories get comparable numbers."""
        return 1 / (1 + self.ranks(rows) / 10)

    def top(self, k: int) -> np.ndarray:
        """The first ``k`` indices of the dense order (zeros by index after the positives)."""
        k = min(k, self.n)
        order = np.lexsort((self.indices, -self.values))
        pos = self.indices[order][self.values[order] > 0]
        neg = self.indices[order][self.values[order] < 0]
        out = pos[:k]
        need = k - len(out)
        if need > 0:
            # the lowest indices that hold no entry
            span = np.arange(min(self.n, need + len(self.indices)), dtype=np.int64)
            zeros = span[~np.isin(span, self.indices)][:need]
            out = np.concatenate([out, zeros, neg[: need - len(zeros)]])
        return out


def gather(values: np.ndarray, pos: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """``values`` (aligned with stored entries) read through ``slots``: 0 where a row is not stored."""
    out = np.zeros(len(pos))
    out[hit] = values[pos[hit]]
    return out
