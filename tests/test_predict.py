"""One prediction path (issue 18): `predict_genes` gives the numbers of ``kipoi predict`` on the
embedded demo member, bit for bit, whether it runs the loaded member (``seq2exp predict --member``)
or its plain `Seq2Exp` (``seq2exp evaluate``, the benchmarks), and reads one split of a
`WindowDataset` in its order."""
from __future__ import annotations

import kipoi
import numpy as np
import pytest

import kipoi_seq2exp
from kipoi_seq2exp.data.dataset import WindowDataset
from kipoi_seq2exp.evaluate.model_run import simulated_data_config
from kipoi_seq2exp.model import Seq2Exp, tiny
from kipoi_seq2exp.predict import predict_genes
from kipoi_seq2exp.simulate.generate import embedded_dir
from kipoi_seq2exp.zoo.source import GROUP, example_dataloader_args, register_source

from test_zoo_helpers import one_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
DEMO = f"{GROUP}/Demo-soft"  # trained on the embedded simulated genome: H3K27ac, DNase, Hi-C
BATCH = 2  # the 3 example genes make a full batch and a short one


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Kipoi's expression and masks of the demo member's example genes, the member, and its inputs."""
    args = {k: v for k, v in example_dataloader_args(DEMO).items() if k != "expression_file"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))  # Kipoi's configuration goes there
        register_source()
        model = kipoi.get_model(DEMO, source="seq2exp")
        expression = model.pipeline.predict(args, batch_size=BATCH)
        masks = np.concatenate([model.predict_activation_on_batch(batch["inputs"], layer="mask")["mask"]
                                for batch in model.default_dataloader(**args).batch_iter(batch_size=BATCH)])
    member = kipoi_seq2exp.load_member(DEMO)
    tracks = {"H3K27ac": args["h3k27ac_bigwig"], "DNase": args["dnase_bigwig"], "Hi-C": args["hic_file"]}
    return expression, masks, member, member.inputs(args["fasta_file"], args["gene_table"], tracks, args["mrna_features"])


@pytest.mark.parametrize("through", ["member", "plain model"])
def test_predict_genes_gives_kipoi_predicts_numbers_on_the_demo_member(demo, through):
    expression, masks, member, inputs = demo
    model = member if through == "member" else member.model
    predictions = list(predict_genes(model, inputs, batch_size=BATCH, progress=False))

    assert [p.gene_id for p in predictions] == [g.gene_id for g in inputs.windows.gene_list]
    assert [p.index for p in predictions] == [0, 1, 2]
    np.testing.assert_array_equal(np.array([p.expression for p in predictions], np.float32), expression)
    np.testing.assert_array_equal(np.stack([p.mask for p in predictions]), masks)
    assert masks.shape == (3, 20_000) and masks.min() < 0.5 < masks.max()  # real masks, not all kept
    assert np.ptp(expression) > 0.01  # the genes get different answers: the comparison means something


def test_without_masks_the_expression_is_the_same(demo):
    expression, _, member, inputs = demo
    predictions = list(predict_genes(member, inputs, batch_size=BATCH, masks=False, progress=False))
    assert [p.mask for p in predictions] == [None] * 3
    np.testing.assert_array_equal(np.array([p.expression for p in predictions], np.float32), expression)


def test_a_split_is_predicted_in_its_order_as_single_windows():
    """`WindowDataset` of the valid genes (what ``seq2exp evaluate`` reads): batches of 16 give each
    gene what a call on its window alone gives."""
    model = Seq2Exp(tiny("soft", window=3_000, centre=500)).eval()
    dataset = WindowDataset(simulated_data_config(embedded_dir(), model), subset="valid")
    predictions = list(predict_genes(model, dataset, batch_size=16, progress=False))

    assert [p.index for p in predictions] == list(dataset.indices) and len(predictions) == 60
    assert [p.gene_id for p in predictions] == [dataset[i]["gene_id"] for i in range(len(dataset))]
    item, prediction = dataset[7], predictions[7]
    direct = model.predict(item["seq"][None], item["signals"][None], item["gene_features"][None],
                           signal_depth=item["signal_depth"][None])
    assert prediction.expression == pytest.approx(direct.expression.item(), abs=1e-6)
    np.testing.assert_allclose(prediction.mask, direct.mask[0].numpy(), atol=1e-6)
    assert prediction.mask.shape == (3_000,) and np.all(prediction.mask[1_250:1_750] == 1)
