"""What ``featstore info`` reports about a store."""

from __future__ import annotations

from featstore.store.reader import Store


def summarize(store: Store) -> dict:
    meta = store.meta
    speakers = meta.drop_duplicates("speaker_id")
    by_gender = {g: int((speakers["gender"] == g).sum()) for g in ("F", "M")}
    unknown = int((~speakers["gender"].isin(["F", "M"])).sum())
    if unknown:
        by_gender["U"] = unknown
    params = store.provenance.get("params", {})
    sample_rate = params.get("sample_rate", 16000)
    return {
        "path": str(store.path),
        "num_chunks": len(store),
        "num_utterances": int(meta["utterance_id"].nunique()),
        "num_speakers": int(len(speakers)),
        "speakers_by_gender": by_gender,
        "subsets": sorted(meta["subset"].unique().tolist()),
        "hours": round(float(meta["n_samples"].sum()) / sample_rate / 3600, 4),
        "chunk_seconds": params.get("chunk_seconds"),
        "padded_chunks": int((meta["n_samples"] < params.get("chunk_samples", 0)).sum()),
        "features": {name: {"shape": list(f.shape), "dtype": f.dtype, **_feature_params(f),
                            **_feature_storage(store, name)}
                     for name, f in store.features.items()},
        "problems": store.problems,
        "source": store.provenance.get("source_name"),
        "created": store.provenance.get("created"),
        "git_commit": store.provenance.get("git_commit"),
        "device": store.provenance.get("device"),
    }


def _feature_params(f) -> dict:
    # wav2vec2 specs carry layers/dim/model at top level so `info --json` readers find them
    top = {k: f.params[k] for k in ("layers", "dim", "model", "revision") if k in f.params}
    return {**top, "params": f.params}


def _feature_storage(store: Store, name: str) -> dict:
    """Bytes of the feature's datasets on disk; its group (file set), the group's files' size
    and when it was added (a format 1 feature: the build's time)."""
    f = store.features[name]
    size = 0
    for i in range(len(store.shards)):
        size += store._file(store.file_of(name, i))[f"features/{name}"].id.get_storage_size()
    group = store.index.get("groups", {}).get(f.group or "", {})
    return {"bytes": int(size), "group": f.group, "group_bytes": group.get("bytes"),
            "added": group.get("added", store.provenance.get("created"))}


def _short(params: dict, width: int = 60) -> str:
    text = ", ".join(f"{k}={v}" for k, v in params.items()
                     if isinstance(v, int | float | str | bool) and v is not None)
    return text if len(text) <= width else text[: width - 3] + "..."


def render(summary: dict) -> str:
    lines = [
        f"store      {summary['path']}",
        f"source     {summary['source']}",
        f"chunks     {summary['num_chunks']} ({summary['chunk_seconds']} s; "
        f"{summary['padded_chunks']} zero-padded)",
        f"audio      {summary['hours']:.3f} h in {summary['num_utterances']} utterances",
        f"speakers   {summary['num_speakers']} "
        + " ".join(f"{g}={n}" for g, n in summary["speakers_by_gender"].items()),
        "features",
    ]
    for name, f in summary["features"].items():
        lines.append(f"  {name:24s} {str(tuple(f['shape'])):14s} {f['dtype']:8s} "
                     f"{f['bytes'] / 1e6:9.1f} MB  added {f['added']}  {_short(f['params'])}")
    lines.append(f"problems   {len(summary['problems'])}")
    lines += [f"  {p['path']}: {p['reason']}" for p in summary["problems"]]
    return "\n".join(lines)
