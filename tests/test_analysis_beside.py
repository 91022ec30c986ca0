"""compare_beside: the models beside the run's own compared with a paired error bar, in words either way."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from rcdm_lib.analysis.beside import compare_beside, comparisons, paired_difference
from rcdm_lib.representations import describe, describe_beside, describe_custom


def _run():
    reps = {n: describe(n) for n in ("supervised_backbone", "dino_backbone", "dino_head")}
    reps.update(dino_vit=describe_beside("dino_vit", "dino_vit"), dino_resnet=describe_beside("dino_resnet", "dino"),
                mine=describe_custom("mine"))
    return SimpleNamespace(profile="tiny", representations=reps)


def test_the_comparisons_are_the_models_beside_with_each_other_and_with_their_encoders_own_row():
    assert comparisons(_run()) == [("dino_vit", "dino_resnet", "another encoder, the same RCDM recipe"),
                                   ("dino_resnet", "dino_backbone",
                                    "the same encoder: its own RCDM against the run's model")]


def test_the_paired_difference_is_the_mean_and_standard_error_of_per_image_differences():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])   # per-image means .5, 1, 0, 1
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])   # .0, .5, 0, .5
    d = torch.tensor([0.5, 0.5, 0.0, 0.5])
    mean, se, n = paired_difference(a, b)
    assert n == 4 and mean == pytest.approx(0.375) and se == pytest.approx(float(d.std()) / 2)
    with pytest.raises(ValueError, match="the same images: 4 against 3"):
        paired_difference(a, b[:3])


def test_each_way_a_difference_falls_is_said():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(200, 4, generator=g)
    said = compare_beside(_run(), {"dino_vit": base + 0.2, "dino_resnet": base, "dino_backbone": base + 0.001 *
                                   torch.randn(200, 4, generator=g)}, "MRR")
    assert said[0].startswith("[tiny scale] MRR: dino_vit (DINO ViT backbone (own RCDM)) ")
    assert "another encoder, the same RCDM recipe: higher (+0.200 +- 0.000" in said[0]
    assert ": about the same (" in said[1] or ": lower (" in said[1] or ": higher (" in said[1]
    said = compare_beside(_run(), {"dino_vit": base - 0.2, "dino_resnet": base, "dino_backbone": base}, "MRR")
    assert "recipe: lower (-0.200" in said[0]
    noisy = torch.rand(10, 1, generator=g)
    said = compare_beside(_run(), {"dino_vit": noisy, "dino_resnet": noisy.flip(0)}, "x")
    assert len(said) == 1 and ": about the same (" in said[0]   # dino_backbone not given: that comparison skipped


def test_several_measures_make_one_line_that_sorts_them_by_direction():
    one, zero = torch.ones(8, 2), torch.zeros(8, 2)
    said = compare_beside(_run(), {"dino_vit": {"shape": one, "colour": zero, "size": one},
                                   "dino_resnet": {"shape": zero, "colour": one, "size": one}}, "factors kept")
    assert said == ["[tiny scale] factors kept, dino_vit (DINO ViT backbone (own RCDM)) against dino_resnet (DINO "
                    "backbone (own RCDM)), another encoder, the same RCDM recipe, over 8 images: shape 1.00 vs 0.00 "
                    "(+1.00 +- 0.00), colour 0.00 vs 1.00 (-1.00 +- 0.00), size 1.00 vs 1.00 (+0.00 +- 0.00). "
                    "dino_vit is higher: shape; lower: colour; about the same: size."]


def test_a_run_without_models_beside_says_nothing():
    run = SimpleNamespace(profile="tiny", representations={n: describe(n) for n in ("dino_backbone", "dino_head")})
    assert compare_beside(run, {"dino_backbone": torch.ones(3), "dino_head": torch.zeros(3)}, "MRR") == []
