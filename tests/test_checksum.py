"""The one file-checksum helper agrees with the hash of the whole file read at once."""
from __future__ import annotations

import hashlib

from kipoi_seq2exp.checksum import file_digest, sha256_of


def test_sha256_of_is_sha256sum_of_the_bytes(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000  # over one read block
    path.write_bytes(data)
    assert sha256_of(path) == hashlib.sha256(data).hexdigest()
    assert sha256_of(str(path)) == sha256_of(path)


def test_file_digest_takes_any_hashlib_algorithm(tmp_path):
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(b"exported model")
    assert file_digest(path, "md5") == hashlib.md5(b"exported model").hexdigest()
