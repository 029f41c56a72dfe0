"""A reel version's provenance document, built from its records: the chain from every output back to the footage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from audiox_core.model.generate import SamplingSettings
from audiox_core.provenance.keys import sha256_text
from audiox_core.provenance.records import (
    CueGeneration,
    CueId,
    GenerationRecord,
    MixRecord,
    ModelFacts,
    OutputRecord,
    ProvenanceDocument,
    RenderedCue,
    RunFacts,
    SceneRecord,
    SourceFacts,
    SourceFile,
    TakeGeneration,
)
from audiox_core.reel.stages import Analysis
from audiox_core.sound.loudness import LoudnessReport
from audiox_core.store.files import sha256_file
from audiox_core.workspace import code_version


def source_facts(shown: str, source: SourceFile, analysis: Analysis) -> SourceFacts:
    """The footage as the document states it: its secret-free URI, identity and media facts."""
    return SourceFacts(
        uri=shown,
        sha256=source.sha256,
        bytes=source.bytes,
        version=source.version,
        media=analysis.info.to_dict(),
    )


def scene_records(analysis: Analysis) -> list[SceneRecord]:
    """One record per detected scene, each with the detector settings that found it."""
    detector = asdict(analysis.scenes.settings)
    return [
        SceneRecord(s.index, s.start_s, s.end_s, s.start_frame, s.end_frame, s.start_tc, s.end_tc, detector)
        for s in analysis.scenes.scenes
    ]


def generation_records(
    rendered: Sequence[RenderedCue],
    keys: Mapping[CueId, str],
    source_sha256: str,
    base_uri: str,
    stage: Path,
    model: ModelFacts,
    sampling: SamplingSettings,
    recorded: Mapping[str, GenerationRecord],
) -> list[CueGeneration]:
    """Each scene's cue as a generation; a reused cue keeps its original record from ``recorded`` (by key)."""

    def made(c: RenderedCue, key: str) -> GenerationRecord:
        return GenerationRecord(
            key=key,
            kind=c.kind,
            source_sha256=source_sha256,
            span_start=c.placement.start,
            span_length=c.placement.length,
            model_name=model.name,
            checkpoint_sha256=model.checkpoint_sha256,
            prompt=c.prompt,
            prompt_sha256=sha256_text(c.prompt),
            conditioning_sha256=c.conditioning_sha256,
            seed=c.seed,
            sampler=sampling.sampler,
            steps=sampling.steps,
            cfg_scale=sampling.cfg_scale,
            windows=c.windows,
            precision=model.precision,
            device=model.device,
            torch_version=model.torch_version,
            cuda_version=model.cuda_version,
            code_version=code_version(),
            seconds=c.seconds,
            elapsed_s=round(c.elapsed_s, 3),
            output_uri=f"{base_uri}/{c.path.relative_to(stage).as_posix()}",
            output_sha256=c.sha256,
            audio_input=c.audio_input,
        )

    keyed = [(c, keys[(c.scene_index, c.kind)]) for c in rendered]
    return [CueGeneration(c.scene_index, recorded[key] if c.reused else made(c, key)) for c, key in keyed]


def output_records(stage: Path, base_uri: str) -> list[OutputRecord]:
    """Every file in the staged folder, with its kind (path without suffix), final URI, sha256 and size."""
    names = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
    return [
        OutputRecord(
            str(n.with_suffix("")), f"{base_uri}/{n.as_posix()}", sha256_file(stage / n), (stage / n).stat().st_size
        )
        for n in names
    ]


def mix_record(report: LoudnessReport, outputs: Sequence[OutputRecord]) -> MixRecord:
    """The mastering as recorded: the preset, the mix's figures, and per stem its file (URI, sha256) and figures."""
    files = {o.kind: o for o in outputs}
    stems = {
        k: {**asdict(figures), "uri": files[f"stems/{k}"].uri, "sha256": files[f"stems/{k}"].sha256}
        for k, figures in report.stems.items()
    }
    mix = report.mix
    return MixRecord(
        preset=report.preset,
        integrated_lufs=mix.integrated_lufs,
        loudness_range_lu=mix.loudness_range_lu,
        true_peak_dbtp=mix.true_peak_dbtp,
        normalization_gain_db=report.normalization_gain_db,
        limiter_reduction_db=report.max_gain_reduction_db,
        stems=stems,
    )


def provenance_document(
    run: RunFacts,
    source: SourceFacts,
    model: ModelFacts,
    analysis: Analysis,
    generations: Sequence[CueGeneration],
    report: LoudnessReport,
    outputs: Sequence[OutputRecord],
    takes: Sequence[TakeGeneration] = (),
) -> ProvenanceDocument:
    """The chain from the outputs back to the footage, as written to provenance.json and recorded."""
    return ProvenanceDocument(
        run=run,
        source=source,
        model=model,
        scenes=tuple(scene_records(analysis)),
        generations=tuple(generations),
        mix=mix_record(report, outputs),
        outputs=tuple(sorted(outputs, key=lambda o: o.uri)),
        takes=tuple(takes),
    )
