"""The paper's claims next to what the notebooks measured: recording results, the Claims page.

A notebook records each number it wants on the Claims page:

    from rcdm_lib import claims
    claims.record(results_dir, "01_conditional_samples", "conditional_fidelity",
                  "simclr_backbone/top1", 0.83, "re-encoded samples nearest to their own image",
                  profile="tiny")

Each notebook's numbers go to `<results_dir>/<notebook>.json`; `write_claims_page` turns all
of them into `claims.md` of the book. The page is generated, never typed by hand, so a
number on it is always the one the executed notebook produced, with its profile (scale).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

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


def record(results_dir, notebook: str, claim: str, key: str, value: float, description: str,
           profile: str) -> dict:
    """Add one measured number to `<results_dir>/<notebook>.json` and return its entry."""
    if claim not in CLAIMS:
        raise ValueError(f"unknown claim {claim!r}; expected one of {sorted(CLAIMS)} "
                         "(add the paper's claim to rcdm_lib.claims.CLAIMS)")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{notebook}: result {key!r} is {value}; expected a finite number")
    path = results_path(results_dir, notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.is_file() else {"notebook": notebook, "results": []}
    if data.get("profile", profile) != profile:
        raise ValueError(f"{path} holds results of profile {data['profile']!r}, not {profile!r}; "
                         "clear it first (claims.clear)")
    data["profile"] = profile
    entry = {"claim": claim, "key": key, "value": value, "description": description}
    data["results"] = [r for r in data["results"] if not (r["claim"] == claim and r["key"] == key)] + [entry]
    path.write_text(json.dumps(data, indent=2) + "\n")
    return entry


def load_results(results_dir) -> list[dict]:
    """Every notebook's results file in `results_dir`, sorted by notebook name."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]


def claims_markdown(results: list[dict]) -> str:
    """The Claims page: for each claim, the paper's statement and a table of what was measured."""
    lines = [
        "# Claims and what we measured",
        "",
        "Each claim of the paper is listed with the numbers the notebooks recorded when they "
        "were executed for this book. This page is generated from the notebooks' saved results "
        "(`rcdm_lib/claims.py`); the *scale* column says at which profile a number was measured.",
        "",
    ]
    profiles = sorted({r.get("profile", "?") for r in results})
    for p in profiles:
        lines.append(f"- {SCALE_NOTE.get(p, p)}")
    lines.append("")
    by_claim: dict[str, list[tuple[str, str, dict]]] = {}
    for res in results:
        for r in res.get("results", []):
            by_claim.setdefault(r["claim"], []).append((res["notebook"], res.get("profile", "?"), r))
    if not by_claim:
        lines.append("No notebook has recorded results yet: run `make book`.")
    for cid, text in CLAIMS.items():
        rows = by_claim.get(cid)
        if not rows:
            continue
        lines += [f"## {cid.replace('_', ' ').capitalize()}", "", f"**Paper:** {text}", "",
                  "| notebook | scale | measurement | value |", "| --- | --- | --- | --- |"]
        for nb, prof, r in rows:
            lines.append(f"| [{nb}]({nb}.ipynb) | {prof} | {r['description']} (`{r['key']}`) | {r['value']:.3g} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_claims_page(results_dir, path) -> Path:
    path = Path(path)
    path.write_text(claims_markdown(load_results(results_dir)))
    return path
