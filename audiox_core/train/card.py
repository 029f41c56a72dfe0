"""The model card written beside trained weights: what the model is, how it was made, from what sound
(with each source's licence), and how well it does; ``bench/sync_eval.py --card`` adds its figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVAL_HEADING = "## Quality (bench/sync_eval.py)"


def _sources(data: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        manifest = json.loads((data / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}, {}
    return manifest.get("sources", {}), manifest.get("recipe", {})


def model_card(summary: dict[str, Any], data: Path) -> str:
    """Markdown: recipe, data recipe, licences, steps, seed, wall time and machine, final losses."""
    sources, data_recipe = _sources(data)
    recipe = summary["recipe"]
    lines = [
        "# Model card",
        "",
        f"Trained by `audiox-studio train` on {summary['data']['examples']} examples "
        f"({len(summary['data']['skipped'])} skipped), data fingerprint `{summary['data']['fingerprint'][:16]}`.",
        f"Architecture: `{recipe['model']}` (config.json here); initialised from {summary['init'] or 'scratch'}; seed {recipe['seed']}.",
        f"Machine: {summary['machine']['cpu']} ({summary['machine']['cores']} cores), {summary['device']}, "
        f"{summary['processes']} process(es), torch {summary['machine']['torch']}; wall time {summary['wall_s'] / 60:.1f} min"
        " (this sitting).",
        _stage_time(summary),
        "",
        *(
            [
                f"Released at DiT step {summary['released_at']['step']} of the recipe's {summary['released_at']['of']} "
                "(`audiox-studio train --release`: the run was stopped there; a run of this recipe with "
                f"`dit.steps` = {summary['released_at']['step']} gives the same weights).",
                "",
            ]
            if summary.get("released_at")
            else []
        ),
        "| stage | steps | batch | final loss | mean of last 100 | steps/s |",
        "|---|---|---|---|---|---|",
    ]
    for stage, facts in summary["stages"].items():
        lines.append(
            f"| {stage} | {facts['done']} | {recipe[stage]['batch_size']} | {facts['final_loss']:.4f} | "
            f"{facts['mean_last_100']:.4f} | {facts['steps_per_s']} |"
        )
    ceiling = summary.get("vae_ceiling")
    if ceiling:
        classes = ", ".join(f"{c} {m['hit_rate']:.3f}" for c, m in sorted(ceiling["by_class"].items()))
        lines += [
            "",
            "The autoencoder's ceiling, checked between the stages (held-out real sounds encoded and decoded, "
            f"no DiT): hit rate {ceiling['hit_rate']:.3f}, precision {ceiling['precision']:.3f}; {classes}"
            + (f". Short of its targets: {'; '.join(ceiling['short_of'])}." if ceiling["short_of"] else "."),
        ]
    text = summary.get("text")
    if text:
        lines += ["", "## The text it understands", ""]
        lines.append(
            f'Drafted cue sheets prompt it with "{text["prompts"]["foley"]}" (Foley) and '
            f'"{text["prompts"]["music"]}" (music); a producer\'s own prompt always wins.'
        )
        if text["vocabulary"]:
            lines.append(
                f"Its text encoder is a word embedding learned with it: it reads these {len(text['vocabulary'])} words "
                "and nothing else (any other word is one unknown token): " + ", ".join(text["vocabulary"]) + "."
            )
    lines += ["", "## Training data", ""]
    if data_recipe:
        lines.append(
            "Built by `audiox-studio train data build` with: `"
            + json.dumps(
                {
                    k: data_recipe[k]
                    for k in ("clips", "heldout", "seed", "seconds", "fps", "width", "height", "sample_rate")
                    if k in data_recipe
                }
            )
            + "`."
        )
        lines.append(
            "Synthetic clips rendered with OpenCV/numpy (generated, CC0) with real sounds placed at the visual events."
        )
    lines += ["", "| source sound | licence |", "|---|---|"]
    lines += [f"| `{path}` | {facts.get('licence', 'unknown')} |" for path, facts in sorted(sources.items())]
    lines += ["", "## Recipe", "", "```json", json.dumps(recipe, indent=1), "```", ""]
    return "\n".join(lines)


def _stage_time(summary: dict[str, Any]) -> str:
    """The training steps' own time, summed over the stages and every sitting a resumed run took."""
    parts = {k: v["wall_s"] / 60 for k, v in summary["stages"].items()}
    total = sum(parts.values())
    each = " + ".join(f"{k} {m:.1f}" for k, m in parts.items())
    return f"Training time (the stages' steps, over every sitting): {each} = {total:.1f} min."


def add_evaluation(card: Path, figures: dict[str, Any], command: str) -> None:
    """Replace (or append) the card's evaluation section with ``figures`` and the command that made them."""
    text = card.read_text() if card.is_file() else "# Model card\n"
    head = text.split(EVAL_HEADING)[0].rstrip() + "\n\n"
    rows = "\n".join(f"| {k} | {v} |" for k, v in figures.items())
    card.write_text(head + f"{EVAL_HEADING}\n\n`{command}`\n\n| figure | value |\n|---|---|\n{rows}\n")
