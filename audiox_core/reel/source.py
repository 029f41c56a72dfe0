"""A reel's source as the flow's entry names it, once: the URI to read, the URI people see, and its names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from audiox_core.provenance.records import SourceFile
from audiox_core.reel.naming import reel_folder, reel_title, source_name
from audiox_core.reel.storyboard import Animatic
from audiox_core.store.uri import public_uri


@dataclass(frozen=True)
class Source:
    uri: str  # what the store reads (the checks refuse one that carries credentials)
    shown: str  # what logs, errors, records and pages show: no userinfo, query or fragment

    @classmethod
    def of(cls, uri: str) -> Source:
        return cls(uri, public_uri(uri))

    @cached_property
    def title(self) -> str:
        """The readable stem: the reel's name in the UI and the first part of its output folder."""
        return reel_title(self.shown)

    @cached_property
    def name(self) -> str:
        """The source's own file name, as editors know it (the EDL's clip, the pictures' titles)."""
        return source_name(self.shown)

    @cached_property
    def folder(self) -> str:
        """The output folder (or prefix) of this source: its title and the hash of its identity."""
        return reel_folder(self.shown)


@dataclass(frozen=True)
class Footage:
    """The source as this run read it: the file (or a storyboard's animatic) with its sha256, size and version."""

    file: SourceFile
    animatic: Animatic | None = None  # a still, storyboard or text brief made into a picture

    @property
    def brief(self) -> str | None:
        """A text brief's words (the reel has no picture: its one cue's prompt is the brief)."""
        return self.animatic.text if self.animatic and not self.animatic.picture else None
