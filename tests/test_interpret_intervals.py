"""Intervals from Monte-Carlo samples of the mask Beta (issue 19): on a shipped member the interval
holds the prediction at the Beta's mean; a seed fixes it; a concentrated Beta shrinks it to ~0."""
import numpy as np
import pytest
import torch

from kipoi_seq2exp.interpret.intervals import (Interval, expression_interval, mask_samples, sampled_expressions,
                                               uniforms)
from kipoi_seq2exp.predict import predict_genes, stack_inputs
from kipoi_seq2exp.model import Seq2Exp, preset
from test_zoo_helpers import REPO, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def k562():
    """The real-chr22 K562 member on its bundled example: its first gene's reference pass."""
    import kipoi

    from kipoi_seq2exp.zoo.source import example_dataloader_args

    model = kipoi.get_model(str(REPO / "model_zoo" / "Seq2Exp" / "K562"), source="dir")
    dataset = model.default_dataloader(**example_dataloader_args("Seq2Exp/K562"))
    prediction = next(predict_genes(model, dataset, progress=False, indices=[0]))
    return model, prediction, dataset.windows.gene_list[0].gene_id


def test_interval_holds_the_members_prediction_and_a_seed_fixes_it(k562):
    model, prediction, gene_id = k562
    interval = expression_interval(model, prediction.inputs, gene_id, samples=32, seed=7, batch_size=16)
    assert interval.low < prediction.expression < interval.high
    assert interval.high - interval.low > 1e-4  # the samples do move the prediction
    again = expression_interval(model, prediction.inputs, gene_id, samples=32, seed=7, batch_size=16)
    assert again == interval
    assert expression_interval(model, prediction.inputs, gene_id, samples=32, seed=8, batch_size=16) != interval


def test_samples_are_batched_and_only_the_mask_is_sampled(k562):
    model, prediction, gene_id = k562
    u = uniforms(3, gene_id, 6, model.model.cfg.n_tokens)
    batched = sampled_expressions(model, prediction.inputs, u, batch_size=6)
    np.testing.assert_allclose(sampled_expressions(model, prediction.inputs, u, batch_size=1), batched, atol=1e-6)
    # one sample by hand: the model's forward on that mask sample, its training flag on, nothing else in train mode
    alpha = model.predict(stack_inputs([prediction.inputs])).alpha[0, ::50]
    with mask_samples(model.model, torch.full((1, len(alpha)), 0.25)):
        quarter = float(model.predict(stack_inputs([prediction.inputs])).expression[0])
    assert not any(module.training for module in model.model.modules())
    with torch.no_grad():
        net = model.model
        net.train()
        for module in net.children():
            module.eval()
        tensors = {k: torch.as_tensor(v)[None] for k, v in prediction.inputs.items()}
        by_hand = net(tensors["seq"], tensors["signals"], tensors["gene_features"],
                      mask_sample=torch.full((1, len(alpha)), 0.25), signal_depth=tensors["signal_depth"])
        net.eval()
    assert quarter == pytest.approx(float(by_hand.expression[0]), abs=1e-6)


def test_a_concentrated_beta_gives_a_narrow_interval():
    class Member:
        device = torch.device("cpu")

        def __init__(self, net):
            self.model = net

        def predict(self, x):
            t = {name: torch.as_tensor(value) for name, value in x.items()}
            return self.model.predict(t["seq"], t["signals"], t["gene_features"])

    torch.manual_seed(0)
    loose = Seq2Exp(preset("cpu_soft", d_model=16, window=1_000, centre=200)).eval()
    tight = Seq2Exp(preset("cpu_soft", d_model=16, window=1_000, centre=200, signal_scale=1e4,
                           generator_concentration=1e5)).eval()
    tight.load_state_dict(loose.state_dict())
    rng = np.random.default_rng(0)
    inputs = dict(seq=np.eye(4, dtype=np.float32)[rng.integers(0, 4, 1_000)],
                  signals=rng.random((1_000, loose.cfg.n_signals), dtype=np.float32),
                  gene_features=rng.standard_normal(9).astype(np.float32))
    wide = expression_interval(Member(loose), inputs, "G1", samples=64)
    narrow = expression_interval(Member(tight), inputs, "G1", samples=64)
    assert wide.high - wide.low > 1e-4  # an untrained model: the mask moves it little, but measurably
    assert narrow.high - narrow.low < 0.01 * (wide.high - wide.low)


def test_interval_is_the_equal_tailed_90_percent():
    interval = Interval.of(np.arange(101.0))
    assert (interval.low, interval.high, interval.mean) == pytest.approx((5.0, 95.0, 50.0), abs=1e-12)
