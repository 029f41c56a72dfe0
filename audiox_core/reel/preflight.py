"""Checks before the expensive stages: every error a user can cause found in seconds, one line naming the input."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from audiox_core.errors import InputError
from audiox_core.store.by_uri import store_for
from audiox_core.store.files import check_readable_file
from audiox_core.store.local import given_path
from audiox_core.store.s3 import parse_s3
from audiox_core.store.uri import public_uri, secret_in_uri
from audiox_core.video.probe import MediaInfo, probe

# A soundtrack needs a scene with a length: the time from the first frame to the next.
MIN_FRAMES = 2
# RIFF's chunk sizes are 32-bit (the WAV header is 44 bytes); the mix and its stems are stereo, 24-bit.
WAV_LIMIT_BYTES = 2**32 - 1 - 44
MIX_CHANNELS = 2
MIX_SAMPLE_BYTES = 3
# Files a reel's outputs hold per second of mix: mix, music-and-effects, three stems and about as
# much again in cues (overlapping windows): eight mix-sized WAVs, plus the muxed picture.
_MIX_SIZED_OUTPUTS = 8


def refuse_secret(uri: str, role: str) -> None:
    """InputError for a URI that carries credentials (userinfo, a presigned signature): it would be
    stored in the provenance database and Prefect's, and printed; the message names it cleaned."""
    if secret_in_uri(uri):
        raise InputError(
            f"{public_uri(uri)}: a {role} URI with credentials or a signature is refused (it would be stored and "
            "logged); give the plain s3:// URI or path and pass credentials through the environment or an AWS profile"
        )


def refuse_secrets(given: Mapping[str, str | None]) -> None:
    """``refuse_secret`` for every URI a user gave (role → URI; None: an option not given), in order:
    the one check every entry point runs before Prefect or the database sees the URIs."""
    for role, uri in given.items():
        if uri is not None:
            refuse_secret(uri, role)


def check_source_uri(uri: str) -> None:
    """The source names footage (or a still, storyboard or text brief) we can read: no secrets, a local
    path or s3://; a local file must exist (a broken link is named by the link), be a regular,
    readable, non-empty file, or a folder (a storyboard)."""
    refuse_secret(uri, "source")
    if uri.startswith("s3://"):
        if not parse_s3(uri)[1]:
            raise InputError(f"{public_uri(uri)}: no object key in the S3 URI (s3://bucket/key)")
        return
    if given_path(uri).is_dir():  # a storyboard folder: its stills are checked when the board is read
        return
    check_readable_file(given_path(uri))


def check_destination(out_uri: str, need_bytes: int) -> None:
    """The output root can take a reel's outputs: no secrets in it, a supported scheme, writable
    and (local) with ``need_bytes`` free."""
    refuse_secret(out_uri, "destination")
    store_for(out_uri).check_writable(out_uri, need_bytes)


def check_database(url: str, problem: Callable[[str], str | None]) -> None:
    """InputError when the database cannot be used. ``problem`` (``db.session.connection_problem``:
    this layer does not import the database) returns the one-line reason, naming the URL redacted."""
    if reason := problem(url):
        raise InputError(reason)


def mix_bytes(info: MediaInfo, rate: int) -> int:
    """Size of the reel's mix as a 24-bit stereo WAV at ``rate``."""
    return round(info.duration_s * rate) * MIX_CHANNELS * MIX_SAMPLE_BYTES


def output_bytes(info: MediaInfo, rate: int, source_bytes: int) -> int:
    """A generous estimate of the space a reel's outputs take (see ``_MIX_SIZED_OUTPUTS``)."""
    return _MIX_SIZED_OUTPUTS * mix_bytes(info, rate) + source_bytes


def work_bytes(info: MediaInfo, rate: int, frame_fps: int, frame_size: int) -> int:
    """The run's work files: the model's frames (RGB at ``frame_fps``, ``frame_size`` square: about
    2.7 GB per hour at 5 fps and 224 px) and the dialogue as 32-bit float stereo at ``rate``."""
    frames = info.duration_s * frame_fps * frame_size * frame_size * 3
    return round(frames + info.duration_s * rate * MIX_CHANNELS * 4)


def check_work_space(work: Path, need_bytes: int) -> None:
    """The work folder's file system (under $AUDIOX_HOME) has ``need_bytes`` free; one line naming it."""
    import shutil

    free = shutil.disk_usage(work).free
    if free < need_bytes:
        raise InputError(
            f"{work.parent}: not enough free space for the run's work files ({free / 2**20:.1f} MiB free, "
            f"about {need_bytes / 2**20:.1f} MiB needed); free some or set AUDIOX_HOME to a larger disk"
        )


def check_footage(path: Path, shown: str, rate: int) -> MediaInfo:
    """ffprobe ``path`` (the fetched source) and check its facts with ``check_media``; errors name
    the source as ``shown``, not the local or cached file it was read from."""
    try:
        info = probe(path)
    except InputError as e:
        raise e.naming(path, shown) from e
    check_media(info, shown, rate)
    return info


def check_media(info: MediaInfo, shown: str, rate: int) -> None:
    """Facts from ffprobe that would fail a run late: too few frames for a scene, a mix past the WAV
    size limit. Errors name the source as ``shown`` (the URI the user gave)."""
    if info.video.frames is not None:  # unknown before decoding: the scene pass counts them
        check_frames(shown, info.video.frames)
    if (size := mix_bytes(info, rate)) > WAV_LIMIT_BYTES:
        limit_h = WAV_LIMIT_BYTES / (rate * MIX_CHANNELS * MIX_SAMPLE_BYTES) / 3600
        raise InputError(
            f"{shown}: {info.duration_s / 3600:.2f} h of picture: its {MIX_CHANNELS}-channel 24-bit "
            f"{rate / 1000:g} kHz mix ({size / 2**30:.1f} GiB) would pass the 4 GiB WAV limit "
            f"({limit_h:.2f} h); split the reel"
        )


def check_frames(shown: str, frames: int) -> None:
    """Enough frames for a soundtrack: checked on the header's count (or estimate) after ffprobe, and
    on the decoded count after the scene pass."""
    if frames < MIN_FRAMES:
        raise InputError(f"{shown}: {frames} video frame(s); a soundtrack needs at least {MIN_FRAMES}")
