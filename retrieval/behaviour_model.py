"""A behavioural item embedding and the sequence encoder that queries it: which item a person
will try next that they have not had before.

Trained on the event sequences themselves (PyTorch, CPU, seconds to minutes): each step where a
person's next item is one they never had is an example; the softmax runs over the whole catalog
with the person's own earlier items masked out, because the counts already find revisits and the
pool lacks new items (docs/measurements.md). An item's vector is its own embedding plus the
embeddings of its tokens (its kinds, and what the domain adds: a place's map cells, a film's
decade), so a rarely seen item still lands near items like it. The query encodes the person's
last ``WINDOW`` items (position-weighted mean) and the moment's slot (the hour of day when it is
known, else the hour of the latest event) through a small MLP.

Serving never runs PyTorch: the trained weights are kept as numpy arrays, a query is a gather,
a weighted mean and two small products, and the item vectors (with the per-item bias as a last
coordinate) go into a FAISS inner-product index (retrieval/behaviour_source.py). Saved as one
``.npz`` with a ``.json`` beside it holding its sha256: a file that does not match is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import NotReadyError

WINDOW = 20  # the latest items the encoder reads
SLOTS = 48  # 24 local hours with the moment known, 24 "the latest event's hour, the next unknown"
DIM = 64
EPOCHS = 6
BATCH = 256
MAX_EXAMPLES = 60_000  # so a big history trains in minutes, not hours
SEED = 0


@dataclass(frozen=True)
class Sequences:
    """Training input: per person, catalog rows in time order and each event's local hour."""

    items: list[np.ndarray]
    hours: list[np.ndarray]


@dataclass
class BehaviourModel:
    item_ids: np.ndarray  # model row -> item id (str)
    vectors: np.ndarray  # (items, DIM + 1): the item tower, its bias last
    pos_weight: np.ndarray  # (WINDOW,) softmax weights, oldest first
    slot: np.ndarray  # (SLOTS, DIM)
    w1: np.ndarray  # (2 * DIM, DIM)
    b1: np.ndarray
    w2: np.ndarray  # (DIM, DIM)
    b2: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", ""))

    def encode(self, rows: np.ndarray, slot: int) -> np.ndarray:
        """The query for a person whose latest model rows are ``rows`` (oldest first, -1 for an
        item the model does not know) at ``slot``: a (DIM + 1) vector whose inner product with
        an item's vector is the model's score for it."""
        rows = np.asarray(rows, dtype=np.int64)[-WINDOW:]
        w = self.pos_weight[WINDOW - len(rows) :] * (rows >= 0)
        z = (self.vectors[np.maximum(rows, 0), :DIM] * w[:, None]).sum(axis=0) if len(rows) else np.zeros(DIM)
        h = np.maximum(np.concatenate([z, self.slot[slot]]) @ self.w1 + self.b1, 0.0)
        q = h @ self.w2 + self.b2
        return np.append(q, 1.0).astype(np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "item_ids": self.item_ids.astype(str),
            "vectors": self.vectors,
            "pos_weight": self.pos_weight,
            "slot": self.slot,
            "w1": self.w1,
            "b1": self.b1,
            "w2": self.w2,
            "b2": self.b2,
        }

    def save(self, folder: Path) -> Path:
        """``behaviour-<version>.npz`` and its ``.json`` (the sha256 is checked on load)."""
        arrays = self._arrays()
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        data = buf.getvalue()
        # the version names the weights (the same training gives the same version); the digest of
        # the file's bytes (a zip with its write time) is what a load checks
        self.meta["version"] = content_version(arrays)
        self.meta["sha256"] = hashlib.sha256(data).hexdigest()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"behaviour-{self.version}.npz"
        tmp = path.with_suffix(".npz.tmp")
        tmp.write_bytes(data)
        path.with_suffix(".json").write_text(json.dumps(self.meta, indent=2, default=str))
        tmp.replace(path)  # the weights appear only once whole, their digest already beside them
        return path

    @classmethod
    def load(cls, path: Path) -> BehaviourModel:
        """A saved model; one whose bytes do not match the digest beside it, or that does not
        read, is refused with NotReadyError (the caller serves without it)."""
        meta_path = path.with_suffix(".json")
        try:
            data = path.read_bytes()
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise NotReadyError(f"behaviour model {path.name} unreadable ({exc})") from exc
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise NotReadyError(
                f"behaviour model {path.name} does not match its digest (corrupt or half-written): "
                "rebuild it with `chronotope index`"
            )
        try:
            z = np.load(io.BytesIO(data), allow_pickle=False)
            out = cls(**{k: z[k] for k in z.files}, meta=meta)
        except Exception as exc:  # a wrong array set is as unusable as a wrong digest
            raise NotReadyError(f"behaviour model {path.name} refused ({exc})") from exc
        if out.vectors.shape != (len(out.item_ids), DIM + 1) or out.pos_weight.shape != (WINDOW,):
            raise NotReadyError(f"behaviour model {path.name} has the wrong shape")
        return out


def content_version(arrays: dict[str, np.ndarray]) -> str:
    """The weights' own digest (a saved file's bytes also hold its write time)."""
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays.values())).hexdigest()[
        :10
    ]


def newest_models(folder: Path, domain: str) -> list[Path]:
    """Saved models of ``domain``, most recently trained first."""
    if not folder.is_dir():
        return []

    def key(p: Path) -> tuple[str, float]:
        try:
            meta = json.loads(p.with_suffix(".json").read_text())
        except (OSError, ValueError):
            meta = {}
        if meta.get("domain") not in (None, domain):
            return ("", -1.0)
        return (str(meta.get("trained_at", "")), p.stat().st_mtime)

    paths = [p for p in folder.glob("behaviour-*.npz") if key(p)[1] >= 0]
    return sorted(paths, key=key, reverse=True)


def examples(seq: Sequences, n: int) -> tuple[np.ndarray, ...]:
    """(input windows as rows + 1, 0 padding; slots; targets; person; step) for every step whose
    item the person never had before (at most MAX_EXAMPLES, the last ones); and each person's first step per
    item (for the mask). Every other example is "what next?": its slot is the hour of the event
    before it, marked unknown (24 + hour), so one model serves both settings."""
    xs: list[np.ndarray] = []
    ss: list[int] = []
    ys: list[int] = []
    us: list[int] = []
    ps: list[int] = []
    first = np.full((len(seq.items), n), np.iinfo(np.int32).max, dtype=np.int32)
    for u, (items, hours) in enumerate(zip(seq.items, seq.hours, strict=True)):
        steps = np.arange(len(items))
        first[u, items[::-1]] = steps[::-1]  # the earliest step wins
        for p in steps[1:]:
            if first[u, items[p]] != p:
                continue  # a revisit: the counts find those
            w = items[max(0, p - WINDOW) : p] + 1
            xs.append(np.pad(w, (WINDOW - len(w), 0)))
            ss.append(int(hours[p]) if len(ys) % 2 == 0 else 24 + int(hours[p - 1]))
            ys.append(int(items[p]))
            us.append(u)
            ps.append(int(p))
    keep = slice(-MAX_EXAMPLES, None)
    arr = [np.asarray(a, dtype=np.int64)[keep] for a in (ss, ys, us, ps)]
    x = np.asarray(xs, dtype=np.int64).reshape(-1, WINDOW)[keep]
    return (x, *arr, first)


def train(
    seq: Sequences,
    item_ids: np.ndarray,
    tokens: Sequence[Sequence[str]],
    *,
    epochs: int | None = None,
    progress: Callable[[str], None] | None = None,
    meta: dict[str, Any] | None = None,
) -> BehaviourModel:
    """Train on ``seq`` (catalog rows of ``item_ids``); ``tokens``: each item's tokens. The best
    epoch on a held-out twentieth of the examples is kept. Deterministic for one input."""
    import torch

    # one thread: the embedding gradients' scatter-adds are summed in a fixed order, so the same
    # history trains the same model (two threads gave rankers trained on its scores that differed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(seq, item_ids, tokens, epochs or EPOCHS, progress, meta)
    finally:
        torch.set_num_threads(threads)


def _train(
    seq: Sequences,
    item_ids: np.ndarray,
    tokens: Sequence[Sequence[str]],
    epochs: int,
    progress: Callable[[str], None] | None,
    meta: dict[str, Any] | None,
) -> BehaviourModel:
    import torch

    from retrieval.behaviour_net import Net

    t0 = time.perf_counter()
    n = len(item_ids)
    torch.manual_seed(SEED)
    x, s, y, u, p, first = examples(seq, n)
    if len(y) < 50:
        raise ValueError(f"too little history to train a behaviour model ({len(y)} steps to a new item)")
    vocab: dict[str, int] = {}
    tok_rows = [[vocab.setdefault(t, len(vocab)) + 1 for t in ts] for ts in tokens]
    width = max((len(t) for t in tok_rows), default=0) or 1
    tok = np.zeros((n + 1, width), dtype=np.int64)
    for i, t in enumerate(tok_rows):
        tok[i + 1, : len(t)] = t
    net = Net(n, len(vocab) + 1, torch.from_numpy(tok), WINDOW, SLOTS, DIM)
    X, S, Y, U, P = (torch.from_numpy(a) for a in (x, s, y, u, p))
    F = torch.from_numpy(first)
    order = torch.randperm(len(Y), generator=torch.Generator().manual_seed(SEED))
    n_val = max(len(Y) // 20, 1)
    val, tr = order[:n_val], order[n_val:]
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def loss_of(b: torch.Tensor) -> torch.Tensor:
        had = F[U[b]] < P[b][:, None]
        logits = net(X[b], S[b]).masked_fill(had, -1e9)  # what they had
        return torch.nn.functional.cross_entropy(logits, Y[b])

    best, best_state, best_epoch = float("inf"), None, 0
    gen = torch.Generator().manual_seed(SEED + 1)
    for epoch in range(epochs):
        net.train()
        for b in tr[torch.randperm(len(tr), generator=gen)].split(BATCH):
            opt.zero_grad()
            loss_of(b).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            v = float(np.mean([loss_of(b).item() for b in val.split(4096)]))
        if progress:
            progress(f"behaviour model epoch {epoch + 1}/{epochs}: held-out loss {v:.3f}")
        if v < best:
            best, best_epoch = v, epoch + 1
            best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
    assert best_state is not None
    net.load_state_dict(best_state)
    ids = np.asarray(item_ids).astype(str)
    arrays = net.export()
    info = {
        "version": content_version({"item_ids": ids, **arrays}),  # as ``save`` names it
        "domain": "",
        "trained_at": datetime.now(UTC).isoformat(),
        "examples": int(len(Y)),
        "items": n,
        "tokens": len(vocab),
        "best_epoch": best_epoch,
        "held_out_loss": round(best, 4),
        "train_s": round(time.perf_counter() - t0, 1),
        **(meta or {}),
    }
    return BehaviourModel(item_ids=ids, **arrays, meta=info)
