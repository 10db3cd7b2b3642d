r"""Small-strain elasto-viscoplasticity (Norton flow, Prager kinematic hardening), plane strain.

The law, per material point, with temperature :math:`T` prescribed:

.. math::

    \sigma = \lambda(T)\,\mathrm{tr}(\varepsilon_e)\,I + 2\mu(T)\,\varepsilon_e, \qquad
    \varepsilon_e = \varepsilon - \varepsilon_p - \alpha_{th}(T - T_{ref})\,I,

    \dot p = \Big\langle \frac{J(s - X) - \sigma_y}{K(T)} \Big\rangle^{n(T)}, \qquad
    \dot\varepsilon_p = \dot p\, N, \qquad N = \frac32\,\frac{s - X}{J(s - X)}, \qquad
    X = \tfrac23\, C\, \alpha, \quad \dot\alpha = \dot\varepsilon_p,

with :math:`s = \mathrm{dev}\,\sigma`, :math:`J(a) = \sqrt{\tfrac32\, a : a}` (von Mises),
:math:`\langle x\rangle = \max(x, 0)`, a constant threshold :math:`\sigma_y \ge 0`
(``sigma_y = 0`` gives pure Norton creep, ``inf`` pure elasticity) and linear (Prager)
kinematic hardening, the back stress :math:`X` being stored. Temperature dependence:

.. math::

    E(T) = E_{ref}\,(1 - a_E (T - T_{ref})), \qquad
    K(T) = K_{ref}\, e^{-(T - T_{ref})/\theta_K}, \qquad
    n(T) = n_{ref} + n_T\,(T - T_{ref}),

:math:`\nu` constant, :math:`\lambda = E\nu/((1+\nu)(1-2\nu))`, :math:`\mu = E/(2(1+\nu))`.
:math:`T_{ref}` is also the stress-free temperature of the thermal strain. Units of the
defaults: MPa, K (or °C), s; they are illustrative values for a nickel-base superalloy
around 600 °C, not a calibrated material.

**Plane strain.** :math:`\varepsilon_{zz} = \varepsilon_{xz} = \varepsilon_{yz} = 0`, but
:math:`\varepsilon_{p,zz}`, :math:`X_{zz}` and :math:`\sigma_{zz}` are not zero and are
carried. Symmetric tensors are stored as **Mandel vectors**
:math:`v = (v_{xx}, v_{yy}, v_{zz}, \sqrt2\, v_{xy})`, so that :math:`a : b = a\cdot b` and
the fourth-order tangent is a symmetric 4×4 matrix.

**Time integration: backward Euler, radial return.** Over a step :math:`\Delta t` the
elastic trial state :math:`\sigma^{tr} = D_e(T)(\varepsilon - \varepsilon_p^n -
\varepsilon_{th})`, :math:`\xi^{tr} = \mathrm{dev}\,\sigma^{tr} - X^n`,
:math:`J^{tr} = J(\xi^{tr})`. If :math:`J^{tr} \le \sigma_y` the step is elastic. Otherwise
the flow direction is the trial one, :math:`N = \tfrac32 \xi^{tr}/J^{tr}`, and
:math:`J(\xi) = J^{tr} - (3\mu + C)\Delta p`, so that the implicit Norton law, written in
its inverse (stress) form, is the scalar equation per point

.. math::

    g(\Delta p) = J^{tr} - \sigma_y - (3\mu + C)\,\Delta p
                  - K \Big(\frac{\Delta p}{\Delta t}\Big)^{1/n} = 0 .

It is solved in the variable :math:`y = (\Delta p/\Delta t)^{1/n}`, in which
:math:`g = J^{tr} - \sigma_y - (3\mu + C)\Delta t\, y^n - K y` is concave and decreasing;
Newton's method started from an upper bound of the root then decreases monotonically to it
(vectorised over the points, all points iterated together). Then

.. math::

    \Delta\varepsilon_p = \Delta p\, N, \quad \sigma = \sigma^{tr} - 2\mu\,\Delta\varepsilon_p,
    \quad X = X^n + \tfrac23 C\,\Delta\varepsilon_p, \quad p = p^n + \Delta p .

**Consistent tangent** :math:`\partial\sigma/\partial\varepsilon` (the derivative of the
discrete update above), with :math:`h = -\partial g/\partial\Delta p = 3\mu + C +
\frac{K}{n\,\Delta t}\, y^{1-n}` and :math:`I_{dev} = I - \tfrac13\, 1\otimes 1`:

.. math::

    \mathbb C = D_e - \frac{4\mu^2}{h}\, N\otimes N
                - \frac{6\mu^2\,\Delta p}{J^{tr}}\Big(I_{dev} - \tfrac23\, N\otimes N\Big)

(:math:`\mathbb C = D_e` at elastic points).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SQRT2 = np.sqrt(2.0)
#: Mandel identity tensor (1, 1, 1, 0) and the Mandel identity / deviatoric projector (4×4).
ONE = np.array([1.0, 1.0, 1.0, 0.0])
I4 = np.eye(4)
IDEV = I4 - np.outer(ONE, ONE) / 3.0
#: Mandel index of the in-plane components (xx, yy, xy) and their Mandel factors.
PLANE_INDEX = {(0, 0): 0, (1, 1): 1, (0, 1): 3, (1, 0): 3}


@dataclass(frozen=True)
class Material:
    """Parameters of the law (see the module docstring); the defaults are MPa, °C, s."""

    E_ref: float = 180.0e3      # Young's modulus at T_ref
    a_E: float = 5.0e-4         # relative decrease of E per degree
    nu: float = 0.3
    alpha_th: float = 1.4e-5    # thermal expansion coefficient
    T_ref: float = 600.0        # reference and stress-free temperature
    sigma_y: float = 200.0      # viscoplastic threshold (0: pure Norton, inf: elastic)
    K_ref: float = 3000.0       # Norton drag stress at T_ref
    theta_K: float = 150.0      # K(T) = K_ref exp(-(T - T_ref)/theta_K)
    n_ref: float = 5.0          # Norton exponent at T_ref
    n_T: float = 0.0            # n(T) = n_ref + n_T (T - T_ref)
    C: float = 20.0e3           # Prager modulus, X = 2/3 C alpha

    def young(self, T: np.ndarray | float) -> np.ndarray:
        r""":math:`E(T) = E_{ref}(1 - a_E(T - T_{ref}))` (must stay positive)."""
        E = self.E_ref * (1.0 - self.a_E * (np.asarray(T, dtype=float) - self.T_ref))
        if np.any(E <= 0):
            raise ValueError(f"E(T) <= 0: temperature above {self.T_ref + 1 / self.a_E:g}")
        return E

    def lame(self, T: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        r"""Lamé's :math:`\lambda(T), \mu(T)`."""
        E = self.young(T)
        return E * self.nu / ((1 + self.nu) * (1 - 2 * self.nu)), E / (2 * (1 + self.nu))

    def drag(self, T: np.ndarray | float) -> np.ndarray:
        r"""Norton's :math:`K(T) = K_{ref}\, e^{-(T - T_{ref})/\theta_K}`."""
        return self.K_ref * np.exp(-(np.asarray(T, dtype=float) - self.T_ref) / self.theta_K)

    def exponent(self, T: np.ndarray | float) -> np.ndarray:
        r"""Norton's :math:`n(T) = n_{ref} + n_T (T - T_{ref})` (must stay >= 1)."""
        n = self.n_ref + self.n_T * (np.asarray(T, dtype=float) - self.T_ref)
        if np.any(n < 1):
            raise ValueError("Norton exponent n(T) < 1")
        return n

    def elastic(self) -> "Material":
        """The same elasticity without viscoplasticity (``sigma_y = inf``)."""
        return replace(self, sigma_y=np.inf)


@dataclass
class InternalVariables:
    """Internal variables at N points: Mandel plastic strain and back stress (N, 4), p (N,)."""

    eps_p: np.ndarray
    X: np.ndarray
    p: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> "InternalVariables":
        return cls(np.zeros((n, 4)), np.zeros((n, 4)), np.zeros(n))

    def __len__(self) -> int:
        return len(self.p)

    def copy(self) -> "InternalVariables":
        return InternalVariables(self.eps_p.copy(), self.X.copy(), self.p.copy())

    def take(self, idx: np.ndarray) -> "InternalVariables":
        """The variables at the points ``idx`` (a copy)."""
        return InternalVariables(self.eps_p[idx], self.X[idx], self.p[idx])

    def put(self, idx: np.ndarray, other: "InternalVariables") -> None:
        """Overwrite the points ``idx`` with ``other``."""
        self.eps_p[idx], self.X[idx], self.p[idx] = other.eps_p, other.X, other.p


@dataclass
class ConstitutiveResult:
    """What :func:`return_mapping` returns (Mandel vectors; ``tangent`` None if not asked)."""

    stress: np.ndarray            # (N, 4), sigma_zz included
    state: InternalVariables      # at the end of the step
    dp: np.ndarray                # (N,) increment of cumulated plastic strain
    tangent: np.ndarray | None    # (N, 4, 4) d sigma / d eps
    iterations: int               # scalar Newton iterations (the most any point needed)


def von_mises(a: np.ndarray) -> np.ndarray:
    r""":math:`J(a) = \sqrt{\tfrac32\, \mathrm{dev}\,a : \mathrm{dev}\,a}` of Mandel vectors (N, 4)."""
    d = a @ IDEV
    return np.sqrt(1.5 * np.einsum("ij,ij->i", d, d))


def return_mapping(mat: Material, eps: np.ndarray, T: np.ndarray, dt: float, state: InternalVariables,
                   tangent: bool = True, rtol: float = 1e-14, max_it: int = 200) -> ConstitutiveResult:
    r"""Backward-Euler update of the law over one step, vectorised over N points.

    Parameters
    ----------
    mat : the material
    eps : (N, 4) total strain at the end of the step, Mandel (plane strain: ``eps[:, 2] = 0``)
    T : (N,) temperature at the end of the step
    dt : the time step :math:`\Delta t > 0`
    state : internal variables at the start of the step (not modified)
    tangent : also return the consistent tangent :math:`\partial\sigma/\partial\varepsilon`
    rtol : relative tolerance on the scalar unknown :math:`y = (\Delta p/\Delta t)^{1/n}`
    max_it : most scalar Newton iterations

    Returns
    -------
    ConstitutiveResult with the stress, the new internal variables, :math:`\Delta p` and the
    tangent (see the module docstring for the equations).
    """
    if not dt > 0:
        raise ValueError(f"dt must be positive, not {dt}")
    eps = np.asarray(eps, dtype=float)
    T = np.broadcast_to(np.asarray(T, dtype=float), (eps.shape[0],))
    lam, mu = mat.lame(T)
    eps_e = eps - state.eps_p - np.outer(mat.alpha_th * (T - mat.T_ref), ONE)
    sig_tr = lam[:, None] * (eps_e @ ONE)[:, None] * ONE + 2 * mu[:, None] * eps_e
    xi = sig_tr @ IDEV - state.X
    J_tr = np.sqrt(1.5 * np.einsum("ij,ij->i", xi, xi))
    f_tr = J_tr - mat.sigma_y
    plastic = f_tr > 0
    dp = np.zeros_like(J_tr)
    y = np.zeros_like(J_tr)
    iterations = 0
    idx = np.flatnonzero(plastic)
    if idx.size:
        K, n = mat.drag(T[idx]), mat.exponent(T[idx])
        H = (3 * mu[idx] + mat.C) * dt
        f = f_tr[idx]
        # both f/K and (f/H)^(1/n) bound the root from above: Newton decreases monotonically
        yk = np.minimum(f / K, (f / H) ** (1.0 / n))
        active = np.ones(idx.size, dtype=bool)
        while active.any():
            iterations += 1
            if iterations > max_it:
                raise RuntimeError(f"return mapping: no convergence in {max_it} iterations "
                                   f"({active.sum()} points left)")
            a = np.flatnonzero(active)
            ya = yk[a]
            yn1 = ya ** (n[a] - 1)
            g = f[a] - H[a] * yn1 * ya - K[a] * ya
            dg = -n[a] * H[a] * yn1 - K[a]
            step = g / dg
            yk[a] = np.maximum(ya - step, 0.0)
            active[a] = np.abs(step) > rtol * np.maximum(yk[a], 1e-300)
        y[idx] = yk
        dp[idx] = dt * yk ** n
    N = np.zeros_like(xi)
    N[idx] = 1.5 * xi[idx] / J_tr[idx, None]
    deps_p = dp[:, None] * N
    stress = sig_tr - 2 * mu[:, None] * deps_p
    new = InternalVariables(state.eps_p + deps_p, state.X + (2.0 / 3.0) * mat.C * deps_p, state.p + dp)
    C = None
    if tangent:
        De = lam[:, None, None] * np.outer(ONE, ONE) + 2 * mu[:, None, None] * I4
        C = np.array(De)
        if idx.size:
            K, n = mat.drag(T[idx]), mat.exponent(T[idx])
            m, yi, dpi = mu[idx], y[idx], dp[idx]
            # h = 3 mu + C + K/(n dt) y^(1-n); at y = 0 (dp = 0) the point is at the threshold
            with np.errstate(divide="ignore", over="ignore"):
                h = 3 * m + mat.C + K / (n * dt) * np.where(yi > 0, yi ** (1 - n), np.inf)
            NN = np.einsum("pi,pj->pij", N[idx], N[idx])
            C[idx] -= (4 * m ** 2 / h)[:, None, None] * NN
            C[idx] -= (6 * m ** 2 * dpi / J_tr[idx])[:, None, None] * (IDEV - (2.0 / 3.0) * NN)
    return ConstitutiveResult(stress, new, dp, C, iterations)


# ---------------------------------------------------------------------- plane-strain conversions
def mandel_from_plane(e: np.ndarray) -> np.ndarray:
    """(N, 2, 2) in-plane symmetric tensors -> (N, 4) Mandel vectors with a zero zz component."""
    out = np.zeros((e.shape[0], 4))
    out[:, 0], out[:, 1] = e[:, 0, 0], e[:, 1, 1]
    out[:, 3] = SQRT2 * 0.5 * (e[:, 0, 1] + e[:, 1, 0])
    return out


def plane_from_mandel(v: np.ndarray) -> np.ndarray:
    """(N, 4) Mandel vectors -> (N, 2, 2) in-plane tensors (the zz component is dropped)."""
    out = np.empty((v.shape[0], 2, 2))
    out[:, 0, 0], out[:, 1, 1] = v[:, 0], v[:, 1]
    out[:, 0, 1] = out[:, 1, 0] = v[:, 3] / SQRT2
    return out


def tensor_from_mandel(v: np.ndarray) -> np.ndarray:
    """(N, 4) Mandel vectors -> (N, 3, 3) symmetric tensors (xz = yz = 0)."""
    out = np.zeros((v.shape[0], 3, 3))
    out[:, 0, 0], out[:, 1, 1], out[:, 2, 2] = v[:, 0], v[:, 1], v[:, 2]
    out[:, 0, 1] = out[:, 1, 0] = v[:, 3] / SQRT2
    return out


def plane_tangent(C: np.ndarray) -> np.ndarray:
    r"""(N, 4, 4) Mandel tangents -> (N, 2, 2, 2, 2) in-plane tensors :math:`\mathbb C_{ijkl}`.

    With Mandel factors :math:`w_{ii} = 1`, :math:`w_{ij} = \sqrt2` (:math:`i \ne j`),
    :math:`\mathbb C_{ijkl} = M_{a(ij)\,b(kl)} / (w_{ij} w_{kl})`, so that
    :math:`\sigma_{ij} = \mathbb C_{ijkl}\varepsilon_{kl}` for symmetric in-plane strains
    (the zz row and column drop out: :math:`\varepsilon_{zz} = 0`, and :math:`\sigma_{zz}`
    does no in-plane work).
    """
    out = np.empty((C.shape[0], 2, 2, 2, 2))
    for (i, j), a in PLANE_INDEX.items():
        for (k, l), b in PLANE_INDEX.items():
            out[:, i, j, k, l] = C[:, a, b] / ((1.0 if i == j else SQRT2) * (1.0 if k == l else SQRT2))
    return out
