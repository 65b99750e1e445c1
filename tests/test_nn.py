"""Shared network parts: GCN normalisation, heads, backbones and their weight loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashkit.nn import MLP, AlexNet, CNNF, GCNLayer, TextMLP, normalize_adjacency


def _slow_normalize(a: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    out = np.zeros_like(a)
    deg = a.sum(1)
    for i in range(n):
        for j in range(n):
            if deg[i] > 0 and deg[j] > 0:
                out[i, j] = a[i, j] / np.sqrt(deg[i] * deg[j])
    return out


def test_gcn_normalization_against_loop_oracle():
    rng = np.random.default_rng(0)
    a = rng.random((6, 6))
    a = a + a.T
    a[5, :] = 0
    a[:, 5] = 0  # an isolated node keeps a zero row/column
    got = normalize_adjacency(torch.tensor(a)).numpy()
    np.testing.assert_allclose(got, _slow_normalize(a), rtol=1e-12)
    with_loops = normalize_adjacency(torch.tensor(a), add_self_loops=True).numpy()
    np.testing.assert_allclose(with_loops, _slow_normalize(a + np.eye(6)), rtol=1e-12)
    # symmetric normalisation keeps the spectrum in [-1, 1]
    assert np.abs(np.linalg.eigvalsh(got)).max() <= 1 + 1e-9


def test_gcn_layer_forward_and_errors():
    rng = np.random.default_rng(1)
    a = torch.tensor(rng.random((4, 4)), dtype=torch.float32)
    x = torch.tensor(rng.normal(size=(4, 3)), dtype=torch.float32)
    layer = GCNLayer(3, 2)
    expected = normalize_adjacency(a) @ x @ layer.weight + layer.bias
    torch.testing.assert_close(layer(a, x), expected)
    with pytest.raises(ValueError, match="adj: expected a square"):
        normalize_adjacency(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="non-negative"):
        normalize_adjacency(-torch.ones(2, 2))


def test_heads_shapes_and_errors():
    assert MLP([5, 7, 3])(torch.zeros(2, 5)).shape == (2, 3)
    t = TextMLP(10, 8, hidden=16)
    assert [m.out_features for m in t if isinstance(m, torch.nn.Linear)] == [16, 8]
    with pytest.raises(ValueError, match="sizes"):
        MLP([5])
    with pytest.raises(ValueError, match="activation"):
        MLP([5, 3], activation="swish")


def test_mlp_batch_norm_layers_and_slope():
    # Linear -> BatchNorm1d -> activation wherever a layer has an activation (GCH's bodies),
    # the leaky slope as given; without batch_norm nothing is inserted.
    m = MLP([6, 5, 4], "leaky_relu", final_activation="leaky_relu", batch_norm=True, leaky_slope=0.2)
    kinds = [type(layer) for layer in m]
    assert kinds == [torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.LeakyReLU] * 2
    assert m[1].num_features == 5 and m[4].num_features == 4 and m[2].negative_slope == 0.2
    plain = MLP([6, 5, 4], "leaky_relu")
    assert [type(layer) for layer in plain] == [torch.nn.Linear, torch.nn.LeakyReLU, torch.nn.Linear]
    assert plain[1].negative_slope == 0.01
    x = torch.randn(8, 6)
    m.eval()
    want = torch.nn.functional.leaky_relu(m[4](m[3](torch.nn.functional.leaky_relu(m[1](m[0](x)), 0.2))), 0.2)
    assert torch.allclose(m(x), want)


def test_backbones_warn_without_weights_and_run():
    with pytest.warns(UserWarning, match="random weights"):
        net = CNNF(12)
    assert net(torch.rand(1, 3, 224, 224) * 255).shape == (1, 12)
    with pytest.warns(UserWarning, match="random weights"):
        alex = AlexNet(12)
    alex.eval()
    assert alex(torch.rand(1, 3, 64, 64) * 255).shape == (1, 12)  # resized to 224


def _fake_vgg_f(path, rng):
    """A MatConvNet-layout model (H, W, in, out convolutions) with CNN-F's shapes."""
    import scipy.io

    shapes = [(11, 11, 3, 64), (5, 5, 64, 256), (3, 3, 256, 256), (3, 3, 256, 256), (3, 3, 256, 256),
              (6, 6, 256, 4096), (1, 1, 4096, 4096)]
    names = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    layers = np.empty((1, len(shapes) + 2), dtype=object)
    raw = {}
    for i, (name, shp) in enumerate(zip(names, shapes)):
        w = rng.normal(size=shp).astype(np.float32) * 0.01
        b = rng.normal(size=(shp[3], 1)).astype(np.float32)
        ws = np.empty((1, 2), dtype=object)
        ws[0, 0], ws[0, 1] = w, b
        layers[0, i] = {"name": name, "type": "conv", "weights": ws}
        raw[name] = (w, b)
    layers[0, len(shapes)] = {"name": "relu7", "type": "relu"}
    ws = np.empty((1, 2), dtype=object)
    ws[0, 0], ws[0, 1] = np.zeros((1, 1, 4096, 1000), np.float32), np.zeros((1000, 1), np.float32)
    layers[0, len(shapes) + 1] = {"name": "fc8", "type": "conv", "weights": ws}
    avg = np.full((224, 224, 3), [100.0, 110.0, 120.0], dtype=np.float32)
    scipy.io.savemat(path, {"layers": layers, "meta": {"normalization": {"averageImage": avg}}})
    return raw


def test_cnnf_loads_matconvnet_layout(tmp_path):
    rng = np.random.default_rng(2)
    raw = _fake_vgg_f(tmp_path / "vgg-f.mat", rng)
    net = CNNF(16, weights=tmp_path / "vgg-f.mat")
    w1, b1 = raw["conv1"]
    # torch weight[o, c, h, w] == MatConvNet W[h, w, c, o]
    assert np.allclose(net.features[0].weight[5, 2, 3, 7].item(), w1[3, 7, 2, 5])
    assert np.allclose(net.features[0].bias.detach().numpy(), b1.ravel())
    w6, _ = raw["fc6"]
    # fc6 flattened in torch's (channel, row, col) order
    c, h, w = 17, 4, 2
    assert np.isclose(net.fc[0].weight[9, c * 36 + h * 6 + w].item(), w6[h, w, c, 9])
    w7, _ = raw["fc7"]
    assert np.isclose(net.fc[2].weight[3, 11].item(), w7[0, 0, 11, 3])
    assert np.allclose(net.mean.view(-1).numpy(), [100.0, 110.0, 120.0])


def test_cnnf_weight_errors(tmp_path):
    import scipy.io

    with pytest.raises(FileNotFoundError, match="weights"):
        CNNF(8, weights=tmp_path / "missing.mat")
    scipy.io.savemat(tmp_path / "bad.mat", {"x": np.zeros(3)})
    with pytest.raises(ValueError, match="layers"):
        CNNF(8, weights=tmp_path / "bad.mat")


def test_alexnet_loads_torchvision_state_dict(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = AlexNet(10)
    sd = {k: v for k, v in src.state_dict().items() if k.startswith(("features.", "classifier."))}
    sd["classifier.6.weight"] = torch.zeros(1000, 4096)  # the ImageNet classifier is ignored
    torch.save(sd, tmp_path / "alexnet.pth")
    net = AlexNet(10, weights=tmp_path / "alexnet.pth")
    torch.testing.assert_close(net.features[0].weight, src.features[0].weight)
    torch.testing.assert_close(net.classifier[4].weight, src.classifier[4].weight)
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="torchvision AlexNet"):
        AlexNet(10, weights=tmp_path / "bad.pth")
