"""One atomic writer (issue 18): files get the mode of a plain open(), a crash leaves the old file
and no temp file, stale staging folders of killed processes are removed. Real files, no mocks."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kipoi_seq2exp.atomic import atomic_path, publish, remove_stale_staging, staging_folder, write_text_atomic


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_the_mode_of_a_plain_open(tmp_path, umask):
    with open(tmp_path / "plain.txt", "w") as handle:
        handle.write("x")
    write_text_atomic(tmp_path / "atomic.txt", "x")
    assert mode(tmp_path / "atomic.txt") == mode(tmp_path / "plain.txt") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic.txt", "plain.txt"]


def test_a_writer_that_recreates_the_file_private_still_gets_the_plain_mode(tmp_path, umask):
    with atomic_path(tmp_path / "weights.bin") as temporary:
        assert not temporary.exists()
        temporary.write_bytes(b"w")
        temporary.chmod(0o600)  # as safetensors does
    assert mode(tmp_path / "weights.bin") == 0o666 & ~umask


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    target = tmp_path / "models.tsv"
    target.write_text("old\n")
    target.chmod(0o640)
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n" and mode(target) == 0o640


def test_exception_inside_the_block_keeps_the_old_content_and_no_temp_file(tmp_path):
    target = tmp_path / "config.yaml"
    target.write_text("old: 1\n")
    with pytest.raises(RuntimeError, match="killed mid-write"):
        with atomic_path(target) as temporary, open(temporary, "w") as handle:
            handle.write("new: ")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_parent_folder_is_created(tmp_path):
    write_text_atomic(tmp_path / "a" / "b" / "c.txt", "c")
    assert (tmp_path / "a" / "b" / "c.txt").read_text() == "c"


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def killed_while_staging(target: Path, purpose: str = "export") -> Path:
    """The staging folder a process killed (SIGKILL) inside `staging_folder` leaves behind."""
    code = ("import os, signal, sys; from kipoi_seq2exp.atomic import staging_folder\n"
            "with staging_folder(sys.argv[1], sys.argv[2]) as staging:\n"
            "    (staging / 'model.safetensors').write_bytes(b'half')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code, str(target), purpose]).returncode == -signal.SIGKILL
    (left,) = target.parent.glob(f".{target.name}.{purpose}-*")
    return left


def test_stale_staging_of_a_dead_pid_is_removed_and_a_live_ones_kept(tmp_path):
    member = tmp_path / "member"
    stale = killed_while_staging(member)
    live = tmp_path / f".member.export-{os.getppid()}-0123abcd"
    other = tmp_path / f".member.fetch-{dead_pid()}-0123abcd"
    for folder in (live, other):
        folder.mkdir()
    with staging_folder(member, "export") as staging:
        assert staging.name.startswith(f".member.export-{os.getpid()}-") and staging.is_dir()
        assert not stale.exists() and live.is_dir() and other.is_dir()
    assert not staging.exists()
    assert remove_stale_staging(member, "fetch") == [other] and not other.exists()


def test_publish_a_new_folder_whole_and_into_an_existing_one_file_by_file(tmp_path, umask):
    target = tmp_path / "member"
    with staging_folder(target, "export") as staging:
        (staging / "a.txt").write_text("a1")
        assert publish(staging, target) == [target / "a.txt"]
    assert mode(target) == 0o777 & ~umask and (target / "a.txt").read_text() == "a1"
    (target / "keep.txt").write_text("kept")
    with staging_folder(target, "export") as staging:
        (staging / "a.txt").write_text("a2")
        publish(staging, target)
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "keep.txt"]
    assert (target / "a.txt").read_text() == "a2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["member"]


def test_export_files_get_the_plain_mode_and_a_killed_exports_staging_is_removed(tmp_path, umask):
    from kipoi_seq2exp.model import Seq2Exp, tiny
    from kipoi_seq2exp.train.export import EXPORT_FILES, write_export

    member = tmp_path / "member"
    stale = killed_while_staging(member)
    write_export(Seq2Exp(tiny()), None, {"cell_type": "K562"}, member)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["member"] and not stale.exists()
    assert mode(member) == 0o777 & ~umask
    assert {name: mode(member / name) for name in EXPORT_FILES} == {name: 0o666 & ~umask for name in EXPORT_FILES}
