"""Bring your own mixture: draw samples of a Gaussian mixture with its exact score.

  python -m experiments.sample_gmm --gmm=FILE.npz --sampler=NAME --nfe=N --num_samples=K \
      --seed=S --out=SAMPLES.npy [--teleport=FRACTION] [--sigma_max=80]

draws K samples with the exact mixture score (`jaxrl.diffusion.scores.gmm_denoiser`) and writes
a `[K, D]` float32 array in .npy format to exactly the path `--out` (no suffix added; its
directory must exist). The npz holds `weights [M]`, `means [M, D]`, `covs [M, D, D]`. A bad
file, mixture or flag is one line `error: ...`, exit status 2, before anything is sampled or
written. The schedule is the EDM one (`sigma_max` 80) with as many steps as the NFE budget buys
(`samplers.steps_for_nfe`); `--teleport=f` jumps the first `round(f * steps)` steps with the
Gaussian closed form (zero NFE), so fewer NFE are spent. Prints one JSON line with the NFE used.
(`python -m experiments.samplers --gmm=...` runs the same command.)
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from experiments import common
from experiments.dp import MEMORY_FRACTION, load_npz_file, memory_limit_bytes
from jaxrl.diffusion import samplers, scores, sde, teleport

_GMM = flags.DEFINE_string(
    "gmm", None, "npz with weights [M], means [M, D], covs [M, D, D]", allow_override=True
)
_SAMPLER = flags.DEFINE_string(
    "sampler", "heun", f"one of {', '.join(samplers.SAMPLERS)}", allow_override=True
)
_NFE = flags.DEFINE_integer(
    "nfe", 35, "budget of score evaluations per sample", allow_override=True
)
_NUM = flags.DEFINE_integer("num_samples", 1000, "number of samples K", allow_override=True)
_SEED = flags.DEFINE_integer("seed", 0, "seed (PRNGKey(seed))", allow_override=True)
_OUT = flags.DEFINE_string(
    "out", None, "output .npy file for the [K, D] samples", allow_override=True
)
_TELEPORT = flags.DEFINE_float(
    "teleport", 0.0, "fraction of the schedule jumped analytically", allow_override=True
)
_SIGMA_MAX = flags.DEFINE_float(
    "sigma_max", 80.0, "largest noise level of the EDM schedule", allow_override=True
)


def load_gmm(path: str) -> scores.GMM:
    """Loads and validates a mixture npz; a ValueError naming `--gmm PATH` and the problem (not an
    npz archive of numeric arrays: `experiments.dp.load_npz_file`; a bad mixture:
    `scores.validate_gmm`)."""
    f = load_npz_file(path, "--gmm", ("weights", "means", "covs"))
    try:
        return scores.validate_gmm(f["weights"], f["means"], f["covs"])
    except ValueError as e:
        raise ValueError(f"--gmm {path}: {e}") from e


def check_out_path(out: str) -> None:
    """Refuses an `--out` that cannot be written: empty, a directory, or in a missing directory
    (before any sampling)."""
    if not out:
        raise ValueError("--out is empty; give the .npy file to write")
    if os.path.isdir(out):
        raise ValueError(f"--out {out} is a directory; give a file name")
    parent = os.path.dirname(out)
    if parent and not os.path.isdir(parent):
        raise ValueError(f"--out directory {parent} does not exist")
    if not os.access(parent or ".", os.W_OK):
        raise ValueError(f"--out directory {parent or '.'} is not writable")


def sample_memory_bytes(num_samples: int, num_components: int, dim: int, steps: int) -> int:
    """Estimated peak bytes of `sample_gmm_file`: the float32 samples and the sampler's carries
    (16 x `[K, D]`), the vmapped exact denoiser's `[K, M, D]` intermediates (4 of them) and
    responsibilities, the eigenvectors `[M, D, D]` and the float64 + float32 schedule."""
    k, m, d = int(num_samples), int(num_components), int(dim)
    return 4 * k * (16 * d + 4 * m * d + 4 * m) + 8 * m * d * d + 12 * (int(steps) + 1)


def sample_gmm_file(
    gmm_path: str,
    sampler: str,
    nfe: int,
    num_samples: int,
    seed: int,
    out: str,
    teleport_fraction: float = 0.0,
    sigma_max: float = 80.0,
) -> dict:
    """The `--gmm` mode as a function; returns `{"nfe": used, "steps": ..., "skipped": ...}`.

    Writes the `[K, D]` float32 samples in .npy format to exactly `out` (no suffix is added,
    whatever the extension). Every argument is checked before sampling, and non-finite samples
    are a ValueError with nothing written."""
    if sampler not in samplers.SAMPLERS:
        raise ValueError(f"--sampler: unknown sampler {sampler!r}; choose one of "
                         f"{', '.join(samplers.SAMPLERS)}")
    if nfe < 1:
        raise ValueError(f"--nfe must be >= 1, got {nfe}")
    if num_samples < 1:
        raise ValueError(f"--num_samples must be >= 1, got {num_samples}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"--seed must be in [0, 2**32 - 1] (PRNGKey(seed) keeps 32 bits), "
                         f"got {seed}")
    if not (np.isfinite(sigma_max) and sigma_max > 0.002):
        raise ValueError(f"--sigma_max must be finite and > 0.002, got {sigma_max}")
    if not 0.0 <= teleport_fraction < 1.0:
        raise ValueError(f"--teleport must be in [0, 1), got {teleport_fraction}")
    check_out_path(out)
    gmm = load_gmm(gmm_path)
    steps = samplers.steps_for_nfe(sampler, nfe)
    num_comp, dim = (int(n) for n in gmm.means.shape)
    need, limit = sample_memory_bytes(num_samples, num_comp, dim, steps), memory_limit_bytes()
    if need > limit:
        raise ValueError(
            f"--num_samples {num_samples} with --nfe {nfe} needs ~{need / 2**30:.3g} GiB (M = "
            f"{num_comp} components, D = {dim}); the limit is {limit / 2**30:.3g} GiB "
            f"({MEMORY_FRACTION:g} of the available RAM); use fewer samples or a smaller --nfe")
    skip = teleport.skip_steps_for_fraction(steps, teleport_fraction)
    sig = jnp.asarray(sde.edm_sigmas(steps, sigma_max=sigma_max))
    mean, cov = scores.gaussian_moments_of_gmm(gmm)
    den = scores.gmm_denoiser(gmm)
    dim = gmm.means.shape[1]

    @jax.jit
    def run(key):
        k_init, k_run = jax.random.split(key)
        # Start from the exact first two moments of the noised data at sigma_max,
        # N(mean, cov + sigma_max^2 I), not N(0, sigma_max^2 I): for data that is not centred the
        # latter's offset survives the ODE as a bias of about |mean| * data scale / sigma_max.
        chol = jnp.linalg.cholesky(cov + sig[0] ** 2 * jnp.eye(dim, dtype=cov.dtype))
        x = mean + jax.random.normal(k_init, (num_samples, dim)) @ chol.T
        return teleport.teleport_then_sample(
            k_run, x, sig, skip, mean, cov, name=sampler, denoiser=den
        )

    x, used = run(jax.random.PRNGKey(seed))
    x = np.asarray(x, np.float32)
    bad = int(np.sum(~np.all(np.isfinite(x), axis=1)))
    if bad:
        raise ValueError(f"--gmm {gmm_path}: sampler {sampler!r} produced {bad} non-finite "
                         f"sample(s) of {x.shape[0]} (float32 overflow or underflow of the "
                         f"mixture's scale?); nothing written to --out {out}")
    with open(out, "wb") as f:  # np.save(path) would append ".npy" to any other name
        np.save(f, x)
    return {"nfe": int(used[0]), "steps": steps, "skipped_steps": skip, "shape": list(x.shape)}


def _main() -> None:
    if _GMM.value is None:
        raise ValueError("--gmm is required (npz with weights [M], means [M, D], covs [M, D, D])")
    if _OUT.value is None:
        raise ValueError("--out is required with --gmm")
    info = sample_gmm_file(_GMM.value, _SAMPLER.value, _NFE.value, _NUM.value, _SEED.value,
                           _OUT.value, _TELEPORT.value, _SIGMA_MAX.value)
    print(json.dumps(info))


def main(argv: list[str]) -> None:
    """The command line; a user error is one line `error: ...` with exit status 2."""
    del argv
    common.guarded_main(_main)


if __name__ == "__main__":
    common.run_app(main, required=())
