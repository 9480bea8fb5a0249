"""Corpus sources: SPEAKERS.TXT, scanning, speaker selection, synthetic corpus, downloads."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import featstore.sources as sources
from featstore.errors import UserError
from featstore.sources import (
    SOURCES,
    Corpus,
    Problem,
    Utterance,
    default_cache_dir,
    fetch_librispeech,
    make_synthetic,
    read_speakers_txt,
    resolve_source,
    scan_librispeech,
    select_speakers,
)

SPEAKERS_TXT = """\
; LibriSpeech speaker table
;ID  |SEX| SUBSET           |MINUTES| NAME
19   | F | train-clean-100  | 25.19 | Kara Shallenberg
26   | M | train-clean-100  | 25.08 | Denny Sayers
60   | m | train-clean-100  | 20.18 | |CBW|Simon

116  | X | dev-other        | 10.00 | Nobody
"""


def write_flac(path: Path, seconds: float = 0.05, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.random.default_rng(seed).uniform(-0.1, 0.1, int(16000 * seconds))
    sf.write(path, audio, 16000, format="FLAC" if path.suffix == ".flac" else "WAV")


def make_tree(root: Path, files: list[str], speakers_txt: str | None = SPEAKERS_TXT) -> Path:
    """Write tiny audio at each relative path, plus SPEAKERS.TXT unless None."""
    root.mkdir(parents=True, exist_ok=True)
    for i, rel in enumerate(files):
        write_flac(root / rel, seed=i)
    if speakers_txt is not None:
        (root / "SPEAKERS.TXT").write_text(speakers_txt)
    return root


STANDARD = [
    "train-clean-100/19/198/19-198-0001.flac",
    "train-clean-100/19/198/19-198-0000.flac",
    "train-clean-100/19/227/19-227-0000.flac",
    "train-clean-100/26/495/26-495-0000.flac",
    "dev-other/116/288045/116-288045-0000.flac",
    "dev-other/60/121082/60-121082-0000.wav",
]


# --- SPEAKERS.TXT and scanning ----------------------------------------------------------------


def test_read_speakers_txt(tmp_path):
    path = tmp_path / "SPEAKERS.TXT"
    path.write_text(SPEAKERS_TXT)
    table = read_speakers_txt(path)
    assert table == {
        "19": ("F", "train-clean-100"),
        "26": ("M", "train-clean-100"),
        "60": ("M", "train-clean-100"),  # NAME "|CBW|Simon" must not shift the fields
        "116": ("U", "dev-other"),  # a sex other than F/M is unknown
    }


def test_scan_labels_ids_and_subsets(tmp_path):
    root = make_tree(tmp_path / "LibriSpeech", STANDARD)
    (root / "train-clean-100/19/198/19-198.trans.txt").write_text("19-198-0000 HELLO\n")
    corpus = scan_librispeech(root)
    ids = [u.utterance_id for u in corpus.utterances]
    assert ids == sorted(ids) and len(ids) == 6
    by_id = {u.utterance_id: u for u in corpus.utterances}
    assert by_id["19-227-0000"] == Utterance(
        "19-227-0000", str(root / "train-clean-100/19/227/19-227-0000.flac"),
        "19", "227", "train-clean-100", "F")
    assert by_id["26-495-0000"].gender == "M"
    assert by_id["60-121082-0000"].subset == "dev-other"  # .wav accepted too
    assert by_id["60-121082-0000"].gender == "M"
    assert by_id["116-288045-0000"].gender == "U"
    assert corpus.problems == []
    assert corpus.root == str(root)


def test_scan_one_subset_folder_uses_parent_speakers(tmp_path):
    root = make_tree(tmp_path / "LibriSpeech", STANDARD)
    corpus = scan_librispeech(root / "train-clean-100")
    assert {u.subset for u in corpus.utterances} == {"train-clean-100"}
    assert len(corpus.utterances) == 4
    assert {u.speaker_id: u.gender for u in corpus.utterances} == {"19": "F", "26": "M"}


def test_subset_filter_and_unknown_subset(tmp_path):
    root = make_tree(tmp_path / "LibriSpeech", STANDARD)
    corpus = scan_librispeech(root, ["dev-other"])
    assert [u.utterance_id for u in corpus.utterances] == ["116-288045-0000", "60-121082-0000"]
    with pytest.raises(UserError, match=r"test-clean.*available: dev-other, train-clean-100"):
        scan_librispeech(root, ["dev-other", "test-clean"])


def test_speaker_missing_from_speakers_txt(tmp_path):
    root = make_tree(tmp_path / "LibriSpeech", STANDARD + [
        "dev-other/1234/5678/1234-5678-0000.flac", "dev-other/1234/5678/1234-5678-0001.flac"])
    corpus = scan_librispeech(root)
    assert {u.gender for u in corpus.utterances if u.speaker_id == "1234"} == {"U"}
    assert len([u for u in corpus.utterances if u.speaker_id == "1234"]) == 2
    assert corpus.problems == [
        Problem(str(root / "dev-other/1234"), "speaker 1234 not in SPEAKERS.TXT")]


def test_missing_speakers_txt_keeps_everything_unknown(tmp_path):
    root = make_tree(tmp_path / "LibriSpeech", STANDARD, speakers_txt=None)
    corpus = scan_librispeech(root)
    assert len(corpus.utterances) == 6
    assert {u.gender for u in corpus.utterances} == {"U"}
    assert len(corpus.problems) == 1 and "SPEAKERS.TXT" in corpus.problems[0].reason


def test_odd_file_names(tmp_path):
    root = make_tree(tmp_path / "LibriSpeech", [
        "dev-other/19/198/19-198-0000.flac",
        "dev-other/19/198/19-198-0000.wav",  # same id as the .flac: skipped
        "dev-other/19/198/take 2.flac",  # kept, ids from the folders
        "dev-other/19/stray.flac",  # no chapter folder: skipped
    ])
    (root / "dev-other/19/198/notes.txt").write_text("not audio")
    corpus = scan_librispeech(root)
    assert [(u.utterance_id, u.speaker_id, u.chapter_id) for u in corpus.utterances] == [
        ("19-198-0000", "19", "198"), ("19-198-take 2", "19", "198")]
    reasons = {Path(p.path).name: p.reason for p in corpus.problems}
    assert set(reasons) == {"19-198-0000.wav", "take 2.flac", "stray.flac"}
    assert "duplicate" in reasons["19-198-0000.wav"] and "skipped" in reasons["stray.flac"]


def test_scan_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        scan_librispeech(tmp_path / "nope")
    make_tree(tmp_path / "empty", [])
    (tmp_path / "empty/dev-clean/19/198").mkdir(parents=True)
    with pytest.raises(UserError, match="no audio"):
        scan_librispeech(tmp_path / "empty")


def test_real_sample(real_data):
    corpus = scan_librispeech(real_data)
    genders = {u.speaker_id: u.gender for u in corpus.utterances}
    assert len(corpus.utterances) == 251 and len(genders) == 161
    assert Counter(genders.values()) == {"F": 80, "M": 81}
    assert corpus.problems == []
    subset = scan_librispeech(real_data, ["test-other"])
    assert len(subset.utterances) == 100
    assert len({u.speaker_id for u in subset.utterances}) == 10
    assert scan_librispeech(real_data / "test-other").utterances == subset.utterances


# --- select_speakers --------------------------------------------------------------------------


def fake_corpus(n_f: int, n_m: int, n_u: int = 0, per_speaker: int = 2) -> Corpus:
    utts, problems = [], [Problem("/c/SPEAKERS.TXT", "corpus-level")]
    genders = ["F"] * n_f + ["M"] * n_m + ["U"] * n_u
    for i, gender in enumerate(genders):
        spk = str(100 + i)
        for k in range(per_speaker):
            utts.append(Utterance(f"{spk}-1-{k:04d}", f"/c/s/{spk}/1/{spk}-1-{k:04d}.flac",
                                  spk, "1", "s", gender))
        problems.append(Problem(f"/c/s/{spk}", f"about {spk}"))
        problems.append(Problem(f"/c/s/{spk}/1/{spk}-1-0000.flac", f"file of {spk}"))
    return Corpus("fake", "/c", utts, problems)


def speakers_of(corpus: Corpus) -> dict[str, str]:
    return {u.speaker_id: u.gender for u in corpus.utterances}


def test_select_speakers_balance_and_problems():
    corpus = fake_corpus(6, 6, 2)
    picked = select_speakers(corpus, 5, seed=0)
    assert Counter(speakers_of(picked).values()) == {"F": 2, "M": 3}
    assert len(picked.utterances) == 10
    kept = set(speakers_of(picked))
    assert {p.reason for p in picked.problems} == (
        {"corpus-level"} | {f"about {s}" for s in kept} | {f"file of {s}" for s in kept})
    assert Counter(speakers_of(select_speakers(corpus, 4, seed=3)).values()) == {"F": 2, "M": 2}


def test_select_speakers_determinism_and_seeds():
    corpus = fake_corpus(10, 10)
    first = select_speakers(corpus, 4, seed=1)
    assert first == select_speakers(corpus, 4, seed=1)
    # Scan order must not matter, only the seed.
    shuffled = Corpus("fake", "/c", corpus.utterances[::-1], corpus.problems)
    assert set(speakers_of(select_speakers(shuffled, 4, seed=1))) == set(speakers_of(first))
    picks = {frozenset(speakers_of(select_speakers(corpus, 4, seed=s))) for s in range(5)}
    assert len(picks) > 1


def test_select_speakers_shortage_and_unknown_gender():
    # Too few women: men fill in; unknown gender only once F and M are exhausted.
    assert Counter(speakers_of(select_speakers(fake_corpus(1, 6, 3), 4, 0)).values()) == {
        "F": 1, "M": 3}
    assert Counter(speakers_of(select_speakers(fake_corpus(1, 1, 3), 4, 0)).values()) == {
        "F": 1, "M": 1, "U": 2}
    with pytest.raises(UserError, match="only 5 speakers"):
        select_speakers(fake_corpus(1, 1, 3), 6, 0)
    with pytest.raises(UserError):
        select_speakers(fake_corpus(1, 1), 0, 0)


# --- synthetic corpus -------------------------------------------------------------------------


def _f0(audio: np.ndarray, sr: int = 16000) -> float:
    """Autocorrelation pitch of the loudest 100 ms, 70-400 Hz."""
    frame = 1600
    energy = [np.sum(audio[i : i + frame] ** 2) for i in range(0, len(audio) - frame, frame)]
    x = audio[int(np.argmax(energy)) * frame :][:frame]
    ac = np.correlate(x, x, "full")[frame - 1 :]
    lo, hi = sr // 400, sr // 70
    return sr / (lo + int(np.argmax(ac[lo:hi])))


def test_synthetic_corpus(tmp_path):
    root = make_synthetic(tmp_path / "synth", n_speakers=6, utterances_per_speaker=3, seed=7)
    assert (root / "SPEAKERS.TXT").is_file()
    files = sorted((root / "synthetic").glob("*/*/*.flac"))
    assert len(files) == 18
    for f in files:
        speaker, chapter = f.parent.parent.name, f.parent.name
        assert f.name.startswith(f"{speaker}-{chapter}-")
        info = sf.info(f)
        assert (info.samplerate, info.channels) == (16000, 1)
        assert 2.5 <= info.duration <= 5.0
    corpus = scan_librispeech(root)
    assert corpus.problems == [] and len(corpus.utterances) == 18
    genders = speakers_of(corpus)
    assert Counter(genders.values()) == {"F": 3, "M": 3}
    # Women are audibly higher: every female utterance above every male one.
    pitch = {"F": [], "M": []}
    for u in corpus.utterances:
        pitch[u.gender].append(_f0(sf.read(u.path)[0]))
    assert min(pitch["F"]) > max(pitch["M"])
    assert 160 < np.median(pitch["F"]) < 290 and 75 < np.median(pitch["M"]) < 165


def test_synthetic_is_deterministic(tmp_path):
    a = make_synthetic(tmp_path / "a", n_speakers=2, utterances_per_speaker=2, seed=3)
    b = make_synthetic(tmp_path / "b", n_speakers=2, utterances_per_speaker=2, seed=3)
    c = make_synthetic(tmp_path / "c", n_speakers=2, utterances_per_speaker=2, seed=4)

    def audio(root):
        return [sf.read(f)[0] for f in sorted((root / "synthetic").glob("*/*/*.flac"))]

    assert all(np.array_equal(x, y) for x, y in zip(audio(a), audio(b), strict=True))
    assert not all(
        len(x) == len(y) and np.array_equal(x, y) for x, y in zip(audio(a), audio(c), strict=True))
    # Re-making into the same folder replaces, so fewer speakers leave nothing stale behind.
    make_synthetic(a, n_speakers=1, utterances_per_speaker=1, seed=3)
    assert len(scan_librispeech(a).utterances) == 1


# --- resolve_source ---------------------------------------------------------------------------


def test_registry_and_local_paths(tmp_path):
    assert {"librispeech", "synthetic"} <= set(SOURCES)
    root = make_tree(tmp_path / "LibriSpeech", STANDARD)
    assert len(resolve_source(str(root)).utterances) == 6
    assert len(resolve_source(str(root), subsets=["dev-other"]).utterances) == 2
    with pytest.raises(UserError, match=f"source path {tmp_path / 'missing'} does not exist"):
        resolve_source(str(tmp_path / "missing"))


def test_resolve_synthetic(tmp_path):
    corpus = resolve_source("synthetic", work_dir=tmp_path, seed=1)
    assert len(corpus.utterances) == 32
    assert Path(corpus.root).parent == tmp_path
    again = resolve_source("synthetic", work_dir=tmp_path, seed=1)  # reused, same corpus
    assert again.utterances == corpus.utterances
    bigger = resolve_source("synthetic", work_dir=tmp_path, seed=1, speakers=10)
    assert len(speakers_of(select_speakers(bigger, 10, 1))) == 10


def test_resolve_librispeech_downloads_then_scans(tmp_path, monkeypatch):
    calls = []

    def fake_fetch(subset, cache_dir):
        calls.append((subset, cache_dir))
        make_tree(cache_dir / "LibriSpeech", [f"{subset}/19/198/19-198-0000.flac"])
        return cache_dir / "LibriSpeech" / subset

    monkeypatch.setattr(sources, "fetch_librispeech", fake_fetch)
    (tmp_path / "LibriSpeech/test-other/26/1/").mkdir(parents=True)  # an earlier download
    write_flac(tmp_path / "LibriSpeech/test-other/26/1/26-1-0000.flac")
    corpus = resolve_source(None, cache_dir=tmp_path)
    assert calls == [("dev-clean", tmp_path)]
    assert [u.subset for u in corpus.utterances] == ["dev-clean"]  # not the other subset
    corpus = resolve_source("librispeech:dev-clean,test-other", cache_dir=tmp_path)
    assert {u.subset for u in corpus.utterances} == {"dev-clean", "test-other"}
    with pytest.raises(UserError, match="--subsets"):
        resolve_source("librispeech:dev-clean", subsets=["test-clean"], cache_dir=tmp_path)


# --- download ---------------------------------------------------------------------------------


class Server:
    """A local HTTP server with Range support that records every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ignore_range = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if outer.ignore_range or not rng:
                    self.send_response(200)
                    start = 0
                elif start >= len(data):
                    self.send_error(416)
                    return
                else:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/resources/12"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def build_tarball(tmp_path: Path, subset: str = "dev-clean", extra=()) -> bytes:
    """A gzipped tar of ``LibriSpeech/<subset>/...`` like openslr's, plus ``extra`` members."""
    tree = make_tree(tmp_path / "src" / "LibriSpeech", [
        f"{subset}/19/198/19-198-0000.flac", f"{subset}/19/198/19-198-0001.flac",
        f"{subset}/26/495/26-495-0000.flac"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tree, arcname="LibriSpeech")
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def serve(server: Server, data: bytes, subset: str = "dev-clean") -> dict[str, str]:
    server.files[f"/resources/12/{subset}.tar.gz"] = data
    return {subset: hashlib.md5(data).hexdigest()}


def test_download_extract_and_reuse(tmp_path, server):
    md5s = serve(server, build_tarball(tmp_path))
    cache = tmp_path / "cache"
    folder = fetch_librispeech("dev-clean", cache, server.url, progress=False, md5s=md5s)
    assert folder == cache / "LibriSpeech" / "dev-clean"
    corpus = scan_librispeech(folder)
    assert [u.utterance_id for u in corpus.utterances] == [
        "19-198-0000", "19-198-0001", "26-495-0000"]
    assert {u.speaker_id: u.gender for u in corpus.utterances} == {"19": "F", "26": "M"}
    assert len(server.requests) == 1
    leftovers = {p.name for p in cache.iterdir()}
    assert leftovers == {"LibriSpeech"}  # no archive, .part or staging folder left
    # A second run neither downloads nor extracts.
    (folder / "19/198/19-198-0000.flac").unlink()
    again = fetch_librispeech("dev-clean", cache, server.url, progress=False, md5s=md5s)
    assert again == folder and len(server.requests) == 1
    assert not (folder / "19/198/19-198-0000.flac").exists()


def test_kept_archive_is_extracted_without_downloading(tmp_path, server):
    md5s = serve(server, build_tarball(tmp_path))
    cache = tmp_path / "cache"
    fetch_librispeech("dev-clean", cache, server.url, False, md5s, keep_archive=True)
    assert (cache / "dev-clean.tar.gz").is_file()
    (cache / "LibriSpeech/.dev-clean.complete").unlink()  # as if extraction had been cut short
    fetch_librispeech("dev-clean", cache, server.url, False, md5s)
    assert len(server.requests) == 1
    assert len(scan_librispeech(cache / "LibriSpeech").utterances) == 3


@pytest.mark.parametrize("ignore_range", [False, True])
def test_download_resumes_part_file(tmp_path, server, ignore_range):
    data = build_tarball(tmp_path)
    md5s = serve(server, data)
    server.ignore_range = ignore_range
    cache = tmp_path / "cache"
    cache.mkdir()
    half = len(data) // 2
    (cache / "dev-clean.tar.gz.part").write_bytes(data[:half])
    fetch_librispeech("dev-clean", cache, server.url, progress=True, md5s=md5s)
    assert server.requests == [("/resources/12/dev-clean.tar.gz", f"bytes={half}-")]
    assert len(scan_librispeech(cache / "LibriSpeech").utterances) == 3


def test_whole_part_file_is_not_fetched_again(tmp_path, server):
    data = build_tarball(tmp_path)
    md5s = serve(server, data)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache/dev-clean.tar.gz.part").write_bytes(data)
    fetch_librispeech("dev-clean", tmp_path / "cache", server.url, progress=False, md5s=md5s)
    assert [r[1] for r in server.requests] == [f"bytes={len(data)}-"]  # answered 416
    assert (tmp_path / "cache/LibriSpeech/dev-clean").is_dir()


def test_checksum_mismatch_deletes_file(tmp_path, server):
    serve(server, build_tarball(tmp_path))
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="checksum mismatch"):
        fetch_librispeech("dev-clean", cache, server.url, progress=False,
                          md5s={"dev-clean": "0" * 32})
    assert list(cache.iterdir()) == []


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", data=b"evil"):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("member", [
    _member("LibriSpeech/../../evil.txt"),
    _member("/tmp/featstore-evil.txt"),
    _member("LibriSpeech/dev-clean/link", tarfile.SYMTYPE, "../../../evil.txt"),
    _member("LibriSpeech/dev-clean/hard", tarfile.LNKTYPE, "../evil.txt"),
    _member("LibriSpeech/dev-clean/dev", tarfile.CHRTYPE),
], ids=["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_unsafe_tarball_is_rejected(tmp_path, server, member):
    md5s = serve(server, build_tarball(tmp_path, extra=[member]))
    cache = tmp_path / "a" / "b" / "cache"
    with pytest.raises(UserError, match="refusing to extract"):
        fetch_librispeech("dev-clean", cache, server.url, progress=False, md5s=md5s)
    assert not list(tmp_path.rglob("evil.txt"))
    assert not (cache / "LibriSpeech").exists()  # nothing half-extracted looks real
    assert not list(cache.glob(".extract-*"))


def test_unknown_subset_and_network_errors(tmp_path, server):
    with pytest.raises(UserError, match="known: dev-clean, dev-other, test-clean"):
        fetch_librispeech("dev-cleen", tmp_path)
    with pytest.raises(UserError, match=r"could not download .*Not Found.*--source"):
        fetch_librispeech("dev-clean", tmp_path, server.url, progress=False,
                          md5s={"dev-clean": "0" * 32})
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match=r"could not download http://127\.0\.0\.1.*--source"):
        fetch_librispeech("dev-clean", tmp_path, f"http://127.0.0.1:{port}", progress=False)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FEATSTORE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("FEATSTORE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "featstore"


# ---- the embedded real sample ---------------------------------------------------------------


def test_embedded_sample_is_real_librispeech_for_both_tasks():
    corpus = resolve_source("sample")
    assert not corpus.problems
    speakers = {u.speaker_id: u.gender for u in corpus.utterances}
    assert len(speakers) >= 20 and Counter(speakers.values()) == {"F": 11, "M": 11}
    per_speaker = Counter(u.speaker_id for u in corpus.utterances)
    assert sum(n >= 3 for n in per_speaker.values()) >= 8  # speaker ID has utterances to split
    for u in corpus.utterances:
        info = sf.info(u.path)
        assert info.samplerate == 16000 and info.channels == 1 and info.duration >= 4
    root = sources.sample_path()
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size <= 12 * 2**20
    assert "Attribution 4.0 International" in (root / "LICENSE-CC-BY-4.0.txt").read_text()
    assert "Panayotov" in (root / "README.md").read_text()
    with pytest.raises(UserError, match="takes no argument"):
        resolve_source("sample:x")
