"""Loss terms against hand-computed small cases (written from the definitions) and gradcheck."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashkit import losses


def test_pairwise_likelihood_hand_case():
    f = torch.tensor([[1.0, -1.0], [2.0, 0.0]])
    g = torch.tensor([[1.0, -1.0], [0.0, 1.0], [-2.0, 2.0]])
    s = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # Theta = 0.5 * f g^T computed by hand: row 0: [1, -0.5, -2], row 1: [1, 0, -2]
    theta = [[1.0, -0.5, -2.0], [1.0, 0.0, -2.0]]
    expected = sum(math.log1p(math.exp(theta[i][j])) - float(s[i, j]) * theta[i][j]
                   for i in range(2) for j in range(3))
    assert float(losses.pairwise_likelihood(f, g, s)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.pairwise_likelihood(f, g, s, reduction="mean")) == pytest.approx(expected / 6, rel=1e-6)


def test_pairwise_likelihood_is_stable_for_large_theta():
    f = torch.tensor([[100.0]], dtype=torch.float32)
    g = torch.tensor([[100.0]], dtype=torch.float32)
    # Theta = 5000: log(1 + e^5000) - 5000 * S is 0 for S = 1 and 5000 for S = 0 (no overflow).
    assert float(losses.pairwise_likelihood(f, g, torch.ones(1, 1))) == pytest.approx(0.0, abs=1e-3)
    assert float(losses.pairwise_likelihood(f, g, torch.zeros(1, 1))) == pytest.approx(5000.0, rel=1e-6)
    assert float(losses.pairwise_likelihood(-f, g, torch.zeros(1, 1))) == pytest.approx(0.0, abs=1e-3)


def test_quantization_and_balance_hand_case():
    h = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    b = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    assert float(losses.quantization(h, b)) == pytest.approx(0.25 + 0 + 1 + 1)
    # column sums [2.5, -1.0] -> 6.25 + 1; with rest [-2.5, 3]: [0, 2] -> 4
    assert float(losses.bit_balance(h)) == pytest.approx(7.25)
    assert float(losses.bit_balance(h, torch.tensor([-2.5, 3.0]))) == pytest.approx(4.0)


@pytest.mark.parametrize("term", ["likelihood", "quantization", "balance"])
def test_gradcheck(term):
    gen = torch.Generator().manual_seed(3)
    f = torch.randn(4, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    g = torch.randn(5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    s = (torch.rand(4, 5, generator=gen, dtype=torch.float64) > 0.5).double()
    b = torch.sign(torch.randn(4, 3, generator=gen, dtype=torch.float64))
    rest = torch.randn(3, dtype=torch.float64, generator=gen)
    if term == "likelihood":
        assert torch.autograd.gradcheck(lambda a, c: losses.pairwise_likelihood(a, c, s), (f, g))
    elif term == "quantization":
        assert torch.autograd.gradcheck(lambda a: losses.quantization(a, b), (f,))
    else:
        assert torch.autograd.gradcheck(lambda a: losses.bit_balance(a, rest), (f,))


def test_likelihood_gradient_matches_dcmh_closed_form():
    # DCMH Eq. 5: dJ/dF_i = 1/2 sum_j (sigma(Theta_ij) G_j - S_ij G_j)
    rng = np.random.default_rng(0)
    f = torch.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    g = torch.tensor(rng.normal(size=(6, 4)))
    s = torch.tensor((rng.random((3, 6)) > 0.5).astype(np.float64))
    losses.pairwise_likelihood(f, g, s).backward()
    theta = 0.5 * f.detach().numpy() @ g.numpy().T
    sig = 1.0 / (1.0 + np.exp(-theta))
    expected = 0.5 * (sig - s.numpy()) @ g.numpy()
    np.testing.assert_allclose(f.grad.numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("call, match", [
    (lambda: losses.pairwise_likelihood(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 2)), "same code length"),
    (lambda: losses.pairwise_likelihood(torch.zeros(2, 3), torch.zeros(4, 3), torch.zeros(2, 2)), r"s: expected shape \(2, 4\)"),  # noqa: E501
    (lambda: losses.quantization(torch.zeros(2, 3), torch.zeros(3, 3)), "b: expected shape"),
    (lambda: losses.bit_balance(torch.zeros(2, 3), torch.zeros(4)), "rest_sum"),
    (lambda: losses.pairwise_likelihood(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 2), reduction="max"), "reduction"),  # noqa: E501
    (lambda: losses.quantization(torch.zeros(3), torch.zeros(3)), "h: expected a 2-D tensor"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
