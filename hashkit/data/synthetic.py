"""Seeded synthetic cross-modal data shaped like MIRFLICKR-25K, at any size, with no download.

Registered as dataset ``synthetic`` (options ``n``, ``seed``, ``difficulty``, ``image_dim``,
``text_dim``, ``nlabels``, ``raw_images``). Defaults mimic MIRFLICKR-25K: 24 multi-hot labels
(mean cardinality about 2.9, between 1 and 8 per item, co-occurring through six latent
"scenes"), a sparse binary 1386-d bag-of-words text, 4096-d non-negative image features
(ReLU-like, as CNN fc7 features), or small raw RGB images with ``raw_images=True``.

How labels reach the features (so that methods can learn, and a difficulty knob makes it
harder): a latent vector ``s = labels @ E / sqrt(|labels|) + sigma_s * noise`` per item, then per
modality a two-layer random network ``relu(tanh(s @ A) @ B + sigma * noise)`` (image) or
words present where ``c * (tanh(s @ A') @ W + sigma * noise) + word_bias > 0`` (text; ``c``
and ``word_bias`` calibrated so that an item has about 8 words at any difficulty).
``difficulty`` in [0, 1] scales the noise levels (0: nearly clean, 1: weak signal). The
per-entry noise is uniform (cheap to draw), the latent noise Gaussian.

Items are generated in fixed blocks of ``CHUNK`` rows, each from its own
``np.random.default_rng([seed, stream, block])``, so an item's data do not depend on how it is
read, and features are produced lazily (``view.images`` reads only the view's items).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashkit.data._matfile import Source
from hashkit.data.base import Dataset
from hashkit.data.registry import DatasetInfo, register_dataset
from hashkit.data.splits import Protocol

NAME = "synthetic"
CHUNK = 2048
_LATENT, _HIDDEN, _SCENES = 32, 64, 6


@dataclass(frozen=True)
class SyntheticSpec:
    n: int = 20015
    seed: int = 0
    difficulty: float = 0.5
    image_dim: int = 4096
    text_dim: int = 1386
    nlabels: int = 24
    raw_images: bool = False
    image_size: int = 32


def _check(spec: SyntheticSpec) -> None:
    for name in ("n", "image_dim", "text_dim", "nlabels", "image_size"):
        v = getattr(spec, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, (int, np.integer)) \
            or spec.seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {spec.seed!r}")
    if not (isinstance(spec.difficulty, (int, float)) and 0.0 <= spec.difficulty <= 1.0):
        raise ValueError(f"difficulty: expected a number in [0, 1], got {spec.difficulty!r}")
    if spec.nlabels < 2:
        raise ValueError(f"nlabels: expected at least 2, got {spec.nlabels}")


class Generator:
    """The fixed random parameters of one synthetic dataset and its block generator."""

    def __init__(self, spec: SyntheticSpec):
        _check(spec)
        self.spec = spec
        rng = np.random.default_rng([spec.seed, 0])
        L = spec.nlabels
        # label frequencies fall off like real tag data (a few frequent, many rare labels)
        base = 1.0 / np.arange(1, L + 1) ** 0.7
        rng.shuffle(base)
        scene_boost = rng.lognormal(0.0, 2.0, size=(_SCENES, L))
        self.scene_logp = np.log(base[None, :] * scene_boost).astype(np.float64)
        self.scene_p = rng.dirichlet(np.full(_SCENES, 3.0))
        self.E = rng.standard_normal((L, _LATENT)).astype(np.float32)
        self.A_img = (rng.standard_normal((_LATENT, _HIDDEN)) / np.sqrt(_LATENT)).astype(
            np.float32)
        # last row: the bias (-0.3 plus a little per-feature spread) before the ReLU
        self.B_img = np.vstack([rng.standard_normal((_HIDDEN, spec.image_dim)) / np.sqrt(_HIDDEN),
                                -0.3 + 0.1 * rng.standard_normal((1, spec.image_dim))]
                               ).astype(np.float32)
        self.A_txt = (rng.standard_normal((_LATENT, _HIDDEN)) / np.sqrt(_LATENT)).astype(
            np.float32)
        self.W_txt = (2.0 * rng.standard_normal((_HIDDEN, spec.text_dim)) / np.sqrt(_HIDDEN)
                      ).astype(np.float32)
        zipf = 1.0 / np.arange(1, spec.text_dim + 1) ** 0.8
        rng.shuffle(zipf)
        self.zipf_bias = np.log(zipf / zipf.mean()).astype(np.float32)
        k = 4
        self.P_pix = (rng.standard_normal((_LATENT, k * k * 3)) / np.sqrt(_LATENT)).astype(
            np.float32)
        d = float(spec.difficulty)
        self.sigma_s = np.float32(0.15 + 0.85 * d)
        self.sigma_img = np.float32(0.05 + 0.95 * d)
        self.sigma_txt = np.float32(0.3 + 1.7 * d)
        self._buffers: dict = {}
        self.labels = np.concatenate(
            [self._labels(c) for c in range(self.nchunks)]) if spec.n else None
        self._calibrate_text()

    def _calibrate_text(self) -> None:
        """Scale text logits to a fixed total variance (difficulty moves signal into noise, not
        the number of words) and shift them so an item has about 8 words on average, at any
        vocabulary size (MIRFLICKR-like sparsity at 1386 words)."""
        rng = np.random.default_rng([self.spec.seed, 6])
        s = self._latent_of(self._sample_labels(rng, 1024), rng)
        sig = np.tanh(s @ self.A_txt) @ self.W_txt
        self.txt_scale = np.float32(3.0 / np.sqrt(sig.var() + self.sigma_txt ** 2))
        z = (sig + _noise(rng, sig.shape) * (self.sigma_txt * _UNIT)) * self.txt_scale
        z += self.zipf_bias
        density = min(0.5, 8.0 / self.spec.text_dim)
        self.word_bias = (self.zipf_bias - np.quantile(z, 1.0 - density)).astype(np.float32)

    @property
    def nchunks(self) -> int:
        return -(-self.spec.n // CHUNK)

    def _rows(self, chunk: int) -> int:
        return min(CHUNK, self.spec.n - chunk * CHUNK)

    def _labels(self, chunk: int) -> np.ndarray:
        rng = np.random.default_rng([self.spec.seed, 1, chunk])
        return self._sample_labels(rng, self._rows(chunk))

    def _sample_labels(self, rng, m: int) -> np.ndarray:
        L = self.spec.nlabels
        scene = rng.choice(_SCENES, size=m, p=self.scene_p)
        card = np.clip(1 + rng.poisson(1.9, size=m), 1, min(8, L))
        # Gumbel top-k: `card` distinct labels per item, weighted by the scene's propensities
        scores = self.scene_logp[scene] + rng.gumbel(size=(m, L))
        order = np.argsort(-scores, axis=1)
        take = np.arange(L)[None, :] < card[:, None]
        out = np.zeros((m, L), dtype=np.uint8)
        rows = np.broadcast_to(np.arange(m)[:, None], (m, L))
        out[rows[take], order[take]] = 1
        return out

    def _latent(self, chunk: int) -> np.ndarray:
        lab = self.labels[chunk * CHUNK: chunk * CHUNK + self._rows(chunk)]
        return self._latent_of(lab, np.random.default_rng([self.spec.seed, 2, chunk]))

    def _latent_of(self, lab, rng) -> np.ndarray:
        lab = lab.astype(np.float32)
        s = lab @ self.E / np.sqrt(lab.sum(1, keepdims=True))
        s += self.sigma_s * rng.standard_normal(s.shape, dtype=np.float32)
        return s

    def _scratch(self, key: str, m: int, dim: int) -> np.ndarray:
        """A float32 (m, dim) work buffer reused across blocks: fresh 30 MB temporaries per
        block cost more in page faults than the arithmetic."""
        buf = self._buffers.get(key)
        if buf is None or buf.shape[1] != dim:
            buf = self._buffers[key] = np.empty((CHUNK, dim), dtype=np.float32)
        return buf[:m]

    def block(self, stream: str, chunk: int, out: np.ndarray | None = None,
              latent: np.ndarray | None = None) -> np.ndarray:
        """Rows ``chunk*CHUNK ...`` of ``stream`` (``"image"``, ``"text"`` or ``"pixels"``),
        written into ``out`` when given; ``latent`` reuses the chunk's latent vectors."""
        s = self._latent(chunk) if latent is None else latent
        m = s.shape[0]
        if stream == "image":
            rng = np.random.default_rng([self.spec.seed, 3, chunk])
            h = np.tanh(s @ self.A_img)
            x = np.matmul(h, self.B_img[:-1], out=out)
            x += self.B_img[-1]
            noise = self._scratch("noise", m, x.shape[1])
            np.multiply(_noise(rng, x.shape), self.sigma_img * _UNIT, out=noise)
            x += noise
            return np.maximum(x, 0, out=x)
        if stream == "text":
            rng = np.random.default_rng([self.spec.seed, 4, chunk])
            z = np.matmul(np.tanh(s @ self.A_txt), self.W_txt,
                          out=self._scratch("logits", m, self.spec.text_dim))
            noise = self._scratch("noise", m, self.spec.text_dim)
            np.multiply(_noise(rng, z.shape), self.sigma_txt * _UNIT, out=noise)
            z += noise
            z *= self.txt_scale
            z += self.word_bias
            if out is None:
                out = np.empty(z.shape, dtype=np.float32)
            return np.greater(z, 0, out=out, casting="unsafe")
        if stream == "pixels":
            rng = np.random.default_rng([self.spec.seed, 5, chunk])
            size = self.spec.image_size
            k = 4
            low = np.tanh(s @ self.P_pix).reshape(-1, k, k, 3)
            rep = -(-size // k)
            img = np.repeat(np.repeat(low, rep, axis=1), rep, axis=2)[:, :size, :size]
            img = img + _noise(rng, img.shape) * (self.sigma_img * 0.5 * _UNIT)
            img = np.clip(127.5 + 100.0 * img, 0, 255)
            if out is None:
                return img.astype(np.uint8)
            out[...] = img
            return out
        raise ValueError(f"stream: expected 'image', 'text' or 'pixels', got {stream!r}")


# Per-entry noise is the bulk of the work at 4096-d; uniform int8 straight from the bit
# generator (8 values per 64-bit draw) is several times cheaper than Gaussian samples and the
# shape of the noise does not matter here. _UNIT scales it to unit standard deviation.
_UNIT = np.float32(1.0 / np.sqrt(((256.0 ** 2) - 1) / 12.0))


def _noise(rng, shape) -> np.ndarray:
    size = int(np.prod(shape))
    raw = rng.bit_generator.random_raw(-(-size // 8)).view(np.int8)
    return raw[:size].reshape(shape)


class SyntheticSource(Source):
    """Rows of one synthetic modality, generated on demand block by block."""

    def __init__(self, gen: Generator, stream: str):
        self.gen, self.stream = gen, stream
        spec = gen.spec
        self.n = spec.n
        self.item_shape = {"image": (spec.image_dim,), "text": (spec.text_dim,),
                           "pixels": (spec.image_size, spec.image_size, 3)}[stream]
        self.dtype = np.dtype(np.uint8 if stream == "pixels" else np.float32)
        self.origin = f"synthetic(seed={spec.seed}):{stream}"
        self._cache = (None, None)

    def _chunk(self, c):
        if self._cache[0] != c:
            self._cache = (c, self.gen.block(self.stream, c))
        return self._cache[1]

    def take(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((len(idx),) + self.item_shape, dtype=self.dtype)
        chunk = idx // CHUNK
        order = np.argsort(chunk, kind="stable")
        bounds = np.flatnonzero(np.diff(chunk[order])) + 1
        for sel in np.split(order, bounds):
            if len(sel):
                c = int(chunk[sel[0]])
                out[sel] = self._chunk(c)[idx[sel] - c * CHUNK]
        return out


def generate(n: int = 20015, seed: int = 0, difficulty: float = 0.5, image_dim: int = 4096,
             text_dim: int = 1386, nlabels: int = 24, raw_images: bool = False,
             image_size: int = 32):
    """Generate a whole synthetic set in memory.

    Returns
    -------
    dict with ``labels`` uint8 (n, nlabels), ``texts`` float32 (n, text_dim) in {0, 1},
    ``images`` float32 (n, image_dim) (non-negative), and ``pixels`` uint8
    (n, image_size, image_size, 3) when ``raw_images``.

    Example
    -------
    >>> d = generate(1000, seed=1)
    >>> d["labels"].shape, d["images"].dtype
    ((1000, 24), dtype('float32'))
    """
    spec = SyntheticSpec(n=n, seed=seed, difficulty=difficulty, image_dim=image_dim,
                         text_dim=text_dim, nlabels=nlabels, raw_images=raw_images,
                         image_size=image_size)
    gen = Generator(spec)
    streams = (("images", "image"), ("texts", "text")) + (
        (("pixels", "pixels"),) if raw_images else ())
    out = {"labels": gen.labels}
    for key, stream in streams:
        src = SyntheticSource(gen, stream)
        out[key] = np.empty((n,) + src.item_shape, dtype=src.dtype)
    for c in range(gen.nchunks):
        latent = gen._latent(c)
        rows = slice(c * CHUNK, c * CHUNK + gen._rows(c))
        for key, stream in streams:
            gen.block(stream, c, out=out[key][rows], latent=latent)
    return out


def read(root=None, n=20015, seed=0, difficulty=0.5, image_dim=4096, text_dim=1386,
         nlabels=24, raw_images=False, image_size=32):
    """The registered reader: a lazy synthetic :class:`Dataset` (``root`` is ignored)."""
    spec = SyntheticSpec(n=n, seed=seed, difficulty=difficulty, image_dim=image_dim,
                         text_dim=text_dim, nlabels=nlabels, raw_images=bool(raw_images),
                         image_size=image_size)
    gen = Generator(spec)
    return Dataset(NAME, gen.labels, SyntheticSource(gen, "text"),
                   image_source=SyntheticSource(gen, "image"),
                   pixel_source=SyntheticSource(gen, "pixels") if raw_images else None,
                   options=dict(spec.__dict__), label_origin=f"synthetic(seed={seed}):labels")


def _protocols():
    return {
        # MIRFLICKR-like proportions, scaled to any n by `_scaled` at split time
        "default": Protocol("default", query=0.1, train=0.5, val=0.05,
                            source="hashkit: 10% query, 50% of the items as training set "
                                   "(from retrieval), 5% validation"),
        "mirflickr": Protocol("mirflickr", query=2000, train=10000, val=1000,
                              source="MIRFLICKR-25K sizes (needs n >= 13,000)"),
        "nus-wide-21": Protocol("nus-wide-21", query=2100, train=10500, val=1000,
                                source="NUS-WIDE-21 sizes"),
    }


register_dataset(DatasetInfo(
    NAME, "Synthetic MIRFLICKR-like data (24 labels, 1386-d BoW, 4096-d features), any size",
    read, _protocols(), "default", nlabels=None, needs_files=False,
    options={"n": "int (20015)", "seed": "int (0)", "difficulty": "0..1 (0.5)",
             "image_dim": "int (4096)", "text_dim": "int (1386)", "nlabels": "int (24)",
             "raw_images": "bool (False)", "image_size": "int (32)"},
    description=__doc__))
