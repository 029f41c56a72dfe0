from pathlib import Path

import pytest

from audiox_core.errors import InputError
from audiox_core.store.files import staged_directory, write_atomic
from audiox_core.store.local import local_path


def test_staged_directory_publishes_on_success(tmp_path: Path) -> None:
    final = tmp_path / "out" / "reel"
    with staged_directory(final) as stage:
        (stage / "a.txt").write_text("a")
        assert not final.exists()
    assert (final / "a.txt").read_text() == "a"
    assert [p.name for p in final.parent.iterdir()] == ["reel"]


def test_staged_directory_leaves_nothing_on_failure(tmp_path: Path) -> None:
    """Not the staging folder, and not the output folders it made for the reel either; a folder that
    was there before stays (empty), as another run's files would."""
    final = tmp_path / "out" / "day1" / "reel"
    for _ in range(2):  # the second time, out/ is there already
        with pytest.raises(RuntimeError):
            with staged_directory(final) as stage:
                (stage / "half.wav").write_bytes(b"x")
                raise RuntimeError("boom")
        assert not (tmp_path / "out" / "day1").exists()
        (tmp_path / "out").mkdir(exist_ok=True)
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


def test_store_is_chosen_once_from_the_uri_scheme(tmp_path: Path) -> None:
    from audiox_core.store.by_uri import store_for
    from audiox_core.store.local import LocalStore
    from audiox_core.store.s3 import S3Store

    assert isinstance(store_for(str(tmp_path)), LocalStore)
    assert isinstance(store_for(tmp_path.as_uri()), LocalStore)
    assert isinstance(store_for("s3://bucket/soundtracks"), S3Store)
    with pytest.raises(InputError, match="unsupported URI scheme 'gs'"):
        store_for("gs://bucket/x")


def test_local_store_names_and_assembles_a_folder_in_place(tmp_path: Path) -> None:
    from audiox_core.store.local import LocalStore

    store = LocalStore()
    folder_uri = store.child(str(tmp_path / "out"), "reel1")
    assert folder_uri == (tmp_path / "out" / "reel1").as_uri()
    version = "20261207T101010000000Z-run3"
    assert (
        store.assembly_folder(folder_uri, version, tmp_path / "work") == tmp_path / "out" / "reel1.versions" / version
    )
    assert store.version_uri(folder_uri, version) == (tmp_path / "out" / "reel1.versions" / version).as_uri()
    assert store.location(folder_uri) == str(tmp_path / "out" / "reel1")
    source = tmp_path / "a.mp4"
    source.write_bytes(b"x")
    assert store.fetch(str(source), tmp_path / "cache").path == source


def test_s3_store_assembles_under_the_work_folder_and_refuses_escaping_keys(tmp_path: Path) -> None:
    from audiox_core.store.s3 import S3Store

    store = S3Store()
    folder_uri = store.child("s3://bucket/soundtracks/", "reel1")
    assert folder_uri == "s3://bucket/soundtracks/reel1"
    assert store.assembly_folder(folder_uri, "v1", tmp_path).is_relative_to(tmp_path)
    assert store.assembly_folder(folder_uri, "v1", tmp_path).name == "reel1"
    with pytest.raises(InputError, match="'..' segment"):
        store.child("s3://bucket/../x", "reel1")


def test_staging_folder_names_carry_the_process_tag_a_sweep_reads(tmp_path: Path) -> None:
    """Expected: `.{folder}.{process_tag()}.<random>.partial`, whose owner a sweep can tell."""
    from audiox_core.lifecycle import owner_tag, process_tag

    with staged_directory(tmp_path / "reel1-0123456789") as stage:
        assert stage.name.startswith(f".reel1-0123456789.{process_tag()}.") and stage.name.endswith(".partial")
        assert owner_tag(stage.name) == process_tag()


def test_write_probe_of_check_writable_leaves_nothing(tmp_path: Path) -> None:
    """Expected: a missing root is probed at its nearest existing ancestor and not created (a run
    refused later leaves no empty folder); the probe file is removed; room enough passes."""
    from audiox_core.store.local import LocalStore

    LocalStore().check_writable(str(tmp_path / "new" / "out"), 1)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_swapped_with_the_stage_in_one_exchange(tmp_path: Path, monkeypatch) -> None:
    """Expected: publishing over an existing folder never renames it away (no os.replace at all: the
    name always holds a whole version); the stage's inode becomes the folder, the old one is removed."""
    import os

    final = tmp_path / "reel"
    with staged_directory(final) as stage:
        (stage / "v.txt").write_text("old")
    renames: list[tuple[str, str]] = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append((str(a), str(b))), real(a, b)))
    with staged_directory(final) as stage:
        (stage / "v.txt").write_text("new")
        staged_inode = stage.stat().st_ino
    assert renames == []
    assert final.stat().st_ino == staged_inode and (final / "v.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["reel"]


def test_without_exchange_the_two_renames_still_replace_the_folder(tmp_path: Path, monkeypatch) -> None:
    """Expected: on a file system without RENAME_EXCHANGE (EINVAL), the old folder is moved aside,
    the stage renamed in, the old one removed: the new version in place, nothing hidden left."""
    import ctypes
    import errno

    from audiox_core.store import files as storage

    def no_exchange(*args) -> int:
        ctypes.set_errno(errno.EINVAL)
        return -1

    final = tmp_path / "reel"
    for text in ("old", "new"):
        with staged_directory(final) as stage:
            (stage / "v.txt").write_text(text)
        monkeypatch.setattr(storage, "_renameat2", lambda: no_exchange)
    assert (final / "v.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["reel"]


def test_a_failed_flush_of_the_parent_after_the_swap_is_a_warning_not_a_failure(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    """Expected: the new version is live when the parent's fsync fails, so no exception, a warning
    naming the folder, and no hidden folder left."""
    from audiox_core.store import files as storage

    final = tmp_path / "reel"
    real = storage.fsync_folder

    def failing_parent(folder: Path) -> None:
        if folder == tmp_path:
            raise OSError(5, "Input/output error")
        real(folder)

    monkeypatch.setattr(storage, "fsync_folder", failing_parent)
    for text in ("old", "new"):
        with staged_directory(final) as stage:
            (stage / "v.txt").write_text(text)
    assert (final / "v.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["reel"]
    assert any("could not be flushed" in r.getMessage() and str(final) in r.getMessage() for r in caplog.records)


def _publish_local(store, root: Path, version: str, text: str) -> None:
    folder_uri = store.child(str(root), "reel1")
    with staged_directory(store.assembly_folder(folder_uri, version, root)) as stage:
        (stage / "mix.wav").write_text(text)
    store.publish(store.assembly_folder(folder_uri, version, root), folder_uri, version)


def test_local_versions_stay_behind_a_current_link_and_the_newest_few_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each version a folder of its own; <reel> a link swapped to the newest; older ones past the limit removed."""
    from audiox_core.store.local import LocalStore
    from audiox_core.store.local_versions import KEEP_ENV, current_version, versions

    monkeypatch.setenv(KEEP_ENV, "3")
    store, root = LocalStore(), tmp_path / "out"
    (root / "reel1").mkdir(parents=True)  # the old layout: one version in the folder itself
    (root / "reel1" / "mix.wav").write_text("old layout")
    names = [f"20991207T1010{i:02d}000000Z-run{i}" for i in range(1, 6)]  # after the old folder's mtime
    for i, name in enumerate(names[:2]):
        _publish_local(store, root, name, f"v{i}")
        assert (root / "reel1").is_symlink() and current_version(root / "reel1") == name
        assert (root / "reel1" / "mix.wav").read_text() == f"v{i}"
    assert versions(root / "reel1")[0].endswith("-earlier")  # the old layout's version kept among them
    assert (root / "reel1.versions" / versions(root / "reel1")[0] / "mix.wav").read_text() == "old layout"
    for name in names[2:]:
        _publish_local(store, root, name, name)
    assert versions(root / "reel1") == names[2:]
    assert (root / "reel1" / "mix.wav").read_text() == names[-1]
    assert sorted(p.name for p in root.iterdir()) == ["reel1", "reel1.versions"]  # no link or stage left
    monkeypatch.setenv(KEEP_ENV, "1")
    _publish_local(store, root, names[1], "republished older")  # the last publish wins the pointer
    assert current_version(root / "reel1") == names[1]
    assert versions(root / "reel1") == [names[1], names[-1]]  # the newest and the one it replaced
    monkeypatch.setenv(KEEP_ENV, "0")
    with pytest.raises(InputError, match=r"^AUDIOX_KEEP_VERSIONS='0': must be a whole number, 1 or more$"):
        store.check_writable(str(root), 0)  # refused before a run does any work
