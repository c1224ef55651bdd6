"""A per-scale stopping rule for the coarse-to-fine optimizers (STROTSS, DST): stop a scale when its loss has
stopped falling.

The per-step loss of STROTSS-style objectives is noisy (fresh sample locations every step), so single steps are
never compared: the rule compares the mean loss of the last ``window`` steps with the mean of the ``window`` steps
before them, and stops once the relative fall between the two is below ``min_fall`` — not before ``min_steps`` and
never after the scale's step budget.  An artist who asks for an exact step count (``options.steps``) gets exactly
that: the engines use the rule only when ``steps`` is unset.  How the default thresholds were chosen (on
validation pairs) and what they cost in final loss is in ``docs/optim.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlateauRule:
    """When a scale's loss counts as flat (module docstring)."""

    window: int = 10
    min_fall: float = 0.01
    min_steps: int = 30


@dataclass
class Plateau:
    """The losses of one scale so far, and whether the rule says stop."""

    rule: PlateauRule
    losses: list[float] = field(default_factory=list)

    def add(self, loss: float) -> bool:
        """Record one step's loss; True when the scale should stop now."""
        self.losses.append(loss)
        n, w = len(self.losses), self.rule.window
        if n < max(self.rule.min_steps, 2 * w) or n % w:
            return False
        recent = sum(self.losses[-w:]) / w
        before = sum(self.losses[-2 * w:-w]) / w
        return before <= 0 or (before - recent) / abs(before) < self.rule.min_fall
