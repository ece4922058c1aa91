"""Score-based diffusion: forward SDEs, analytic scores, score networks, samplers, analytical
teleportation and warm-started (real-time iteration) denoising.

Modules: `sde` (VP/VE processes, EDM and DDPM schedules), `scores` (closed-form Gaussian and
mixture scores), `network` (flax score net trained by denoising score matching), `samplers` (the
sampler registry: reverse-SDE Euler-Maruyama, predictor-corrector, probability-flow Euler and
Heun, DDIM, DPM-Solver++(2M), ancestral DDPM; each with its NFE rule), `teleport` (Gaussian
closed-form PF-ODE jump), `rti` (warm-started closed-loop control, matched-state agreement, the
start-level rule), `tasks` (action-chunk tasks with exact denoisers), `datasets` (mixtures and
digits), `metrics` (sliced Wasserstein, MMD).
"""

from jaxrl.diffusion import (
    datasets,
    metrics,
    network,
    rti,
    samplers,
    scores,
    sde,
    tasks,
    teleport,
)

__all__ = ["datasets", "metrics", "network", "rti", "samplers", "scores", "sde", "tasks",
           "teleport"]
