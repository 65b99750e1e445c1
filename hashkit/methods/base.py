"""The contract every hashing method implements; the Trainer (``hashkit/train.py``) drives it.

A method is a small class that declares its networks, its loss terms and ONE training step.
Everything else -- the epoch loop, devices, seeding, the progress bar, checkpoints, resuming,
validation on a held-out split and the final evaluation -- belongs to
:class:`hashkit.train.Trainer`, so a method file stays short and is never a copied script.

Writing a method (the whole recipe)
-----------------------------------
::

    import torch
    from hashkit.methods import register_method
    from hashkit.methods.base import Method, make_optimizer
    from hashkit import losses
    from hashkit.nn import MLP

    @register_method("mymethod")
    class MyMethod(Method):
        '''One line that ``hashkit list-methods`` prints. Cite the paper and equations.'''

        defaults = {"epochs": 50, "batch_size": 128, "lr": 1e-3}   # merged over Method.defaults
        dataset_defaults = {"mfeat": {"epochs": 30}}                  # per-dataset tuning
        buffer_names = ("B",)        # non-network state to checkpoint (tensors or ndarrays)

        def build(self):             # networks: built from dims + config, BEFORE any data
            self.img = MLP([self.image_dim, 512, self.nbits])
            self.txt = MLP([self.text_dim, 512, self.nbits])

        def setup(self, train):      # once before training (not when only encoding)
            self.B = torch.zeros(train.n, self.nbits, device=self.device)
            self.opt = make_optimizer(self.parameters(), "adam", self.config["lr"])

        def train_step(self, batch, epoch, train):   # ONE optimiser step
            idx = batch
            f, g = self.img(train.image_batch(idx)), self.txt(train.text_batch(idx))
            s = train.similarity(idx, idx)
            loss = losses.pairwise_likelihood(f, g, s) + losses.quantization(f, self.B[idx])
            return {"loss": self.step(self.opt, loss)}

        def encode_images(self, x):  # real-valued (n, nbits); the Trainer takes the sign
            return self.img(self.tensor(x))

        def encode_texts(self, y):
            return self.txt(self.tensor(y))

Put the file in ``hashkit/methods/``: the package imports every module in it, so the
registry needs no edit. Add a one-line subclass of ``MethodContract`` in
``tests/test_methods.py`` (a method without one is still run through the contract with
default settings).

Glue every method shares lives here, not in the method files: :func:`sign` (the one
``value > 0 -> +1``, else ``-1`` rule, 0 included), :func:`make_optimizer`, the learning-rate
schedules :func:`lr_log_spaced` and :func:`lr_step_decay` with
:meth:`Method.set_learning_rate`, :meth:`Method.step` (zero_grad, backward, step) and
:meth:`Method.permuted_batches` (one fresh permutation per phase, drawn from ``self.rng``).

The hooks, in the order the Trainer calls them
----------------------------------------------
``__init__(nbits, image_dim, text_dim, nlabels, config, device)`` resolves the config and calls
:meth:`Method.build`. Then, for training: ``setup(train)`` once; per epoch
``begin_epoch(epoch, train)`` -> for each ``batch`` in ``batches(epoch, train)``:
``train_step(batch, epoch, train)`` -> ``end_epoch(epoch, train)``; then the Trainer may
validate (``encode_images`` / ``encode_texts`` in eval mode, under ``torch.no_grad``) and
checkpoints ``state_dict()``. For encoding only: ``__init__`` then ``load_state_dict``.

Rules that make ``--resume`` give bit-identical results
-------------------------------------------------------
* Draw randomness only from ``self.rng`` (a ``numpy.random.Generator`` the Trainer seeds and
  checkpoints) or from torch's global generator (seeded and checkpointed by the Trainer).
  Never create your own unseeded generator.
* Everything that changes during training and is not a network parameter or an optimiser
  state (code matrices B, F/G buffers, proxy codes, a stage counter ...) must be named in
  ``buffer_names`` (or returned by an overridden :meth:`extra_state`).
* Derive per-epoch quantities (a learning-rate schedule, the training stage) from ``epoch``
  in :meth:`begin_epoch` rather than keeping a scheduler object; the Trainer checkpoints at
  epoch boundaries only, so an epoch is the unit of resumption.
* Networks and optimisers are found automatically: every attribute that is a
  ``torch.nn.Module`` is a network (checkpointed, switched between train/eval mode); every
  attribute that is a ``torch.optim.Optimizer`` is checkpointed. Keep them as attributes.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["Method", "TrainData", "sign", "make_optimizer", "lr_log_spaced", "lr_step_decay"]


def sign(x):
    """``+1`` where ``x > 0``, ``-1`` elsewhere (an exact 0 becomes -1, i.e. bit 0).

    The one sign rule of hashkit: the Trainer maps ``value > 0`` to bit 1, so codes a method
    keeps during training (DCMH's ``B``, DAPH's proxies, ITQ's ``B``) follow the same rule.
    ``torch.sign`` and ``np.sign`` would give 0 for 0.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray

    Returns
    -------
    Same kind as ``x``: a float tensor of ``x``'s dtype (float32 for integer tensors) or a
    float64 NumPy array (``x``'s dtype when it is floating).

    Examples
    --------
    >>> sign(np.array([0.5, 0.0, -2.0]))
    array([ 1., -1., -1.])
    """
    if isinstance(x, np.ndarray):
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return np.where(x > 0, 1.0, -1.0).astype(dtype, copy=False)
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"sign: expected a torch.Tensor or a NumPy array, got {type(x).__name__}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    return torch.where(x > 0, torch.ones((), dtype=dtype, device=x.device),
                       -torch.ones((), dtype=dtype, device=x.device))


def apply_moments(x, mean, std):
    """``(x - mean) / std`` with either step skipped where it is None (a method's input
    preprocessing: centring, standardising, or nothing)."""
    if mean is not None:
        x = x - mean
    if std is not None:
        x = x / std
    return x


def make_optimizer(params, kind: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                   momentum: float = 0.0, fused: bool = False):
    """An optimiser over ``params``: ``kind`` "adam" (``torch.optim.Adam``) or "sgd".

    ``fused=True`` asks for Adam's fused kernel (several times faster than the per-tensor loop
    on CPU; results differ from the loop in the last bits). ``momentum`` is SGD's.

    Raises
    ------
    ValueError
        ``kind`` is neither "adam" nor "sgd".
    """
    import torch

    if kind == "sgd":
        return torch.optim.SGD(params, lr=float(lr), momentum=float(momentum), weight_decay=float(weight_decay))
    if kind == "adam":
        extra = {"fused": True} if fused else {}
        return torch.optim.Adam(params, lr=float(lr), weight_decay=float(weight_decay), **extra)
    raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {kind!r}")


def lr_log_spaced(start: float, end: float, epoch: int, epochs: int) -> float:
    """Learning rate of ``epoch`` (0-based) on a log scale from ``start`` (first) to ``end`` (last).

    ``lr_log_spaced(10**-1.5, 1e-3, e, n)`` is MATLAB's ``logspace(-1.5, -3, n)(e + 1)``
    (DCMH's schedule); with one epoch it is ``start``.
    """
    lo, hi = np.log10(start), np.log10(end)
    return float(10 ** (lo + (hi - lo) * (epoch / (epochs - 1) if epochs > 1 else 0.0)))


def lr_step_decay(lr: float, factor: float, epoch: int) -> float:
    """``lr * factor ** epoch`` (``factor = 0.5``: halved every epoch, as the GCH release)."""
    return float(lr) * float(factor) ** epoch


class TrainData:
    """The training split as a method sees it: arrays on the host, batches on the device.

    Built by the Trainer from a dataset view (``ds.train`` of the data contract, or any object
    with ``images``, ``texts``, ``labels`` arrays). Methods should fetch batches through the
    helpers so that feature datasets and raw-pixel datasets look the same.

    Attributes
    ----------
    images : numpy.ndarray, float32 (n, image_dim)
        Image features (for raw-pixel datasets, see :meth:`image_batch`).
    texts : numpy.ndarray, float32 (n, text_dim)
    labels : numpy.ndarray, uint8 (n, nlabels)
        Multi-hot labels {0, 1}. Unsupervised methods must not read them.
    n : int
        Number of training pairs.
    device : torch.device or str
    graph : int64 (n, K) or None
        A neighbour graph over these rows shipped with the data (a UGACH release's
        ``KNN_cross5.npy``), or None; ``graph_note`` says where it came from or why there is none.

    Examples
    --------
    >>> x = train.image_batch(np.array([0, 5, 7]))      # doctest: +SKIP
    >>> s = train.similarity(np.array([0, 5]))          # (2, n) float32 {0, 1}
    """

    def __init__(self, images: np.ndarray, texts: np.ndarray, labels: np.ndarray,
                 device: Any = "cpu", pixels: Any = None, graph: Any = None, graph_note: str = ""):
        self.images = np.ascontiguousarray(images, dtype=np.float32) if images is not None else None
        self.graph = graph
        self.graph_note = graph_note
        self.texts = np.ascontiguousarray(texts, dtype=np.float32)
        self.labels = np.ascontiguousarray(labels)
        self.n = int(self.texts.shape[0])
        self.device = device
        self._pixels = pixels
        self._cache: dict[str, Any] = {}

    def _tensor(self, key: str, arr: np.ndarray):
        import torch

        if key not in self._cache:
            self._cache[key] = torch.as_tensor(arr, device=self.device)
        return self._cache[key]

    def _index(self, idx):
        import torch

        if idx is None:
            return slice(None)
        return torch.as_tensor(np.asarray(idx, dtype=np.int64), device=self.device)

    def image_batch(self, idx: np.ndarray | None = None):
        """Images of rows ``idx`` (int array; ``None`` = all) as a float32 tensor on the device.

        Feature datasets: ``(b, image_dim)``. Raw-pixel datasets: ``(b, 3, H, W)`` float32 in
        [0, 255] (the backbone resizes and subtracts its mean image).
        """
        import torch

        if self.images is None:
            if self._pixels is None:
                raise ValueError("image_batch: this training split has neither features nor pixels")
            rows = np.arange(self.n) if idx is None else np.asarray(idx, dtype=np.int64)
            return torch.as_tensor(np.asarray(self._pixels(rows), dtype=np.float32), device=self.device)
        return self._tensor("images", self.images)[self._index(idx)]

    def text_batch(self, idx: np.ndarray | None = None):
        """Texts of rows ``idx`` (``None`` = all) as a float32 ``(b, text_dim)`` tensor."""
        return self._tensor("texts", self.texts)[self._index(idx)]

    def label_batch(self, idx: np.ndarray | None = None):
        """Labels of rows ``idx`` (``None`` = all) as a float32 ``(b, nlabels)`` {0, 1} tensor."""
        return self._tensor("labels", self.labels.astype(np.float32))[self._index(idx)]

    def similarity(self, idx_a: np.ndarray | None = None, idx_b: np.ndarray | None = None):
        """Pairwise semantic similarity ``S[i, j] = 1`` if rows share a label, else 0.

        Parameters
        ----------
        idx_a, idx_b : int arrays or None
            Row subsets (``None`` = every training row).

        Returns
        -------
        torch.Tensor, float32 ``(len(idx_a), len(idx_b))`` on the device.
        """
        la = self.label_batch(idx_a)
        lb = self.label_batch(idx_b)
        return (la @ lb.T > 0).to(la.dtype)


class Method:
    """Base class of every hashing method (see the module docstring for the recipe).

    Parameters
    ----------
    nbits : int
        Code length.
    image_dim : int or None
        Image feature size; ``None`` for raw-pixel datasets (batches are float32
        ``(b, 3, H, W)`` in [0, 255] and the method needs a CNN backbone).
    text_dim : int
        Text feature size (BoW length).
    nlabels : int
        Number of labels (multi-hot width).
    config : mapping, optional
        Overrides of :attr:`defaults` (already merged with :attr:`dataset_defaults` by
        :meth:`resolve_config` when it comes from the Trainer).
    device : str or torch.device
        ``"cpu"`` or ``"cuda"``; networks are moved there after :meth:`build`.

    Class attributes a method sets
    ------------------------------
    name : str
        Set by :func:`hashkit.methods.register_method`.
    defaults : dict
        Hyper-parameters (merged over ``Method.defaults``: ``epochs``, ``batch_size``, ``lr``,
        ``eval_every``). Every value must be JSON-serialisable: it is written to the run's
        ``config.json`` and ``hashkit train --set key=value`` may override it.
    dataset_defaults : dict[str, dict]
        Per-dataset overrides of :attr:`defaults` (tuning for small sets, say).
    buffer_names : tuple[str, ...]
        Attributes (torch tensors or NumPy arrays) checkpointed besides networks/optimisers.
    uses_torch : bool
        ``False`` for closed-form NumPy methods (cca-itq): no networks, no optimisers.
    supervised : bool
        Whether the method reads labels (reported by ``hashkit list-methods``).

    Attributes set by the Trainer
    -----------------------------
    rng : numpy.random.Generator
        The method's seeded generator (checkpointed). Use it for batch order and sampling.
    run_dir : pathlib.Path or None
        The run's output folder, for artefacts a method writes itself (DAPH's
        ``proxy_codes.pt``); ``None`` when the Trainer writes nothing.
    """

    name: str = ""
    run_dir = None
    defaults: dict = {"epochs": 10, "batch_size": 128, "lr": 1e-3, "eval_every": 0}
    dataset_defaults: dict = {}
    buffer_names: tuple = ()
    uses_torch: bool = True
    supervised: bool = True

    def __init__(self, nbits: int, image_dim: int, text_dim: int, nlabels: int,
                 config: Mapping | None = None, device: Any = "cpu"):
        from .._validate import check_positive_int

        self.nbits = check_positive_int(nbits, "nbits")
        self.image_dim = None if image_dim is None else check_positive_int(image_dim, "image_dim")
        self.text_dim = check_positive_int(text_dim, "text_dim")
        self.nlabels = check_positive_int(nlabels, "nlabels")
        self.config = self.resolve_config(config or {})
        self.device = device
        self.rng = np.random.default_rng(0)
        self.build()
        if self.uses_torch:
            for m in self.modules().values():
                m.to(device)

    # ----------------------------------------------------------------- configuration
    @classmethod
    def default_config(cls, dataset: str | None = None) -> dict:
        """``Method.defaults`` <- ``cls.defaults`` <- ``cls.dataset_defaults[dataset]`` (a copy)."""
        cfg: dict = {}
        for klass in reversed(cls.__mro__):
            if "defaults" in vars(klass):
                cfg.update(copy.deepcopy(vars(klass)["defaults"]))
        if dataset is not None:
            cfg.update(copy.deepcopy(cls.dataset_defaults.get(dataset, {})))
        return cfg

    @classmethod
    def resolve_config(cls, overrides: Mapping, dataset: str | None = None) -> dict:
        """Merge ``overrides`` over :meth:`default_config`; unknown keys raise ValueError.

        Values are cast to the type of the default (so ``--set epochs=5`` gives an int).
        """
        cfg = cls.default_config(dataset)
        for key, value in overrides.items():
            if key not in cfg:
                raise ValueError(f"config: method {cls.name or cls.__name__!r} has no option {key!r}; "
                                 f"expected one of {', '.join(sorted(cfg))}")
            cfg[key] = _cast_like(cfg[key], value, key)
        return cfg

    # ----------------------------------------------------------------- hooks to override
    def build(self) -> None:
        """Create the networks (attributes that are ``nn.Module``). No data is available here."""

    def setup(self, train: TrainData) -> None:
        """Prepare training: buffers sized by ``train.n``, optimisers, graphs. Called once."""

    def begin_epoch(self, epoch: int, train: TrainData) -> None:
        """Called before each epoch (0-based ``epoch``): set the learning rate, switch stages."""

    def batches(self, epoch: int, train: TrainData) -> Sequence[Any]:
        """The batches of one epoch, each passed to :meth:`train_step` as ``batch``.

        Default: ``config["batch_size"]`` rows at a time from a permutation drawn with
        ``self.rng``. Override to interleave phases, e.g. DCMH returns
        ``[("image", idx), ..., ("text", idx), ...]`` (:meth:`permuted_batches`). Return a
        list so that the progress bar knows its length.
        """
        return self.permuted_batches(train.n, int(self.config["batch_size"]))

    def train_step(self, batch: Any, epoch: int, train: TrainData) -> Mapping[str, float]:
        """One optimisation step on ``batch``; return scalar losses for the progress bar/log."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_step")

    def end_epoch(self, epoch: int, train: TrainData) -> Mapping[str, float] | None:
        """Called after each epoch (e.g. the DCMH B update); may return scalars to log."""
        return None

    def diagnostics(self, train: TrainData) -> Mapping[str, Any]:
        """Scalars about the trained state for ``results.json`` (GCH: distinct beacon codes).

        Called once after training (:func:`hashkit.methods.diagnostics.run_diagnostics`).
        Default: ``{}``.
        """
        return {}

    def encode_images(self, x: np.ndarray):
        """Real-valued codes ``(n, nbits)`` (NumPy or tensor) for a float32 image batch ``x``.

        Called in eval mode under ``torch.no_grad``; the Trainer maps ``value > 0`` to bit 1
        (so an exact 0 becomes -1 / bit 0). ``x`` is a NumPy float32 array: ``(n, image_dim)``
        features or ``(n, 3, H, W)`` pixels; use :meth:`tensor` to move it to the device.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement encode_images")

    def encode_texts(self, y: np.ndarray):
        """Real-valued codes ``(n, nbits)`` for a float32 ``(n, text_dim)`` text batch ``y``."""
        raise NotImplementedError(f"{type(self).__name__} must implement encode_texts")

    # ----------------------------------------------------------------- helpers
    def permuted_batches(self, n: int, batch_size: int, phases: Sequence[Any] | None = None) -> list:
        """Row batches over ``range(n)``: one permutation from ``self.rng`` per phase.

        Parameters
        ----------
        n, batch_size : int
        phases : sequence, optional
            ``None``: one permutation, the batches are index arrays. Otherwise, for each phase
            in order a fresh permutation and ``(phase, idx)`` pairs; a phase that is a tuple is
            spread, ``(*phase, idx)`` (UGACH: ``("d", "i2t", idx)``).

        Returns
        -------
        list
            The last batch of a permutation may be shorter than ``batch_size``.
        """
        bs = int(batch_size)
        if phases is None:
            perm = self.rng.permutation(n)
            return [perm[i:i + bs] for i in range(0, n, bs)]
        out: list = []
        for phase in phases:
            perm = self.rng.permutation(n)
            head = tuple(phase) if isinstance(phase, tuple) else (phase,)
            out.extend((*head, perm[i:i + bs]) for i in range(0, n, bs))
        return out

    @staticmethod
    def step(optimizer, loss) -> float:
        """One optimiser step on ``loss``: zero the gradients, backpropagate, step.

        Returns the loss as a float (for the progress bar and the epoch log).
        """
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def set_learning_rate(self, lr: float, *optimizers) -> None:
        """Set every parameter group of ``optimizers`` (default: all of the method's) to ``lr``."""
        for opt in optimizers or tuple(self.optimizers().values()):
            for group in opt.param_groups:
                group["lr"] = lr

    def tensor(self, x):
        """``x`` (NumPy or tensor) as a float32 tensor on ``self.device``."""
        import torch

        return torch.as_tensor(np.asarray(x, dtype=np.float32) if isinstance(x, np.ndarray) else x,
                               dtype=torch.float32, device=self.device)

    def modules(self) -> dict:
        """Every attribute that is a ``torch.nn.Module``, by attribute name (insertion order)."""
        if not self.uses_torch:
            return {}
        import torch

        return {k: v for k, v in vars(self).items() if isinstance(v, torch.nn.Module)}

    def optimizers(self) -> dict:
        """Every attribute that is a ``torch.optim.Optimizer``, by attribute name."""
        if not self.uses_torch:
            return {}
        import torch

        return {k: v for k, v in vars(self).items() if isinstance(v, torch.optim.Optimizer)}

    def parameters(self) -> list:
        """All network parameters (for a single optimiser over every network)."""
        return [p for m in self.modules().values() for p in m.parameters()]

    def train_mode(self, mode: bool = True) -> None:
        for m in self.modules().values():
            m.train(mode)

    def extra_state(self) -> dict:
        """State that is neither a network, an optimiser nor a named buffer. Default: ``{}``."""
        return {}

    def load_extra_state(self, state: Mapping) -> None:
        """Inverse of :meth:`extra_state`."""

    def state_dict(self) -> dict:
        """Everything needed to resume: networks, optimisers, buffers, extra state."""
        buffers = {}
        for name in self.buffer_names:
            value = getattr(self, name, None)
            if value is not None:
                buffers[name] = value.detach().cpu().clone() if hasattr(value, "detach") else np.array(value)
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
            "buffers": buffers,
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: Mapping, optimizers: bool = True) -> None:
        """Restore :meth:`state_dict`; optimisers only if they exist (i.e. after ``setup``).

        Raises
        ------
        ValueError
            A network in the checkpoint is missing here, or the reverse.
        """
        mods = self.modules()
        if set(mods) != set(state["modules"]):
            raise ValueError(f"state: expected networks {sorted(mods)}, got {sorted(state['modules'])}")
        for k, m in mods.items():
            m.load_state_dict(state["modules"][k])
        if optimizers:
            for k, o in self.optimizers().items():
                if k in state["optimizers"]:
                    o.load_state_dict(state["optimizers"][k])
        for name, value in state["buffers"].items():
            if hasattr(value, "to"):
                value = value.to(self.device)
            setattr(self, name, value)
        self.load_extra_state(state.get("extra", {}))

    @classmethod
    def describe(cls) -> str:
        """First line of the class docstring (shown by ``hashkit list-methods``)."""
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


def _cast_like(default: Any, value: Any, key: str) -> Any:
    """Cast a (possibly string) override to the type of its default."""
    if default is None or not isinstance(value, str):
        if isinstance(default, bool) and not isinstance(value, bool):
            raise TypeError(f"config[{key!r}]: expected a bool, got {value!r}")
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(default, (list, tuple)) and isinstance(value, Iterable) and not isinstance(value, str):
            return list(value)
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, (list, tuple)):
            return [type(default[0])(v) if default else v for v in value.split(",")]
    except ValueError:
        raise ValueError(f"config[{key!r}]: expected a value like {default!r}, got {value!r}") from None
    return value
