"""An optional review proxy: a small H.264 copy of the picture with the scene number and timecode
burned in, and the new mix as its sound. The one place the picture is re-rendered, so moviepy
does it; deliverables never are (soundtrack.* copies the video stream)."""

from __future__ import annotations

import bisect
from pathlib import Path

import cv2
import numpy as np

from audiox_core.video.scenes import SceneList
from audiox_core.video.timecode import timecode


def _burn(frame: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(frame).copy()
    h = out.shape[0]
    scale = max(0.4, h / 600)
    cv2.rectangle(out, (0, h - int(34 * scale) - 8), (out.shape[1], h), (0, 0, 0), thickness=-1)
    cv2.putText(
        out, text, (10, h - 12), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(scale * 2)), cv2.LINE_AA
    )
    return out


def review_proxy(source: Path, mix: Path, scenes: SceneList, out: Path, height: int = 360) -> Path:
    """Write ``out`` (MP4): the picture scaled to ``height`` lines, 'scene N  HH:MM:SS:FF' burned in."""
    from moviepy import AudioFileClip, VideoFileClip

    starts = [s.start_s for s in scenes.scenes]

    def label(get_frame, t: float) -> np.ndarray:
        index = max(0, bisect.bisect_right(starts, t + 1e-6) - 1)
        return _burn(get_frame(t), f"scene {index}   {timecode(round(t * scenes.fps), scenes.fps)}")

    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    with VideoFileClip(str(source), audio=False) as video, AudioFileClip(str(mix)) as audio:
        with video.resized(height=height).transform(label).with_audio(audio) as clip:
            try:
                clip.write_videofile(
                    str(tmp),
                    codec="libx264",
                    audio_codec="aac",
                    preset="ultrafast",
                    ffmpeg_params=["-crf", "30"],
                    logger=None,
                )
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    tmp.replace(out)
    return out
