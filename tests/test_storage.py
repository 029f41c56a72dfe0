from pathlib import Path

import pytest

from audiox_core.errors import InputError
from audiox_core.storage import local_path, staged_directory, write_atomic


def test_staged_directory_publishes_on_success(tmp_path: Path) -> None:
    final = tmp_path / "out" / "reel"
    with staged_directory(final) as stage:
        (stage / "a.txt").write_text("a")
        assert not final.exists()
    assert (final / "a.txt").read_text() == "a"
    assert [p.name for p in final.parent.iterdir()] == ["reel"]


def test_staged_directory_leaves_nothing_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "out" / "reel"
    with pytest.raises(RuntimeError):
        with staged_directory(final) as stage:
            (stage / "half.wav").write_bytes(b"x")
            raise RuntimeError("boom")
    assert list((tmp_path / "out").iterdir()) == []


def test_staged_directory_replaces_previous_result(tmp_path: Path) -> None:
    final = tmp_path / "reel"
    for text in ("old", "new"):
        with staged_directory(final) as stage:
            (stage / "v.txt").write_text(text)
    assert (final / "v.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel"]


def test_write_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    write_atomic(tmp_path / "f.bin", b"123")
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_unsupported_scheme_is_input_error() -> None:
    with pytest.raises(InputError, match="s3://bucket/x.mp4: unsupported URI scheme"):
        local_path("s3://bucket/x.mp4")
