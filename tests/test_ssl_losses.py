"""Acceptance 2 of issue 3 (losses): each objective against values computed by hand."""
import math

import torch
import torch.nn as nn

from rcdm_lib.encoders.losses import DINOLoss, barlow_twins_loss, ema_update, nt_xent, supervised_ce, vicreg_loss


def test_supervised_ce():
    got = supervised_ce(torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1]))
    assert math.isclose(float(got), -math.log(0.75), rel_tol=1e-6)


def test_nt_xent_orthogonal_pairs():
    # views a, b and their identical positives a', b'; with t = 1 each row sees
    # exp(1) for its positive and exp(0) twice for the negatives: loss = log(e + 2) - 1.
    z = torch.eye(2)
    got = nt_xent(z, z.clone(), temperature=1.0)
    assert math.isclose(float(got), math.log(math.e + 2) - 1, rel_tol=1e-6)
    # temperature divides the similarities: positives exp(1/t), negatives exp(0)
    got = nt_xent(3 * z, z, temperature=0.5)
    assert math.isclose(float(got), math.log(math.exp(2) + 2) - 2, rel_tol=1e-6)


def test_barlow_twins_hand_values():
    # standardised columns are (-1, 1) and (1, -1): C = [[1, -1], [-1, 1]];
    # the diagonal term is 0 and the off-diagonal term is 2, so loss = 2 * lambda.
    z = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert math.isclose(float(barlow_twins_loss(z, z.clone(), lambd=0.25, eps=0.0)), 0.5, rel_tol=1e-6)
    # uncorrelated identical views: C = I and the loss is 0
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert abs(float(barlow_twins_loss(z, z.clone(), eps=0.0))) < 1e-7


def test_vicreg_hand_values():
    # identical views with std sqrt(2) > 1: only covariance, C = [[2, -2], [-2, 2]], (4 + 4) / 2 per view.
    z = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert math.isclose(float(vicreg_loss(z, z.clone())), 8.0, rel_tol=1e-6)
    # 1-d: invariance mean((1-0)^2, 0) = 0.5; stds sqrt(0.5 + 1e-4) and sqrt(1e-4)
    a, b = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [0.0]])
    want = 25 * 0.5 + 25 * ((1 - math.sqrt(0.5001)) / 2 + (1 - 0.01) / 2)
    assert math.isclose(float(vicreg_loss(a, b)), want, rel_tol=1e-6)


def test_dino_loss_centering_sharpening_and_center_update():
    loss = DINOLoss(out_dim=2, teacher_temp=0.04, student_temp=0.1, center_momentum=0.9)
    ln3 = math.log(3.0)
    t = [torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.04 * ln3]])]  # teacher probs (.5,.5), (.25,.75)
    s = [torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.1 * ln3]])]   # student probs (.5,.5), (.25,.75)
    got = float(loss(s, t))
    pair_t1_s2 = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    pair_t2_s1 = math.log(2.0)
    assert math.isclose(got, (pair_t1_s2 + pair_t2_s1) / 2, rel_tol=1e-5)
    torch.testing.assert_close(loss.center, torch.tensor([[0.0, 0.1 * 0.02 * ln3]]))
    # with that centre, a second call subtracts it from the teacher before sharpening
    t2 = [torch.tensor([[0.0, 0.1 * 0.02 * ln3]])] * 2
    got2 = float(loss([torch.zeros(1, 2)] * 2, t2))
    assert math.isclose(got2, math.log(2.0), rel_tol=1e-5)


def test_ema_update():
    t, s = nn.Linear(2, 2), nn.Linear(2, 2)
    nn.init.zeros_(t.weight), nn.init.ones_(s.weight)
    ema_update(t, s, 0.9)
    torch.testing.assert_close(t.weight, torch.full((2, 2), 0.1))
