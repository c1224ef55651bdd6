"""Which size each MT level runs at for a given output size: the *level plan*.

A feed-forward subnet paints strokes of a fixed size in its own pixels and was trained at one scale: the style
subnet on 256-px crops, the enhance subnet at 512, the refine subnet on 512 windows of the x2-upsampled enhance
output (so, for a whole image, at 1024).  Scaling every level with the output -- output/4, output/2, output, the
network's own ``level_sizes`` -- puts the style subnet at 128 px for a 512 output and at 512 px for a 2048 output,
scales it never saw: measured on the validation photos, the 512 results were *further* from the painting than the
photo (strength 1.1-1.7, docs/mt.md).  So the plan keeps the lower levels at their trained scale:

* style subnet at ``STYLE_SIDE`` (256) on the long side, enhance at twice that;
* the refine level only where there is room for it: for outputs with a long side above ``REFINE_ABOVE`` it runs
  at the output size; below, the enhance output is resized to the output (running refine at 512 -- half its
  trained scale -- and downscaling a 1024 pass were both measured: both weaker than stopping after the enhance
  level);
* above 1024 the levels run as for a 1024 output scaled by ``LARGE_SCALE`` x (output / 1024) -- at most
  ``LARGE_SIDE`` on the long side -- and the result is upsampled (bilinear) to the output: at 2048 that is
  384/768/1536, which was stronger on the validation photos than both 256/512/1024 + x2 and the proportional
  512/1024/2048.  Larger canvases go through the tiled path (``impasto.tiling.mt_tiled``).

``bench/bench_mt_strength.py --plans`` measures alternatives; the figures that chose these are in docs/mt.md
("Every output size").  A job that asks for a tile size on an output of at most 2048 px runs this plan too, with
the refine level tiled (``impasto.tiling.mt_tiled.stylize_tiled(levels=...)``): the same picture in less memory.
Above 2048 the tiled path does not use this plan yet: its coarse levels run as for a 2048 output of the network's
own sizing (style 512, enhance 1024) and the refine level at full resolution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

STYLE_SIDE = 256          # the style subnet's training scale (long side of the content it sees)
REFINE_ABOVE = 724        # outputs longer than this get the refine level (~ the geometric mean of 512 and 1024)
REFINE_SIDE = 1024        # the refine level's trained scale (a whole image whose enhance level ran at 512)
LARGE_SCALE = 0.75        # above REFINE_SIDE the levels work at this fraction of the output's long side ...
LARGE_SIDE = 1536         # ... up to this long side; the last level's result is then upsampled


def scaled(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) scaled so that the long side is ``long_side`` (each side at least 1)."""
    s = long_side / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


@dataclass(frozen=True)
class LevelPlan:
    """Sizes (h, w) the levels run at; ``refine`` None = stop after the enhance level.  ``output`` is the size the
    last level's result is resized to (a no-op when equal)."""
    style: tuple[int, int]
    enhance: tuple[int, int]
    refine: Optional[tuple[int, int]]
    output: tuple[int, int]

    @property
    def last(self) -> tuple[int, int]:
        return self.refine or self.enhance

    def describe(self) -> str:
        sides = [max(self.style), max(self.enhance)] + ([max(self.refine)] if self.refine else [])
        up = "" if self.last == self.output else f" -> {max(self.output)}"
        return "/".join(str(s) for s in sides) + up


def level_plan(height: int, width: int) -> LevelPlan:
    """The plan for an output of (height, width) (module docstring)."""
    out = (height, width)
    long_side = max(height, width)
    if long_side <= REFINE_SIDE:
        refine = scaled(height, width, long_side) if long_side > REFINE_ABOVE else None
        work = REFINE_SIDE
    else:
        work = min(LARGE_SIDE, max(REFINE_SIDE, round(LARGE_SCALE * long_side)))
        refine = scaled(height, width, work)
    style = scaled(height, width, work // 4)
    enhance = scaled(height, width, work // 2)
    return LevelPlan(style=style, enhance=enhance, refine=refine, output=out)
