"""The cue sheet: drafting, YAML round trip, validation (one line naming the entry), placement of
cues that span several scenes, and the distributor's music cue sheet."""

from __future__ import annotations

from fractions import Fraction

import pytest

from audiox_core.errors import InputError
from audiox_core.reel.cues import SceneLook
from audiox_core.reel.cuesheet import CueSheet, SheetCue, draft_sheet, is_draft, music_cue_csv, parse_sheet, resolve
from audiox_core.sound.timeline import FOLEY, MUSIC, Placement, place_cues
from audiox_core.video.scenes import Scene
from audiox_core.video.timecode import timecode

FPS = Fraction(25)
CALM, BUSY = SceneLook(1.0, 120.0, 20.0), SceneLook(20.0, 120.0, 20.0)


def scenes_at(cut_frames: list[int], end_frame: int, fps: Fraction = FPS) -> list[Scene]:
    bounds = [0, *cut_frames, end_frame]
    return [
        Scene(i + 1, a, b, float(a / fps), float(b / fps), timecode(a, fps), timecode(b, fps))
        for i, (a, b) in enumerate(zip(bounds, bounds[1:]))
    ]


SCENES = scenes_at([50, 100, 175, 250], 300)  # five scenes: 2, 2, 3, 3 and 2 s
LOOKS = [CALM, CALM, BUSY, BUSY, CALM]


def test_the_draft_has_a_foley_cue_per_scene_and_music_over_runs_of_scenes() -> None:
    """Expected: five Foley cues; music grouped where the music prompt stays the same: 1–2, 3–4, 5."""
    sheet = draft_sheet("reel1", SCENES, FPS, LOOKS, run_seed=7)
    foley = [c for c in sheet.cues if c.kind == FOLEY]
    music = [c for c in sheet.cues if c.kind == MUSIC]
    assert [c.scenes for c in foley] == [(i, i) for i in range(1, 6)]
    assert [c.scenes for c in music] == [(1, 2), (3, 4), (5, 5)]
    assert len({c.seed for c in sheet.cues}) == len(sheet.cues)
    assert is_draft(sheet, SCENES, FPS, LOOKS)


def test_yaml_round_trip_keeps_every_field() -> None:
    sheet = draft_sheet("reel1", SCENES, FPS, LOOKS, run_seed=7)
    edited = sheet.with_cue(
        SheetCue("F002", "foley", "a door slams", 42, None, "00:00:02:00", "00:00:03:10", -3.0, True)
    )
    again = parse_sheet(edited.to_yaml(), "cues.yaml")
    assert again == edited
    assert not is_draft(again, SCENES, FPS, LOOKS)  # an edited sheet is no draft: it wins on reruns


def test_one_music_cue_per_scene_crossfades_centred_on_every_cut() -> None:
    """Expected at 48 kHz: Foley covers its scene exactly with 10 ms fades; each music cue reaches half a
    crossfade (0.5 s) across every inner cut, fading over the whole overlap, and fades over 50 ms at the
    reel's start and end; in scene order, Foley first."""
    sheet = CueSheet(
        "r",
        FPS,
        tuple(
            SheetCue(f"{k[0]}{s.index}", k, "p", s.index, (s.index, s.index)) for s in SCENES for k in (FOLEY, MUSIC)
        ),
    )
    spans = [s.as_span() for s in resolve(sheet, SCENES, FPS, "cues.yaml")]
    bounds = [0, 96_000, 192_000, 336_000, 480_000, 576_000]  # cuts at frames 50, 100, 175, 250 of 300
    expected = []
    for i, scene in enumerate(SCENES):
        a, b = bounds[i], bounds[i + 1]
        left, right = (24_000 if i > 0 else 0), (24_000 if i < 4 else 0)
        fade_in, fade_out = 2 * left or 2_400, 2 * right or 2_400
        expected.append(Placement(scene.index, FOLEY, a, b - a, 480, 480, False))
        expected.append(Placement(scene.index, MUSIC, a - left, b + right - (a - left), fade_in, fade_out, True))
    assert place_cues(spans) == expected


def test_a_crossfade_is_at_most_half_of_either_music_cue() -> None:
    """Expected: around a 0.4 s scene (19 200 samples) the crossfades on both its cuts shrink to its half."""
    scenes = scenes_at([50, 60], 110)  # 2 s, 0.4 s, 2 s
    sheet = CueSheet("r", FPS, tuple(SheetCue(f"M{s.index}", MUSIC, "p", 1, (s.index, s.index)) for s in scenes))
    first, short, last = place_cues([s.as_span() for s in resolve(sheet, scenes, FPS, "cues.yaml")])
    assert first.start + first.length == 96_000 + 9_600 and first.fade_out == 19_200
    assert (short.start, short.length, short.fade_in, short.fade_out) == (96_000 - 9_600, 38_400, 19_200, 19_200)
    assert last.start == 115_200 - 9_600 and last.fade_in == 19_200


def test_a_music_cue_across_cuts_is_one_placement_crossfading_into_the_next() -> None:
    """Expected: M01 over scenes 1–3 runs from 0 to scene 3's end plus half a crossfade; M02 starts half a
    crossfade before that boundary; they overlap by one crossfade (1 s at 48 kHz)."""
    sheet = CueSheet(
        "r",
        FPS,
        (SheetCue("M01", "music", "score", 1, (1, 3)), SheetCue("M02", "music", "score two", 2, (4, 5))),
    )
    m1, m2 = place_cues([s.as_span() for s in resolve(sheet, SCENES, FPS, "cues.yaml")])
    boundary = 7 * 48_000  # scene 4 starts at frame 175 = 7 s
    assert (m1.scene_index, m1.start, m1.start + m1.length) == (1, 0, boundary + 24_000)
    assert (m2.scene_index, m2.start) == (4, boundary - 24_000)
    assert m1.fade_out == m2.fade_in == 48_000


def test_a_muted_cue_does_not_move_its_neighbours_fades(tmp_path) -> None:
    """Expected: muting M02 leaves M01's placement as it was (so M01's content key stays)."""
    cues = (SheetCue("M01", "music", "a", 1, (1, 2)), SheetCue("M02", "music", "b", 2, (3, 5)))
    plain = place_cues([s.as_span() for s in resolve(CueSheet("r", FPS, cues), SCENES, FPS, "x")])
    muted = CueSheet("r", FPS, cues).with_cue(SheetCue("M02", "music", "b", 2, (3, 5), mute=True))
    again = place_cues([s.as_span() for s in resolve(muted, SCENES, FPS, "x")])
    assert again[0] == plain[0]


def _sheet_yaml(*cue_lines: str) -> str:
    return "format: 1\nreel: r\nfps: 25/1\ncues:\n" + "".join(f"  - {line}\n" for line in cue_lines)


@pytest.mark.parametrize(
    ("cues", "expected"),
    [
        (["{id: F001, kind: foley, scenes: [9, 9], prompt: x, seed: 1}"], "cue F001: scene 9 is not in the reel"),
        (
            [
                "{id: M01, kind: music, scenes: [1, 3], prompt: x, seed: 1}",
                "{id: M02, kind: music, scenes: [3, 5], prompt: y, seed: 2}",
            ],
            "music cues M01 and M02 overlap",
        ),
        (
            ["{id: M01, kind: music, in: '00:00:0x:00', out: '00:00:04:00', prompt: x, seed: 1}"],
            "cue M01: in '00:00:0x:00' is not a timecode",
        ),
        (
            ["{id: M01, kind: music, in: '00:00:04:00', out: '00:00:02:00', prompt: x, seed: 1}"],
            "cue M01: in 00:00:04:00 is not before out",
        ),
        (
            ["{id: M01, kind: music, in: '00:00:04:00', out: '00:01:00:00', prompt: x, seed: 1}"],
            "cue M01: 00:00:04:00–00:01:00:00 is outside the reel",
        ),
        (
            ["{id: F001, kind: foley, scenes: [1, 2], prompt: x, seed: 1}"],
            "cue F001: a Foley cue stays within one scene",
        ),
        (
            [
                "{id: F001, kind: foley, scenes: [1, 1], prompt: x, seed: 1}",
                "{id: F001, kind: foley, scenes: [2, 2], prompt: y, seed: 2}",
            ],
            "cue F001: the id is used twice",
        ),
        (
            ["{id: X1, kind: dialogue, scenes: [1, 1], prompt: x, seed: 1}"],
            "cue X1: kind 'dialogue' is not one of foley, music",
        ),
        (["{id: F001, kind: foley, scenes: [1, 1], prompt: x, seed: -4}"], "cue F001: seed -4 is not a whole number"),
        (
            ["{id: F001, kind: foley, scenes: [1, 1], prompt: x, seed: 1, gain_db: 40}"],
            "cue F001: gain_db 40 is outside",
        ),
        (
            ["{id: F001, kind: foley, scenes: [1, 1], prompt: x, seed: 1, colour: red}"],
            "cue F001: unknown field 'colour'",
        ),
        (["{id: F001, kind: foley, prompt: x, seed: 1}"], "cue F001: give its span as scenes"),
        (
            [
                "{id: F001, kind: foley, scenes: [1, 1], prompt: x, seed: 1}",
                "{id: F009, kind: foley, in: '00:00:01:00', out: '00:00:01:10', prompt: y, seed: 2}",
            ],
            "cues F001 and F009 are both foley cues starting in scene 1",
        ),
    ],
)
def test_an_invalid_sheet_is_one_line_naming_the_entry(cues: list[str], expected: str) -> None:
    with pytest.raises(InputError) as err:
        resolve(parse_sheet(_sheet_yaml(*cues), "cues.yaml"), SCENES, FPS, "cues.yaml")
    message = str(err.value)
    assert message.startswith("cues.yaml: ") and expected in message and "\n" not in message, message


def test_yaml_that_does_not_parse_names_the_file_and_line() -> None:
    with pytest.raises(InputError) as err:
        parse_sheet("cues:\n  - {id: F001, kind: [foley\n", "spot.yaml")
    assert str(err.value).startswith("spot.yaml: not valid YAML at line") and "\n" not in str(err.value)


def test_a_sheet_for_another_frame_rate_is_refused() -> None:
    sheet = draft_sheet("r", SCENES, FPS, LOOKS, 0)
    with pytest.raises(InputError, match="written for 25 fps; the reel runs at 24000/1001 fps"):
        resolve(sheet, SCENES, Fraction(24000, 1001), "cues.yaml")


def test_timecode_spans_land_on_the_frames_they_name() -> None:
    """Expected: in 00:00:03:00 is 3 s (frame 75, inside scene 2 at 25 fps); the cue starts in scene 2."""
    sheet = parse_sheet(
        _sheet_yaml("{id: M05, kind: music, in: '00:00:03:00', out: '00:00:09:05', prompt: x, seed: 1}"), "c"
    )
    [s] = resolve(sheet, SCENES, FPS, "c")
    assert (s.scene_index, s.start_s, s.end_s) == (2, 3.0, 9.2)


def test_the_music_cue_sheet_lists_each_unmuted_music_cue_with_timecodes_and_duration() -> None:
    cues = (
        SheetCue("M01", "music", "a", 1, (1, 2), title="Opening"),
        SheetCue("M02", "music", "b", 2, (3, 4), mute=True),
        SheetCue("M03", "music", "c", 3, (5, 5)),
        SheetCue("F001", "foley", "d", 4, (1, 1)),
    )
    csv = music_cue_csv(resolve(CueSheet("r", FPS, cues), SCENES, FPS, "x"), FPS, SCENES)
    assert csv.splitlines() == [
        "cue,title,in,out,duration,usage",
        "1,Opening,00:00:00:00,00:00:04:00,0:04,BI",
        "2,M03,00:00:10:00,00:00:12:00,0:02,BI",
    ]


def test_a_directions_changes_make_the_next_sheet_and_record_only_what_changed() -> None:
    from audiox_core.reel.direction import CueChange, apply_changes, described

    sheet = draft_sheet("reel1", SCENES, FPS, LOOKS, run_seed=7)
    changes = [
        CueChange(cue="F002", prompt="  a door slams  "),
        CueChange(cue="M01", seed=99, gain_change_db=-3.0),
        CueChange(cue="F005", mute="mute"),
    ]
    after = apply_changes(sheet, changes)
    assert after.cue("F002").prompt == "a door slams" and after.cue("F002").seed == sheet.cue("F002").seed
    assert (after.cue("M01").seed, after.cue("M01").gain_db) == (99, -3.0)
    assert after.cue("F005").mute and not is_draft(after, SCENES, FPS, LOOKS)
    untouched = [c for c in after.cues if c.id not in ("F002", "M01", "F005")]
    assert untouched == [c for c in sheet.cues if c.id not in ("F002", "M01", "F005")]
    assert described(changes) == [
        {"cue": "F002", "prompt": "  a door slams  "},
        {"cue": "M01", "seed": 99, "gain_change_db": -3.0},
        {"cue": "F005", "mute": "mute"},
    ]
    with pytest.raises(InputError, match=r"no cue 'F404' \(its cues: F001, F002"):
        apply_changes(sheet, [CueChange(cue="F404", prompt="x")])


def test_a_sheet_written_for_another_reel_is_refused_naming_both_reels() -> None:
    """Expected: a sheet applies to the reel its ``reel`` names; another reel's sheet, or one naming no
    reel, is one line saying how the producer applies it (name this reel in it)."""
    from audiox_core.reel.cuesheet import for_reel

    sheet = draft_sheet("bikes", SCENES, FPS, LOOKS, run_seed=7)
    assert for_reel(sheet, "bikes", "cues.yaml") is sheet
    with pytest.raises(InputError) as err:
        for_reel(sheet, "cars", "bikes/cues.yaml")
    assert str(err.value) == (
        "bikes/cues.yaml: written for reel 'bikes', not for 'cars' (the reel this run makes); "
        'to apply it to cars, set reel: "cars" in the sheet'
    )
    unnamed = parse_sheet(
        _sheet_yaml("{id: F001, kind: foley, scenes: [1, 1], prompt: x, seed: 1}").replace("reel: r\n", ""), "hand.yaml"
    )
    with pytest.raises(InputError) as err:
        for_reel(unnamed, "cars", "hand.yaml")
    assert str(err.value) == 'hand.yaml: names no reel; to apply it to cars, set reel: "cars" in the sheet'


@pytest.mark.integration
def test_the_flow_refuses_another_reels_sheet_before_any_work_and_stores_nothing(
    prefect_api, home, reel, tmp_path
) -> None:
    """The sheet is valid on this reel (timecode spans), so today's pipeline would follow it, and store
    it as the reel's edited sheet that every later run follows. Expected: the run fails with the one
    line, the reel is never analysed and no cue sheet is stored for its source."""
    from sqlalchemy import func, select

    from db import repository
    from db.models import Asset, Run
    from db.session import database_url, sessions
    from flows.soundtrack import soundtrack

    given = tmp_path / "bikes.yaml"
    given.write_text(
        "format: 1\nreel: bikes\nfps: 25/1\ncues:\n"
        "  - {id: F001, kind: foley, in: '00:00:00:00', out: '00:00:00:10', prompt: a bell, seed: 1}\n"
        "  - {id: M01, kind: music, in: '00:00:00:00', out: '00:00:02:05', prompt: strings, seed: 2}\n"
    )
    reason = (
        f"{given}: written for reel 'bikes', not for 'short_reel' (the reel this run makes); "
        'to apply it to short_reel, set reel: "short_reel" in the sheet'
    )
    with pytest.raises(InputError) as raised:
        soundtrack(str(reel.path), str(tmp_path / "out"), {"steps": 2}, cues=str(given))
    assert str(raised.value) == reason
    url = database_url(home)
    with sessions(url)() as s:
        assert [(r.status, r.error, r.cue_sheet) for r in s.scalars(select(Run)).all()] == [("failed", reason, None)]
        assert s.scalar(select(func.count()).select_from(Asset)) == 0
    assert repository.latest_cue_sheet(url, str(reel.path)) is None


def test_a_prompt_over_the_limit_is_one_line_naming_the_cue_and_the_limit() -> None:
    """Expected: a 100 kB prompt is refused (the text encoder would cut it without a word, and it would be
    stored whole); a prompt of exactly the limit is kept."""
    from audiox_core.model.prompt_length import MAX_PROMPT_CHARS

    with pytest.raises(InputError) as err:
        parse_sheet(
            _sheet_yaml(f"{{id: F001, kind: foley, scenes: [1, 1], prompt: {'x' * 100_000}, seed: 1}}"), "cues.yaml"
        )
    assert (
        str(err.value) == f"cues.yaml: cue F001: its prompt is 100000 characters long; the limit is {MAX_PROMPT_CHARS}"
    )
    at_limit = "y" * MAX_PROMPT_CHARS
    sheet = parse_sheet(_sheet_yaml(f"{{id: F001, kind: foley, scenes: [1, 1], prompt: {at_limit}, seed: 1}}"), "c")
    assert sheet.cue("F001").prompt == at_limit


def test_a_direction_with_a_prompt_over_the_limit_is_refused_and_recorded_short() -> None:
    """Expected: the change is refused in one line naming the cue and the limit (the flow records the
    direction as refused with this line, and the version waits again); the record keeps the limit's worth
    of the prompt and its length, not 100 kB."""
    from audiox_core.model.prompt_length import MAX_PROMPT_CHARS
    from audiox_core.reel.direction import CueChange, apply_changes, described

    sheet = draft_sheet("reel1", SCENES, FPS, LOOKS, run_seed=7)
    change = CueChange(cue="F002", prompt="x" * 100_000)
    with pytest.raises(InputError) as err:
        apply_changes(sheet, [change])
    assert (
        str(err.value)
        == f"change to cue F002: its new prompt is 100000 characters long; the limit is {MAX_PROMPT_CHARS}"
    )
    assert described([change]) == [{"cue": "F002", "prompt": "x" * MAX_PROMPT_CHARS + "… (100000 characters)"}]
    assert (
        apply_changes(sheet, [CueChange(cue="F002", prompt="y" * MAX_PROMPT_CHARS)]).cue("F002").prompt
        == "y" * MAX_PROMPT_CHARS
    )


def _sheet_with(regenerate: str) -> str:
    return (
        "format: 1\nreel: reel1\nfps: 25\ncues:\n"
        "- {id: M01, kind: music, scenes: [2, 3], prompt: strings, seed: 1, regenerate: " + regenerate + "}\n"
    )


def test_regenerate_spans_resolve_to_seconds_within_their_cue_and_round_trip() -> None:
    sheet = parse_sheet(
        _sheet_with("[{in: '00:00:04:00', out: '00:00:05:00'}, {in: '00:00:02:10', out: '00:00:03:00'}]"), "c.yaml"
    )
    assert sheet.cues[0].regenerate == (("00:00:04:00", "00:00:05:00"), ("00:00:02:10", "00:00:03:00"))
    assert parse_sheet(sheet.to_yaml(), "c.yaml") == sheet
    (placed,) = resolve(sheet, SCENES, FPS, "c.yaml")  # scenes 2–3 run 2.0–7.0 s
    assert [(s.start_s, s.end_s) for s in placed.regenerate] == [
        (pytest.approx(0.4), pytest.approx(1.0)),
        (pytest.approx(2.0), pytest.approx(3.0)),
    ]


@pytest.mark.parametrize(
    ("regenerate", "expected"),
    [
        (
            "[{in: '00:00:06:00', out: '00:00:08:00'}]",
            "c.yaml: cue M01: regenerate: span 4.000–6.000 s lies outside the cue",
        ),
        ("[{in: '00:00:05:00', out: '00:00:04:00'}]", "ends before it starts"),
        ("[{in: '00:00:03:00', out: '00:00:05:00'}, {in: '00:00:04:00', out: '00:00:06:00'}]", "overlaps span"),
        ("[{in: '00:00:03:00'}]", "is not a span {in: TC, out: TC}"),
        ("[{in: '3 s', out: '00:00:04:00'}]", "in '3 s' is not a timecode"),
        ("'00:00:03:00'", "is not a list of"),
    ],
)
def test_a_bad_regenerate_span_is_one_line_naming_the_cue(regenerate: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected.replace("{", r"\{").replace("}", r"\}")) as e:
        resolve(parse_sheet(_sheet_with(regenerate), "c.yaml"), SCENES, FPS, "c.yaml")
    assert "\n" not in str(e.value) and "M01" in str(e.value)


def test_the_prefilled_form_changes_nothing_until_edited_and_a_chosen_take_is_its_seed() -> None:
    """Expected: the form's items (every cue as it is) make no change; an edited item keeps only what
    differs; takes 2 asks for two takes (in the YAML, round-tripped); choosing take 2 gives the cue the
    seed after its own, with takes back to one; a take that was not made, or a seed and a take at once,
    is one line naming the cue; takes beyond the limit in a sheet are refused naming the cue."""
    from audiox_core.reel.cuesheet import MAX_TAKES, take_seed
    from audiox_core.reel.direction import CueChange, apply_changes, effective_changes, prefilled

    sheet = draft_sheet("reel1", SCENES, FPS, LOOKS, run_seed=7)
    items = prefilled(sheet)
    assert [i.cue for i in items] == [c.id for c in sheet.cues] and items[0].prompt == sheet.cues[0].prompt
    assert effective_changes(sheet, items) == []
    items[1] = items[1].model_copy(update={"takes": 2, "gain_change_db": -3.0})
    (change,) = effective_changes(sheet, items)
    assert change.model_dump(exclude_defaults=True) == {"cue": items[1].cue, "takes": 2, "gain_change_db": -3.0}
    cue_id = change.cue
    asked = apply_changes(sheet, [change])
    assert asked.cue(cue_id).takes == 2 and asked.cue(cue_id).seed == sheet.cue(cue_id).seed
    assert parse_sheet(asked.to_yaml(), "cues.yaml").cue(cue_id).takes == 2
    chosen = apply_changes(asked, [CueChange(cue=cue_id, take=2)]).cue(cue_id)
    assert (chosen.seed, chosen.takes) == (take_seed(sheet.cue(cue_id).seed, 2), 1)
    assert take_seed(2**31 - 1, 2) == 0
    with pytest.raises(
        InputError, match=rf"^change to cue {cue_id}: take 3 was not made \(the version has takes 1–2\)$"
    ):
        apply_changes(asked, [CueChange(cue=cue_id, take=3)])
    with pytest.raises(InputError, match=rf"^change to cue {cue_id}: give a new seed or choose a take, not both$"):
        apply_changes(asked, [CueChange(cue=cue_id, take=2, seed=5)])
    text = asked.to_yaml().replace("takes: 2", f"takes: {MAX_TAKES + 1}")
    with pytest.raises(
        InputError, match=rf"cue {cue_id}: takes {MAX_TAKES + 1} is not a whole number from 1 to {MAX_TAKES}"
    ):
        parse_sheet(text, "cues.yaml")
