"""ACSF descriptors (Behler, J. Chem. Phys. 134, 074106 (2011)) and their derivatives dG/dr, dG/dε.

Functions (R in Å, η in Å⁻², R_s in Å, every G dimensionless), Behler 2011 Eqs. 1, 6, 8, 9:
    f_c(R)  = ½[cos(πR/R_c) + 1] for R ≤ R_c, else 0                               (cutoff_cosine)
    G2_i    = Σ_{j≠i} exp(−η (R_ij − R_s)²) f_c(R_ij)        one value per element of j;
              (η, R_s) = (0, 0) is G1 = Σ_j f_c(R_ij)
    G4_i    = 2^(1−ζ) Σ_{j≠i} Σ_{k>j, k≠i} (1 + λ cos θ_ijk)^ζ exp(−η (R_ij² + R_ik² + R_jk²))
              · f_c(R_ij) f_c(R_ik) f_c(R_jk)                  one value per unordered element pair {j, k}
    G5_i    = as G4 without R_jk² in the exponential and without f_c(R_jk).

Pair counting. "k > j" counts each unordered pair {j, k} of distinct neighbours of i once; periodic
images are distinct neighbours (an atom and its own images can form a triplet). Behler 2011 writes
Σ_{j≠i} Σ_{k≠i,j}, the ordered sum: that literal sum is exactly 2× our G4/G5. n2p2 and DScribe count
each pair once, as we do (DScribe's ``k < j`` loop with 2·(½(1 + λ cos θ))^ζ = 2^(1−ζ)(1 + λ cos θ)^ζ).
DScribe 2.1 lays its columns out differently (checked against the installed package in
``tests/test_oracle.py``): species sorted by atomic number; per element a G1 (= Σ f_c) column, then that
element's G2 columns; then per element pair, ordered (0,0),(1,0),(1,1),(2,0),…, its G4 then its G5
columns. ``python -m alw_ref.oracle --order dscribe`` writes our descriptors in that order.

AtomDNN conventions (the paper's code; each marked ``# AtomDNN convention:`` at its line):
  1. (1 + λ cos θ) is clipped at 0, and where the base is 0 the term and its derivative are 0.
     We evaluate the base as B = 1 + λ cos θ = ½|û_ij + λ û_ik|², which is ≥ 0 by construction, and
     count B ≤ B_COLLINEAR = 1e-24 as 0 (see B_COLLINEAR below): an exactly collinear triplet (an atom
     and its images at S·cell and m·S·cell, a chain of atoms along a lattice vector) gives B = 0 only
     when the rounding of its two unit vectors happens to agree (m = 2^k); otherwise B ~ 1e-33 … 1e-28,
     which for ζ < 1 is not small (1e-33^0.08 = 2e-3) and made G4/G5 gain a spurious term and dG/dε
     wrong by up to 1e10 (issue 12, item 14). The textbook dot-product formula is worse (±1e-16).
     For ζ ≥ ½ a zero derivative at B = 0 is the true one-sided limit; for ζ < ½ (e.g. the paper's
     ζ = 0.08) B^ζ ~ φ^(2ζ) has a cusp at collinearity (φ = angle from collinear) and its derivative,
     ~ φ^(2ζ−1), grows without bound as φ → 0. The code stays finite for every accepted ζ (≥ 0.05, see
     ``acsf_spec.ZETA_MIN``), but ζ < 1 features of nearly collinear triplets are ill-conditioned: a 1e-16
     change of geometry can change them by ~1e-32ζ relative (0.3 % for ζ = 0.08).
  2. The paper's MoTe2 set uses no R_s shift (R_s = 0); R_s is supported and honoured here.

Which functions (elements, R_c, parameter rows, presets) is an ``ACSFSpec`` (``alw_ref.acsf_spec``, its
names re-exported here); this module computes them. Feature order (``ACSFSpec.n_features`` and
``feature_labels()`` follow it):
    [G2: for element e in spec.elements: for (η, R_s) in spec.radial]
    [G4: for pair (a, b), a ≤ b, row-major (0,0),(0,1),…,(0,n−1),(1,1),…: for (η, ζ, λ) in spec.angular]
    [G5: same pairs: for (η, ζ, λ) in spec.angular_g5]

Derivatives (chain rule in the kernel's symbols). Pair vector r_n = r_j − r_i + S·cell of centre i,
R_n = |r_n|, û_n = r_n / R_n. Each term is a function of pair vectors; its gradient wrt pair vector
r_n, pg_n (= ``pg_ngc[n]``), is accumulated per centre, then
    ∂G_i/∂r_j += pg_n for every pair n with neighbour j (all images of j),  ∂G_i/∂r_i −= pg_n,
    ∂G_i/∂ε_ab += pg_n^a r_n^b  (r → (I+ε) r maps every pair vector r_n to (I+ε) r_n).
Radial term t = exp(−η(R−R_s)²) f_c(R):  pg_n = [radial_gaussian_d f_c + radial_gaussian f_c'] û_n.
Triplet (j = pair n, k = pair m, r_jk = r_ik − r_ij), B = 1 + λ cos θ, cos θ = û_ij·û_ik,
    ∂cosθ/∂r_ij = (û_ik − cosθ û_ij)/R_ij,   ∂cosθ/∂r_ik = (û_ij − cosθ û_ik)/R_ik,
    t = A F with A = 2^(1−ζ) B^ζ e^(−ηS), S = R_ij² + R_ik² + R_jk², F = f_c(R_ij) f_c(R_ik) f_c(R_jk),
    g_ij = (ζ λ A F / B) ∂cosθ/∂r_ij + A(∂F/∂R_ij − 2η R_ij F) û_ij,
    g_ik = (ζ λ A F / B) ∂cosθ/∂r_ik + A(∂F/∂R_ik − 2η R_ik F) û_ik,
    g_jk = A(∂F/∂R_jk − 2η R_jk F) û_jk,
    pg_n += g_ij − g_jk,   pg_m += g_ik + g_jk      (since r_jk = r_m − r_n).
With û_jk = (R_ik û_ik − R_ij û_ij)/R_jk every g lies in the plane of (û_ij, û_ik): the û_ij part of
pg_n (and the û_ik part of pg_m) is accumulated as a scalar (``al_ng``) and expanded once per pair.
B^ζ is computed by repeated squaring for integer ζ ≤ 1024 (ζλAF/B = ζλ 2^(1−ζ) B^(ζ−1) e^(−ηS) F,
no division), else as exp(ζ ln B); e^(−ηS) once per distinct η; f_c(R_jk) from R_jk² by its series
(``cutoff_cosine_sq``: no square root or cosine per triplet; R_jk itself only for derivatives).
ζλAF/B ≤ 2ζ B^(ζ−1) is finite for every representable B > 0 because the spec requires
ζ ≥ ZETA_MIN = 0.05. G5 drops R_jk² and f_c(R_jk).
Sums over periodic images make ∂G_i/∂r_i = −Σ_{j≠i} ∂G_i/∂r_j (translation invariance) exact by
construction; rotation invariance makes Σ_j ∂G_i/∂ε symmetric (tested, not imposed).
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .acsf_spec import DEFAULT_PRESET, PRESET_RC, PRESETS, ZETA_MIN, ACSFSpec  # noqa: F401  (re-exported: the spec's old home)
from .errors import DataError, SpecError  # noqa: F401  (SpecError re-exported)


# ---------------------------------------------------------------- scalar functions (value, derivative)
@njit(cache=True)
def cutoff_cosine(R, rc):
    """Behler 2011 Eq. 1: f_c(R) = ½[cos(πR/R_c) + 1] for R ≤ R_c, else 0. R, rc in Å; f_c dimensionless."""
    if R > rc:
        return 0.0
    return 0.5 * (math.cos(math.pi * R / rc) + 1.0)


#: Taylor coefficients of cos(π√x / 2) in x: (−1)^k (π/2)^(2k) / (2k)!, k = 0 … 11 (next term < 2e-17).
_HALF_COS_SERIES = tuple((-1) ** k * (math.pi / 2) ** (2 * k) / math.factorial(2 * k) for k in range(12))


@njit(cache=True)
def cutoff_cosine_sq(R2, rc2):
    """Behler 2011 Eq. 1 from the squared distance: f_c = ½[cos(πR/R_c) + 1] = cos²(πR / 2R_c), R² and R_c²
    in Å². cos(π√x/2) with x = R²/R_c² ≤ 1 is an entire function of x, summed by Horner's rule from its
    Taylor series (12 terms): no square root and no cosine call, |error| ≤ 2.3e-16 on [0, R_c] (the
    cosine formula: the same absolute error, and a larger relative error near R_c). 0 for R² ≥ R_c².
    """
    if R2 >= rc2:
        return 0.0
    x = R2 / rc2
    c = _HALF_COS_SERIES
    h = ((((((((((c[11] * x + c[10]) * x + c[9]) * x + c[8]) * x + c[7]) * x + c[6]) * x + c[5]) * x
             + c[4]) * x + c[3]) * x + c[2]) * x + c[1]) * x + c[0]
    return h * h


@njit(cache=True)
def cutoff_cosine_d(R, rc):
    """d f_c / dR = −(π / 2R_c) sin(πR/R_c) for R ≤ R_c, else 0; Å⁻¹."""
    if R > rc:
        return 0.0
    return -0.5 * math.pi / rc * math.sin(math.pi * R / rc)


@njit(cache=True)
def radial_gaussian(R, eta, rs):
    """Gaussian of G2 (Behler 2011 Eq. 6): exp(−η (R − R_s)²); R, R_s in Å, η in Å⁻²; dimensionless."""
    return math.exp(-eta * (R - rs) ** 2)


@njit(cache=True)
def radial_gaussian_d(R, eta, rs):
    """d/dR exp(−η (R − R_s)²) = −2η (R − R_s) exp(−η (R − R_s)²); Å⁻¹."""
    return -2.0 * eta * (R - rs) * math.exp(-eta * (R - rs) ** 2)


@njit(cache=True)
def integer_power(x, k):
    """x**k for integer k ≥ 0 by repeated squaring (exact for the ζ of G4/G5 that are integers)."""
    out = 1.0
    while k > 0:
        if k & 1:
            out *= x
        x *= x
        k >>= 1
    return out


# ---------------------------------------------------------------- collinearity threshold
#: AtomDNN convention 1 (module docstring): a base B = 1 + λ cos θ = ½|û_ij + λ û_ik|² at or below this is
#: 0 (term and derivative 0). Float64 rounding of the pair vectors r_j − r_i + S·cell and of their unit
#: vectors leaves |û_ij + λ û_ik| of an exactly collinear triplet at up to ~0.5 ε_machine (|r| + |S·cell|)/R
#: (measured: 7 ε for coordinates ≤ 8 Å, 63 ε for coordinates ≤ 70 Å, R ≥ 0.5 Å), i.e. B up to ~1e-28;
#: 1e-24 (|û_ij + λ û_ik| ≤ 1.4e-12, an angle of 1.4e-12 rad from collinear, 1e-11 Å sideways at 6.5 Å)
#: covers coordinates up to ~1e4 Å and is far below any geometry a structure is given to.
B_COLLINEAR = 1e-24


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class ACSFResult:
    """Descriptors of a set of atoms and, optionally, their derivatives (sparse blocks).

    G_ig          : (n_atoms, D) float64, dimensionless
    block_first_i : (n_atoms+1,) int64 or None; derivative blocks of centre i are
                    block_first_i[i]:block_first_i[i+1]
    block_j       : (n_blocks,) int64 or None; atom j of each block, j = i included, unique and
                    ascending per centre
    dG_dr_bgc     : (n_blocks, D, 3) float64, Å⁻¹, or None; ∂G_i/∂r_j summed over all images of j
    dG_deps_igcc  : (n_atoms, D, 3, 3) float64 or None; ∂G_i/∂ε_ab for r → (I+ε) r of positions and
                    cell (ε general, not symmetrised) = Σ_n (∂G_i/∂r_n^a) r_n^b over pair vectors
    """

    G_ig: np.ndarray
    block_first_i: np.ndarray = None
    block_j: np.ndarray = None
    dG_dr_bgc: np.ndarray = None
    dG_deps_igcc: np.ndarray = None


# ---------------------------------------------------------------- kernels
@njit(cache=True, parallel=True)
def derivative_blocks(first_i, j_n):
    """Sparse block layout: for each centre i the sorted unique atoms {j of its pairs} ∪ {i}.

    first_i (n_atoms+1,) int64 pair offsets, j_n (n_pairs,) int64 → block_first_i (n_atoms+1,) int64,
    block_j (n_blocks,) int64, block_n (n_pairs,) int64 block of each pair, self_i (n_atoms,) int64
    block of (i, i).
    """
    n_atoms = first_i.shape[0] - 1
    count_i = np.zeros(n_atoms, np.int64)
    for i in prange(n_atoms):
        js = np.sort(np.append(j_n[first_i[i]:first_i[i + 1]], i))
        c = 1
        for q in range(1, js.shape[0]):
            if js[q] != js[q - 1]:
                c += 1
        count_i[i] = c
    block_first_i = np.zeros(n_atoms + 1, np.int64)
    block_first_i[1:] = np.cumsum(count_i)
    block_j = np.empty(block_first_i[n_atoms], np.int64)
    block_n = np.empty(j_n.shape[0], np.int64)
    self_i = np.empty(n_atoms, np.int64)
    for i in prange(n_atoms):
        js = np.sort(np.append(j_n[first_i[i]:first_i[i + 1]], i))
        b = block_first_i[i]
        block_j[b] = js[0]
        for q in range(1, js.shape[0]):
            if js[q] != js[q - 1]:
                b += 1
                block_j[b] = js[q]
        uniq = block_j[block_first_i[i]:block_first_i[i + 1]]
        for p in range(first_i[i], first_i[i + 1]):
            block_n[p] = block_first_i[i] + np.searchsorted(uniq, j_n[p])
        self_i[i] = block_first_i[i] + np.searchsorted(uniq, i)
    return block_first_i, block_j, block_n, self_i


@njit(cache=True, parallel=True)
def acsf_kernel(species_i, first_i, j_n, r_nc, pair_index, rc, rad_eta, rad_rs,
                g4_eta, g4_zeta, g4_lam, g4_zint, g4_uid, g4_eta_u,
                g5_eta, g5_zeta, g5_lam, g5_zint, g5_uid, g5_eta_u,
                block_n, self_i, derivatives, G_ig, dG_dr_bgc, dG_deps_igcc):
    """G2/G4/G5 of every centre and, if ``derivatives``, ∂G_i/∂r_j blocks and ∂G_i/∂ε (module docstring).

    species_i (n_atoms,) int64; first_i (n_atoms+1,) int64; j_n (n_pairs,) int64; r_nc (n_pairs, 3)
    float64 Å; pair_index (n_species, n_species) int64 index of the unordered element pair; rc Å;
    parameter arrays float64 (η Å⁻², R_s Å, ζ, λ), per angular function also int64 zint (ζ if ζ is an
    integer ≤ 1024, else 0) and uid (index of its η in the distinct-η array eta_u); block_n/self_i from
    ``derivative_blocks`` (empty arrays when not ``derivatives``).
    Accumulates into the zero-filled outputs G_ig (n_atoms, D), dG_dr_bgc (n_blocks, D, 3) Å⁻¹ and
    dG_deps_igcc (n_atoms, D, 3, 3) (both (0, D, …) when not ``derivatives``). The caller allocates them
    with NumPy, whose large arrays get transparent huge pages: first-touch page faults were half the
    time of the derivative path when the kernel allocated them itself.
    """
    n_atoms = species_i.shape[0]
    n_species = pair_index.shape[0]
    nr, n4, n5 = rad_eta.shape[0], g4_eta.shape[0], g5_eta.shape[0]
    n_pairs_el = n_species * (n_species + 1) // 2
    off4 = n_species * nr
    off5 = off4 + n_pairs_el * n4
    D = off5 + n_pairs_el * n5
    pre4 = 2.0 ** (1.0 - g4_zeta)
    pre5 = 2.0 ** (1.0 - g5_zeta)
    has_frac = np.any(g4_zint <= 0) or np.any(g5_zint <= 0)
    rc2 = rc * rc
    for i in prange(n_atoms):
        p0 = first_i[i]
        nn = first_i[i + 1] - p0
        R_n = np.empty(nn)
        inv_R_n = np.empty(nn)
        u_nc = np.empty((nn, 3))
        fc_n = np.empty(nn)
        dfc_n = np.empty(nn)
        s_n = np.empty(nn, np.int64)
        pg_ngc = np.zeros((nn if derivatives else 0, D, 3))
        al_ng = np.zeros((nn if derivatives else 0, D))   # coefficient of û_n in pg_n
        partner_t = np.empty(nn, np.int64)
        Rjk2_t = np.empty(nn)
        E_u = np.empty(max(g4_eta_u.shape[0], g5_eta_u.shape[0]))
        lnBp = lnBm = 0.0
        Rjk = 0.0
        dF5_j = dF5_k = dF4_j = dF4_k = dF4_jk = 0.0
        for n in range(nn):
            r = r_nc[p0 + n]
            R = math.sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2])
            R_n[n] = R
            inv_R_n[n] = 1.0 / R
            for c in range(3):
                u_nc[n, c] = r[c] * inv_R_n[n]
            fc_n[n] = cutoff_cosine(R, rc)
            dfc_n[n] = cutoff_cosine_d(R, rc) if derivatives else 0.0
            s_n[n] = species_i[j_n[p0 + n]]
        # radial: t = g(R) f_c(R), pg_n = (g' f_c + g f_c') û_n
        for n in range(nn):
            base = s_n[n] * nr
            for p in range(nr):
                g = radial_gaussian(R_n[n], rad_eta[p], rad_rs[p])
                G_ig[i, base + p] += g * fc_n[n]
                if derivatives:
                    dt = radial_gaussian_d(R_n[n], rad_eta[p], rad_rs[p]) * fc_n[n] + g * dfc_n[n]
                    al_ng[n, base + p] += dt
        if n4 + n5 > 0:
            for n in range(nn):
                # Partners m > n of pair n, without those with R_jk ≥ R_c when there is no G5 (f_c(R_jk) = 0:
                # no term). Branch-free compaction: the test is unpredictable, the loop below then is not.
                n_partners = 0
                for m in range(n + 1, nn):
                    dx = r_nc[p0 + m, 0] - r_nc[p0 + n, 0]
                    dy = r_nc[p0 + m, 1] - r_nc[p0 + n, 1]
                    dz = r_nc[p0 + m, 2] - r_nc[p0 + n, 2]
                    partner_t[n_partners] = m
                    Rjk2_t[n_partners] = dx * dx + dy * dy + dz * dz
                    n_partners += 1 if (n5 > 0 or Rjk2_t[n_partners] < rc2) else 0
                for t in range(n_partners):
                    m = partner_t[t]
                    Rjk2 = Rjk2_t[t]
                    Rj, Rk = R_n[n], R_n[m]
                    # AtomDNN convention: (1 + λ cos θ) clipped at 0 — here B = ½|û_ij + λ û_ik|² ≥ 0;
                    # B ≤ B_COLLINEAR (collinear up to rounding) → term and derivative are 0.
                    Bp = 0.0
                    Bm = 0.0
                    for c in range(3):
                        Bp += (u_nc[n, c] + u_nc[m, c]) ** 2
                        Bm += (u_nc[n, c] - u_nc[m, c]) ** 2
                    Bp *= 0.5                       # 1 + cos θ
                    Bm *= 0.5                       # 1 − cos θ
                    if has_frac:                    # ln B for non-integer ζ
                        lnBp = math.log(Bp) if Bp > B_COLLINEAR else 0.0
                        lnBm = math.log(Bm) if Bm > B_COLLINEAR else 0.0
                    fcjk = cutoff_cosine_sq(Rjk2, rc2)   # no sqrt, no cos (values path)
                    F5 = fc_n[n] * fc_n[m]
                    F4 = F5 * fcjk
                    S5 = Rj * Rj + Rk * Rk
                    S4 = S5 + Rjk2
                    pidx = pair_index[s_n[n], s_n[m]]
                    if derivatives:
                        # ∂cosθ/∂r_ij = (û_ik − cosθ û_ij)/R_ij, û_jk = (R_ik û_ik − R_ij û_ij)/R_jk
                        cos = u_nc[n, 0] * u_nc[m, 0] + u_nc[n, 1] * u_nc[m, 1] + u_nc[n, 2] * u_nc[m, 2]
                        inv_Rj, inv_Rk = inv_R_n[n], inv_R_n[m]
                        Rjk = math.sqrt(Rjk2)
                        inv_Rjk = 1.0 / Rjk if Rjk > 0.0 else 0.0
                        Rj_Rjk, Rk_Rjk = Rj * inv_Rjk, Rk * inv_Rjk
                        dF5_j = dfc_n[n] * fc_n[m]
                        dF5_k = fc_n[n] * dfc_n[m]
                        dF4_j = dF5_j * fcjk
                        dF4_k = dF5_k * fcjk
                        if fcjk > 0.0:
                            dF4_jk = F5 * cutoff_cosine_d(Rjk, rc)
                    for kind in range(2):
                        if kind == 0:
                            if fcjk == 0.0 or n4 == 0:
                                continue
                            eta_a, zeta_a, lam_a, pre_a, zint_a, uid_a, etau_a = (
                                g4_eta, g4_zeta, g4_lam, pre4, g4_zint, g4_uid, g4_eta_u)
                            base, F, S = off4 + pidx * n4, F4, S4
                        else:
                            if n5 == 0:
                                continue
                            eta_a, zeta_a, lam_a, pre_a, zint_a, uid_a, etau_a = (
                                g5_eta, g5_zeta, g5_lam, pre5, g5_zint, g5_uid, g5_eta_u)
                            base, F, S = off5 + pidx * n5, F5, S5
                        for u in range(etau_a.shape[0]):     # exp(−ηS) once per distinct η
                            E_u[u] = math.exp(-etau_a[u] * S)
                        for p in range(eta_a.shape[0]):
                            lam = lam_a[p]
                            B = Bp if lam > 0.0 else Bm
                            if B <= B_COLLINEAR:
                                continue        # AtomDNN convention: base 0 → term and derivative 0
                            E = E_u[uid_a[p]]
                            zi = zint_a[p]
                            if zi > 0:          # integer ζ: B^(ζ−1) by squaring, no division by B
                                Bz1 = integer_power(B, zi - 1)
                                A = pre_a[p] * Bz1 * B * E
                                a_cos = zi * lam * pre_a[p] * Bz1 * E * F     # ζλ A F / B
                            else:
                                A = pre_a[p] * math.exp(zeta_a[p] * (lnBp if lam > 0.0 else lnBm)) * E
                                a_cos = zeta_a[p] * lam * A * F / B             # finite: ζ ≥ ZETA_MIN
                            G_ig[i, base + p] += A * F
                            if derivatives:
                                eta = eta_a[p]
                                if kind == 0:
                                    a_j = A * (dF4_j - 2.0 * eta * Rj * F)
                                    a_k = A * (dF4_k - 2.0 * eta * Rk * F)
                                    a_jk = A * (dF4_jk - 2.0 * eta * Rjk * F)
                                else:
                                    a_j = A * (dF5_j - 2.0 * eta * Rj * F)
                                    a_k = A * (dF5_k - 2.0 * eta * Rk * F)
                                    a_jk = 0.0
                                # pg_n += g_ij − g_jk and pg_m += g_ik + g_jk written in the basis
                                # (û_ij, û_ik): û_ij parts go to al_ng, û_ik parts straight to pg
                                t = a_cos
                                al_ng[n, base + p] += a_j - t * cos * inv_Rj + a_jk * Rj_Rjk
                                al_ng[m, base + p] += a_k - t * cos * inv_Rk + a_jk * Rk_Rjk
                                be_n = t * inv_Rj - a_jk * Rk_Rjk
                                be_m = t * inv_Rk - a_jk * Rj_Rjk
                                for c in range(3):
                                    pg_ngc[n, base + p, c] += be_n * u_nc[m, c]
                                    pg_ngc[m, base + p, c] += be_m * u_nc[n, c]
        if derivatives:
            self_gc = np.zeros((D, 3))
            eps_gcc = dG_deps_igcc[i]
            for n in range(nn):
                b = block_n[p0 + n]
                r0, r1, r2 = r_nc[p0 + n, 0], r_nc[p0 + n, 1], r_nc[p0 + n, 2]
                for g in range(D):
                    for a in range(3):
                        v = pg_ngc[n, g, a] + al_ng[n, g] * u_nc[n, a]
                        dG_dr_bgc[b, g, a] += v
                        self_gc[g, a] -= v
                        eps_gcc[g, a, 0] += v * r0
                        eps_gcc[g, a, 1] += v * r1
                        eps_gcc[g, a, 2] += v * r2
            b_self = self_i[i]
            for g in range(D):
                for a in range(3):
                    dG_dr_bgc[b_self, g, a] += self_gc[g, a]


# ---------------------------------------------------------------- entry points
def _param_arrays(rows, width):
    a = np.asarray(rows, np.float64).reshape(len(rows), width)
    return tuple(np.ascontiguousarray(a[:, k]) for k in range(width))


def _angular_arrays(rows):
    """η, ζ, λ (float64), zint (ζ if integer ≤ 1024 else 0), uid (index into eta_u), eta_u (distinct η)."""
    eta, zeta, lam = _param_arrays(rows, 3)
    zint = np.where((zeta == np.round(zeta)) & (zeta <= 1024), zeta, 0).astype(np.int64)
    eta_u, uid = np.unique(eta, return_inverse=True)
    return eta, zeta, lam, zint, uid.astype(np.int64).ravel(), eta_u


def descriptors_from_pairs(spec, species_i, first_i, j_n, r_nc, derivatives=True):
    """ACSFs of every centre from neighbour-list arrays (pairs within spec.rc; full list, any order of j).

    spec      : ACSFSpec
    species_i : (n_atoms,) int64 species index of each atom (``spec.species_index``)
    first_i   : (n_atoms+1,) int64 CSR offsets, pairs of centre i are first_i[i]:first_i[i+1]
    j_n       : (n_pairs,) int64 neighbour atom (global index; arrays may concatenate structures)
    r_nc      : (n_pairs, 3) float64 Å, r_j − r_i + S·cell
    Returns an ACSFResult (derivative fields None when ``derivatives`` is False).
    """
    species_i = np.ascontiguousarray(species_i, np.int64)
    first_i = np.ascontiguousarray(first_i, np.int64)
    j_n = np.ascontiguousarray(j_n, np.int64)
    r_nc = np.ascontiguousarray(r_nc, np.float64)
    n_atoms, n_pairs = species_i.shape[0], j_n.shape[0]
    if first_i.shape != (n_atoms + 1,) or first_i[0] != 0 or first_i[-1] != n_pairs or np.any(np.diff(first_i) < 0):
        raise DataError(f"first_i: expected non-decreasing offsets of shape ({n_atoms + 1},) from 0 to "
                        f"{n_pairs}, got shape {first_i.shape}")
    if r_nc.shape != (n_pairs, 3):
        raise DataError(f"r_nc: expected shape ({n_pairs}, 3), got {r_nc.shape}")
    if n_pairs and (j_n.min() < 0 or j_n.max() >= n_atoms):
        raise DataError(f"j_n: neighbour indices must lie in [0, {n_atoms}), got [{j_n.min()}, {j_n.max()}]")
    if n_atoms and (species_i.min() < 0 or species_i.max() >= spec.n_elements):
        raise DataError(f"species_i: species indices must lie in [0, {spec.n_elements})")
    if not np.all(np.isfinite(r_nc)):
        raise DataError("r_nc: non-finite pair vector")
    d_n = np.sqrt(np.einsum("nc,nc->n", r_nc, r_nc))
    if np.any(d_n == 0.0):
        p = int(np.flatnonzero(d_n == 0.0)[0])
        i = int(np.searchsorted(first_i, p, side="right") - 1)
        raise DataError(f"atoms {i} and {j_n[p]} coincide (distance 0 Å): ACSF angles are undefined")
    pair_index = np.zeros((spec.n_elements, spec.n_elements), np.int64)
    for k, (a, b) in enumerate(spec.element_pairs()):
        pair_index[a, b] = pair_index[b, a] = k
    if derivatives:
        block_first_i, block_j, block_n, self_i = derivative_blocks(first_i, j_n)
    else:
        block_first_i = np.zeros(n_atoms + 1, np.int64)
        block_j = block_n = self_i = np.zeros(0, np.int64)
    D = spec.n_features
    G_ig = np.zeros((n_atoms, D))
    dG_dr_bgc = np.zeros((block_first_i[-1] if derivatives else 0, D, 3))
    dG_deps_igcc = np.zeros((n_atoms if derivatives else 0, D, 3, 3))
    acsf_kernel(species_i, first_i, j_n, r_nc, pair_index, spec.rc, *_param_arrays(spec.radial, 2),
                *_angular_arrays(spec.angular), *_angular_arrays(spec.angular_g5),
                block_n, self_i, bool(derivatives), G_ig, dG_dr_bgc, dG_deps_igcc)
    if not derivatives:
        return ACSFResult(G_ig=G_ig)
    return ACSFResult(G_ig=G_ig, block_first_i=block_first_i, block_j=block_j, dG_dr_bgc=dG_dr_bgc,
                      dG_deps_igcc=dG_deps_igcc)


def compute_acsf(spec, numbers, positions, cell, pbc, derivatives=True):
    """ACSFs (and derivatives) of one structure.

    numbers (n_atoms,) int atomic numbers; positions (n_atoms, 3) float64 Å; cell (3, 3) float64 Å,
    rows are lattice vectors; pbc (3,) bool. Returns an ACSFResult with local atom indices.
    """
    from .neighbors import neighbor_list

    species_i = spec.species_index(numbers)
    nl = neighbor_list(np.asarray(positions, np.float64), np.asarray(cell, np.float64),
                       np.asarray(pbc, bool), spec.rc)
    return descriptors_from_pairs(spec, species_i, nl.first_i, nl.j_n, nl.r_nc, derivatives)
