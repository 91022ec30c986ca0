"""The paper's claims next to what the notebooks measured: numbers, verdicts, the Claims page.

A notebook records each number it wants on the Claims page, then, per claim, a verdict
computed from those numbers with a stated criterion:

    from rcdm_lib import claims
    claims.record(results_dir, "05_rank_mrr", "rank_mrr", "simclr_backbone/mrr", 0.05,
                  "simclr_backbone: MRR of the conditioning image among 64", profile="tiny")
    v = claims.verdict_from_comparisons(
        {"simclr_backbone": (0.05, 0.013)}, expect="higher", what="MRR of SSL backbone samples",
        against="the supervised one", paper="higher for every SSL backbone (Table 2b)")
    claims.record_verdict(results_dir, "05_rank_mrr", "rank_mrr", v, profile="tiny")

Each notebook's numbers and verdicts go to `<results_dir>/<notebook>.json`;
`write_claims_page` turns all of them into `claims.md` of the book. The page is generated,
never typed by hand, so a number or a verdict on it is always the one the executed notebook
produced, with its profile (scale).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from rcdm_lib.files import atomic_write_text

# The paper's claims (Bordes, Balestriero, Vincent, TMLR 2022), keyed by id. A notebook
# that measures something towards a claim records under its id; add new ids here.
CLAIMS: dict[str, str] = {
    "conditional_fidelity": (
        "Samples conditioned on an image's representation keep what the representation "
        "encodes: they look like the conditioning image in the ways the encoder cares about "
        "(Fig. 1a, 12)."
    ),
    "ood_conditioning": (
        "RCDM conditioned on the representation of an out-of-distribution image still produces "
        "samples that keep its salient structure (Fig. 1b, 13, 34)."
    ),
    "interpolation": (
        "Interpolating between two images' representations gives samples that move smoothly "
        "from one image to the other; with the noise fixed, only the representation changes "
        "(Fig. 1c, 15, 16)."
    ),
    "conditional_fid": (
        "RCDM conditioned on real representations has a lower FID than the unconditional model "
        "(Table 2a)."
    ),
    "rank_mrr": (
        "Re-encoded samples of self-supervised backbone representations find their conditioning "
        "image more often (better rank-1 and MRR) than samples of the supervised representation "
        "(Table 2b, Fig. 18)."
    ),
    "supervised_varies_more": (
        "Samples conditioned on the supervised representation vary more than samples of a "
        "self-supervised backbone representation, which keeps more of the image (Fig. 19, 20)."
    ),
    "samples_near_condition": (
        "RCDM samples' representations are closer to the conditioning representation than those "
        "of random validation images (Fig. 22, 23)."
    ),
    "projector_variance": (
        "Samples conditioned on the projector (head) output vary more than samples conditioned on "
        "the backbone (Fig. 3, 25-27)."
    ),
    "backbone_keeps_colour": (
        "The backbone keeps colour and background information that the projector drops "
        "(Fig. 4, 27)."
    ),
    "fgsm_robustness": (
        "SSL representations are more robust to FGSM than supervised ones: a linear probe on an "
        "SSL backbone needs a larger step before it predicts the target class, and RCDM samples of "
        "the perturbed representation keep the original object (Fig. 5, 30)."
    ),
    "manipulation": (
        "Removing or copying the most common non-zero dimensions among an image's nearest "
        "neighbours changes the object or background accordingly, and h(a) - h(b) + h(c) swaps "
        "the background (Fig. 6, 31-33)."
    ),
    "inversion": (
        "Gradient-based inversion reaches a small relative distance to the target representation "
        "without producing natural-looking images (Fig. 7, 9)."
    ),
    "super_resolution": (
        "An ADM super-resolution diffusion model (the low-resolution image upsampled and "
        "concatenated to its input) turns RCDM samples into higher-resolution images that add "
        "detail while keeping the sample's content (Fig. 14)."
    ),
    "rcdm_closer_than_icgan": (
        "RCDM samples are closer to their conditioning representation than the samples of IC-GAN "
        "conditioned on the same representation, which is trained to generate the neighbourhood "
        "of an instance (Fig. 24)."
    ),
}

SCALE_NOTE = {
    "smoke": "smoke: untrained models, a code-path check; the numbers mean nothing",
    "tiny": "tiny: built-in 32px data, encoders and RCDM trained on a 2-core CPU",
    "imagenet128": "imagenet128: the paper's setting (ImageNet, official checkpoints)",
}


def results_path(results_dir, notebook: str) -> Path:
    return Path(results_dir) / f"{notebook}.json"


def clear(results_dir, notebook: str) -> None:
    """Forget a notebook's previous numbers (the pipeline does this before each run)."""
    results_path(results_dir, notebook).unlink(missing_ok=True)


def _check_claim(claim: str) -> None:
    if claim not in CLAIMS:
        raise ValueError(f"unknown claim {claim!r}; expected one of {sorted(CLAIMS)} "
                         "(add the paper's claim to rcdm_lib.claims.CLAIMS)")


def _load(results_dir, notebook: str, profile: str) -> tuple[Path, dict]:
    """The notebook's results file (or a new one), checked to hold results of `profile`."""
    path = results_path(results_dir, notebook)
    data = json.loads(path.read_text()) if path.is_file() else {"notebook": notebook, "results": []}
    if data.get("profile", profile) != profile:
        raise ValueError(f"{path} holds results of profile {data['profile']!r}, not {profile!r}; "
                         "clear it first (claims.clear)")
    data["profile"] = profile
    return path, data


def _save(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")   # a kill leaves the old results or the new


def record(results_dir, notebook: str, claim: str, key: str, value: float, description: str,
           profile: str) -> dict:
    """Add one measured number to `<results_dir>/<notebook>.json` and return its entry."""
    _check_claim(claim)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{notebook}: result {key!r} is {value}; expected a finite number")
    path, data = _load(results_dir, notebook, profile)
    entry = {"claim": claim, "key": key, "value": value, "description": description}
    data["results"] = [r for r in data["results"] if not (r["claim"] == claim and r["key"] == key)] + [entry]
    _save(path, data)
    return entry


# --------------------------------------------------------------------------- verdicts

@dataclass(frozen=True)
class Verdict:
    """Whether a measurement agrees with the paper's claim.

    statement: one line with the measured numbers and the size of the gap;
    criterion: the rule that decided `agrees`, in words.
    """
    agrees: bool
    statement: str
    criterion: str

    def __str__(self) -> str:
        return f"{'agrees' if self.agrees else 'disagrees'} with the paper: {self.statement} ({self.criterion})"


EXPECT = ("higher", "lower")
NEED = ("all", "majority")
# numbers computed in float32 (fractions, distances) differ from the same value in float64 by
# about 1e-7 relative: a 1/3 retrieval rate must tie with a chance level of 1/3
TIE_RTOL, TIE_ATOL = 1e-6, 1e-9


def _g(x: float) -> str:
    return f"{x:.3g}"


def _gap(measured: float, reference: float) -> float:
    """measured - reference, with differences within float32 rounding counted as ties (0)."""
    return 0.0 if math.isclose(measured, reference, rel_tol=TIE_RTOL, abs_tol=TIE_ATOL) else measured - reference


def _goes_paper_way(measured: float, reference: float, expect: str, margin: float, relative: bool) -> bool:
    need = margin * abs(reference) if relative else margin
    gap = _gap(measured, reference)
    return gap > need if expect == "higher" else -gap > need


def _ratio(measured: float, reference: float) -> str | None:
    return f"{measured / reference:.3g}x" if reference > 0 and measured >= 0 else None


def _direction(expect: str, margin: float, relative: bool) -> str:
    if margin == 0:
        return expect
    return f"{expect} by more than " + (f"{margin:.0%}" if relative else _g(margin))


def verdict_from_comparisons(pairs: Mapping[str, tuple[float, float]], *, expect: str, what: str,
                             against: str, paper: str, margin: float = 0.0, relative: bool = False,
                             need: str = "majority") -> Verdict:
    """Judge a claim of the form "`what` is `expect` (higher/lower) than `against`" from
    measured pairs {name: (measured, reference)}.

    A pair goes the paper's way when `measured` beats `reference` in the expected direction
    by more than `margin` (an absolute difference, or with `relative` a fraction of
    |reference|); a tie (equal up to float32 rounding) never does. The claim agrees when
    `need` of the pairs go the paper's way: "all", or "majority" (more than half). The
    statement gives every pair with its gap, and the mean and range of the gaps
    (measured - reference).
    """
    if expect not in EXPECT:
        raise ValueError(f"expect must be one of {EXPECT}, not {expect!r}")
    if need not in NEED:
        raise ValueError(f"need must be one of {NEED}, not {need!r}")
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, not {margin!r}")
    if not pairs:
        raise ValueError(f"no measurements to judge {what!r} by; expected at least one (measured, reference) pair")
    vals = {}
    for name, pair in pairs.items():
        if len(pair) != 2:
            raise ValueError(f"{what}: {name!r} gives {pair!r}; expected a (measured, reference) pair")
        m, r = float(pair[0]), float(pair[1])
        if not (math.isfinite(m) and math.isfinite(r)):
            raise ValueError(f"{what}: {name!r} gives ({m}, {r}); expected finite numbers")
        vals[name] = (m, r)
    n = len(vals)
    k = sum(_goes_paper_way(m, r, expect, margin, relative) for m, r in vals.values())
    agrees = k == n if need == "all" else k > n / 2
    direction = _direction(expect, margin, relative)
    gaps = {name: _gap(m, r) for name, (m, r) in vals.items()}
    if n == 1:
        (name, (m, r)), = vals.items()
        gap = gaps[name]
        prefix = "" if name == what else f"{name}: "
        words = "equal" if gap == 0 else f"{'higher' if gap > 0 else 'lower'} by {_g(abs(gap))}"
        ratio = f" ({_ratio(m, r)})" if _ratio(m, r) else ""
        statement = f"{prefix}{what} is {_g(m)} vs {_g(r)} for {against}, {words}{ratio}; paper: {paper}"
        criterion = f"agrees when {what} is {direction} than {against}"
    else:
        items = ", ".join(f"{name} {_g(m)} vs {_g(r)} ({gaps[name]:+.3g}"
                          + (f", {_ratio(m, r)})" if _ratio(m, r) else ")") for name, (m, r) in vals.items())
        g = list(gaps.values())
        statement = (f"{what}: {direction} than {against} in {k} of {n} ({items}); mean gap "
                     f"{sum(g) / n:+.3g}, from {min(g):+.3g} to {max(g):+.3g}; paper: {paper}")
        rule = f"all {n}" if need == "all" else f"more than half of the {n}"
        criterion = f"agrees when {what} is {direction} than {against} in {rule} comparisons"
    return Verdict(bool(agrees), statement, criterion)


def verdict_from_comparison(measured: float, reference: float, *, expect: str, what: str, against: str,
                            paper: str, margin: float = 0.0, relative: bool = False) -> Verdict:
    """`verdict_from_comparisons` for a single (measured, reference) pair."""
    return verdict_from_comparisons({what: (measured, reference)}, expect=expect, what=what, against=against,
                                    paper=paper, margin=margin, relative=relative, need="all")


def record_verdict(results_dir, notebook: str, claim: str, verdict: Verdict, profile: str,
                   part: str | None = None) -> dict:
    """Store the verdict of `claim` (or of one `part` of it) next to the notebook's numbers.

    The numbers it was computed from must be recorded first (`record`), in the same profile,
    so that the page shows them next to the verdict.
    """
    _check_claim(claim)
    if not isinstance(verdict, Verdict):
        raise ValueError(f"{notebook}: expected a claims.Verdict for {claim!r}, not {type(verdict).__name__} "
                         "(build it with claims.verdict_from_comparison(s))")
    path, data = _load(results_dir, notebook, profile)
    if not any(r["claim"] == claim for r in data["results"]):
        raise ValueError(f"{notebook}: a verdict on {claim!r} needs the numbers it was computed from; "
                         f"expected claims.record(..., {claim!r}, ...) first, {path} has none")
    entry = {"claim": claim, "part": part, **asdict(verdict)}
    data["verdicts"] = [v for v in data.get("verdicts", [])
                        if not (v["claim"] == claim and v.get("part") == part)] + [entry]
    _save(path, data)
    return entry


# --------------------------------------------------------------------------- the page

def load_results(results_dir) -> list[dict]:
    """Every notebook's results file in `results_dir`, sorted by notebook name."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]


def _title(cid: str) -> str:
    return cid.replace("_", " ").capitalize()


def _verdict_word(v: dict) -> str:
    return "agrees" if v["agrees"] else "disagrees"


def verdict_line(v: dict, profile: str) -> str:
    """The page's line for one verdict (tests look for it)."""
    part = f" ({v['part']})" if v.get("part") else ""
    return f"**At {profile} scale{part}: {_verdict_word(v)}** — {v['statement']}"


def claims_markdown(results: list[dict]) -> str:
    """The Claims page: a summary of the verdicts, then for each claim the paper's statement,
    the verdicts and a table of what was measured."""
    lines = [
        "# Claims and what we measured",
        "",
        "Each claim of the paper is listed with the numbers the notebooks recorded when they "
        "were executed for this book, and a verdict each notebook computed from its own numbers "
        "with the criterion it states. This page is generated from the notebooks' saved results "
        "(`rcdm_lib/claims.py`); the *scale* column says at which profile a number was measured, "
        "and a verdict holds for that scale only.",
        "",
    ]
    profiles = sorted({r.get("profile", "?") for r in results})
    for p in profiles:
        lines.append(f"- {SCALE_NOTE.get(p, p)}")
    lines.append("")
    by_claim: dict[str, list[tuple[str, str, dict]]] = {}
    verdicts: dict[str, list[tuple[str, str, dict]]] = {}
    for res in results:
        nb, prof = res["notebook"], res.get("profile", "?")
        for r in res.get("results", []):
            by_claim.setdefault(r["claim"], []).append((nb, prof, r))
        judged = {v["claim"] for v in res.get("verdicts", [])}
        for v in res.get("verdicts", []):
            verdicts.setdefault(v["claim"], []).append((nb, prof, v))
        for cid in sorted({r["claim"] for r in res.get("results", [])} - judged):
            verdicts.setdefault(cid, []).append((nb, prof, None))
    if not by_claim:
        lines.append("No notebook has recorded results yet: run `make book`.")
        return "\n".join(lines) + "\n"
    lines += ["## Verdicts at a glance", "",
              "| claim | verdict | scale | notebook |", "| --- | --- | --- | --- |"]
    for cid in CLAIMS:
        for nb, prof, v in verdicts.get(cid, []):
            if v is None:
                word = "no verdict recorded"
            else:
                word = _verdict_word(v) + (f" ({v['part']})" if v.get("part") else "")
            lines.append(f"| {_title(cid)} | {word} | {prof} | [{nb}]({nb}.ipynb) |")
    lines.append("")
    for cid, text in CLAIMS.items():
        rows = by_claim.get(cid)
        if not rows:
            continue
        lines += [f"## {_title(cid)}", "", f"**Paper:** {text}", ""]
        for nb, prof, v in verdicts.get(cid, []):
            if v is None:
                lines += [f"**At {prof} scale: no verdict recorded** by [{nb}]({nb}.ipynb).", ""]
            else:
                lines += [verdict_line(v, prof), "", f"*Criterion ([{nb}]({nb}.ipynb)):* {v['criterion']}.", ""]
        lines += ["| notebook | scale | measurement | value |", "| --- | --- | --- | --- |"]
        for nb, prof, r in rows:
            lines.append(f"| [{nb}]({nb}.ipynb) | {prof} | {r['description']} (`{r['key']}`) | {r['value']:.3g} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_claims_page(results_dir, path) -> Path:
    return atomic_write_text(Path(path), claims_markdown(load_results(results_dir)))
