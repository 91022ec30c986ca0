"""Recording numbers and verdicts, judging a claim from measured pairs, and the Claims page."""
from __future__ import annotations

import json

import pytest

from rcdm_lib import claims
from rcdm_lib.claims import Verdict, verdict_from_comparison, verdict_from_comparisons


# --------------------------------------------------------------------------- judging

def test_single_comparison_agrees_in_the_expected_direction_and_states_the_gap():
    v = verdict_from_comparison(0.05, 0.0125, expect="higher", what="SSL MRR", against="supervised MRR",
                                paper="higher (Table 2b)")
    assert v.agrees
    assert v.statement == ("SSL MRR is 0.05 vs 0.0125 for supervised MRR, higher by 0.0375 (4x); "
                           "paper: higher (Table 2b)")
    assert v.criterion == "agrees when SSL MRR is higher than supervised MRR"
    w = verdict_from_comparison(0.05, 0.0125, expect="lower", what="FID", against="unconditional FID", paper="lower")
    assert not w.agrees and "higher by 0.0375" in w.statement


def test_a_tie_never_agrees():
    for expect in ("higher", "lower"):
        v = verdict_from_comparison(0.3, 0.3, expect=expect, what="a", against="b", paper="p")
        assert not v.agrees and "a is 0.3 vs 0.3 for b, equal (1x);" in v.statement


def test_float32_rounding_is_a_tie():
    import torch

    third = float(torch.tensor(1 / 3))                                 # 0.3333333432674408
    v = verdict_from_comparison(third, 1 / 3, expect="higher", what="top-1", against="chance", paper="p")
    assert not v.agrees and "equal" in v.statement
    many = verdict_from_comparisons({"a": (third, 1 / 3), "b": (0.5, 1 / 3)}, expect="higher", what="top-1",
                                    against="chance", paper="p")
    assert not many.agrees and "a 0.333 vs 0.333 (+0, 1x)" in many.statement
    assert verdict_from_comparison(1e-3, 0.0, expect="higher", what="a", against="b", paper="p").agrees


def test_one_named_pair_keeps_its_name():
    v = verdict_from_comparisons({"simclr_backbone": (0.05, 0.06)}, expect="higher", what="SSL MRR",
                                 against="the supervised one", paper="higher")
    assert not v.agrees
    assert v.statement.startswith(
        "simclr_backbone: SSL MRR is 0.05 vs 0.06 for the supervised one, lower by 0.01 (0.833x)")


def test_margins_absolute_and_relative():
    rel = dict(expect="higher", what="projector/backbone variance", against="1", paper="clearly more",
               margin=0.1, relative=True)
    small = verdict_from_comparison(1.01, 1.0, **rel)
    assert not small.agrees and "higher by 0.01 (1.01x)" in small.statement
    assert "higher by more than 10%" in small.criterion
    assert verdict_from_comparison(1.2, 1.0, **rel).agrees
    assert verdict_from_comparison(-0.5, -1.0, **rel).agrees          # |reference| sets the margin
    absolute = dict(expect="lower", what="d", against="e", paper="p", margin=0.05)
    assert not verdict_from_comparison(0.97, 1.0, **absolute).agrees
    assert verdict_from_comparison(0.9, 1.0, **absolute).agrees
    assert "lower by more than 0.05" in verdict_from_comparison(0.9, 1.0, **absolute).criterion


def test_many_comparisons_majority_or_all():
    pairs = {"simclr": (0.5, 0.2), "barlow": (0.4, 0.2), "dino": (0.1, 0.2)}
    kw = dict(expect="higher", what="top-1", against="chance", paper="above chance")
    most = verdict_from_comparisons(pairs, **kw)
    assert most.agrees
    assert most.statement.startswith("top-1: higher than chance in 2 of 3 (simclr 0.5 vs 0.2 (+0.3, 2.5x)")
    assert "dino 0.1 vs 0.2 (-0.1, 0.5x)" in most.statement
    assert "; mean gap +0.133, from -0.1 to +0.3; paper: above chance" in most.statement
    assert "more than half of the 3 comparisons" in most.criterion
    every = verdict_from_comparisons(pairs, need="all", **kw)
    assert not every.agrees and "all 3 comparisons" in every.criterion
    half = verdict_from_comparisons({"a": (1, 0), "b": (0, 1)}, **kw)
    assert not half.agrees                                              # half is not a majority


@pytest.mark.parametrize("kwargs, message", [
    (dict(expect="bigger"), r"expect must be one of \('higher', 'lower'\), not 'bigger'"),
    (dict(need="most"), r"need must be one of \('all', 'majority'\), not 'most'"),
    (dict(margin=-0.1), "margin must be a finite number >= 0"),
    (dict(pairs={}), "expected at least one"),
    (dict(pairs={"a": (float("nan"), 1.0)}), r"'a' gives \(nan, 1.0\); expected finite numbers"),
    (dict(pairs={"a": (1.0,)}), "expected a \\(measured, reference\\) pair"),
])
def test_bad_comparisons_say_what_was_expected(kwargs, message):
    args = dict(pairs={"a": (1.0, 0.0)}, expect="higher", what="x", against="y", paper="p") | kwargs
    with pytest.raises(ValueError, match=message):
        verdict_from_comparisons(**args)


# --------------------------------------------------------------------------- recording

V = Verdict(False, "projector samples vary 1.01x as much as backbone samples; paper: clearly more",
            "agrees when the ratio is higher than 1 by more than 10%")


def test_record_verdict_stores_it_next_to_the_numbers(tmp_path):
    claims.record(tmp_path, "08_x", "projector_variance", "simclr/ratio", 1.01, "ratio", profile="tiny")
    claims.record_verdict(tmp_path, "08_x", "projector_variance", V, profile="tiny")
    again = Verdict(True, "new statement", "c")
    claims.record_verdict(tmp_path, "08_x", "projector_variance", again, profile="tiny")   # replaces
    claims.record_verdict(tmp_path, "08_x", "projector_variance", V, profile="tiny", part="colour")
    data = json.loads((tmp_path / "08_x.json").read_text())
    assert data["profile"] == "tiny" and data["results"][0]["value"] == 1.01
    assert data["verdicts"] == [
        {"claim": "projector_variance", "part": None, "agrees": True, "statement": "new statement", "criterion": "c"},
        {"claim": "projector_variance", "part": "colour", "agrees": False, "statement": V.statement,
         "criterion": V.criterion}]
    claims.record(tmp_path, "08_x", "projector_variance", "dino/ratio", 1.2, "ratio", profile="tiny")
    assert len(json.loads((tmp_path / "08_x.json").read_text())["verdicts"]) == 2    # kept by record


def test_record_verdict_rejects_unknown_claim_profile_mismatch_and_missing_numbers(tmp_path):
    claims.record(tmp_path, "n", "projector_variance", "k", 1.0, "d", profile="smoke")
    with pytest.raises(ValueError, match="unknown claim 'nope'; expected one of"):
        claims.record_verdict(tmp_path, "n", "nope", V, profile="smoke")
    with pytest.raises(ValueError, match="holds results of profile 'smoke', not 'tiny'"):
        claims.record_verdict(tmp_path, "n", "projector_variance", V, profile="tiny")
    with pytest.raises(ValueError, match="holds results of profile 'smoke', not 'tiny'"):
        claims.record(tmp_path, "n", "projector_variance", "k2", 1.0, "d", profile="tiny")
    with pytest.raises(ValueError, match="needs the numbers it was computed from.*'inversion'"):
        claims.record_verdict(tmp_path, "n", "inversion", V, profile="smoke")
    with pytest.raises(ValueError, match="expected a claims.Verdict for 'projector_variance', not dict"):
        claims.record_verdict(tmp_path, "n", "projector_variance", {"agrees": True}, profile="smoke")
    assert "verdicts" not in json.loads((tmp_path / "n.json").read_text())


# --------------------------------------------------------------------------- the page

def _section(page: str, claim: str) -> str:
    start = page.index(f"## {claims._title(claim)}\n")
    end = page.find("\n## ", start + 1)
    return page[start:] if end < 0 else page[start:end]


def test_page_shows_each_verdict_under_its_claim_and_in_the_summary(tmp_path):
    claims.record(tmp_path, "08_x", "projector_variance", "simclr/ratio", 1.01, "ratio", profile="tiny")
    claims.record(tmp_path, "08_x", "backbone_keeps_colour", "simclr/colour", 0.1, "kept", profile="tiny")
    claims.record_verdict(tmp_path, "08_x", "projector_variance", V, profile="tiny")
    claims.record(tmp_path, "12_y", "inversion", "adam", 0.004, "rel", profile="smoke")
    ok = Verdict(True, "Adam reaches 0.004 vs the target 0.01", "agrees when below")
    claims.record_verdict(tmp_path, "12_y", "inversion", ok, profile="smoke", part="distance")
    page = claims.claims_markdown(claims.load_results(tmp_path))

    section = _section(page, "projector_variance")
    assert ("**At tiny scale: disagrees** — projector samples vary 1.01x as much as backbone samples; "
            "paper: clearly more") in section
    assert f"*Criterion ([08_x](08_x.ipynb)):* {V.criterion}." in section
    assert "| [08_x](08_x.ipynb) | tiny | ratio (`simclr/ratio`) | 1.01 |" in section
    inv = _section(page, "inversion")
    assert claims.verdict_line({"agrees": True, "statement": ok.statement, "part": "distance"}, "smoke") in inv
    assert "**At smoke scale (distance): agrees** — Adam reaches 0.004" in inv
    colour = _section(page, "backbone_keeps_colour")
    assert "**At tiny scale: no verdict recorded** by [08_x](08_x.ipynb)." in colour

    summary = page[page.index("## Verdicts at a glance"):page.index("## Projector variance")]
    assert "| Projector variance | disagrees | tiny | [08_x](08_x.ipynb) |" in summary
    assert "| Backbone keeps colour | no verdict recorded | tiny | [08_x](08_x.ipynb) |" in summary
    assert "| Inversion | agrees (distance) | smoke | [12_y](12_y.ipynb) |" in summary
    assert summary.count("\n| ") == 2 + 3                               # header, rule, a row per verdict


def test_page_without_results_says_how_to_get_them(tmp_path):
    page = claims.claims_markdown(claims.load_results(tmp_path / "none"))
    assert "No notebook has recorded results yet" in page and "Verdicts at a glance" not in page


def test_a_verdict_prints_as_a_sentence():
    assert str(V) == ("disagrees with the paper: projector samples vary 1.01x as much as backbone samples; "
                      "paper: clearly more (agrees when the ratio is higher than 1 by more than 10%)")
