"""Mesh-quality metrics against hand-computed values."""

import numpy as np
import pytest

from um2n.quality import angles, aspect_ratios, count_inverted, equidistribution_cv, mesh_quality, quality_table

EQUI = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
RIGHT = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
T = np.array([[0, 1, 2]])


def test_equilateral():
    assert np.allclose(angles(EQUI, T), 60.0)
    assert aspect_ratios(EQUI, T)[0] == pytest.approx(1.0)


def test_right_isosceles():
    assert sorted(angles(RIGHT, T)[0]) == pytest.approx([45.0, 45.0, 90.0])
    # R = sqrt(2)/2, rho = 1 - sqrt(2)/2 -> R / (2 rho) = 1 / (2 - sqrt 2) * sqrt(2)/2 ... = 1.2071
    R = np.sqrt(2) / 2
    rho = 2 * 0.5 / (2 + np.sqrt(2))
    assert aspect_ratios(RIGHT, T)[0] == pytest.approx(R / (2 * rho))


def test_inverted_and_table():
    pts = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    tris = np.array([[0, 1, 2], [1, 3, 2]])
    assert count_inverted(pts, tris) == 0
    pts2 = pts.copy()
    pts2[3] = [-1.0, -1.0]       # folds the second triangle over
    assert count_inverted(pts2, tris) == 1
    q = mesh_quality(pts, tris, monitor=np.ones(4))
    assert q.inverted == 0 and q.area_ratio == pytest.approx(1.0)
    assert q.equidistribution_cv == pytest.approx(0.0)
    assert q.min_angle == pytest.approx(45.0) and q.max_angle == pytest.approx(90.0)
    text = quality_table({"before": q, "after": mesh_quality(pts2, tris)})
    assert "inverted cells" in text and "before" in text


def test_equidistribution_cv():
    pts = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    tris = np.array([[0, 1, 2], [1, 3, 2]])
    m = np.array([1.0, 1.0, 1.0, 3.0])   # m_K = 1 and 5/3, equal areas 1/2
    w = np.array([0.5, 5 / 6])
    assert equidistribution_cv(pts, tris, m) == pytest.approx(w.std() / w.mean())
