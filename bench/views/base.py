"""What every feature view is: a name, a kind, and check / uses / load against a store; the
error a missing feature raises; views joined side by side (``mfcc+pitch``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featstore.errors import UserError
from featstore.store.reader import Store

KINDS = ("vector", "frames", "audio", "layers")
BLOCK = 2048  # rows per read when pooling: bounds the float32 copy of [n, L, D] float16 arrays


class ViewError(UserError):
    """An unknown view name, or a view the store cannot provide."""


@dataclass(frozen=True)
class View:
    name: str
    kind: str

    def check(self, store: Store) -> None:
        """Raise ViewError if ``store`` cannot provide this view."""
        raise NotImplementedError

    def uses(self) -> tuple[str, ...]:
        """The store features this view reads (its cells' keys hash only these, so adding
        another feature to the store leaves them unchanged)."""
        raise NotImplementedError

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        """The view for store ``rows`` (sorted row indices), in that order."""
        raise NotImplementedError


def missing_feature(store: Store, view: str, extractor: str, extra: str = "",
                    entry: str | None = None) -> ViewError:
    """The error for a view whose feature the store lacks, naming the build flag that adds it."""
    params = store.provenance.get("params", {})
    entries = params.get("entries", {})  # NAME=MODEL features, as given
    built = [entries.get(f, f) for f in params.get("features", [])]
    flag = ",".join(dict.fromkeys([*built, entry or extractor]))
    return ViewError(f"view '{view}': store {store.path} has no {extractor} features: rebuild "
                     f"with `featstore build --features {flag}{extra}`")


@dataclass(frozen=True)
class ConcatView(View):
    parts: tuple[View, ...] = ()

    def uses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for p in self.parts for n in p.uses()))

    def check(self, store: Store) -> None:
        for part in self.parts:
            part.check(store)

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        return np.concatenate([p.load(store, rows) for p in self.parts], axis=1)
