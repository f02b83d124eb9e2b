"""``--poolchaos-chaos``: ``off``, ``light``, ``heavy`` or a SPEC naming the knobs.

A SPEC is comma-separated ``knob=value`` items, optionally after a preset it refines:
``cpu=2,switch=1e-5,jitter=5ms,slow-start=200ms`` or ``light,seed=42``. Knobs:

* ``cpu``: busy helper processes to start (whole number; ``cpu=max`` is one per core);
* ``switch``: ``sys.setswitchinterval`` in seconds (CPython's default is 0.005);
* ``jitter``: the longest random delay at thread start, executor submit, ``Popen``, process
  start and socket connect;
* ``slow-start``: worker processes and pool workers start this much later (between half of it
  and all of it, drawn per worker);
* ``seed``: the seed every random delay is drawn from; a run without one gets a fresh seed,
  printed, so the same noise can be replayed.

Durations take ``us``, ``ms`` or ``s`` (bare numbers are seconds). ``describe()`` gives the
canonical text, which parses back to the same spec.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import replace

from ..model.frozen import frozen

__all__ = ["KNOBS", "PRESETS", "ChaosSpec", "parse"]

KNOBS = ("cpu", "switch", "jitter", "slow-start", "seed")
_MAX_CPU = 64
_MAX_DELAY_S = 5.0
_DURATION = re.compile(r"^(?P<number>\d+(?:\.\d*)?(?:e-?\d+)?|\.\d+)\s*(?P<unit>us|ms|s)?$",
                       re.IGNORECASE)


@frozen
class ChaosSpec:
    """One noise configuration; all-zero knobs mean quiet."""

    cpu: int = 0
    switch: float | None = None
    jitter: float = 0.0
    slow_start: float = 0.0
    seed: int = 0
    preset: str = ""  # light | heavy when the spec came from one unchanged

    @property
    def quiet(self) -> bool:
        return not (self.cpu or self.switch or self.jitter or self.slow_start)

    def knobs(self) -> list[str]:
        """The knobs that make noise, each as ``name=value``."""
        out = []
        if self.cpu:
            out.append(f"cpu={self.cpu}")
        if self.switch:
            out.append(f"switch={self.switch:g}")
        if self.jitter:
            out.append(f"jitter={duration(self.jitter)}")
        if self.slow_start:
            out.append(f"slow-start={duration(self.slow_start)}")
        return out

    def describe(self) -> str:
        """Canonical text: every knob and the seed; ``parse(describe())`` gives this spec."""
        return ",".join([*self.knobs(), f"seed={self.seed}"])

    def only(self, knob: str) -> ChaosSpec:
        """This spec with every knob but ``knob`` switched off (to tell which one breaks)."""
        return ChaosSpec(
            cpu=self.cpu if knob == "cpu" else 0,
            switch=self.switch if knob == "switch" else None,
            jitter=self.jitter if knob == "jitter" else 0.0,
            slow_start=self.slow_start if knob == "slow-start" else 0.0,
            seed=self.seed)

    def reseeded(self, seed: int) -> ChaosSpec:
        return replace(self, seed=seed)


def _cores() -> int:
    return os.cpu_count() or 1


def presets() -> dict[str, ChaosSpec]:
    """``light`` is safe for a green suite (one busy helper, short jitter); ``heavy`` loads
    every core and stretches starts far enough to break tight deadlines."""
    return {
        "light": ChaosSpec(cpu=1, switch=1e-4, jitter=0.002, slow_start=0.02, preset="light"),
        "heavy": ChaosSpec(cpu=_cores(), switch=1e-5, jitter=0.02, slow_start=0.2,
                           preset="heavy"),
    }


PRESETS = ("light", "heavy")


def parse(text: str, seed: int | None = None) -> ChaosSpec | None:
    """``None`` for off; raises ValueError (with what is accepted) for a bad knob.

    ``seed`` is used when the text names none; without either a fresh one is drawn.
    """
    items = [part.strip() for part in text.strip().lower().split(",") if part.strip()]
    if not items or items == ["off"]:
        return None
    spec = ChaosSpec()
    named_seed: int | None = None
    for index, item in enumerate(items):
        if item in PRESETS and index == 0:
            spec = presets()[item]
            continue
        knob, sep, value = item.partition("=")
        knob = knob.strip().replace("_", "-")
        if not sep or knob not in KNOBS:
            raise ValueError(f"expected off, light, heavy or knob=value items with knobs "
                             f"{', '.join(KNOBS)} (a preset may come first); {item!r} is not one")
        if knob == "seed":
            named_seed = _whole(knob, value, 0, 2**63 - 1)
            continue
        spec = _set(spec, knob, value.strip())
    chosen = named_seed if named_seed is not None else seed
    if chosen is None:
        chosen = random.SystemRandom().randrange(1, 10**9)
    return replace(spec, seed=chosen)


def _set(spec: ChaosSpec, knob: str, value: str) -> ChaosSpec:
    spec = replace(spec, preset="")
    if knob == "cpu":
        count = _cores() if value == "max" else _whole(knob, value, 0, _MAX_CPU)
        return replace(spec, cpu=count)
    if knob == "switch":
        seconds = seconds_of(knob, value)
        if not 0 < seconds <= 1:
            raise ValueError(f"switch= takes an interval in (0, 1] seconds, e.g. 1e-5 or 10us; "
                             f"got {value!r}")
        return replace(spec, switch=seconds)
    seconds = seconds_of(knob, value)
    if seconds > _MAX_DELAY_S:
        raise ValueError(f"{knob}= takes a duration up to {_MAX_DELAY_S:g}s; got {value!r}")
    return replace(spec, jitter=seconds) if knob == "jitter" else replace(spec,
                                                                          slow_start=seconds)


def _whole(knob: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise ValueError(f"{knob}= takes a whole number in {low}..{high}; got {value!r}")
    return number


def seconds_of(knob: str, value: str) -> float:
    match = _DURATION.match(value.strip())
    if match is None:
        raise ValueError(f"{knob}= takes a duration such as 5ms, 200us, 0.2s or 0.2; "
                         f"got {value!r}")
    number = float(match.group("number"))
    unit = (match.group("unit") or "s").lower()
    return number * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def duration(seconds: float) -> str:
    """Shortest exact text: 0.2 -> 200ms, 5e-06 -> 5us, 1.5 -> 1.5s."""
    if seconds >= 1:
        return f"{seconds:g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:g}ms"
    return f"{seconds * 1e6:g}us"
