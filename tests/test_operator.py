import math

import pytest
import torch

from mrct.physics import (
    Diagonal,
    Identity,
    LinearOperator,
    MatrixOperator,
    adjoint_error,
    check_adjoint,
)


def _mat(m, n, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_complex:
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        return torch.complex(torch.randn(m, n, generator=g, dtype=real),
                             torch.randn(m, n, generator=g, dtype=real))  # fmt: skip
    return torch.randn(m, n, generator=g, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.complex128, torch.complex64])
def test_matrix_operator_passes_adjoint_test(dtype):
    A = MatrixOperator(_mat(7, 5, dtype))
    err = check_adjoint(A, (3, 5), dtype=dtype)
    assert err < (1e-12 if dtype in (torch.float64, torch.complex128) else 1e-5)


class _WrongAdjoint(LinearOperator):
    """Adjoint without the conjugate: wrong for complex operators."""

    def __init__(self, m):
        super().__init__((m.shape[1],), (m.shape[0],))
        self.m = m

    def forward(self, x):
        return x @ self.m.T

    def adjoint(self, y):
        return y @ self.m  # should be m.conj()


def test_check_adjoint_catches_a_wrong_adjoint():
    op = _WrongAdjoint(_mat(6, 4, torch.complex128))
    with pytest.raises(AssertionError, match="adjoint test failed"):
        check_adjoint(op, dtype=torch.complex128)
    assert adjoint_error(op, dtype=torch.complex128) > 1e-3


def test_check_adjoint_catches_wrong_shape():
    class Bad(LinearOperator):
        def forward(self, x):
            return x.sum(-1)

        def adjoint(self, y):
            return y

    with pytest.raises(AssertionError, match="adjoint returned shape"):
        check_adjoint(Bad(), (4, 3))


def test_algebra_matches_dense_matrices():
    ma, mb, mc = _mat(4, 5, seed=1), _mat(5, 3, seed=2), _mat(4, 5, seed=3)
    A, B, C = MatrixOperator(ma), MatrixOperator(mb), MatrixOperator(mc)
    x = torch.randn(2, 3, dtype=torch.float64)
    y = torch.randn(2, 4, dtype=torch.float64)
    torch.testing.assert_close((A @ B)(x), x @ (ma @ mb).T)
    torch.testing.assert_close((A @ B).adjoint(y), y @ (ma @ mb))
    xa = torch.randn(2, 5, dtype=torch.float64)
    torch.testing.assert_close((A + C)(xa), xa @ (ma + mc).T)
    torch.testing.assert_close((A - C)(xa), xa @ (ma - mc).T)
    torch.testing.assert_close((2.5 * A)(xa), 2.5 * (xa @ ma.T))
    torch.testing.assert_close((A / 2)(xa), xa @ ma.T / 2)
    torch.testing.assert_close((-A)(xa), -(xa @ ma.T))
    torch.testing.assert_close(A.H(y), y @ ma)
    assert A.H.H is A
    torch.testing.assert_close(A.normal()(xa), xa @ (ma.T @ ma))
    torch.testing.assert_close(A @ xa, A(xa))
    for op, shape in [
        (A @ B, (3,)),
        (A + C, (5,)),
        (3.0 * A, (5,)),
        (A.H, (4,)),
        (A.normal(), (5,)),
    ]:
        check_adjoint(op, shape)


def test_complex_scaling_conjugates_in_adjoint():
    m = _mat(3, 3, torch.complex128)
    op = (2 - 1j) * MatrixOperator(m)
    check_adjoint(op, dtype=torch.complex128)


def test_composition_shape_mismatch_raises():
    with pytest.raises(ValueError, match="cannot compose"):
        MatrixOperator(_mat(4, 5)) @ MatrixOperator(_mat(4, 3))
    with pytest.raises(ValueError, match="cannot add"):
        MatrixOperator(_mat(4, 5)) + MatrixOperator(_mat(4, 3))


def test_opnorm_matches_largest_singular_value():
    m = _mat(30, 20, seed=5)
    est = MatrixOperator(m).opnorm(n_iter=500, tol=1e-12, dtype=torch.float64)
    exact = float(torch.linalg.matrix_norm(m, ord=2))
    assert est == pytest.approx(exact, rel=1e-6)
    assert (3 * MatrixOperator(m)).opnorm(n_iter=500, tol=1e-12, dtype=torch.float64) == (
        pytest.approx(3 * exact, rel=1e-6)
    )


def test_opnorm_needs_a_shape():
    with pytest.raises(ValueError, match="x_shape is required"):
        Identity().opnorm()
    assert Identity().opnorm((4, 4)) == pytest.approx(1.0)


def test_diagonal_and_identity():
    w = torch.tensor([1.0, 2.0, -3.0], dtype=torch.float64)
    D = Diagonal(w)
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(D(x), x * w)
    check_adjoint(D, (5, 3))
    check_adjoint(Diagonal(torch.tensor([1j, 2.0 + 1j], dtype=torch.complex128)),
                  (2,), dtype=torch.complex128)  # fmt: skip
    assert D.opnorm((3,), n_iter=200, dtype=torch.float64) == pytest.approx(3.0, rel=1e-4)
    assert math.isclose(float((Identity() @ D)(x).sum()), float((x * w).sum()))


def test_operator_moves_with_module_to():
    D = Diagonal(torch.ones(3))
    assert D.to(torch.float64).weights.dtype == torch.float64
