"""One training loop for every method: seeding, devices, progress, checkpoints, evaluation.

The :class:`Trainer` drives a :class:`hashkit.methods.base.Method` (see that module for the
hooks). A run directory holds::

    RUN_DIR/config.json        resolved configuration (method, dataset, bits, seeds, hyper-parameters)
    RUN_DIR/split.json         the dataset's split manifest
    RUN_DIR/metrics.jsonl      one JSON line per epoch (losses, validation MAP, seconds)
    RUN_DIR/checkpoints/last.pt  written atomically at the end of every epoch
    RUN_DIR/codes.npz          final codes of the test queries and the retrieval set (``hashkit eval``)
    RUN_DIR/results.json       final test MAP (I->T, T->I), computed once at the end

``hashkit train`` with several ``--bits`` writes one such directory per code length under
``--out`` (``OUT/16bits``, ``OUT/32bits`` ...).

Validation during training queries the validation split (drawn from the retrieval set) against
the retrieval set with the validation rows removed; the test queries are encoded and evaluated
once, after the last epoch.

Examples
--------
>>> from hashkit.train import Trainer
>>> t = Trainer("dcmh", "mfeat", nbits=32, out_dir="runs/dcmh-mfeat/32bits")   # doctest: +SKIP
>>> result = t.fit()                                                              # doctest: +SKIP
>>> result["map_i2t"], result["map_t2i"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._io import json_default, write_json
from ._validate import check_device
from .encode import has_features, encode, pixels_nchw
from .methods import get_method, list_methods
from .methods.base import Method, TrainData

__all__ = ["Trainer", "add_train_arguments", "run_train"]

CHECKPOINT_FORMAT = 1


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

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


# --------------------------------------------------------------------------- trainer
class Trainer:
    """Train one method at one code length on one dataset, into one run directory.

    Parameters
    ----------
    method : str or Method subclass
        A registered name (``hashkit.methods.list_methods()``) or the class itself.
    dataset : str or dataset object
        A name for ``hashkit.data.load(name, root=data_root, seed=split_seed, **data_options)``,
        or an already loaded dataset (``query``, ``retrieval``, ``train``, ``val`` views, each
        with ``images`` float32 ``(n, d)``, ``texts`` float32 ``(n, t)``, ``labels`` uint8
        ``(n, L)``; plus ``name``, ``manifest``).
    nbits : int
        Code length.
    out_dir : path, optional
        Run directory; ``None`` keeps everything in memory (no checkpoints, no files).
    config : mapping, optional
        Overrides of the method's defaults (``method.default_config(dataset_name)``).
    device : {"cpu", "cuda"}
    seed : int
        Seeds python, NumPy, torch and the method's generator; same seed, same run (on CPU).
    split_seed : int
        Seed of the dataset split (when ``dataset`` is a name).
    eval_every : int, optional
        Validate every this many epochs (and after the last); 0 = never; ``None`` = the
        config's ``eval_every``, where 0 means "about five times per run".
    progress : bool
        Show a tqdm bar with the live loss.
    resume : bool
        Continue from ``out_dir/checkpoints/last.pt`` if it exists (the configuration must match).
    encode_batch_size : int
    log : callable
        Where one-line messages go (default: ``tqdm.write`` to stdout).

    Attributes
    ----------
    method : Method
        The method instance (networks on ``device``).
    history : list[dict]
        One record per finished epoch (the lines of ``metrics.jsonl``).

    Examples
    --------
    >>> t = Trainer("cca-itq", "mfeat", nbits=32, out_dir=None, progress=False)   # doctest: +SKIP
    >>> t.fit()["map_i2t"]                                                          # doctest: +SKIP
    """

    def __init__(self, method: str | type, dataset: Any, nbits: int, out_dir: str | os.PathLike | None = None,
                 *, config: Mapping | None = None, device: str = "cpu", seed: int = 0, split_seed: int = 0,
                 data_root: str | None = None, data_options: Mapping | None = None,
                 eval_every: int | None = None, progress: bool = True, resume: bool = False,
                 encode_batch_size: int = 1024, log: Callable[[str], None] | None = None):
        from ._validate import check_int, check_positive_int

        self.method_cls = get_method(method) if isinstance(method, str) else method
        if not (isinstance(self.method_cls, type) and issubclass(self.method_cls, Method)):
            raise TypeError(f"method: expected a registered name or a Method subclass, got {method!r}")
        self.nbits = check_positive_int(nbits, "nbits")
        self.seed = check_int(seed, "seed", min_value=0, what="a non-negative integer")
        self.split_seed = check_int(split_seed, "split_seed", min_value=0, what="a non-negative integer")
        self.device = check_device(device)
        self.data_options = dict(data_options or {})
        if isinstance(dataset, str):
            from . import data as _data

            self.dataset_name = dataset
            self.ds = _data.load(dataset, root=data_root, seed=self.split_seed, **self.data_options)
        else:
            self.ds = dataset
            self.dataset_name = getattr(dataset, "name", type(dataset).__name__)
        self.config = self.method_cls.resolve_config(dict(config or {}), dataset=self.dataset_name)
        self.epochs = check_int(self.config["epochs"], "config['epochs']", min_value=0,
                                what="a non-negative number of epochs")
        ev = self.config.get("eval_every", 0) if eval_every is None else eval_every
        if eval_every is None and not ev:
            ev = max(1, math.ceil(self.epochs / 5)) if self.epochs else 0
        self.eval_every = check_int(ev, "eval_every", min_value=0, what="a non-negative integer")
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = bool(progress)
        self.resume = bool(resume)
        self.encode_batch_size = check_positive_int(encode_batch_size, "encode_batch_size")
        self.log = log or _default_log
        self.history: list[dict] = []
        self.method: Method | None = None
        self.train_data: TrainData | None = None
        self.start_epoch = 0
        self.codes: dict = {}

    # ------------------------------------------------------------ run-directory files
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "checkpoints" / "last.pt"

    def resolved_config(self) -> dict:
        """The JSON written to ``config.json`` (and checked on ``--resume``)."""
        return {
            "method": self.method_cls.name, "dataset": self.dataset_name, "nbits": self.nbits,
            "seed": self.seed, "split_seed": self.split_seed, "data_options": self.data_options,
            "device": self.device, "eval_every": self.eval_every, "config": self.config,
            "image_dim": (self.ds.image_dim if hasattr(self.ds, "image_dim")
                          else int(self.ds.train.images.shape[1])),
            "text_dim": int(self.ds.text_dim) if hasattr(self.ds, "text_dim") else int(self.ds.train.texts.shape[1]),
            "nlabels": int(self.ds.nlabels) if hasattr(self.ds, "nlabels") else int(self.ds.train.labels.shape[1]),
            "hashkit_checkpoint_format": CHECKPOINT_FORMAT,
        }

    # ------------------------------------------------------------ setup
    def prepare(self) -> Method:
        """Seed, build the method, wrap the training split, call ``setup``; resume if asked.

        Called by :meth:`fit`; call it yourself to drive ``train_step`` by hand (tests).
        """
        if self.method is not None:
            return self.method
        cfg = self.resolved_config()
        _seed_everything(self.seed)
        self.method = self.method_cls(self.nbits, cfg["image_dim"], cfg["text_dim"], cfg["nlabels"],
                                      config=self.config, device=self.device)
        self.method.rng = np.random.default_rng([self.seed, 0x4A5E])
        # Where a method may write its own artefacts (DAPH: proxy_codes.pt); None: nowhere.
        self.method.run_dir = self.out_dir
        tr = self.ds.train
        feats = has_features(tr)
        self.train_data = TrainData(tr.images if feats else None, tr.texts, tr.labels, device=self.device,
                                    pixels=None if feats else pixels_nchw(tr))
        self.method.setup(self.train_data)
        ckpt = self.checkpoint_path
        if self.resume and ckpt is not None and ckpt.exists():
            self._load_checkpoint(ckpt, cfg)
        elif self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.out_dir / "config.json", cfg)
            write_json(self.out_dir / "split.json", _manifest(self.ds))
            metrics = self.out_dir / "metrics.jsonl"
            if metrics.exists():
                metrics.unlink()
        return self.method

    def _load_checkpoint(self, path: Path, cfg: Mapping) -> None:
        import torch

        state = torch.load(path, map_location=self.device, weights_only=False)
        saved = json.loads(json.dumps(state["run_config"], default=json_default))
        mine = json.loads(json.dumps(cfg, default=json_default))
        # Device and validation frequency may change between attempts; nothing else may.
        diff = sorted(k for k in set(saved) | set(mine)
                      if k not in ("device", "eval_every") and saved.get(k) != mine.get(k))
        if diff:
            raise ValueError(f"resume: the checkpoint {path} was made with a different configuration "
                             f"({', '.join(f'{k}: {saved.get(k)!r} vs {mine.get(k)!r}' for k in diff)})")
        self.method.load_state_dict(state["method"])
        self.method.rng.bit_generator.state = state["rng"]["method"]
        _set_rng_state(state["rng"]["global"])
        self.start_epoch = int(state["epoch"]) + 1
        self.history = list(state.get("history", []))
        # Epoch lines written after this checkpoint belong to the interrupted attempt.
        metrics = self.out_dir / "metrics.jsonl"
        from ._io import atomic_write_text

        atomic_write_text(metrics, "".join(json.dumps(h, default=json_default) + "\n" for h in self.history))
        self.log(f"resuming {self.method_cls.name} ({self.nbits} bits) from {path} at epoch {self.start_epoch + 1}")

    def _save_checkpoint(self, epoch: int) -> None:
        import torch

        from ._io import atomic_path

        state = {
            "format": CHECKPOINT_FORMAT, "epoch": epoch, "run_config": self.resolved_config(),
            "method": self.method.state_dict(),
            "rng": {"global": _rng_state(), "method": self.method.rng.bit_generator.state},
            "history": self.history,
        }
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(state, tmp)

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
        ``epoch`` (1-based), ``steps``, the mean of each scalar ``train_step`` returned, what
        ``end_epoch`` returned, and ``seconds``. Call :meth:`prepare` first.
        """
        method, train = self.prepare(), self.train_data
        t0 = time.perf_counter()
        method.train_mode(True)
        method.begin_epoch(epoch, train)
        sums: dict[str, float] = {}
        steps = 0
        for batch in method.batches(epoch, train):
            out = method.train_step(batch, epoch, train) or {}
            steps += 1
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if bar is not None and out:
                bar.set_postfix({k: f"{float(v):.4g}" for k, v in out.items()}, refresh=steps % 20 == 0)
        record = {"epoch": epoch + 1, "steps": steps}
        record.update({k: v / max(steps, 1) for k, v in sums.items()})
        record.update({k: float(v) for k, v in (method.end_epoch(epoch, train) or {}).items()})
        record["seconds"] = time.perf_counter() - t0
        return record

    def fit(self, stop_after_epochs: int | None = None) -> dict:
        """Train (or resume) to the last epoch, then evaluate on the test queries once.

        Parameters
        ----------
        stop_after_epochs : int, optional
            Stop (as if interrupted) once this many epochs in total have finished, without the
            final evaluation; a later ``Trainer(..., resume=True).fit()`` continues the run.

        Returns
        -------
        dict
            ``map_i2t``, ``map_t2i`` (test MAP over the full ranking), ``method``, ``dataset``,
            ``nbits``, ``seed``, ``seconds_per_epoch``; ``{"stopped_at_epoch": e}`` when stopped.
        """
        self.prepare()
        if stop_after_epochs is not None and self.start_epoch >= stop_after_epochs:
            return {"stopped_at_epoch": self.start_epoch}
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.epochs, initial=self.start_epoch, unit="epoch", dynamic_ncols=True,
                       desc=f"{self.method_cls.name} {self.nbits}b", file=sys.stderr)
        epoch_times = []
        try:
            for epoch in range(self.start_epoch, self.epochs):
                record = self.run_epoch(epoch, bar)
                epoch_times.append(record["seconds"])
                if self.eval_every and ((epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs):
                    record.update(self.validate())
                self.history.append(record)
                if self.out_dir is not None:
                    self._save_checkpoint(epoch)
                    with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(record, default=json_default) + "\n")
                if bar is not None:
                    post = {k: f"{v:.4g}" for k, v in record.items()
                            if k not in ("epoch", "steps", "seconds") and isinstance(v, float)}
                    bar.set_postfix(post, refresh=False)
                    bar.update(1)
                if stop_after_epochs is not None and epoch + 1 >= stop_after_epochs:
                    return {"stopped_at_epoch": epoch + 1}
        finally:
            if bar is not None:
                bar.close()
        res = self.evaluate_test()
        res["seconds_per_epoch"] = float(np.mean(epoch_times)) if epoch_times else None
        if self.out_dir is not None:
            write_json(self.out_dir / "results.json", res)
        return res


def _default_log(msg: str) -> None:
    try:
        from tqdm.auto import tqdm

        tqdm.write(msg)
    except ImportError:
        print(msg)


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
    parser.add_argument("--method", required=True, choices=list_methods(), help="method to train")
    parser.add_argument("--dataset", default="mfeat", help="dataset name (default: mfeat, shipped)")
    parser.add_argument("--data-root", default=None, help="folder holding the dataset files")
    parser.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                        help="dataset option passed to hashkit.data.load (repeatable), e.g. n=20000")
    parser.add_argument("--bits", type=int, nargs="+", default=[32], help="code lengths (one sub-run each)")
    parser.add_argument("--out", default=None, help="run directory (default: runs/METHOD-DATASET)")
    parser.add_argument("--epochs", type=int, default=None, help="override the method's epochs")
    parser.add_argument("--batch-size", type=int, default=None, help="override the method's batch size")
    parser.add_argument("--lr", type=float, default=None, help="override the method's learning rate")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override any method option (repeatable; see hashkit list-methods -v)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--split-seed", type=int, default=0, help="dataset split seed (default 0)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: 1 for small training sets such as mfeat, "
                             "where threads cost more than they gain; otherwise torch's choice)")
    parser.add_argument("--eval-every", type=int, default=None,
                        help="validate every N epochs on the validation split (0 = never)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _print_table(rows: Sequence[Mapping], file=None) -> None:
    file = file or sys.stdout
    print(f"{'method':<12} {'dataset':<10} {'bits':>5} {'I->T MAP':>9} {'T->I MAP':>9}", file=file)
    for r in rows:
        print(f"{r['method']:<12} {r['dataset']:<10} {r['nbits']:>5} {r['map_i2t']:>9.4f} {r['map_t2i']:>9.4f}",
              file=file)


def run_train(args: argparse.Namespace) -> int:
    """``hashkit train``: one sub-run per code length, then the test MAP table. Returns 0."""
    threads = getattr(args, "threads", None)
    if threads is not None:
        import torch

        from ._validate import check_positive_int

        torch.set_num_threads(check_positive_int(threads, "--threads"))
    overrides = _parse_kv(args.set, "--set")
    for key, val in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr)):
        if val is not None:
            overrides[key] = val
    out = Path(args.out or f"runs/{args.method}-{args.dataset}")
    data_options = _parse_kv(getattr(args, "data_option", None), "--data-option")
    data_options = {k: _auto_type(v) for k, v in data_options.items()}
    from . import data as _data

    ds = _data.load(args.dataset, root=args.data_root, seed=args.split_seed, **data_options)
    if threads is None and args.device == "cpu" and _small_problem(ds):
        import torch

        # Batches of 128 x a few hundred features are too small to split across threads; on a
        # busy 2-core machine two spinning threads made mfeat's DCMH 10x slower (238 s vs 23 s).
        torch.set_num_threads(1)
    rows = []
    for nbits in args.bits:
        t = Trainer(args.method, ds, nbits, out / f"{nbits}bits", config=overrides, device=args.device,
                    seed=args.seed, split_seed=args.split_seed, data_options=data_options,
                    eval_every=args.eval_every, progress=not args.no_progress, resume=args.resume)
        res = t.fit()
        rows.append(res)
        print(f"{args.method} {nbits} bits: I->T {res['map_i2t']:.4f}  T->I {res['map_t2i']:.4f}  "
              f"-> {out / f'{nbits}bits'}", flush=True)
    print()
    _print_table(rows)
    return 0


def _small_problem(ds) -> bool:
    """True when the training set holds fewer than 4M feature values (mfeat: 0.3M)."""
    try:
        dim = (ds.image_dim or 0) + ds.text_dim
        return len(ds.train) * dim < 4_000_000
    except (AttributeError, TypeError):
        return False


def _auto_type(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


