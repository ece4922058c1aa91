"""Data sets of the sampler studies: Gaussian mixtures with exact scores and sklearn's 8x8 digits.

* `gmm_2d`: six anisotropic components on a ring of radius 2, unequal weights.
* `gmm_16d`: `M` random full-covariance components in 16-D (means ~ N(0, 1.5^2), overlapping at
  moderate noise: nearly Gaussian above sigma ~ 2-5).
* `gmm_separated`: the hard teleport case: `M` well-separated, tight components in `D` dims
  (means on a random simplex-like set at pairwise distance ~ `sep`, isotropic std `std`), so the
  data are far from Gaussian until sigma is of the order of `sep`.
* `digits_data`: sklearn `load_digits`, scaled to [-1, 1], fixed split (train, 360 held out).
"""

from __future__ import annotations

import numpy as np

from jaxrl.diffusion import scores


def gmm_2d() -> scores.GMM:
    """Six anisotropic components on a ring of radius 2 (unequal weights), 2-D."""
    ang = np.arange(6) * np.pi / 3
    means = 2.0 * np.stack([np.cos(ang), np.sin(ang)], 1)
    covs = []
    for a in ang:
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        covs.append(r @ np.diag([0.08, 0.01]) @ r.T)
    w = np.array([1, 2, 1, 2, 1, 3], float)
    return scores.validate_gmm(w / w.sum(), means, np.stack(covs))


def gmm_16d(num_components: int) -> scores.GMM:
    """`num_components` equal-weight random full-covariance components in 16-D (seed 16)."""
    rng = np.random.default_rng(16)
    means = rng.normal(size=(num_components, 16)) * 1.5
    a = rng.normal(size=(num_components, 16, 16)) / 4.0
    covs = 0.3 * np.einsum("mij,mkj->mik", a, a) + 0.02 * np.eye(16)
    return scores.validate_gmm(np.full(num_components, 1.0 / num_components), means, covs)


def gmm_separated(num_components: int = 32, dim: int = 32, sep: float = 6.0,
                  std: float = 0.1, seed: int = 32) -> scores.GMM:
    """`num_components` equal-weight isotropic components (std `std`) in `dim` dims whose means
    are random Gaussian vectors scaled so the typical pairwise distance is `sep`
    (`|m_i - m_j| ~ sep`, minimum reported by `min_separation`)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(num_components, dim)) * sep / np.sqrt(2.0 * dim)
    covs = np.tile(std**2 * np.eye(dim), (num_components, 1, 1))
    return scores.validate_gmm(np.full(num_components, 1.0 / num_components), means, covs)


def min_separation(gmm: scores.GMM) -> float:
    """Smallest distance between two component means."""
    m = np.asarray(gmm.means, np.float64)
    d = np.sqrt(((m[:, None] - m[None]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(m), 1)].min())


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """`(train [1437, 64], test [360, 64])`: sklearn digits / 16 * 2 - 1, permutation seed 0."""
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32) / 16.0 * 2.0 - 1.0  # [1797, 64] in [-1, 1]
    perm = np.random.default_rng(0).permutation(x.shape[0])
    return x[perm[360:]], x[perm[:360]]
