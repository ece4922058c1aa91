"""The W1-optimal quantile projection and the W1 distance, against independent NumPy / SciPy
references and their invariants (fixed point, W1 optimality, mass and support kept, mean not)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from jaxrl import distributions as D


def np_inverse_cdf(x, p, levels):
    """Reference: walk the sorted atoms until the cumulative mass reaches each level."""
    order = np.argsort(x, kind="stable")
    xs, ps = x[order], p[order]
    out = []
    for tau in levels:
        acc = 0.0
        for xi, pi in zip(xs, ps, strict=True):
            acc += pi
            if acc >= tau - 1e-12:
                out.append(xi)
                break
        else:
            out.append(xs[-1])
    return np.array(out)


def random_dists(rng, batch, m):
    x = np.round(rng.normal(size=(batch, m)) * 2, 1)  # rounding makes repeated atoms
    p = rng.dirichlet(np.ones(m) * 0.7, size=batch)
    return x, p


@pytest.mark.parametrize("n", [1, 3, 8])
def test_projection_matches_numpy_inverse_cdf(n):
    rng = np.random.default_rng(n)
    x, p = random_dists(rng, 6, 7)
    levels = (2 * np.arange(n) + 1) / (2 * n)
    ref = np.stack([np_inverse_cdf(x[i], p[i], levels) for i in range(6)])
    with jax.enable_x64(True):
        batched = jax.jit(D.quantile_projection, static_argnums=2)(x, p, n)
        vmapped = jax.vmap(lambda a, b: D.quantile_projection(a, b, n))(x, p)
    np.testing.assert_array_equal(np.asarray(batched), ref)
    np.testing.assert_array_equal(np.asarray(vmapped), ref)
    # float32 and the Distribution front end give the same atoms
    got32 = D.project_to_quantile(D.FiniteSupport(jnp.asarray(x, jnp.float32),
                                                  jnp.asarray(p, jnp.float32)), n)
    np.testing.assert_allclose(np.asarray(got32.locs), ref, atol=1e-6)


def test_projection_of_samples_equals_numpy_quantile():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=37)
    n = 10
    tau = (2 * np.arange(n) + 1) / (2 * n)
    got = D.project_to_quantile(D.FiniteSupport(jnp.asarray(samples), jnp.full(37, 1 / 37)), n)
    ref = np.quantile(samples, tau, method="inverted_cdf")
    np.testing.assert_allclose(np.asarray(got.locs), ref, atol=1e-6)
    # categorical input: quantiles of the CDF over the support
    support = jnp.linspace(-2.0, 2.0, 5)
    cat = D.Categorical(support, jnp.array([0.1, 0.3, 0.2, 0.25, 0.15]))
    # levels 1/8, 3/8, 5/8, 7/8 against the CDF 0.1, 0.4, 0.6, 0.85, 1
    np.testing.assert_allclose(np.asarray(D.project_to_quantile(cat, 4).locs),
                               [-1.0, -1.0, 1.0, 2.0])


def test_equal_weight_distribution_is_a_fixed_point():
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 16):
        locs = rng.normal(size=(3, n)).astype(np.float32)  # unsorted input
        out = D.project_to_quantile(D.Quantile(jnp.asarray(locs)), n)
        np.testing.assert_array_equal(np.asarray(out.locs), np.sort(locs, -1))
        again = D.project_to_quantile(out, n)
        np.testing.assert_array_equal(np.asarray(again.locs), np.asarray(out.locs))


def test_wasserstein_1_matches_scipy():
    rng = np.random.default_rng(2)
    x, p = random_dists(rng, 4, 6)
    y, q = random_dists(rng, 4, 9)
    with jax.enable_x64(True):
        got = D.wasserstein_1(D.FiniteSupport(x, p), D.FiniteSupport(y, q))
    ref = [wasserstein_distance(x[i], y[i], p[i], q[i]) for i in range(4)]
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-10, atol=1e-12)


def test_projection_minimizes_w1_among_equal_weight_placements():
    rng = np.random.default_rng(3)
    n = 5
    for _ in range(4):
        x, p = random_dists(rng, 1, 8)
        x, p = x[0], p[0]
        theta = np.asarray(D.quantile_projection(jnp.asarray(x), jnp.asarray(p), n), np.float64)
        w = np.full(n, 1 / n)
        best = wasserstein_distance(x, theta, p, w)
        # the error of the projection is at most (max - min) / N
        assert best <= (x.max() - x.min()) / n + 1e-12
        for _ in range(100):
            other = theta + rng.normal(size=n) * rng.choice([0.01, 0.3, 2.0])
            assert wasserstein_distance(x, other, p, w) >= best - 1e-9
        for i in range(n):  # moving any single atom a little never helps
            for d in (-1e-3, 1e-3):
                other = theta.copy()
                other[i] += d
                assert wasserstein_distance(x, other, p, w) >= best - 1e-12


def test_projection_keeps_mass_and_support_but_not_the_mean():
    rng = np.random.default_rng(4)
    x, p = random_dists(rng, 5, 6)
    q = D.project_to_quantile(D.FiniteSupport(jnp.asarray(x), jnp.asarray(p)), 7)
    atoms, probs = D.as_atoms(q)
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, atol=1e-6)
    for i in range(5):  # every projected atom is an atom of the input with positive mass
        for a in np.asarray(atoms[i]):
            assert np.any((np.abs(x[i] - a) < 1e-6) & (p[i] > 0))
    # mean NOT preserved: {0: 0.9, 10: 0.1} (mean 1) -> two atoms at 0 (mean 0) ...
    skew = D.FiniteSupport(jnp.array([0.0, 10.0]), jnp.array([0.9, 0.1]))
    np.testing.assert_array_equal(np.asarray(D.project_to_quantile(skew, 2).locs), [0.0, 0.0])
    assert float(D.mean(D.project_to_quantile(skew, 2))) == 0.0
    # ... while the categorical (Cramer) projection keeps it inside the support
    cat = D.project_to_categorical(skew, jnp.array([0.0, 4.0, 10.0]))
    assert abs(float(D.mean(cat)) - 1.0) < 1e-6
    with pytest.raises(ValueError, match="num_quantiles"):
        D.quantile_projection(jnp.zeros(3), jnp.ones(3) / 3, 0)
