"""Synthetic footage that flickers without a change of shot (flames, a strobe, lightning, a blinking
sign), made with ffmpeg's lavfi sources, and hard cuts between such shots: the cases a cut detector
must not take for cuts (tests/test_flicker.py, bench/scenes_bench.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SIZE, RATE = "320x180", 25
# A room lit by a fire: brick wall, a window, a shelf with a jar (static structure for the light to fall on).
ROOM = (
    f"color=c=0x3a2a20:s={SIZE}:r={RATE},drawgrid=w=32:h=16:t=1:c=0x20140c,"
    "drawbox=x=20:y=20:w=80:h=60:c=0x8090a0:t=fill,drawbox=x=58:y=20:w=4:h=60:c=0x201008:t=fill,"
    "drawbox=x=200:y=40:w=100:h=8:c=0x604020:t=fill,drawbox=x=220:y=10:w=20:h=30:c=0xa08060:t=fill"
)
# Flame tongues rising over the lower half, changing every frame.
FIRE = (
    f"nullsrc=s={SIZE}:r={RATE},geq=lum='255*clip((Y-100)/80+0.3*sin(X/9+T*5)*sin(Y/6+T*13)"
    "+0.15*sin(X/4-T*9),0,1)':cb=128:cr=128"
)
FLICKER = {  # name: (lavfi sources, filter graph from [{a}] (and [{b}]) to [{out}])
    # fast random brightness and colour flicker, and two flares of the fire lasting 7–8 frames
    "flames": (
        (ROOM, FIRE),
        "[{b}]format=gbrp,lutrgb=r='val':g='val*0.6':b='val*0.15'[fire];[{a}]format=gbrp[room];"
        "[room][fire]blend=all_mode=lighten,eq=brightness='0.02*(random(0)-0.5)+0.09*between(n,60,67)"
        "+0.08*between(n,130,136)':saturation='1+0.06*(random(1)-0.5)':eval=frame,trim=duration=8[{out}]",
    ),
    # a dim moving scene lit 2.6 times brighter on 4 frames of every 8
    "strobe": (
        (f"testsrc2=s={SIZE}:r={RATE}",),
        "[{a}]format=gbrp,lutrgb=r='val*0.35':g='val*0.35':b='val*0.35',"
        "lutrgb=r='val*2.6':g='val*2.6':b='val*2.6':enable='lt(mod(n,8),4)',trim=duration=6[{out}]",
    ),
    # the room at night in the rain, white flashes of 1 and 2 frames and a double strike
    "lightning": (
        (ROOM.replace("0x3a2a20", "0x2a3040"),),
        "[{a}]format=gbrp,lutrgb=r='val*0.3':g='val*0.3':b='val*0.4',noise=alls=12:allf=t,"
        "lutrgb=r='min(255,val*3+120)':g='min(255,val*3+120)':b='min(255,val*3+140)'"
        ":enable='eq(n,30)+between(n,80,81)+eq(n,130)+eq(n,132)',trim=duration=6[{out}]",
    ),
    # a street at night, a neon sign blinking once a second, its glow lighting the whole picture
    "sign": (
        (f"color=c=0x101828:s={SIZE}:r={RATE},drawgrid=w=40:h=30:t=2:c=0x303848",),
        "[{a}]drawbox=x=100:y=30:w=120:h=56:c=0xff2060:t=fill:enable='lt(mod(n,25),12)',"
        "eq=brightness='0.04*lt(mod(n,25),12)':eval=frame,trim=duration=6[{out}]",
    ),
}
FRAMES = {"flames": 200, "strobe": 150, "lightning": 150, "sign": 150}


def encode(path: Path, *shots: str) -> Path:
    """The named FLICKER shots joined by hard cuts, in H.264."""
    inputs: list[str] = []
    chains = []
    for i, shot in enumerate(shots):
        sources, graph = FLICKER[shot]
        labels = {name: f"{len(inputs) // 4 + k}:v" for k, name in enumerate("ab"[: len(sources)])}
        inputs += [arg for source in sources for arg in ("-f", "lavfi", "-i", source)]
        chains.append(
            graph.replace("[fire]", f"[fire{i}]").replace("[room]", f"[room{i}]").format(**labels, out=f"s{i}")
        )
    joined = "".join(f"[s{i}]" for i in range(len(shots)))
    graph = ";".join([*chains, f"{joined}concat=n={len(shots)}:v=1:a=0[v]"])
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]", *x264, str(path)], check=True
    )
    return path
