"""Score-based diffusion: forward SDEs, analytic scores, score networks, samplers, analytical
teleportation and warm-started (real-time iteration) denoising.

Modules: `sde` (VP/VE/EDM processes and schedules), `scores` (closed-form Gaussian and mixture
scores), `network` (flax score net trained by denoising score matching), `samplers` (reverse-SDE
Euler-Maruyama, predictor-corrector, probability-flow Euler and Heun, DDIM, DPM-Solver++(2M), all
counting NFE), `teleport` (Gaussian closed-form PF-ODE jump), `warmstart` (RTI scheme for action
chunks), `metrics` (sliced Wasserstein, MMD).
"""

from jaxrl.diffusion import metrics, network, samplers, scores, sde, teleport, warmstart

__all__ = ["metrics", "network", "samplers", "scores", "sde", "teleport", "warmstart"]
