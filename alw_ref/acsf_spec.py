"""Which ACSFs to compute: ``ACSFSpec`` (elements, cutoff R_c, parameter rows of G2, G4 and G5), its checks,
sizes, feature labels, JSON form and the named descriptor sets (``--preset``).

The functions and their conventions are in ``alw_ref.acsf``, which computes them (and re-exports every name of
this module). Units: R_c and R_s in Å, η in Å⁻², ζ and λ = ±1 dimensionless. ``n_features`` and
``feature_labels`` follow the feature order of the kernel (``acsf`` docstring: G2 per element, then G4 and
G5 per unordered element pair).

A spec is checked when it is made (SpecError naming the field and row): at least one element and one
function, R_c > 0, η ≥ 0, R_s ≥ 0, ζ ≥ ``ZETA_MIN`` (finite derivatives near collinear triplets), λ = ±1,
no repeated element or row.

Presets (``ACSFSpec.preset``, ``PRESETS``): ``auto`` (the trainer's default: ``rich`` for one element,
``trainer`` for more), ``trainer``, ``default`` (small), ``rich`` and ``mote2_paper`` (the paper's MoTe2 set,
AtomDNN's); each constructor's docstring says where its numbers come from.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .elements import atomic_number, chemical_symbol
from .errors import DataError, SpecError

#: Smallest accepted ζ: B^(ζ−1) ≤ (4.9e-324)^(ζ−1) < 1.8e308 (float64 max) for every representable B > 0.
ZETA_MIN = 0.05

#: The descriptor sets ``--preset`` names in train, describe and oracle (``ACSFSpec.preset``): ``rich`` for one
#: element and ``trainer`` for more, the trainer's set, the small set, the rich set (better forces) and the paper's
#: MoTe2 set.
PRESETS = ("auto", "trainer", "default", "rich", "mote2_paper")
#: The preset train and describe use when given neither --preset nor --spec.
DEFAULT_PRESET = "auto"

#: Cutoff in Å of every preset but ``mote2_paper`` when no ``--rc`` is given (the trainer's default).
PRESET_RC = 5.5
#: What each name of ``--preset`` means, for the help of every command that takes it.
PRESET_HELP = ("named descriptor set, the same in train, describe and oracle, over the data's elements with --rc: "
               "auto (rich for one element, trainer for more), trainer (ACSFSpec.trainer), default (the smaller "
               "ACSFSpec.default), rich (ACSFSpec.rich: 68 angular functions per element pair, better forces on "
               "mlearn Mo); or mote2_paper (the paper's 36 Mo/Te features, R_c 6.5 Å, no --rc)")
#: The help of ``--rc`` beside ``--preset``.
PRESET_RC_HELP = f"cutoff radius in Å of the auto, trainer, default and rich presets (default: {PRESET_RC})"


def _fmt(x):
    return f"{x:g}"


@dataclass(frozen=True)
class ACSFSpec:
    """Which ACSFs to compute: elements (their order = species index), R_c and the parameter lists.

    elements   : tuple of atomic numbers (symbols are accepted and normalised to Z)
    rc         : cutoff radius R_c, Å
    radial     : ((η Å⁻², R_s Å), ...) of G2; (0, 0) is G1
    angular    : ((η Å⁻², ζ, λ = ±1), ...) of G4
    angular_g5 : ((η Å⁻², ζ, λ = ±1), ...) of G5
    """

    elements: tuple
    rc: float
    radial: tuple
    angular: tuple = ()
    angular_g5: tuple = ()

    def __post_init__(self):
        els = self.elements
        if isinstance(els, (str, int, np.integer)):
            els = (els,)
        try:
            zs = tuple(atomic_number(e) for e in els)
        except (DataError, TypeError, ValueError) as err:
            raise SpecError(f"ACSFSpec.elements: {err}") from None
        if not zs:
            raise SpecError("ACSFSpec.elements: at least one element is required")
        dup = sorted({z for z in zs if zs.count(z) > 1})
        if dup:
            raise SpecError(f"ACSFSpec.elements: repeated element(s) {[chemical_symbol(z) for z in dup]}")
        object.__setattr__(self, "elements", zs)
        rc = float(self.rc)
        if not (math.isfinite(rc) and rc > 0):
            raise SpecError(f"ACSFSpec.rc: cutoff must be a finite number > 0 Å, got {self.rc!r}")
        object.__setattr__(self, "rc", rc)
        object.__setattr__(self, "radial", self._params("radial", self.radial, ("eta", "Rs")))
        object.__setattr__(self, "angular", self._params("angular", self.angular, ("eta", "zeta", "lambda")))
        object.__setattr__(self, "angular_g5",
                           self._params("angular_g5", self.angular_g5, ("eta", "zeta", "lambda")))
        if self.n_features == 0:
            raise SpecError("ACSFSpec: no functions (radial, angular and angular_g5 are all empty)")

    @staticmethod
    def _params(field, rows, names):
        out = []
        for k, row in enumerate(rows):
            try:
                row = tuple(float(x) for x in row)
            except (TypeError, ValueError):
                raise SpecError(f"ACSFSpec.{field}[{k}]: expected numbers {names}, got {row!r}") from None
            if len(row) != len(names):
                raise SpecError(f"ACSFSpec.{field}[{k}]: expected {len(names)} numbers {names}, got {row!r}")
            p = dict(zip(names, row))
            if not all(math.isfinite(x) for x in row):
                raise SpecError(f"ACSFSpec.{field}[{k}]: non-finite value in {p}")
            if p["eta"] < 0:
                raise SpecError(f"ACSFSpec.{field}[{k}]: eta must be >= 0 Å^-2, got {p['eta']}")
            if p.get("Rs", 0.0) < 0:
                raise SpecError(f"ACSFSpec.{field}[{k}]: Rs must be >= 0 Å, got {p['Rs']}")
            if "zeta" in p and p["zeta"] < ZETA_MIN:
                raise SpecError(f"ACSFSpec.{field}[{k}]: zeta must be >= {ZETA_MIN} (finite derivatives "
                                f"near collinear triplets), got {p['zeta']}")
            if "lambda" in p and p["lambda"] not in (-1.0, 1.0):
                raise SpecError(f"ACSFSpec.{field}[{k}]: lambda must be -1 or +1, got {p['lambda']}")
            if row in out:
                raise SpecError(f"ACSFSpec.{field}[{k}]: duplicate of {field}[{out.index(row)}] {p}")
            out.append(row)
        return tuple(out)

    # ---- sizes and labels
    @property
    def n_elements(self):
        return len(self.elements)

    @property
    def n_pairs(self):
        """Number of unordered element pairs (a ≤ b)."""
        return self.n_elements * (self.n_elements + 1) // 2

    @property
    def n_features(self):
        """D = n_elements·len(radial) + n_pairs·(len(angular) + len(angular_g5))."""
        return self.n_elements * len(self.radial) + self.n_pairs * (len(self.angular) + len(self.angular_g5))

    def element_pairs(self):
        """Unordered species pairs (a, b), a ≤ b, row-major: the order of the G4/G5 blocks."""
        n = self.n_elements
        return [(a, b) for a in range(n) for b in range(a, n)]

    def feature_labels(self):
        """One label per feature in feature order, e.g. "G2[Mo] eta=0.01 Rs=0",
        "G4[Mo,Te] eta=0.01 zeta=1 lambda=-1"."""
        sym = [chemical_symbol(z) for z in self.elements]
        labels = []
        for s in sym:
            for eta, rs in self.radial:
                labels.append(f"G1[{s}]" if eta == 0 and rs == 0 else f"G2[{s}] eta={_fmt(eta)} Rs={_fmt(rs)}")
        for name, params in (("G4", self.angular), ("G5", self.angular_g5)):
            for a, b in self.element_pairs():
                for eta, zeta, lam in params:
                    labels.append(f"{name}[{sym[a]},{sym[b]}] eta={_fmt(eta)} zeta={_fmt(zeta)} lambda={lam:+g}")
        return labels

    def species_index(self, numbers):
        """Species index (position in ``elements``) of each atomic number: (n_atoms,) int64.

        SpecError naming the element (symbol and Z) when the spec has no entry for it."""
        numbers = np.asarray(numbers)
        table = {z: k for k, z in enumerate(self.elements)}
        out = np.empty(numbers.shape, np.int64)
        for n, z in enumerate(numbers.ravel().tolist()):
            if z not in table:
                try:
                    what = f"{chemical_symbol(z)} (Z={z})"
                except DataError:
                    what = f"atomic number {z!r}"
                raise SpecError(f"atom {n}: element {what} has no entry in the descriptor spec "
                                f"(elements {[chemical_symbol(e) for e in self.elements]})")
            out.ravel()[n] = table[z]
        return out

    # ---- serialisation
    def to_dict(self):
        """Plain-JSON dict: elements as atomic numbers, parameter rows as lists."""
        return {"elements": list(self.elements), "rc": self.rc,
                "radial": [list(p) for p in self.radial], "angular": [list(p) for p in self.angular],
                "angular_g5": [list(p) for p in self.angular_g5]}

    @classmethod
    def from_dict(cls, d):
        """Inverse of ``to_dict``; SpecError on missing or unknown keys."""
        if not isinstance(d, dict):
            raise SpecError(f"ACSFSpec.from_dict: expected a dict, got {type(d).__name__}")
        required, optional = {"elements", "rc", "radial"}, {"angular", "angular_g5"}
        missing, unknown = required - set(d), set(d) - required - optional
        if missing or unknown:
            raise SpecError(f"ACSFSpec.from_dict: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
        return cls(elements=tuple(d["elements"]), rc=d["rc"], radial=tuple(map(tuple, d["radial"])),
                   angular=tuple(map(tuple, d.get("angular", ()))),
                   angular_g5=tuple(map(tuple, d.get("angular_g5", ()))))

    def to_json(self, path=None):
        """JSON text of ``to_dict()``; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, source):
        """Spec from JSON text (a str starting with "{") or from a file path."""
        if isinstance(source, str) and source.lstrip().startswith("{"):
            text = source
        else:
            text = Path(source).read_text()
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"ACSFSpec.from_json: invalid JSON ({err})") from None
        return cls.from_dict(d)

    # ---- presets
    @classmethod
    def default(cls, elements, rc, n_radial=8, r_min=0.5, angular_eta=0.005, zetas=(1.0, 4.0, 16.0)):
        """A small general-purpose set: shifted radial grid plus a small angular set (``trainer`` is richer).

        Radial: the "shifted" grid of Imbalzano et al., JCP 148, 241730 (2018) and Gastegger et al.,
        JCP 148, 241709 (2018): n_radial centres R_s evenly spaced on [r_min, rc] Å with spacing ΔR and
        width η = 1/(2ΔR²) Å⁻² (Gaussian σ = ΔR), so neighbouring Gaussians overlap at one σ.
        Angular: G4 with η = angular_eta Å⁻², ζ in zetas, λ = ±1.
        """
        if n_radial < 2:
            raise SpecError(f"ACSFSpec.default: n_radial must be >= 2, got {n_radial}")
        if not 0 <= r_min < rc:
            raise SpecError(f"ACSFSpec.default: need 0 <= r_min < rc, got r_min={r_min}, rc={rc}")
        rs = np.linspace(r_min, rc, n_radial)
        eta = 0.5 / (rs[1] - rs[0]) ** 2
        return cls(elements=tuple(elements), rc=rc, radial=tuple((float(eta), float(r)) for r in rs),
                   angular=tuple((float(angular_eta), float(z), lam) for z in zetas for lam in (1.0, -1.0)))

    @classmethod
    def trainer(cls, elements, rc=5.5, n_radial=16, r_min=0.5, angular_etas=(0.001, 0.01, 0.05),
                zetas=(1.0, 2.0, 4.0, 16.0), g5_etas=(), g5_zetas=()):
        """The trainer's default set (``benchmarks/bench_accuracy.py``): ``default``'s shifted radial grid,
        denser (16 centres on [0.5, 5.5] Å), and G4 with three widths η ∈ {0.001, 0.01, 0.05} Å⁻², ζ ∈ {1, 2,
        4, 16}, λ = ±1 — 40 features for one element. A linear energy-and-force fit on these features
        (a SNAP-like probe of how much they say, mlearn Mo) gives test force errors of 0.24 eV/Å against
        0.34 eV/Å with ``default(rc=5)``; the widths of the angular set matter more than more radial centres.
        G5 with η in ``g5_etas`` (Å⁻²) and ζ in ``g5_zetas``, λ = ±1, if given (``rich``)."""
        base = cls.default(elements, rc, n_radial=n_radial, r_min=r_min)

        def params(etas, zs):
            return tuple((float(e), float(z), lam) for e in etas for z in zs for lam in (1.0, -1.0))
        return cls(elements=base.elements, rc=rc, radial=base.radial, angular=params(angular_etas, zetas),
                   angular_g5=params(g5_etas, g5_zetas))

    @classmethod
    def rich(cls, elements, rc=5.5):
        """``trainer`` with a richer angular part: G4 with η ∈ {0.001, 0.01, 0.036, 0.071, 0.179} Å⁻² × ζ ∈ {1,
        2, 4, 8, 16, 32} and G5 with η ∈ {0.001, 0.01} Å⁻² × ζ ∈ {1, 4}, λ = ±1 — 84 features for one element,
        236 for two (so for one or few elements and modest data). On mlearn Mo (benchmarks/README.md, 3 seeds)
        it gives test forces of 0.202 ± 0.003 eV/Å against 0.221 ± 0.007 with ``trainer``, but energies of
        6.7 ± 0.7 against 4.4 ± 1.1 meV/atom, at about twice the time per epoch."""
        return cls.trainer(elements, rc, angular_etas=(0.001, 0.01, 0.036, 0.071, 0.179),
                           zetas=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0), g5_etas=(0.001, 0.01), g5_zetas=(1.0, 4.0))

    @classmethod
    def preset(cls, name, elements, rc=None):
        """The named descriptor set every command's ``--preset`` means (``PRESETS``): ``trainer``, ``default``
        (the small set) and ``rich`` over ``elements`` with cutoff ``rc`` Å (None: ``PRESET_RC`` = 5.5 Å);
        ``auto`` (the trainer's default) is ``rich`` for one element and ``trainer`` for more (``rich`` grows as
        68 angular functions per element pair: 236 features for two elements, which 700 MoTe2 structures
        already overfit with ``trainer``'s 104); ``mote2_paper`` (fixed R_c = 6.5 Å and Mo/Te, so ``rc`` must
        be None)."""
        if name not in PRESETS:
            raise SpecError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        if name == "mote2_paper":
            if rc is not None:
                raise SpecError("preset mote2_paper fixes R_c = 6.5 Å; leave out --rc")
            return cls.mote2_paper()
        elements = tuple(z if isinstance(z, str) else int(z) for z in elements)
        if name == "auto":
            name = "rich" if len(elements) == 1 else "trainer"
        builder = {"trainer": cls.trainer, "default": cls.default, "rich": cls.rich}[name]
        return builder(elements, PRESET_RC if rc is None else rc)

    @classmethod
    def mote2_paper(cls, elements=("Mo", "Te")):
        """AtomDNN's MoTe2 set used by the paper (from the MoTe2 example input of AtomDNN,
        github.com/Gao-Group/atomdnn, the paper's code): R_c = 6.5 Å; G1 and G2 with η ∈ {0.01, 0.1, 1, 5, 10}
        Å⁻², R_s = 0; G4 with η = 0.01 Å⁻², ζ ∈ {0.08, 1, 10, 100}, λ = ±1. Two elements: 6·2 + 8·3 = 36 features.

        Warning: ζ = 0.08 < 1 makes ∂G/∂r diverge at nearly collinear triplets within R_c (near-perfect
        bcc or simple-cubic cells reach |∂G/∂r| ~ 1e11 Å⁻¹); ``describe.singular_structures`` finds
        such structures and the trainer names them before training."""
        # AtomDNN convention: no R_s shift in G2 (R_s = 0 for every radial function).
        radial = ((0.0, 0.0),) + tuple((eta, 0.0) for eta in (0.01, 0.1, 1.0, 5.0, 10.0))
        angular = tuple((0.01, zeta, lam) for zeta in (0.08, 1.0, 10.0, 100.0) for lam in (1.0, -1.0))
        return cls(elements=tuple(elements), rc=6.5, radial=radial, angular=angular)
