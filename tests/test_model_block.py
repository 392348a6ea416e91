"""The block is a Conformer layer: equal to torchaudio's ConformerLayer, and exportable to ONNX."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torchaudio.models.conformer import ConformerLayer

from asr.config import from_dict
from asr.model import build_model
from asr.model.block import ConformerBlock


def _copy_from_torchaudio(block: ConformerBlock, layer: ConformerLayer) -> None:
    """Load torchaudio's layer weights into our block (pointwise Conv1d weights become Linear weights)."""
    n = block.norms
    pairs = [
        (n.ffn1, layer.ffn1.sequential[0]),
        (block.ffn1_up, layer.ffn1.sequential[1]),
        (block.ffn1_down, layer.ffn1.sequential[4]),
        (n.attn, layer.self_attn_layer_norm),
        (n.conv, layer.conv_module.layer_norm),
        (block.conv_dw, layer.conv_module.sequential[2]),
        (n.conv_bn, layer.conv_module.sequential[3]),
        (n.ffn2, layer.ffn2.sequential[0]),
        (block.ffn2_up, layer.ffn2.sequential[1]),
        (block.ffn2_down, layer.ffn2.sequential[4]),
        (n.final, layer.final_layer_norm),
        (block.attn_out, layer.self_attn.out_proj),
    ]
    with torch.no_grad():
        for ours, theirs in pairs:
            ours.load_state_dict(theirs.state_dict())
        block.attn_in.weight.copy_(layer.self_attn.in_proj_weight)
        block.attn_in.bias.copy_(layer.self_attn.in_proj_bias)
        for ours, theirs in (
            (block.conv_in, layer.conv_module.sequential[0]),
            (block.conv_out, layer.conv_module.sequential[5]),
        ):
            ours.weight.copy_(theirs.weight.squeeze(-1))
            ours.bias.copy_(theirs.bias)


def test_block_equals_torchaudio_conformer_layer():
    torch.manual_seed(0)
    layer = ConformerLayer(input_dim=32, ffn_dim=64, num_attention_heads=4, depthwise_conv_kernel_size=7)
    with torch.no_grad():  # non-trivial BatchNorm statistics and norm parameters
        bn = layer.conv_module.sequential[3]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        for module in layer.modules():
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.BatchNorm1d)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    block = ConformerBlock(32, 4, 64, 7, dropout=0.0)
    _copy_from_torchaudio(block, layer)
    layer.eval(), block.eval()
    x = torch.randn(3, 20, 32)  # [B, T, D]
    expected = layer(x.transpose(0, 1), None).transpose(0, 1)  # torchaudio is [T, B, D]
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "model", [{"sharing": "all", "per_depth_norm": True}, {"sharing": "cycle", "unique_blocks": 2, "lora_rank": 2}]
)
def test_keyword_model_exports_to_onnx_with_static_shape(tmp_path, model):
    config = from_dict({"model": {"d_model": 32, "ffn_dim": 64, "depth": 4, **model}})
    net = build_model(config, 13).eval()
    x = torch.randn(1, 97, 40)
    path = tmp_path / "model.onnx"
    torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=17, input_names=["features"])
    session = ort.InferenceSession(str(path))
    (got,) = session.run(None, {"features": x.numpy()})
    assert got.shape == (1, 13)
    np.testing.assert_allclose(got, net(x).detach().numpy(), rtol=1e-4, atol=1e-4)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not ops & {"Gelu", "Erf"}, ops


def test_causal_model_hears_only_its_last_window():
    """A causal keyword model's frame t depends only on frames <= t, and attends to no frame a window or more
    before it: what a stream with a key cache of one window computes. The head reads its last `head_frames`."""
    config = from_dict({"model": {"d_model": 32, "ffn_dim": 64, "depth": 3, "causal": True, "head_frames": 2}})
    net = build_model(config, 13).eval()
    assert net.context == 23  # encoder frames of the 97-frame (1 s) window
    encode = lambda f: net.encoder(net.subsampling(f))  # noqa: E731
    x = torch.randn(1, 97, 40)
    later = x.clone()
    later[:, 60:] = torch.randn(1, 37, 40)
    first, second = encode(x), encode(later)
    unchanged = (60 - 3) // 4  # encoder frames k read feature frames 4k..4k+6 (two 3-frame convolutions, stride 2)
    torch.testing.assert_close(first[:, :unchanged], second[:, :unchanged])
    assert not torch.allclose(first[:, -1], second[:, -1])
    torch.testing.assert_close(net(x), net.classifier(first[:, -2:].mean(dim=1)))
    # One block's attention: a query does not see keys `context` or more frames back.
    block = net.encoder.blocks[0]
    h = torch.randn(1, 40, 32)
    moved = h.clone()
    moved[:, :5] = torch.randn(1, 5, 32)
    attend = lambda y: block._attention(y, None, None)  # noqa: E731
    torch.testing.assert_close(attend(h)[:, 5 + 22 :], attend(moved)[:, 5 + 22 :])
    assert not torch.allclose(attend(h)[:, 5 + 21], attend(moved)[:, 5 + 21])
    whole = build_model(from_dict({"model": {"d_model": 32, "ffn_dim": 64, "depth": 3}}), 13).eval()
    whole.load_state_dict(net.state_dict())
    assert not torch.allclose(whole.encoder(whole.subsampling(x))[:, 0], first[:, 0])
