"""One training loop for every method: seeding, devices, logs, checkpoints, model selection.

The :class:`Trainer` drives a :class:`hashkit.methods.base.Method` (see that module for the
hooks). A run folder holds::

    RUN/config.json          everything that defines the run; ``hashkit train --config`` reruns it
    RUN/split.json           the dataset's split manifest (``--split RUN/split.json`` reuses it)
    RUN/metrics.jsonl        one JSON line per epoch (losses, validation MAP, seconds)
    RUN/metrics.csv          the same table as CSV (one column per key ever logged)
    RUN/checkpoints/last.pt  written atomically at the end of every epoch (``--resume``)
    RUN/checkpoints/best.pt  the best epoch on the validation split (``--select best-val``)
    RUN/codes.npz            codes of the test queries and the retrieval set (``hashkit eval``)
    RUN/results.json         test MAP (I->T, T->I) of the selected epoch, computed once at the end
    RUN/tensorboard/         scalars for TensorBoard, when ``tensorboard`` is installed
    RUN/.hashkit.lock        while a process writes the run (see ``hashkit._runlock``)

``hashkit train`` writes one run folder per code length and seed: ``OUT/{bits}bits-seed{seed}``,
with ``OUT`` defaulting to ``runs/METHOD-DATASET``, so a rerun with another seed or code length
never lands on an earlier run. A folder that already holds a run is written again only with
``--resume`` (same configuration: continue it) or ``--overwrite`` (delete it first).

Validation queries the validation split (drawn from the retrieval set) against the retrieval
set with the validation rows removed; the test queries are encoded and evaluated once, after
training, for the selected epoch. Model selection and early stopping look at validation MAP
only (mean of I->T and T->I).

Examples
--------
>>> from hashkit.train import Trainer
>>> t = Trainer("dcmh", "mfeat", nbits=32, out_dir="runs/dcmh-mfeat/32bits-seed0")   # doctest: +SKIP
>>> result = t.fit()                                                                    # doctest: +SKIP
>>> result["map_i2t"], result["map_t2i"], result["selected_epoch"]                      # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._command import IntList
from ._checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ._io import atomic_write_text, clean_temporaries, json_default, write_json
from ._runlock import LOCK_NAME, RunLock
from ._device import resolve_device
from .encode import encode, has_features, pixels_nchw
from .methods import get_method, list_methods
from .methods.base import Method, TrainData

__all__ = ["Trainer", "TrainingDiverged", "resolve_device", "read_config_file", "add_train_arguments",
           "run_train"]

# 2: tensors and plain values only, read with torch.load(weights_only=True) (hashkit._checkpoint).
CHECKPOINT_FORMAT = 2

SELECT_CHOICES = ("last", "best-val")

# Keys of config.json that describe the machine or follow from the data: ignored when a
# config is rerun, and allowed to differ when a run is resumed (with the device, the
# validation frequency, the data folder and the plugins loaded, which may change between
# attempts without changing the run).
_DERIVED_KEYS = ("image_dim", "text_dim", "nlabels", "hashkit_checkpoint_format", "environment", "image_input",
                 "input")
_RESUME_MAY_DIFFER = ("device", "eval_every", "data_root", "plugins") + _DERIVED_KEYS

# Files and folders a run writes (``hashkit encode`` adds encoded.npz, DAPH proxy_codes.pt).
RUN_ENTRIES = ("config.json", "split.json", "metrics.jsonl", "metrics.csv", "results.json", "codes.npz",
               "encoded.npz", "proxy_codes.pt", "checkpoints", "tensorboard")
_TEMP_TARGETS = ("config.json", "split.json", "metrics.jsonl", "metrics.csv", "results.json", "codes.npz",
                 "encoded.npz", "proxy_codes.pt")
_CKPT_TEMP_TARGETS = ("last.pt", "best.pt")


class TrainingDiverged(RuntimeError):
    """A loss term (or a logged value) became NaN or infinite."""


# --------------------------------------------------------------------------- helpers
def _map(qB, rB, qL, rL) -> float:
    """MAP over the full ranking through the kernels (hashkit.metrics)."""
    from .metrics import mean_average_precision

    return float(mean_average_precision(qB, rB, qL, rL))


def _encode_view(method: Method, view, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    if not has_features(view):
        c = encode(method, texts=view.texts, batch_size=batch_size, pixels=pixels_nchw(view),
                   n_pixels=len(view.texts))
    else:
        c = encode(method, images=view.images, texts=view.texts, batch_size=batch_size)
    return c["images"], c["texts"]


class _Subset:
    """Rows ``keep`` of a view (validation database when the dataset has no ``val_retrieval``)."""

    def __init__(self, view, keep: np.ndarray):
        self.images = view.images[keep] if has_features(view) else None
        self.texts, self.labels = view.texts[keep], np.asarray(view.labels)[keep]
        self.indices = np.asarray(view.indices)[keep]


def _rng_state() -> dict:
    import torch

    # NumPy's legacy state as a dict (legacy=False) so the checkpoint holds no NumPy objects
    # beyond arrays, which hashkit._checkpoint stores as bytes.
    state = {"python": random.getstate(), "numpy": np.random.get_state(legacy=False),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping) -> None:
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def _manifest(ds) -> Any:
    man = getattr(ds, "manifest", None)
    if man is None:
        return {"name": getattr(ds, "name", None)}
    if hasattr(man, "to_dict"):
        return man.to_dict()
    return man if isinstance(man, Mapping) else dict(man) if hasattr(man, "keys") else man


def _plain_json(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=json_default))


def _lr_key(key: str) -> bool:
    return key == "lr" or key.endswith("_lr")


def _check_config_values(cfg: Mapping, defaults: Mapping | None = None) -> None:
    """Hyper-parameters that cannot mean anything: caught before a single step is taken.

    ``--lr inf`` used to give a NaN loss every epoch and ``--batch-size -3`` zero steps per
    epoch, and both exited 0 as if trained. Every float must be finite; values that differ
    from the method's ``defaults`` must also be in range: epochs >= 0, batch sizes >= 1,
    learning rates > 0. A default is left alone because a closed-form method declares the
    options it does not use as 0 (cca-itq: ``batch_size=0, lr=0.0``), also when a config
    file repeats them.
    """
    from ._validate import check_int, describe

    defaults = defaults or {}
    for key, value in cfg.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"config[{key!r}]: expected a finite number, got {value!r}")
        if key in defaults and value == defaults[key]:
            continue
        if key.endswith("epochs"):
            check_int(value, f"config[{key!r}]", min_value=0, what="a non-negative number of epochs")
        elif key.endswith("batch_size"):
            check_int(value, f"config[{key!r}]", min_value=1, what="a positive batch size")
        if _lr_key(key) and isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise ValueError(f"config[{key!r}]: expected a positive learning rate, got {describe(value)}")


def _check_finite(values: Mapping, epoch: int, where: str) -> None:
    for k, v in values.items():
        if not math.isfinite(float(v)):
            raise TrainingDiverged(f"training diverged: {k!r} is {float(v)} at epoch {epoch + 1} ({where}); "
                                   f"the last checkpoint is the previous epoch's; lower the learning rate "
                                   f"(--lr) or check the input features")


def _run_entries(folder: Path) -> list[str]:
    """Names in ``folder`` other than the lock (temporaries are removed before this is asked)."""
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME)
    # An empty checkpoints/ folder (a first epoch killed before its checkpoint) holds nothing.
    ck = folder / "checkpoints"
    if "checkpoints" in names and ck.is_dir() and not any(ck.iterdir()):
        names.remove("checkpoints")
    return names


def _check_out_folder(path: Path) -> None:
    """A one-line error for an output folder that is a file, or under one."""
    p = Path(path)
    for cand in (p, *p.parents):
        if cand.exists():
            if not cand.is_dir():
                what = "is" if cand == p else f"lies under {str(cand)!r}, which is"
                raise ValueError(f"--out: expected a folder, but {str(p)!r} {what} a file")
            return


# --------------------------------------------------------------------------- trainer
def release_graph(ds) -> tuple[Any, str]:
    """The neighbour graph a dataset's release ships (``Dataset.knn_graph``) when it applies
    to this split, else None; and a note saying where it was read or why there is none.

    The release's graph indexes the release's own training rows, so it is handed to a method
    only when the split's train view is exactly those rows, in their order.
    """
    graph = getattr(ds, "knn_graph", None)
    name = getattr(ds, "name", "the dataset")
    if graph is None:
        return None, (f"{name} has none: it is read from list/KNN_cross5.npy of the UGACH "
                      "release layout (KNN/mir/ or KNN/nus/ of PKU-ICST-MIPL/UGACH_AAAI2018), "
                      "an (n_train, K) .npy array of training-row indices")
    pre = getattr(ds, "presplit", None) or {}
    rows = getattr(getattr(ds, "train", None), "indices", None)
    if "train" not in pre or rows is None or not np.array_equal(rows, pre["train"]):
        return None, (f"{name}'s release graph indexes the release's own train rows, and this "
                      "split's train view is not those rows: use the release's split")
    return graph, f"read from {getattr(ds, 'found', {}).get('knn_graph', 'the release')}"


class Trainer:
    """Train one method at one code length on one dataset, into one run folder.

    Parameters
    ----------
    method : str or Method subclass
        A registered name (``hashkit.methods.list_methods()``, plugins included) or the class.
    dataset : str or dataset object
        A name for ``hashkit.data.load(name, root=data_root, seed=split_seed, protocol=protocol,
        manifest=split, **data_options)``, or an already loaded dataset (``query``,
        ``retrieval``, ``train``, ``val`` views, each with ``images`` float32 ``(n, d)``,
        ``texts`` float32 ``(n, t)``, ``labels`` uint8 ``(n, L)``; plus ``name``, ``manifest``).
    nbits : int
        Code length.
    out_dir : path, optional
        Run folder; ``None`` keeps everything in memory (no checkpoints, no files).
    config : mapping, optional
        Overrides of the method's defaults (``method.default_config(dataset_name)``).
    device : {"cpu", "cuda", "cuda:N", "auto"}
        Recorded in ``config.json`` as resolved (``auto`` -> ``cuda:0`` or ``cpu``).
    seed : int
        Seeds python, NumPy, torch and the method's generator; same seed, same run (on CPU).
    split_seed : int
        Seed of the dataset split (when ``dataset`` is a name).
    protocol : str, optional
        A protocol name of the dataset (``hashkit datasets`` lists them); default its standard one.
    split : path, optional
        A split manifest to reuse exactly (e.g. another run's ``split.json``).
    eval_every : int, optional
        Validate every this many epochs (and after the last); 0 = never. ``None`` = the
        config's ``eval_every`` when it is given (there too 0 = never), else every epoch for
        ``select="best-val"`` and about five times per run for ``select="last"``.
    select : {"last", "best-val"}
        Which epoch's model gives the codes and the test MAP: the last, or the one with the best
        validation MAP (mean of I->T and T->I; the earliest on a tie). Default ``"last"``: each
        method's defaults are its paper's fixed schedule (staged for GCH, DAPH and UGACH), and
        the validation split is small (mfeat: 180 queries), so selecting on it adds noise the
        schedule does not need; ``best-val`` is there when a schedule is not trusted.
    patience : int, optional
        Stop after this many validations in a row without a better validation MAP (``None``:
        never stop early, the default, since stopping cuts the staged and decaying schedules).
    progress : bool
        A tqdm bar on a terminal; otherwise, or with ``False``, one plain line per epoch.
    resume : bool
        Continue the run in ``out_dir`` (same configuration) from its last checkpoint.
    overwrite : bool
        Delete the run already in ``out_dir`` first. Without ``resume`` or ``overwrite`` a
        folder that holds a run is refused, so a run is never replaced by accident.
    tensorboard : bool, optional
        Write TensorBoard scalars to ``out_dir/tensorboard``; ``None`` = when installed.
    encode_batch_size : int
    log : callable
        Where one-line messages and epoch lines go (default: stdout).

    Attributes
    ----------
    method : Method
        The method instance (networks on ``device``).
    history : list[dict]
        One record per finished epoch (the lines of ``metrics.jsonl``).
    selection : dict
        ``best_epoch``, ``best_score`` (validation MAP), ``bad_validations``, ``stopped_early_at``.

    Examples
    --------
    >>> t = Trainer("cca-itq", "mfeat", nbits=32, out_dir=None, progress=False)   # doctest: +SKIP
    >>> t.fit()["map_i2t"]                                                          # doctest: +SKIP
    """

    def __init__(self, method: str | type, dataset: Any, nbits: int, out_dir: str | os.PathLike | None = None,
                 *, config: Mapping | None = None, device: str = "cpu", seed: int = 0, split_seed: int = 0,
                 data_root: str | None = None, data_options: Mapping | None = None,
                 protocol: str | None = None, split: str | os.PathLike | None = None,
                 eval_every: int | None = None, select: str = "last", patience: int | None = None,
                 progress: bool = True, resume: bool = False, overwrite: bool = False,
                 tensorboard: bool | None = None, encode_batch_size: int = 1024,
                 log: Callable[[str], None] | None = None):
        from ._validate import check_choice, check_int, check_positive_int

        if isinstance(method, str):
            from .methods._plugins import load_plugins

            load_plugins()  # methods of installed packages (entry points) are names too
            self.method_cls = get_method(method)
        else:
            self.method_cls = method
        if not (isinstance(self.method_cls, type) and issubclass(self.method_cls, Method)):
            raise TypeError(f"method: expected a registered name or a Method subclass, got {method!r}")
        self.nbits = check_positive_int(nbits, "nbits")
        self.seed = check_int(seed, "seed", min_value=0, what="a non-negative integer")
        self.split_seed = check_int(split_seed, "split_seed", min_value=0, what="a non-negative integer")
        self.device = resolve_device(device)
        self.select = check_choice(select, SELECT_CHOICES, "select")
        self.patience = None if patience is None else check_int(patience, "patience", min_value=1,
                                                                what="a positive number of validations")
        if resume and overwrite:
            raise ValueError("resume/overwrite: expected one of them, got both")
        self.data_options = dict(data_options or {})
        self.data_root = None if data_root is None else str(data_root)
        self.protocol = protocol
        self.split = None if split is None else str(split)
        if isinstance(dataset, str):
            from . import data as _data

            self.dataset_name = dataset
            self.ds = _data.load(dataset, root=data_root, seed=self.split_seed, protocol=protocol,
                                 manifest=split, **self.data_options)
        else:
            self.ds = dataset
            self.dataset_name = getattr(dataset, "name", type(dataset).__name__)
        man = getattr(self.ds, "manifest", None)
        if self.protocol is None and getattr(man, "protocol", None):
            self.protocol = man.protocol
        overrides = dict(config or {})
        self.config = self.method_cls.resolve_config(overrides, dataset=self.dataset_name)
        _check_config_values(self.config, self.method_cls.default_config(self.dataset_name))
        self.epochs = check_int(self.config["epochs"], "config['epochs']", min_value=0,
                                what="a non-negative number of epochs")
        # eval_every = 0 means "never" wherever a user sets it (--eval-every, --set, a config
        # file); only the methods' own default of 0 means "choose for me". (They used to
        # disagree: "about 5 times" through --set, "never" through --eval-every.)
        explicit = eval_every is not None or "eval_every" in overrides
        ev = eval_every if eval_every is not None else self.config.get("eval_every", 0)
        ev = check_int(ev, "eval_every", min_value=0, what="a non-negative integer")
        if not explicit and ev == 0:
            ev = 1 if self.select == "best-val" else (max(1, math.ceil(self.epochs / 5)) if self.epochs else 0)
        self.eval_every = ev
        if "eval_every" in self.config:
            self.config["eval_every"] = ev
        if (self.select == "best-val" or self.patience) and self.epochs:
            what = "select='best-val'" if self.select == "best-val" else "patience"
            if not self.eval_every:
                raise ValueError(f"{what}: needs validation, but eval_every=0 turns it off")
            val = getattr(self.ds, "val", None)
            if val is None or len(val.texts) == 0:
                raise ValueError(f"{what}: needs a validation split, and dataset {self.dataset_name!r} has none")
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = bool(progress)
        self.resume = bool(resume)
        self.overwrite = bool(overwrite)
        self.tensorboard = tensorboard
        self.encode_batch_size = check_positive_int(encode_batch_size, "encode_batch_size")
        self.log = log or _default_log
        self.history: list[dict] = []
        self.selection: dict = {"best_epoch": None, "best_score": None, "bad_validations": 0,
                                "stopped_early_at": None}
        self.method: Method | None = None
        self.train_data: TrainData | None = None
        self.start_epoch = 0
        self.codes: dict = {}
        self._lock: RunLock | None = None
        self._best_state: dict | None = None  # in-memory runs (out_dir=None) keep the best here

    # ------------------------------------------------------------ run-folder files
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "checkpoints" / "last.pt"

    @property
    def best_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "checkpoints" / "best.pt"

    def resolved_config(self) -> dict:
        """The JSON written to ``config.json`` (checked on ``--resume``, read by ``--config``)."""
        import torch

        from ._version import __version__
        from .methods._plugins import loaded_plugins

        return {
            "method": self.method_cls.name, "dataset": self.dataset_name, "nbits": self.nbits,
            "seed": self.seed, "split_seed": self.split_seed, "data_options": self.data_options,
            "data_root": self.data_root, "protocol": self.protocol, "split": self.split,
            "device": self.device, "eval_every": self.eval_every, "select": self.select,
            "patience": self.patience, "config": self.config,
            "plugins": [p.split(" ", 1)[1] for p in loaded_plugins() if p.startswith("--plugin ")],
            # Which image input trains (raw pixels through a CNN, or features) and from which
            # file and key: a release may ship both (DCMH's NUS-WIDE-21: pixels and a 500-d XAll).
            "image_input": getattr(self.ds, "image_input", None),
            "input": getattr(self.ds, "input_description", None),
            "image_dim": (None if getattr(self.ds, "image_input", "features") == "pixels"
                          else self.ds.image_dim if hasattr(self.ds, "image_dim")
                          else int(self.ds.train.images.shape[1])),
            "text_dim": int(self.ds.text_dim) if hasattr(self.ds, "text_dim") else int(self.ds.train.texts.shape[1]),
            "nlabels": int(self.ds.nlabels) if hasattr(self.ds, "nlabels") else int(self.ds.train.labels.shape[1]),
            "hashkit_checkpoint_format": CHECKPOINT_FORMAT,
            "environment": {"hashkit": __version__, "torch": torch.__version__, "numpy": np.__version__,
                            "python": sys.version.split()[0],
                            "device_name": (torch.cuda.get_device_name(self.device)
                                            if self.device.startswith("cuda") else "cpu")},
        }

    # ------------------------------------------------------------ the run folder
    def _open_run_folder(self, cfg: Mapping) -> bool:
        """Lock the folder, clean what a kill left, decide fresh/resume. True: load a checkpoint."""
        out = self.out_dir
        _check_out_folder(out)
        self._lock = RunLock(out, log=self.log).acquire()
        clean_temporaries(out, _TEMP_TARGETS)
        clean_temporaries(out / "checkpoints", _CKPT_TEMP_TARGETS)
        entries = _run_entries(out)
        if not entries:
            return False
        if "config.json" not in entries:
            raise ValueError(f"--out: {out} holds files that are not a hashkit run ({', '.join(entries[:5])}"
                             f"{' ...' if len(entries) > 5 else ''}); choose an empty or new folder")
        if self.overwrite:
            for name in entries:
                p = out / name
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            self.log(f"--overwrite: removed the earlier run in {out}")
            return False
        if not self.resume:
            raise ValueError(f"--out: {out} already holds a run ({_describe_run(out)}); pass --resume to "
                             f"continue it, --overwrite to replace it, or choose another --out")
        self._check_same_config(out / "config.json", cfg)
        if self.checkpoint_path.exists():
            return True
        # The earlier attempt of this same configuration finished no epoch: start it afresh,
        # dropping anything it wrote, so nothing of it mixes with this attempt.
        for name in entries:
            if name != "config.json":
                p = out / name
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        return False

    def _check_same_config(self, path: Path, cfg: Mapping) -> None:
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"resume: {path} cannot be read ({exc})") from None
        if not isinstance(saved, dict):
            raise CheckpointError(f"resume: {path} is not a JSON object")
        _compare_configs(saved, _plain_json(cfg), f"resume: {path} records")

    def close(self) -> None:
        """Release the run folder's lock (done by :meth:`fit` itself; idempotent)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ setup
    def prepare(self) -> Method:
        """Lock the run folder, seed, build the method, call ``setup``; resume if asked.

        Called by :meth:`fit`; call it yourself to drive ``train_step`` by hand (tests), then
        :meth:`close` (or use the Trainer as a context manager) to release the folder.
        """
        if self.method is not None:
            return self.method
        try:
            cfg = self.resolved_config()
            load = self._open_run_folder(cfg) if self.out_dir is not None else False
            _seed_everything(self.seed)
            self.method = self.method_cls(self.nbits, cfg["image_dim"], cfg["text_dim"], cfg["nlabels"],
                                          config=self.config, device=self.device)
            self.method.rng = np.random.default_rng([self.seed, 0x4A5E])
            # Where a method may write its own artefacts (DAPH: proxy_codes.pt); None: nowhere.
            self.method.run_dir = self.out_dir
            tr = self.ds.train
            feats = has_features(tr)
            graph, note = release_graph(self.ds)
            self.train_data = TrainData(tr.images if feats else None, tr.texts, tr.labels, device=self.device,
                                        pixels=None if feats else pixels_nchw(tr), graph=graph,
                                        graph_note=note)
            self.method.setup(self.train_data)
            if load:
                self._load_checkpoint(self.checkpoint_path, cfg)
            elif self.out_dir is not None:
                if cfg["input"]:
                    self.log(f"{self.dataset_name}: {cfg['input']}")
                write_json(self.out_dir / "config.json", cfg)
                write_json(self.out_dir / "split.json", _manifest(self.ds))
                atomic_write_text(self.out_dir / "metrics.jsonl", "")
        except BaseException:
            self.method = None
            self.close()
            raise
        return self.method

    def _load_checkpoint(self, path: Path, cfg: Mapping) -> None:
        state = load_checkpoint(path, map_location=self.device)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint: {path} has format {state.get('format')!r}; this hashkit "
                                  f"reads format {CHECKPOINT_FORMAT}")
        _compare_configs(state.get("run_config", {}), _plain_json(cfg), f"resume: the checkpoint {path} was made")
        _load_method_state(self.method, state["method"], path, optimizers=True)
        self.method.rng.bit_generator.state = state["rng"]["method"]
        _set_rng_state(state["rng"]["global"])
        self.start_epoch = int(state["epoch"]) + 1
        self.history = list(state.get("history", []))
        self.selection.update(state.get("selection", {}))
        if self.select == "best-val" and self.selection["best_epoch"] is not None:
            self._check_best_checkpoint(state)
        # Epoch lines written after this checkpoint belong to the interrupted attempt.
        atomic_write_text(self.out_dir / "metrics.jsonl",
                          "".join(json.dumps(h, default=json_default) + "\n" for h in self.history))
        self._write_csv()
        self.log(f"resuming {self.method_cls.name} ({self.nbits} bits, seed {self.seed}) from {path} "
                 f"at epoch {self.start_epoch + 1}")

    def _check_best_checkpoint(self, last_state: Mapping) -> None:
        """best.pt must hold the epoch last.pt names as best; rebuild it when a kill came between."""
        want = self.selection["best_epoch"]
        have = None
        if self.best_path.exists():
            have = load_checkpoint(self.best_path, map_location="cpu").get("epoch")
        if have == want:
            return
        if want == int(last_state["epoch"]) + 1:
            # The best epoch is the last one checkpointed: last.pt holds its model.
            self._save_best(want, last_state["method"])
            return
        raise CheckpointError(f"checkpoint: {self.best_path} holds epoch {have}, but {self.checkpoint_path} "
                              f"records epoch {want} as the best; the run folder was altered")

    def _save_checkpoint(self, epoch: int) -> None:
        state = {
            "format": CHECKPOINT_FORMAT, "epoch": epoch, "run_config": _plain_json(self.resolved_config()),
            "method": self.method.state_dict(),
            "rng": {"global": _rng_state(), "method": self.method.rng.bit_generator.state},
            "history": self.history, "selection": dict(self.selection),
        }
        save_checkpoint(self.checkpoint_path, state)

    def _save_best(self, epoch_1based: int, method_state: Mapping) -> None:
        save_checkpoint(self.best_path, {"format": CHECKPOINT_FORMAT, "epoch": epoch_1based,
                                         "run_config": _plain_json(self.resolved_config()),
                                         "method": method_state})

    # ------------------------------------------------------------ evaluation
    def validate(self) -> dict:
        """MAP of the validation split against the retrieval set minus the validation rows.

        Returns ``{}`` when the dataset has no validation split. Never touches the test queries.
        """
        val = getattr(self.ds, "val", None)
        if val is None or len(val.texts) == 0:
            return {}
        db = getattr(self.ds, "val_retrieval", None)
        if db is None:
            ret = self.ds.retrieval
            keep = ~np.isin(np.asarray(ret.indices), np.asarray(val.indices))
            db = _Subset(ret, keep)
        vi, vt = _encode_view(self.method, val, self.encode_batch_size)
        ri, rt = _encode_view(self.method, db, self.encode_batch_size)
        rl = np.asarray(db.labels)
        return {"val_map_i2t": _map(vi, rt, val.labels, rl), "val_map_t2i": _map(vt, ri, val.labels, rl)}

    def evaluate_test(self) -> dict:
        """Encode test queries and retrieval set, compute I->T and T->I MAP, save the codes file."""
        qi, qt = _encode_view(self.method, self.ds.query, self.encode_batch_size)
        ri, rt = _encode_view(self.method, self.ds.retrieval, self.encode_batch_size)
        ql, rl = np.asarray(self.ds.query.labels), np.asarray(self.ds.retrieval.labels)
        res = {"method": self.method_cls.name, "dataset": self.dataset_name, "nbits": self.nbits,
               "seed": self.seed, "map_i2t": _map(qi, rt, ql, rl), "map_t2i": _map(qt, ri, ql, rl)}
        from .methods.diagnostics import run_diagnostics

        res["diagnostics"] = run_diagnostics(self.method, {"db_image": ri, "db_text": rt}, rl.shape[1],
                                             self.train_data, log=self.log)
        if self.out_dir is not None:
            from .codefile import save_code_file

            save_code_file(self.out_dir / "codes.npz", query_image=qi, query_text=qt, db_image=ri,
                           db_text=rt, query_labels=ql, db_labels=rl,
                           meta={"method": self.method_cls.name, "dataset": self.dataset_name, "nbits": self.nbits,
                                 "seed": self.seed, "split_seed": self.split_seed,
                                 "config": self.config})
            write_json(self.out_dir / "results.json", res)
        self.codes = {"query_image": qi, "query_text": qt, "db_image": ri, "db_text": rt}
        return res

    # ------------------------------------------------------------ the loop
    def run_epoch(self, epoch: int, bar=None) -> dict:
        """One epoch of training (``begin_epoch``, every ``train_step``, ``end_epoch``).

        No validation and no checkpoint (:meth:`fit` adds those). Returns the epoch record:
        ``epoch`` (1-based), ``steps``, the mean of each scalar ``train_step`` returned (over
        the steps that returned it), what
        ``end_epoch`` returned, and ``seconds``. Call :meth:`prepare` first.

        Raises
        ------
        TrainingDiverged
            A returned value is NaN or infinite (the message names the term and the epoch).
        RuntimeError
            The epoch ran no training step.
        """
        method, train = self.prepare(), self.train_data
        t0 = time.perf_counter()
        method.train_mode(True)
        method.begin_epoch(epoch, train)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}   # steps that reported each key (phases report different keys)
        steps = 0
        for batch in method.batches(epoch, train):
            out = method.train_step(batch, epoch, train) or {}
            steps += 1
            _check_finite(out, epoch, f"step {steps}")
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v)
                counts[k] = counts.get(k, 0) + 1
            if bar is not None and out:
                bar.set_postfix({k: f"{float(v):.4g}" for k, v in out.items()}, refresh=steps % 20 == 0)
        if steps == 0:
            raise RuntimeError(f"training: epoch {epoch + 1} ran no training step ({train.n} training items, "
                               f"batch_size={self.config.get('batch_size')})")
        record = {"epoch": epoch + 1, "steps": steps}
        record.update({k: v / counts[k] for k, v in sums.items()})
        record.update({k: float(v) for k, v in (method.end_epoch(epoch, train) or {}).items()})
        _check_finite({k: v for k, v in record.items() if k not in ("epoch", "steps")}, epoch, "end of epoch")
        record["seconds"] = time.perf_counter() - t0
        return record

    def _validates(self, epoch: int) -> bool:
        return bool(self.eval_every) and ((epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs)

    def _update_selection(self, record: dict) -> bool:
        """Track the best validation MAP; True when this epoch is the new best."""
        if "val_map_i2t" not in record:
            return False
        score = 0.5 * (record["val_map_i2t"] + record["val_map_t2i"])
        sel = self.selection
        if sel["best_score"] is None or score > sel["best_score"]:
            sel.update(best_epoch=record["epoch"], best_score=score, bad_validations=0)
            return True
        sel["bad_validations"] += 1
        return False

    def fit(self, stop_after_epochs: int | None = None) -> dict:
        """Train (or resume) to the last epoch, select an epoch, evaluate on the test queries once.

        Parameters
        ----------
        stop_after_epochs : int, optional
            Stop (as if interrupted) once this many epochs in total have finished, without the
            final evaluation; a later ``Trainer(..., resume=True).fit()`` continues the run.

        Returns
        -------
        dict
            ``map_i2t``, ``map_t2i`` (test MAP over the full ranking of the selected epoch),
            ``method``, ``dataset``, ``nbits``, ``seed``, ``select``, ``selected_epoch``,
            ``epochs_run``, ``stopped_early_at``, ``val_map_i2t``/``val_map_t2i`` of the
            selected epoch (when validated), ``seconds_per_epoch``;
            ``{"stopped_at_epoch": e}`` when stopped.

        Raises
        ------
        TrainingDiverged
            A loss became NaN or infinite (the run folder keeps the previous epoch's checkpoint).
        """
        try:
            return self._fit(stop_after_epochs)
        finally:
            self.close()

    def _fit(self, stop_after_epochs: int | None) -> dict:
        self.prepare()
        if stop_after_epochs is not None and self.start_epoch >= stop_after_epochs:
            return {"stopped_at_epoch": self.start_epoch}
        bar = None
        if self.progress and _isatty(sys.stderr):
            from tqdm.auto import tqdm

            bar = tqdm(total=self.epochs, initial=self.start_epoch, unit="epoch", dynamic_ncols=True,
                       desc=f"{self.method_cls.name} {self.nbits}b", file=sys.stderr)
        tb = self._tensorboard_writer()
        epoch_times = []
        try:
            for epoch in range(self.start_epoch, self.epochs):
                if self.selection["stopped_early_at"] is not None:
                    break
                record = self.run_epoch(epoch, bar)
                epoch_times.append(record["seconds"])
                if self._validates(epoch):
                    record.update(self.validate())
                self.history.append(record)
                improved = self._update_selection(record)
                if self.patience and self.selection["bad_validations"] >= self.patience:
                    self.selection["stopped_early_at"] = epoch + 1
                if self.out_dir is not None:
                    self._save_checkpoint(epoch)
                    if improved and self.select == "best-val":
                        self._save_best(epoch + 1, self.method.state_dict())
                    with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(record, default=json_default) + "\n")
                    self._write_csv()
                elif improved and self.select == "best-val":
                    import copy

                    self._best_state = copy.deepcopy(self.method.state_dict())
                if tb is not None:
                    for k, v in record.items():
                        if k not in ("epoch",) and isinstance(v, (int, float)):
                            tb.add_scalar(k, v, record["epoch"])
                    tb.flush()
                if bar is not None:
                    post = {k: f"{v:.4g}" for k, v in record.items()
                            if k not in ("epoch", "steps", "seconds") and isinstance(v, float)}
                    bar.set_postfix(post, refresh=False)
                    bar.update(1)
                else:
                    self.log(self._epoch_line(record))
                if self.selection["stopped_early_at"] is not None:
                    self.log(f"early stop after epoch {epoch + 1}: no better validation MAP in "
                             f"{self.patience} validation{'s' if self.patience > 1 else ''} "
                             f"(best: epoch {self.selection['best_epoch']}, {self.selection['best_score']:.4f})")
                if stop_after_epochs is not None and epoch + 1 >= stop_after_epochs:
                    return {"stopped_at_epoch": epoch + 1}
        finally:
            if bar is not None:
                bar.close()
            if tb is not None:
                tb.close()
        selected = self._select_final()
        res = self.evaluate_test()
        res.update(selected)
        res["seconds_per_epoch"] = float(np.mean(epoch_times)) if epoch_times else None
        if self.out_dir is not None:
            write_json(self.out_dir / "results.json", res)
        return res

    def _select_final(self) -> dict:
        """Put the selected epoch's model in place; what results.json says about the choice."""
        epochs_run = self.history[-1]["epoch"] if self.history else self.start_epoch
        chosen = epochs_run
        if self.select == "best-val" and self.selection["best_epoch"] is not None:
            chosen = self.selection["best_epoch"]
            if chosen != epochs_run:
                if self.out_dir is not None:
                    best = load_checkpoint(self.best_path, map_location=self.device)
                    _load_method_state(self.method, best["method"], self.best_path, optimizers=False)
                else:
                    _load_method_state(self.method, self._best_state, "the best epoch", optimizers=False)
        out = {"select": self.select, "selected_epoch": chosen, "epochs_run": epochs_run,
               "stopped_early_at": self.selection["stopped_early_at"]}
        rec = next((h for h in self.history if h.get("epoch") == chosen), {})
        for key in ("val_map_i2t", "val_map_t2i"):
            if key in rec:
                out[key] = rec[key]
        return out

    # ------------------------------------------------------------ logs
    def _epoch_line(self, record: Mapping) -> str:
        parts = [f"{self.method_cls.name} {self.nbits}b seed {self.seed}",
                 f"epoch {record['epoch']}/{self.epochs}"]
        for k, v in record.items():
            if k in ("epoch", "steps", "seconds"):
                continue
            parts.append(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}")
        parts.append(f"{record.get('seconds', 0.0):.1f}s")
        return "  ".join(parts)

    def _write_csv(self) -> None:
        if self.out_dir is None:
            return
        cols: list[str] = []
        for h in self.history:
            cols.extend(k for k in h if k not in cols)
        # epoch and steps first, seconds last, the logged terms between in order of appearance
        cols = ([c for c in ("epoch", "steps") if c in cols] + [c for c in cols if c not in ("epoch", "steps",
                "seconds")] + [c for c in ("seconds",) if c in cols])
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for h in self.history:
            w.writerow({k: h.get(k, "") for k in cols})
        atomic_write_text(self.out_dir / "metrics.csv", buf.getvalue())

    def _tensorboard_writer(self):
        if self.out_dir is None or self.tensorboard is False:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if self.tensorboard:
                raise RuntimeError("tensorboard: torch.utils.tensorboard needs the tensorboard package "
                                   "(pip install tensorboard)") from None
            return None
        # purge_step drops events an interrupted attempt logged after its last checkpoint.
        return SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=self.start_epoch + 1)


def _describe_run(folder: Path) -> str:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        what = f"{cfg.get('method')}, {cfg.get('nbits')} bits, seed {cfg.get('seed')}"
    except (OSError, ValueError, AttributeError):
        return "config.json unreadable"
    if (folder / "results.json").exists():
        return what + ", finished"
    n = 0
    try:
        n = sum(1 for line in (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError:
        pass
    return what + f", {n} epoch{'s' if n != 1 else ''} done"


def _compare_configs(saved: Mapping, mine: Mapping, what: str) -> None:
    def strip(d):
        d = {k: v for k, v in d.items() if k not in _RESUME_MAY_DIFFER}
        if isinstance(d.get("config"), dict):
            d["config"] = {k: v for k, v in d["config"].items() if k != "eval_every"}
        return d

    a, b = strip(saved), strip(mine)
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        def show(k):
            if k == "config" and isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
                sub = sorted(j for j in set(a[k]) | set(b[k]) if a[k].get(j) != b[k].get(j))
                return ", ".join(f"config.{j}: {a[k].get(j)!r} vs {b[k].get(j)!r}" for j in sub)
            return f"{k}: {a.get(k)!r} vs {b.get(k)!r}"

        raise ValueError(f"{what} with a different configuration ({'; '.join(show(k) for k in diff)})")


def _load_method_state(method: Method, state: Mapping, origin, optimizers: bool) -> None:
    """``method.load_state_dict`` with the torch size-mismatch essay turned into one line."""
    try:
        method.load_state_dict(state, optimizers=optimizers)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        msg = " ".join(str(exc).split())
        if len(msg) > 300:
            msg = msg[:300] + " ..."
        raise CheckpointError(f"checkpoint: {origin} does not fit {method.name or type(method).__name__} as "
                              f"configured ({type(exc).__name__}: {msg})") from None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _default_log(msg: str) -> None:
    try:
        from tqdm.auto import tqdm

        tqdm.write(msg, file=sys.stdout)
    except ImportError:
        print(msg, flush=True)
    sys.stdout.flush()


# --------------------------------------------------------------------------- config files
def read_config_file(path: str | os.PathLike) -> dict:
    """Read a training config: the ``config.json`` a run wrote, or YAML / TOML with its keys.

    TOML is read with :mod:`tomllib` (Python 3.11+; ``tomli`` on 3.10). YAML needs PyYAML and
    is read with ``yaml.safe_load`` (no Python objects).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, unknown suffix, unparsable text, a missing reader, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config: no such file {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        parse = json.loads
    elif suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise ValueError("--config: reading TOML on Python 3.10 needs tomli (pip install tomli); "
                                 "or give the config as JSON") from None
        parse = tomllib.loads
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"--config: reading YAML ({path.name}) needs PyYAML (pip install pyyaml); "
                             f"or give the config as JSON or TOML") from None
        parse = yaml.safe_load  # plain data only: a !!python/object tag is a parse error
    else:
        raise ValueError(f"--config: expected a .json, .toml, .yaml or .yml file, got {str(path)!r}")
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"--config: {path} is not UTF-8 text ({exc.reason})") from None
    except Exception as exc:  # the parsers' own errors (JSONDecodeError, TOMLDecodeError, YAMLError)
        msg = " ".join(str(exc).split())
        raise ValueError(f"--config: {path} cannot be parsed ({type(exc).__name__}: {msg[:300]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"--config: expected a mapping of options in {path}, got {type(data).__name__}")
    return data


# What a config file may set (config.json's keys; bits/seeds as lists or nbits/seed as one).
_SPEC_DEFAULTS: dict = {
    "method": None, "dataset": "mfeat", "data_root": None, "data_options": {}, "protocol": None,
    "split": None, "bits": [32], "seeds": [0], "split_seed": 0, "device": "cpu", "eval_every": None,
    "select": "last", "patience": None, "config": {}, "plugins": [],
}


def _spec_from_file(data: Mapping, origin: str) -> dict:
    allowed = set(_SPEC_DEFAULTS) | {"nbits", "seed"} | set(_DERIVED_KEYS)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"--config: {origin} has unknown keys {unknown}; expected some of "
                         f"{sorted(set(_SPEC_DEFAULTS) | {'nbits', 'seed'})}")
    spec = {k: v for k, v in data.items() if k in _SPEC_DEFAULTS}
    for one, many in (("nbits", "bits"), ("seed", "seeds")):
        if one in data:
            if many in data:
                raise ValueError(f"--config: {origin} sets both {one!r} and {many!r}; keep one")
            spec[many] = [data[one]]
    for many in ("bits", "seeds"):
        if many in spec and not isinstance(spec[many], list):
            spec[many] = [spec[many]]
    for key in ("data_options", "config"):
        if key in spec and not isinstance(spec[key], dict):
            raise ValueError(f"--config: {origin}: {key!r} must be a mapping, got {spec[key]!r}")
    if "plugins" in spec and not isinstance(spec["plugins"], list):
        raise ValueError(f"--config: {origin}: 'plugins' must be a list of module names")
    return spec


def _parse_set_value(v: str):
    """``--set`` values: ``[1024, 512]`` as JSON (the syntax the list error suggests), else text
    cast by the method's config (``1024,512`` works too)."""
    s = v.strip()
    if s.startswith("["):
        try:
            return json.loads(s)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--set: expected a JSON list like [1024, 512], got {v!r} ({exc.msg})") from None
    return v


def build_spec(args: argparse.Namespace) -> dict:
    """The run specification of ``hashkit train``: defaults <- ``--config`` file <- options given.

    Returns
    -------
    dict with the keys of ``_SPEC_DEFAULTS``.
    """
    import copy

    spec = copy.deepcopy(_SPEC_DEFAULTS)
    if getattr(args, "config", None):
        spec.update(_spec_from_file(read_config_file(args.config), str(args.config)))
    for key, dest in (("method", "method"), ("dataset", "dataset"), ("data_root", "data_root"),
                      ("protocol", "protocol"), ("split", "split"), ("bits", "bits"),
                      ("split_seed", "split_seed"), ("device", "device"), ("eval_every", "eval_every"),
                      ("select", "select"), ("patience", "patience")):
        val = getattr(args, dest, None)
        if val is not None:
            spec[key] = val
    seed, seeds = getattr(args, "seed", None), getattr(args, "seeds", None)
    if seed is not None and seeds is not None:
        raise ValueError("--seed/--seeds: expected one of them, got both")
    if seed is not None:
        spec["seeds"] = [seed]
    elif seeds is not None:
        spec["seeds"] = list(seeds)
    cfg = dict(spec["config"])
    cfg.update({k: _parse_set_value(v) for k, v in _parse_kv(getattr(args, "set", None), "--set").items()})
    for key, val in (("epochs", getattr(args, "epochs", None)), ("batch_size", getattr(args, "batch_size", None)),
                     ("lr", getattr(args, "lr", None))):
        if val is not None:
            cfg[key] = val
    spec["config"] = cfg
    opts = dict(spec["data_options"])
    opts.update({k: _auto_type(v) for k, v in _parse_kv(getattr(args, "data_option", None),
                                                         "--data-option").items()})
    spec["data_options"] = opts
    # Modules are imported only when named on the command line: a config file that names
    # plugins (config.json records them) only feeds the hint when the method is missing.
    spec["file_plugins"] = list(spec.get("plugins", []))
    spec["plugins"] = list(dict.fromkeys(getattr(args, "plugin", None) or []))
    if not spec["method"]:
        raise ValueError("--method: expected a method name (hashkit list-methods), got none"
                         + (f" (nor in {args.config})" if getattr(args, "config", None) else ""))
    from ._validate import check_choice, check_int

    for key in ("bits", "seeds"):
        vals = spec[key]
        if not vals:
            raise ValueError(f"--{key}: expected at least one value")
        for v in vals:
            check_int(v, f"--{key}", min_value=1 if key == "bits" else 0,
                      what="a positive code length" if key == "bits" else "a non-negative seed")
        if len(set(vals)) != len(vals):
            raise ValueError(f"--{key}: expected distinct values, got {vals}")
    check_choice(spec["select"], SELECT_CHOICES, "--select")
    return spec


# --------------------------------------------------------------------------- CLI
def _parse_kv(items: Sequence[str] | None, what: str) -> dict:
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"{what}: expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hashkit train``."""
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="rerun a config: a run's config.json, or YAML/TOML with the same keys; "
                             "options given here override it")
    parser.add_argument("--method", default=None,
                        help=f"method to train ({', '.join(list_methods())}, or a plugin's)")
    parser.add_argument("--plugin", action="append", metavar="MODULE",
                        help="import MODULE first (a method registered outside hashkit; repeatable)")
    parser.add_argument("--dataset", default=None, help="dataset name (default: mfeat, shipped)")
    parser.add_argument("--data-root", default=None, help="folder holding the dataset files")
    parser.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                        help="dataset option passed to hashkit.data.load (repeatable), e.g. n=20000")
    parser.add_argument("--protocol", default=None,
                        help="split protocol of the dataset (hashkit datasets lists them; default its standard one)")
    parser.add_argument("--split", default=None, metavar="MANIFEST",
                        help="reuse a saved split exactly (a run's split.json, or a manifest .json/.npz)")
    parser.add_argument("--bits", action=IntList, default=None, help="code lengths: 16 32 64 or 16,32,64 (default 32)")
    parser.add_argument("--out", default=None,
                        help="output folder; each run goes to OUT/{bits}bits-seed{seed} "
                             "(default OUT: runs/METHOD-DATASET)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run(s) in --out")
    parser.add_argument("--overwrite", action="store_true", help="delete the run(s) already in --out first")
    parser.add_argument("--epochs", type=int, default=None, help="override the method's epochs")
    parser.add_argument("--batch-size", type=int, default=None, help="override the method's batch size")
    parser.add_argument("--lr", type=float, default=None, help="override the method's learning rate")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override any method option (repeatable; lists as 1024,512 or [1024, 512]; "
                             "see hashkit list-methods -v)")
    parser.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    parser.add_argument("--seeds", action=IntList, default=None,
                        help="several training seeds (0 1 2 or 0,1,2), one run folder each (OUT/{bits}bits-seed{seed})")
    parser.add_argument("--split-seed", type=int, default=None, help="dataset split seed (default 0)")
    parser.add_argument("--device", default=None, help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: 1 for small training sets such as mfeat, "
                             "where threads cost more than they gain; otherwise torch's choice)")
    parser.add_argument("--eval-every", type=int, default=None,
                        help="validate every N epochs on the validation split (0 = never; default: every "
                             "epoch with --select best-val, else about 5 times)")
    parser.add_argument("--select", default=None, choices=SELECT_CHOICES,
                        help="the epoch whose model is kept: last (default) or best-val (best validation "
                             "MAP; never the test queries)")
    parser.add_argument("--patience", type=int, default=None,
                        help="stop after N validations without a better validation MAP (default: never)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar: one plain line per epoch (also when not on a terminal)")
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="do not write RUN/tensorboard (written when tensorboard is installed)")


def _print_table(rows: Sequence[Mapping], file=None) -> None:
    file = file or sys.stdout
    print(f"{'method':<12} {'dataset':<10} {'bits':>5} {'seed':>5} {'epoch':>6} {'I->T MAP':>9} {'T->I MAP':>9}",
          file=file)
    for r in rows:
        print(f"{r['method']:<12} {r['dataset']:<10} {r['nbits']:>5} {r['seed']:>5} "
              f"{str(r.get('selected_epoch', '')):>6} {r['map_i2t']:>9.4f} {r['map_t2i']:>9.4f}", file=file)


def run_folder(out: str | os.PathLike, nbits: int, seed: int) -> Path:
    """The run folder of one code length and seed under ``out``: ``OUT/{nbits}bits-seed{seed}``."""
    return Path(out) / f"{nbits}bits-seed{seed}"


def run_train(args: argparse.Namespace) -> int:
    """``hashkit train``: one run per code length and seed, then the test MAP table. Returns 0."""
    try:
        return _run_train(args)
    except OSError as exc:
        if exc.errno is None:  # raised by hashkit with its own message (FileNotFoundError)
            raise
        # A full disk, a read-only folder, a path under a file: one line, not a traceback.
        raise RuntimeError(_os_error_line(exc)) from exc


def _os_error_line(exc: OSError) -> str:
    """``[Errno 28] No space left on device: 'x'`` -> ``cannot write x: No space left on device``."""
    name = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    return f"cannot write {name}: {reason}" if name else f"file system error: {reason}"


def _run_train(args: argparse.Namespace) -> int:
    spec = build_spec(args)
    if getattr(args, "resume", False) and getattr(args, "overwrite", False):
        raise ValueError("--resume/--overwrite: expected one of them, got both")
    from .methods._plugins import load_plugins

    load_plugins(spec["plugins"])
    method_cls = _method_or_hint(spec["method"], spec["file_plugins"])
    threads = getattr(args, "threads", None)
    if threads is not None:
        import torch

        from ._validate import check_positive_int

        torch.set_num_threads(check_positive_int(threads, "--threads"))
    device = resolve_device(spec["device"], "--device")
    out = Path(args.out or f"runs/{spec['method']}-{spec['dataset']}")
    _check_out_folder(out)
    # Check the hyper-parameters before the data is read (a big dataset takes a while).
    _check_config_values(method_cls.resolve_config(spec["config"], dataset=spec["dataset"]),
                         method_cls.default_config(spec["dataset"]))
    from . import data as _data

    ds = _data.load(spec["dataset"], root=spec["data_root"], seed=spec["split_seed"], protocol=spec["protocol"],
                    manifest=spec["split"], **spec["data_options"])
    if threads is None and device == "cpu" and _small_problem(ds):
        import torch

        # Batches of 128 x a few hundred features are too small to split across threads; on a
        # busy 2-core machine two spinning threads made mfeat's DCMH 10x slower (238 s vs 23 s).
        torch.set_num_threads(1)
    rows = []
    for seed in spec["seeds"]:
        for nbits in spec["bits"]:
            folder = run_folder(out, nbits, seed)
            t = Trainer(spec["method"], ds, nbits, folder, config=spec["config"], device=device,
                        seed=seed, split_seed=spec["split_seed"], data_root=spec["data_root"],
                        data_options=spec["data_options"], protocol=spec["protocol"], split=spec["split"],
                        eval_every=spec["eval_every"], select=spec["select"], patience=spec["patience"],
                        progress=not args.no_progress, resume=args.resume,
                        overwrite=getattr(args, "overwrite", False),
                        tensorboard=False if getattr(args, "no_tensorboard", False) else None)
            res = t.fit()
            rows.append(res)
            print(f"{spec['method']} {nbits} bits seed {seed}: I->T {res['map_i2t']:.4f}  T->I {res['map_t2i']:.4f}"
                  f"  (epoch {res.get('selected_epoch')}, {res.get('select')})  -> {folder}", flush=True)
    print()
    _print_table(rows)
    return 0


def _method_or_hint(name: str, recorded: Sequence[str] = ()) -> type:
    try:
        return get_method(name)
    except ValueError as exc:
        hint = (f"pass --plugin {' --plugin '.join(recorded)} (the run recorded these plugins)" if recorded
                else "a method from outside hashkit needs --plugin MODULE, or an installed package "
                     "declaring it under the 'hashkit.methods' entry point")
        raise ValueError(f"{exc}; {hint}") from None


def _small_problem(ds) -> bool:
    """True when the training set holds fewer than 4M feature values (mfeat: 0.3M)."""
    try:
        dim = (ds.image_dim or 0) + ds.text_dim
        return len(ds.train) * dim < 4_000_000
    except (AttributeError, TypeError):
        return False


_TRUE, _FALSE, _NONE = ("true", "yes", "on"), ("false", "no", "off"), ("none", "null")


def _auto_type(v: str):
    """``--data-option`` text -> bool / None / int / float / text.

    ``raw_images=false`` used to arrive as the non-empty string "false", which is true.
    """
    low = v.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    if low in _NONE:
        return None
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v
