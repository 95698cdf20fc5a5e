"""How long the emulator takes to answer a scene/create call: a seeded model of Claid's generation time.

Claid publishes no latency figure; a call generates up to four images with a diffusion model and answers
when they are done, in seconds to tens of seconds. The model (docs/decisions.md, "Claid's latency"):

    seconds = median * shape * exp(sigma * z),   z ~ N(0, 1) truncated to |z| <= 3.09 (the 99.9th percentile)

- `median` is the median of the reference call: one image, `preference: optimal`, model v1. 0 = instant.
- `shape` multiplies it for the request: +15% per image after the first (images are generated together, so
  not linearly), `preference` fast x0.6 / optimal x1 / best x1.6, model v2 or v2-beta x1.3.
- `sigma` 0.25 puts the 90th percentile at 1.38x the median, the 99th at 1.79x, the longest at 2.17x.

An image edit draws from the same distribution with its own shape: a resize x0.15 of the reference call, an
upscale (a model run, on a bigger picture) x0.5. Claid publishes no figure for either.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field

PER_EXTRA_IMAGE = 0.15
PREFERENCE = {"fast": 0.6, "optimal": 1.0, "best": 1.6}
MODEL = {"v1": 1.0, "v2": 1.3, "v2-beta": 1.3}
EDIT = 0.15
UPSCALE = 0.5
Z_CAP = 3.09  # standard normal 99.9th percentile
Z_P99 = 2.326


@dataclass
class LatencyModel:
    median: float = 0.0
    sigma: float = 0.25
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.median < 0 or self.sigma < 0:
            raise ValueError("latency median and sigma cannot be negative")
        self._rng = random.Random(self.seed)

    @staticmethod
    def shape(number_of_images: int = 1, preference: str | None = None, model: str | None = None) -> float:
        images = 1 + PER_EXTRA_IMAGE * max(0, number_of_images - 1)
        return images * PREFERENCE.get(preference or "optimal", 1.0) * MODEL.get(model or "v1", 1.0)

    def draw(self, number_of_images: int = 1, preference: str | None = None, model: str | None = None) -> float:
        return self._draw(self.shape(number_of_images, preference, model))

    def draw_edit(self, upscale: bool) -> float:
        """One image edit: the same distribution, shorter (see the module's docstring)."""
        return self._draw(UPSCALE if upscale else EDIT)

    def _draw(self, shape: float) -> float:
        if self.median <= 0:
            return 0.0
        with self._lock:
            z = self._rng.gauss(0.0, 1.0)
        z = max(-Z_CAP, min(Z_CAP, z))
        return self.median * shape * math.exp(self.sigma * z)

    def percentile_99(
        self, number_of_images: int = 1, preference: str | None = None, model: str | None = None
    ) -> float:
        return self.median * self.shape(number_of_images, preference, model) * math.exp(self.sigma * Z_P99)

    def longest(self, number_of_images: int = 4, preference: str | None = "best", model: str | None = "v2") -> float:
        """The longest any call can take (the heaviest request at the top of the truncated tail)."""
        return self.median * self.shape(number_of_images, preference, model) * math.exp(self.sigma * Z_CAP)
