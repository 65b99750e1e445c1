"""Image backbones in plain PyTorch: CNN-F (VGG-F) as in DCMH and GCH, and AlexNet.

Weights come from a local file when the user has one -- MatConvNet's ``imagenet-vgg-f.mat``
for CNN-F, a torchvision-format AlexNet state dict (``.pth``) for AlexNet -- and are never
downloaded. Without a file the networks start from random weights and say so with a warning
(fine for tests; retrieval quality on real images needs the pretrained weights).

Both take float32 images ``(b, 3, H, W)`` with values in [0, 255] (RGB), resize them to
224 x 224 when needed, normalise them as their weights expect, and end in a linear hash
layer of ``nbits`` outputs (replacing the ImageNet classifier).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn

__all__ = ["CNNF", "AlexNet", "load_cnnf_matconvnet"]

# ImageNet RGB mean (0-255), used when no weights file supplies its own average image.
_IMAGENET_MEAN_255 = (123.68, 116.779, 103.939)


class _Backbone(nn.Module):
    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected images (b, 3, H, W), got shape {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != (224, 224):
            x = Fn.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        return x


class CNNF(_Backbone):
    """CNN-F (Chatfield et al., BMVC 2014; "VGG-F"), the image network of DCMH and GCH.

    conv1 64x11x11/4 + LRN + pool, conv2 256x5x5 + LRN + pool, conv3-5 256x3x3 (+ pool),
    fc6 4096, fc7 4096, then a linear hash layer ``fc8: 4096 -> nbits`` (DCMH Sec. 3.1).

    Parameters
    ----------
    nbits : int
    weights : path, optional
        MatConvNet ``imagenet-vgg-f.mat``. Layers conv1..fc7 and the average image are read
        from it (scipy.io.loadmat, or h5py for v7.3 files); fc8 stays randomly initialised.

    Examples
    --------
    >>> net = CNNF(32)                      # doctest: +SKIP  (warns: random weights)
    >>> net(torch.rand(2, 3, 224, 224) * 255).shape
    torch.Size([2, 32])
    """

    def __init__(self, nbits: int, weights: str | os.PathLike | None = None):
        super().__init__()
        # MatConvNet's LRN divides by (kappa + alpha * sum x^2)^beta with alpha = 1e-4 over 5
        # channels; torch divides alpha by the window size, hence alpha = 5 * 1e-4 here.
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4), nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0),
            # MatConvNet pads pool1 on the bottom/right only; inputs are >= 0 after ReLU + LRN,
            # so zero padding equals its -inf padding.
            nn.ZeroPad2d((0, 1, 0, 1)), nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 256, 5, padding=2), nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
        )
        self.fc = nn.Sequential(nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
                                nn.Linear(4096, 4096), nn.ReLU(inplace=True))
        self.hash = nn.Linear(4096, nbits)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN_255).view(1, 3, 1, 1))
        if weights is not None:
            load_cnnf_matconvnet(self, weights)
        else:
            warnings.warn("CNNF: no weights file given (imagenet-vgg-f.mat); starting from random "
                          "weights", UserWarning, stacklevel=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._prepare(x) - self.mean
        x = self.features(x)
        return self.hash(self.fc(torch.flatten(x, 1)))


def _mat_layers(path: Path):
    """Yield (name, [weight arrays], average_image or None) from a MatConvNet model file."""
    import scipy.io

    try:
        m = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError:
        raise ValueError(f"weights: {str(path)!r} is a MATLAB v7.3 file; save it with "
                         f"-v7 (imagenet-vgg-f.mat is distributed as v5)") from None
    if "layers" not in m:
        raise ValueError(f"weights: expected a MatConvNet model with a 'layers' entry in {str(path)!r}, "
                         f"got keys {sorted(k for k in m if not k.startswith('__'))}")
    avg = None
    for holder in ("meta", "normalization"):
        if holder in m:
            node = m[holder]
            norm = getattr(node, "normalization", node)
            if hasattr(norm, "averageImage"):
                avg = np.asarray(norm.averageImage, dtype=np.float32)
    layers = []
    for layer in np.atleast_1d(m["layers"]):
        name = str(getattr(layer, "name", ""))
        if hasattr(layer, "weights"):
            ws = [np.asarray(w, dtype=np.float32) for w in np.atleast_1d(layer.weights)] \
                if np.asarray(layer.weights).dtype == object else [np.asarray(layer.weights, np.float32)]
        elif hasattr(layer, "filters"):  # beta-era MatConvNet files
            ws = [np.asarray(layer.filters, np.float32), np.asarray(layer.biases, np.float32)]
        else:
            continue
        layers.append((name, ws))
    return layers, avg


def load_cnnf_matconvnet(net: CNNF, path: str | os.PathLike) -> CNNF:
    """Copy conv1-conv5, fc6, fc7 and the average image of ``imagenet-vgg-f.mat`` into ``net``.

    MatConvNet stores a convolution as ``(H, W, in, out)``; torch wants ``(out, in, H, W)``.
    fc6/fc7 are convolutions there (6x6x256x4096 and 1x1x4096x4096) and become linear
    layers here, flattened in torch's (channel, row, column) order.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a MatConvNet model, or layer shapes that are not CNN-F's.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights: no such file {str(path)!r}")
    layers, avg = _mat_layers(path)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    fcs = [m for m in net.fc if isinstance(m, nn.Linear)]
    targets = convs + fcs
    if len(layers) < len(targets):
        raise ValueError(f"weights: expected at least {len(targets)} layers with weights (conv1-5, fc6, fc7) "
                         f"in {str(path)!r}, found {len(layers)}")
    with torch.no_grad():
        for (name, ws), mod in zip(layers, targets):
            w, b = ws[0], ws[1].reshape(-1)
            if w.ndim == 2:
                w = w[None, None]
            elif w.ndim == 3:
                w = w[..., None] if isinstance(mod, nn.Conv2d) else w[None]
            tw = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
            if isinstance(mod, nn.Linear):
                tw = tw.reshape(tw.shape[0], -1)
            if tuple(tw.shape) != tuple(mod.weight.shape) or b.shape[0] != mod.bias.shape[0]:
                raise ValueError(f"weights: layer {name!r} of {str(path)!r} has shape {w.shape}, expected one "
                                 f"that maps to {tuple(mod.weight.shape)}")
            mod.weight.copy_(tw)
            mod.bias.copy_(torch.from_numpy(b))
        if avg is not None:
            mean = avg.reshape(-1, 3).mean(axis=0) if avg.size != 3 else avg.reshape(3)
            net.mean.copy_(torch.from_numpy(mean.astype(np.float32)).view(1, 3, 1, 1))
    return net


class AlexNet(_Backbone):
    """AlexNet (torchvision layout) with a linear hash layer ``4096 -> nbits``.

    Parameters
    ----------
    nbits : int
    weights : path, optional
        A torchvision-format state dict (``features.*``, ``classifier.1/4.*``); the final
        ImageNet classifier (``classifier.6``) is ignored.
    """

    def __init__(self, nbits: int, weights: str | os.PathLike | None = None):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
        )
        self.hash = nn.Linear(4096, nbits)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255.0)
        if weights is not None:
            self.load_torchvision(weights)
        else:
            warnings.warn("AlexNet: no weights file given (torchvision state dict); starting from "
                          "random weights", UserWarning, stacklevel=2)

    def load_torchvision(self, path: str | os.PathLike) -> "AlexNet":
        """Load ``features.*`` and ``classifier.{1,4}.*`` from a torchvision AlexNet state dict.

        Raises
        ------
        FileNotFoundError, ValueError
            Missing file, or missing/mis-shaped keys.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"weights: no such file {str(path)!r}")
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        own = {k: v for k, v in sd.items() if k.startswith("features.") or
               k.split(".")[:2] in (["classifier", "1"], ["classifier", "4"])}
        missing = [k for k in self.state_dict() if (k.startswith("features.") or k.startswith("classifier."))
                   and k not in own]
        if missing:
            raise ValueError(f"weights: {str(path)!r} is not a torchvision AlexNet state dict; "
                             f"missing {', '.join(missing[:4])}")
        self.load_state_dict(own, strict=False)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (self._prepare(x) - self.mean) / self.std
        x = self.avgpool(self.features(x))
        return self.hash(self.classifier(torch.flatten(x, 1)))
