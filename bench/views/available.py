"""The view names a given store can provide, and a config's view name expanded against it
(``NAME:each``: one view per stored layer)."""

from __future__ import annotations

from bench.views.names import EMBEDDINGS
from featstore.store.reader import Store


def store_views(store: Store) -> list[str]:
    """The concrete view names ``store`` can provide (each stored wav2vec2 layer, and all);
    any vector views among them can be joined with +."""
    names = ["mfcc", "mfcc-deltas", "mfcc-frames"] if "mfcc" in store.features else []
    names += ["pitch"] if "pitch/f0" in store.features else []
    names += ["fbank", "fbank-frames"] if "fbank" in store.features else []
    names += [e for e in EMBEDDINGS if e in store.features]
    for feature in upstreams(store):
        layers = store.features[f"{feature}/mean"].params.get("layers", [])
        names += [f"{feature}:{layer}" for layer in layers] + [f"{feature}:all",
                                                               f"{feature}:layers"]
        names += sorted((f"{feature}-frames:{n.rsplit('/', 1)[1]}" for n in store.features
                         if n.startswith(f"{feature}/frames/")), key=lambda s: int(s.split(":")[1]))
    return names + (["audio"] if "audio" in store.features else [])


def upstreams(store: Store) -> list[str]:
    """The self-supervised features a store holds (wav2vec2 and NAME=MODEL ones)."""
    return [n.split("/")[0] for n in store.features if n.count("/") == 1 and n.endswith("/mean")]


def expand(name: str, store: Store) -> list[str]:
    """A config's view name as concrete views: ``NAME:each`` is one view per layer the store
    holds of NAME (a layer sweep); any other name, or NAME:each when the store lacks NAME (its
    check then says why), is itself."""
    feature, sep, arg = name.partition(":")
    if not sep or arg != "each" or f"{feature}/mean" not in store.features:
        return [name]
    return [f"{feature}:{layer}"
            for layer in store.features[f"{feature}/mean"].params.get("layers", [])]
