"""Small dense linear algebra vectorised over many voxels.

``numpy.linalg`` treats a stack of tiny matrices one LAPACK call at a time; for the 2x2 to
7x7 systems of voxel-wise fitting, unrolling the algorithm over the matrix entries and
vectorising over voxels is an order of magnitude faster.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["eigh_sym3", "solve_spd", "solve_spd_components", "solve_spd_packed"]


def solve_spd(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``a[i] @ x[i] = b[i]`` for a stack of symmetric positive-definite matrices.

    Parameters
    ----------
    a : ndarray, shape (n, P, P)
        Symmetric matrices (only the lower triangle is read).
    b : ndarray, shape (n, P)
        Right-hand sides.

    Returns
    -------
    x : ndarray, shape (n, P)
        Solutions (float64); zero where the matrix is not numerically positive definite.
    ok : ndarray of bool, shape (n,)
        False where a Cholesky pivot was not positive.
    """
    n, p = b.shape
    a = np.asarray(a, dtype=np.float64)
    if p <= 3:
        return _solve_small(a, np.asarray(b, dtype=np.float64))
    x, ok = _cholesky_solve(lambda i, j: a[:, i, j], [b[:, i] for i in range(p)], n)
    return np.stack(x, axis=1), ok


def solve_spd_packed(packed: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`solve_spd` with the lower triangles packed row by row.

    Parameters
    ----------
    packed : ndarray, shape (n, P (P + 1) / 2)
        Entries ``a[i, j]`` for ``i >= j`` in the order of ``numpy.tril_indices(P)``.
    b : ndarray, shape (n, P)
        Right-hand sides.

    Returns
    -------
    x : ndarray, shape (n, P)
    ok : ndarray of bool, shape (n,)
    """
    n = b.shape[0]
    pt = np.ascontiguousarray(np.asarray(packed, dtype=np.float64).T)
    bt = np.ascontiguousarray(np.asarray(b, dtype=np.float64).T)

    def entry(i: int, j: int) -> np.ndarray:
        return pt[i * (i + 1) // 2 + j]

    x, ok = _cholesky_solve(entry, list(bt), n)
    return np.stack(x, axis=1), ok


def solve_spd_components(packed: np.ndarray, b: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`solve_spd_packed` with voxels on the last axis (no transposition).

    Parameters
    ----------
    packed : ndarray, shape (P (P + 1) / 2, n)
        Lower-triangle entries in the order of ``numpy.tril_indices(P)``.
    b : ndarray, shape (P, n)
        Right-hand sides.

    Returns
    -------
    x : list of P ndarrays, shape (n,)
    ok : ndarray of bool, shape (n,)
    """

    # Rows are read (and promoted to float64) one at a time: float32 input is fine.
    def entry(i: int, j: int) -> np.ndarray:
        return packed[i * (i + 1) // 2 + j]

    return _cholesky_solve(entry, list(b), packed.shape[1])


def _cholesky_solve(
    entry: Callable[[int, int], np.ndarray], b: list[np.ndarray], n: int
) -> tuple[list[np.ndarray], np.ndarray]:
    p = len(b)
    low: list[list[np.ndarray]] = [[np.empty(0)] * p for _ in range(p)]
    inv_diag: list[np.ndarray] = [np.empty(0)] * p
    ok = np.ones(n, dtype=bool)
    tmp = np.empty(n)

    def reduced(first: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """``first - sum(u * v)`` in a fresh float64 array."""
        if not pairs:
            return np.array(first, dtype=np.float64)
        u, v = pairs[0]
        out = np.subtract(first, u * v, dtype=np.float64)
        for u, v in pairs[1:]:
            out -= np.multiply(u, v, out=tmp)
        return out

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for j in range(p):
            ajj = entry(j, j)
            s = reduced(ajj, [(low[j][k], low[j][k]) for k in range(j)])
            good = s > 1e-13 * np.abs(ajj)
            ok &= good
            s[~good] = 1.0
            inv = np.sqrt(s, out=s)
            np.divide(1.0, inv, out=inv)
            inv_diag[j] = inv
            for i in range(j + 1, p):
                t = reduced(entry(i, j), [(low[i][k], low[j][k]) for k in range(j)])
                t *= inv
                low[i][j] = t
        z: list[np.ndarray] = []
        for i in range(p):
            t = reduced(b[i], [(low[i][k], z[k]) for k in range(i)])
            t *= inv_diag[i]
            z.append(t)
        x: list[np.ndarray] = [np.empty(0)] * p
        for i in reversed(range(p)):
            t = reduced(z[i], [(low[k][i], x[k]) for k in range(i + 1, p)])
            t *= inv_diag[i]
            x[i] = t
    for xi in x:
        ok &= np.isfinite(xi)
    bad = ~ok
    if bad.any():
        for xi in x:
            xi[bad] = 0.0
    return x, ok


def _solve_small(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form (Cramer) solve for P <= 3, with the leading-minor test for definiteness."""
    p = b.shape[1]
    eps = 1e-13
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if p == 1:
            a00 = a[:, 0, 0]
            ok = a00 > 0
            x = (b[:, 0] / a00)[:, None]
        elif p == 2:
            a00, a01, a11 = a[:, 0, 0], a[:, 1, 0], a[:, 1, 1]
            det = a00 * a11 - a01 * a01
            ok = (a00 > 0) & (det > eps * a00 * a11)
            x = np.empty_like(b)
            x[:, 0] = (a11 * b[:, 0] - a01 * b[:, 1]) / det
            x[:, 1] = (a00 * b[:, 1] - a01 * b[:, 0]) / det
        else:
            a00, a11, a22 = a[:, 0, 0], a[:, 1, 1], a[:, 2, 2]
            a01, a02, a12 = a[:, 1, 0], a[:, 2, 0], a[:, 2, 1]
            c00 = a11 * a22 - a12 * a12
            c01 = a02 * a12 - a01 * a22
            c02 = a01 * a12 - a02 * a11
            c11 = a00 * a22 - a02 * a02
            c12 = a01 * a02 - a00 * a12
            c22 = a00 * a11 - a01 * a01
            det = a00 * c00 + a01 * c01 + a02 * c02
            ok = (a00 > 0) & (c22 > eps * a00 * a11) & (det > eps * a00 * a11 * a22)
            b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
            x = np.empty_like(b)
            x[:, 0] = (c00 * b0 + c01 * b1 + c02 * b2) / det
            x[:, 1] = (c01 * b0 + c11 * b1 + c12 * b2) / det
            x[:, 2] = (c02 * b0 + c12 * b1 + c22 * b2) / det
    ok &= np.all(np.isfinite(x), axis=1)
    x[~ok] = 0.0
    return x, ok


def eigh_sym3(
    dxx: np.ndarray,
    dyy: np.ndarray,
    dzz: np.ndarray,
    dxy: np.ndarray,
    dxz: np.ndarray,
    dyz: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and principal eigenvector of symmetric 3x3 matrices (closed form).

    Uses the trigonometric solution of the characteristic cubic (Smith 1961,
    doi:10.1145/355578.366316) and the best-conditioned column of the adjugate of
    ``D - λ1 I`` for the eigenvector.

    Parameters
    ----------
    dxx, dyy, dzz, dxy, dxz, dyz : ndarray, shape (n,)
        Unique entries of the matrices.

    Returns
    -------
    evals : ndarray, shape (n, 3)
        Eigenvalues in decreasing order.
    v1 : ndarray, shape (n, 3)
        Unit eigenvector of the largest eigenvalue (arbitrary unit vector when the
        largest eigenvalue is degenerate).
    """
    q = (dxx + dyy + dzz) / 3.0
    p1 = dxy * dxy + dxz * dxz + dyz * dyz
    axx, ayy, azz = dxx - q, dyy - q, dzz - q
    p2 = axx * axx + ayy * ayy + azz * azz + 2.0 * p1
    p = np.sqrt(p2 / 6.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(p > 0, 1.0 / p, 0.0)
        bxx, byy, bzz = axx * inv, ayy * inv, azz * inv
        bxy, bxz, byz = dxy * inv, dxz * inv, dyz * inv
        det = (
            bxx * (byy * bzz - byz * byz)
            - bxy * (bxy * bzz - byz * bxz)
            + bxz * (bxy * byz - byy * bxz)
        )
        r = np.clip(det / 2.0, -1.0, 1.0)
        phi = np.arccos(r) / 3.0
    l1 = q + 2.0 * p * np.cos(phi)
    l3 = q + 2.0 * p * np.cos(phi + 2.0 * np.pi / 3.0)
    l2 = 3.0 * q - l1 - l3
    evals = np.stack([l1, l2, l3], axis=1)

    # D - l1 I has rank 2, so its adjugate is c v1 v1ᵀ: every column is along v1, and the
    # column with the largest diagonal cofactor (largest |v1_i|) is the most accurate.
    a, b, c = dxx - l1, dyy - l1, dzz - l1
    d, e, f = dxy, dxz, dyz
    c00, c11, c22 = b * c - f * f, a * c - e * e, a * b - d * d
    c01, c02, c12 = e * f - d * c, d * f - b * e, d * e - a * f
    take1 = np.abs(c11) > np.abs(c00)
    vx, vy, vz = np.where(take1, c01, c00), np.where(take1, c11, c01), np.where(take1, c12, c02)
    big = np.maximum(np.abs(c00), np.abs(c11))
    take2 = np.abs(c22) > big
    vx, vy, vz = np.where(take2, c02, vx), np.where(take2, c12, vy), np.where(take2, c22, vz)
    best = vx * vx + vy * vy + vz * vz
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = 1.0 / np.sqrt(best)
        v1 = np.stack([vx * inv, vy * inv, vz * inv], axis=1)
    degenerate = ~(best > 0) | ~np.isfinite(inv)
    v1[degenerate] = (1.0, 0.0, 0.0)
    return evals, v1
