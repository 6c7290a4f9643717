"""Bar distribution: every closed form against Monte Carlo sampling and an independent numerical reference.

The density: inner buckets uniform; the first bucket's mass spread as a half-normal below borders[1] and the last
bucket's mass as a half-normal above borders[-2], each with scale = that outer bucket's width.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

from metabo.model import BarDistribution

N_MC = 400_000


def make_borders(k: int = 30, seed: int = 0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    widths = g.uniform(0.05, 0.6, size=k)
    b = np.concatenate([[0.0], np.cumsum(widths)])
    return torch.tensor(b - b.mean(), dtype=torch.float64)


def make_logits(k: int, seed: int, tail_weight: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(k, generator=g, dtype=torch.float64)
    logits[0] += tail_weight  # make the tails carry real mass so their formulas matter
    logits[-1] += tail_weight
    return logits


def sample(bar: BarDistribution, logits: torch.Tensor, n: int, seed: int) -> np.ndarray:
    """Draw from the piecewise density directly (not through any BarDistribution method but softmax)."""
    g = np.random.default_rng(seed)
    p = torch.softmax(logits, -1).numpy()
    b = bar.borders.double().numpy()
    k = len(p)
    idx = g.choice(k, size=n, p=p)
    lo, hi = b[idx], b[idx + 1]
    y = lo + g.uniform(size=n) * (hi - lo)
    s_lo, s_hi = b[1] - b[0], b[-1] - b[-2]
    z = np.abs(g.normal(size=n))
    y = np.where(idx == 0, b[1] - s_lo * z, y)
    y = np.where(idx == k - 1, b[-2] + s_hi * z, y)
    return y


def ref_density(bar: BarDistribution, logits: torch.Tensor):
    p = torch.softmax(logits, -1).numpy()
    b = bar.borders.double().numpy()
    s_lo, s_hi = b[1] - b[0], b[-1] - b[-2]

    def pdf(y: float) -> float:
        if y < b[1]:
            return p[0] * 2 * math.exp(-0.5 * ((b[1] - y) / s_lo) ** 2) / (s_lo * math.sqrt(2 * math.pi))
        if y > b[-2]:
            return p[-1] * 2 * math.exp(-0.5 * ((y - b[-2]) / s_hi) ** 2) / (s_hi * math.sqrt(2 * math.pi))
        k = min(int(np.searchsorted(b, y, side="right")) - 1, len(p) - 1)
        return p[k] / (b[k + 1] - b[k])

    return pdf, b


def ref_ei(bar: BarDistribution, logits: torch.Tensor, best: float) -> float:
    """E[max(y - best, 0)] by adaptive quadrature of the reference density, piece by piece."""
    pdf, b = ref_density(bar, logits)
    pieces = [(-np.inf, b[1])] + [(b[i], b[i + 1]) for i in range(1, len(b) - 2)] + [(b[-2], np.inf)]
    total = 0.0
    for lo, hi in pieces:
        lo = max(lo, best)
        if lo >= hi:
            continue
        val, _ = integrate.quad(lambda y: (y - best) * pdf(y), lo, hi, epsabs=1e-14, epsrel=1e-10, limit=200)
        total += val
    return total


BESTS_REL = [-5.0, -0.5, 0.0, 0.37, 0.5, 0.999, 1.0, 2.5]  # multiples of the support, see _bests


def _bests(b: torch.Tensor) -> list[float]:
    lo, hi = float(b[0]), float(b[-1])
    out = [lo + r * (hi - lo) for r in BESTS_REL]
    out += [float(b[1]), float(b[-2]), float(b[5]) + 1e-3, float(b[-2]) + 0.3 * float(b[-1] - b[-2])]
    return out


@pytest.fixture(scope="module")
def setup():
    borders = make_borders()
    bar = BarDistribution(borders)
    logits = make_logits(bar.num_buckets, seed=1)
    y = sample(bar, logits, N_MC, seed=2)
    return bar, logits, y


def test_construction_validates_borders():
    with pytest.raises(ValueError):
        BarDistribution(torch.tensor([0.0, 1.0, 1.0, 2.0]))
    with pytest.raises(ValueError):
        BarDistribution(torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError):
        BarDistribution(torch.zeros(3, 3))
    assert BarDistribution(torch.arange(5.0)).num_buckets == 4


def test_mean_and_variance_match_monte_carlo(setup):
    bar, logits, y = setup
    se = y.std() / math.sqrt(len(y))
    assert float(bar.mean(logits)) == pytest.approx(y.mean(), abs=5 * se)
    var_se = y.var() * math.sqrt(2 / len(y)) * 3  # generous: kurtosis of the mixture
    assert float(bar.variance(logits)) == pytest.approx(y.var(), abs=5 * var_se)


def test_mean_and_variance_match_quadrature(setup):
    bar, logits, _ = setup
    pdf, b = ref_density(bar, logits)
    pts = list(b[1:-1])
    m1 = integrate.quad(lambda t: t * pdf(t), b[0] - 40, b[-1] + 40, points=pts, limit=500)[0]
    m2 = integrate.quad(lambda t: t * t * pdf(t), b[0] - 40, b[-1] + 40, points=pts, limit=500)[0]
    assert float(bar.mean(logits)) == pytest.approx(m1, abs=1e-8)
    assert float(bar.variance(logits)) == pytest.approx(m2 - m1 * m1, rel=1e-7)


def test_ei_matches_monte_carlo(setup):
    bar, logits, y = setup
    for best in _bests(bar.borders):
        imp = np.maximum(y - best, 0.0)
        ei = float(bar.expected_improvement(logits, best))
        assert ei == pytest.approx(imp.mean(), abs=5 * imp.std() / math.sqrt(len(y)) + 1e-6), best


def test_ei_matches_quadrature_and_log_ei_agrees(setup):
    bar, logits, _ = setup
    checked = 0
    for best in _bests(bar.borders):
        ref = ref_ei(bar, logits, best)
        if ref < 1e-8:  # "not tiny" only; the far tail is covered by the monotonicity tests
            continue
        checked += 1
        assert float(bar.expected_improvement(logits, best)) == pytest.approx(ref, rel=1e-6), best
        assert float(bar.log_expected_improvement(logits, best)) == pytest.approx(math.log(ref), abs=1e-6), best
        # float32 (what the sampler uses) agrees too where EI is not tiny
        lei32 = float(bar.log_expected_improvement(logits.float(), best))
        assert lei32 == pytest.approx(math.log(ref), abs=2e-4), best
    assert checked >= 10


def test_pi_and_cdf_match_monte_carlo(setup):
    bar, logits, y = setup
    for best in _bests(bar.borders):
        frac = (y > best).mean()
        pi = float(bar.probability_of_improvement(logits, best))
        assert pi == pytest.approx(frac, abs=5 * math.sqrt(max(frac * (1 - frac), 1e-6) / len(y)) + 1e-5), best
        assert float(bar.cdf(logits, best)) == pytest.approx(1 - pi, abs=1e-12)
    assert float(bar.probability_of_improvement(logits, -1e6)) == pytest.approx(1.0, abs=1e-12)
    assert float(bar.probability_of_improvement(logits, 1e6)) == pytest.approx(0.0, abs=1e-12)


def test_ucb(setup):
    bar, logits, _ = setup
    ucb = bar.upper_confidence_bound(logits, beta=1.5)
    torch.testing.assert_close(ucb, bar.mean(logits) + 1.5 * bar.variance(logits).sqrt())


def test_log_prob_integrates_to_one_and_matches_reference(setup):
    bar, logits, _ = setup
    b = bar.borders.double()
    s_lo, s_hi = float(b[1] - b[0]), float(b[-1] - b[-2])
    grid = torch.linspace(float(b[0]) - 12 * s_lo, float(b[-1]) + 12 * s_hi, 600_001, dtype=torch.float64)
    dens = torch.exp(bar.log_prob(logits.expand(len(grid), -1), grid))
    assert float(torch.trapezoid(dens, grid)) == pytest.approx(1.0, abs=2e-4)
    pdf, _ = ref_density(bar, logits)
    for t in np.linspace(float(b[0]) - 3 * s_lo, float(b[-1]) + 3 * s_hi, 97):
        lp = float(bar.log_prob(logits, torch.tensor(t, dtype=torch.float64)))
        assert lp == pytest.approx(math.log(pdf(t)), abs=1e-6), t  # borders are stored in float32


def test_log_prob_finite_far_outside_and_batched():
    bar = BarDistribution(make_borders().float())
    logits = torch.randn(3, 5, bar.num_buckets)
    y = torch.tensor([-50.0, -5.0, 0.0, 5.0, 50.0]).expand(3, 5)
    lp = bar.log_prob(logits, y)
    assert lp.shape == (3, 5) and torch.isfinite(lp).all()
    torch.testing.assert_close(bar.nll(logits, y), -lp)


def test_batched_acquisitions_have_batch_shape():
    bar = BarDistribution(make_borders().float())
    logits = torch.randn(2, 7, bar.num_buckets)
    for fn in (bar.mean, bar.variance, bar.upper_confidence_bound):
        assert fn(logits).shape == (2, 7)
    for fn in (bar.expected_improvement, bar.log_expected_improvement, bar.probability_of_improvement):
        assert fn(logits, 0.3).shape == (2, 7)
        assert fn(logits, torch.full((2, 7), 0.3)).shape == (2, 7)


def _log_ei_reference_upper_tail(bar: BarDistribution, logits: torch.Tensor, best: np.ndarray) -> np.ndarray:
    """Exact log EI when best > borders[-2]: only the upper tail contributes; float64 with erfcx (no cancellation)."""
    b = bar.borders.double().numpy()
    s = b[-1] - b[-2]
    log_p_last = float(torch.log_softmax(logits.double(), -1)[-1])
    z = (best - b[-2]) / s
    # phi(z) - z Q(z) = exp(-z^2/2) * (1/sqrt(2 pi) - z/2 * erfcx(z/sqrt 2))
    bracket = 1 / math.sqrt(2 * math.pi) - 0.5 * z * special.erfcx(z / math.sqrt(2))
    return log_p_last + math.log(2 * s) - 0.5 * z * z + np.log(bracket)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_ei_finite_and_monotone_far_above(dtype):
    bar = BarDistribution(make_borders())
    logits = make_logits(bar.num_buckets, seed=3, tail_weight=0.0).to(dtype)
    b = bar.borders
    best = torch.linspace(float(b[0]) - 5, float(b[-1]) + 50, 40_001, dtype=dtype)
    lei = bar.log_expected_improvement(logits.expand(len(best), -1), best)
    assert torch.isfinite(lei).all()
    assert float(lei[-1]) < -100  # and it really got small
    assert (lei[1:] - lei[:-1] <= 1e-6).all()
    # agrees with the exact upper-tail value far above the border (where EI underflows)
    far = best > b[-1] + 1
    ref = _log_ei_reference_upper_tail(bar, logits, best[far].double().numpy())
    np.testing.assert_allclose(lei[far].double().numpy(), ref, rtol=0.01)


def test_log_ei_monotone_across_fast_slow_switch_float32():
    bar = BarDistribution(make_borders())
    logits = make_logits(bar.num_buckets, seed=3, tail_weight=0.0).float()
    b = bar.borders
    s = float(b[-1] - b[-2])
    best = float(b[-2]) + s * torch.linspace(6.0, 16.0, 100_001)
    lei = bar.log_expected_improvement(logits.expand(len(best), -1), best)
    assert torch.isfinite(lei).all()
    jumps = lei[1:] - lei[:-1]
    assert float(jumps.max()) <= 1e-5, f"log EI increases by {float(jumps.max()):.4f} at z={6 + 10 * int(jumps.argmax()) / 1e5:.3f}"


def test_log_ei_gradients_finite_far_above():
    """The acquisition is refined by gradients through the logits; they must stay finite in the far tail."""
    bar = BarDistribution(make_borders().float())
    logits = torch.randn(6, bar.num_buckets, requires_grad=True)
    best = torch.tensor([float(bar.borders[0]) - 3, 0.0, float(bar.borders[-2]), float(bar.borders[-1]) + 1,
                         float(bar.borders[-1]) + 10, float(bar.borders[-1]) + 50])
    lei = bar.log_expected_improvement(logits, best)
    (grad,) = torch.autograd.grad(lei.sum(), logits)
    assert torch.isfinite(grad).all()
    assert (grad.abs().sum(-1) > 0).all()
