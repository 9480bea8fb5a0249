"""Download and extract one LibriSpeech subset from openslr, with resume and verification.

Only the standard library talks to the network (urllib), so nothing new is needed to fetch.
Files in ``cache_dir``:

* ``<subset>.tar.gz.part`` while downloading; a re-run resumes it with an HTTP Range request;
* ``<subset>.tar.gz`` once complete, checked against the openslr MD5 before extraction and
  removed after a successful extraction (``keep_archive`` keeps it; the big subsets are 6-30 GB);
* ``LibriSpeech/<subset>/`` plus ``LibriSpeech/.<subset>.complete``: the marker makes a re-run
  return at once, with no request and no extraction.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from featstore.errors import UserError

OPENSLR_URL = "https://www.openslr.org/resources/12"
LIBRISPEECH_MD5 = {
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
}
_CHUNK = 1 << 20
_TIMEOUT_S = 60
# Everything a flaky network or server can raise while we read the response.
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


def default_cache_dir() -> Path:
    """``$FEATSTORE_CACHE`` or ``~/.cache/featstore``."""
    return Path(os.environ.get("FEATSTORE_CACHE") or "~/.cache/featstore").expanduser()


def fetch_librispeech(
    subset: str,
    cache_dir: str | os.PathLike | None = None,
    base_url: str = OPENSLR_URL,
    progress: bool = True,
    md5s: Mapping[str, str] | None = None,
    keep_archive: bool = False,
) -> Path:
    """Make ``<cache_dir>/LibriSpeech/<subset>`` exist and return it (SPEAKERS.TXT is beside it).

    ``md5s`` replaces the openslr checksum table (and so the list of known subsets) for tests.
    Network trouble, a bad checksum or an unsafe archive raise UserError.
    """
    table = LIBRISPEECH_MD5 if md5s is None else md5s
    if subset not in table:
        raise UserError(f"unknown LibriSpeech subset {subset!r}; known: {', '.join(table)}")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    corpus_dir = cache / "LibriSpeech"
    marker = corpus_dir / f".{subset}.complete"
    if marker.is_file() and (corpus_dir / subset).is_dir():
        return corpus_dir / subset

    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"{subset}.tar.gz"
    url = f"{base_url.rstrip('/')}/{subset}.tar.gz"
    if not archive.is_file():
        _download(url, archive, progress)
    _verify_md5(archive, table[subset])
    _safe_extract(archive, cache, subset, progress)
    if not (corpus_dir / subset).is_dir():
        raise UserError(f"{archive} has no LibriSpeech/{subset}/ folder; is it the right file?")
    marker.write_text(table[subset] + "\n")
    if not keep_archive:
        archive.unlink()
    return corpus_dir / subset


def _download(url: str, archive: Path, progress: bool) -> None:
    """Fetch ``url`` into ``archive`` via ``<archive>.part``, resuming what a past run left."""
    part = archive.with_name(archive.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    hint = "re-run to resume, or download and extract it by hand and pass --source PATH"
    try:
        try:
            response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not offset:
                raise
            part.replace(archive)  # nothing left to fetch: the .part was already whole
            return
        with response:
            if response.status != 206:
                offset = 0  # the server ignored the Range header and sends the whole file
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            with (
                open(part, "ab" if offset else "wb") as out,
                tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                     desc=archive.name, disable=not progress) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except _NETWORK_ERRORS as err:
        reason = getattr(err, "reason", None) or err
        raise UserError(f"could not download {url}: {reason}; {hint}") from err
    if total is not None and part.stat().st_size != total:
        got = part.stat().st_size
        raise UserError(f"download of {url} stopped at {got} of {total} bytes; {hint}")
    part.replace(archive)


def _verify_md5(archive: Path, expected: str) -> None:
    digest = hashlib.md5()
    with open(archive, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        archive.unlink()
        raise UserError(
            f"checksum mismatch for {archive.name} (md5 {digest.hexdigest()}, expected {expected});"
            " the file was deleted, re-run to download it again"
        )


def _check_member(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` must not be extracted, or None. Belt and braces on top of filter="data"."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or os.path.isabs(member.name):
        return "absolute path"
    if ".." in name.parts:
        return "'..' in path"
    if member.isdev():
        return "device or fifo"
    if member.issym() or member.islnk():
        # Symlink targets are relative to the link's folder, hard link targets to the archive root.
        base = name.parent if member.issym() else PurePosixPath()
        target = PurePosixPath(member.linkname)
        if target.is_absolute() or ".." in PurePosixPath(os.path.normpath(base / target)).parts:
            return f"link pointing outside ({member.linkname})"
    return None


def _safe_extract(archive: Path, cache: Path, subset: str, progress: bool) -> None:
    """Extract into a staging folder, then move ``LibriSpeech/*`` into place.

    Staging keeps a rejected or interrupted archive from leaving half a subset that looks real.
    """
    staging = cache / f".extract-{subset}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    # filter="data" exists from Python 3.10.12 / 3.11.4; _check_member covers older ones.
    data_filter = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        with tarfile.open(archive, "r|gz") as tar:  # streamed: one pass over a huge archive
            for member in tqdm(tar, desc=f"extracting {subset}", unit=" files",
                               disable=not progress):
                if why := _check_member(member):
                    raise UserError(f"refusing to extract {archive.name}: {member.name!r}: {why}")
                tar.extract(member, staging, **data_filter)
        source = staging / "LibriSpeech"
        if source.is_dir():
            target = cache / "LibriSpeech"
            target.mkdir(exist_ok=True)
            for entry in source.iterdir():
                dest = target / entry.name
                if dest.is_dir() and not dest.is_symlink():
                    shutil.rmtree(dest)  # an older, unmarked (so incomplete) copy
                entry.replace(dest)
    except (tarfile.TarError, EOFError, zlib.error) as err:  # TarError covers FilterError
        raise UserError(f"could not extract {archive}: {err}; delete it and re-run") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
