"""``hashkit search``: exact top-k or radius search between two code files, from the shell.

The inputs are read like ``hashkit eval`` reads them (any file the field saves codes in), so
the ``codes.npz`` that ``hashkit train`` and ``hashkit encode`` write is searchable directly:

    hashkit search runs/dcmh/32bits runs/dcmh/32bits -k 10              # T->I: db_image, query_text
    hashkit search db.npy queries.npy -r 2 --out hits.npz
    hashkit search base.npy q.npy --packed-bits 64 -k 100                 # FAISS-style uint8 codes

A file holding several code sets needs ``--db-set`` / ``--query-set`` (one of query_image,
query_text, db_image, db_text) unless its side has only one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._io import atomic_path
from .codefile import CODE_FILE_KEYS, DEEPHASH_FILES, load_code_file, parse_keys
from .codes import BITORDERS, Codes, as_codes, from_bytes, load_codes
from .kernels import BACKENDS
from .search import RadiusResult, radius_search, topk

__all__ = ["add_search_arguments", "run_search", "read_codes_arg"]


def add_search_arguments(parser) -> None:
    """Add ``hashkit search``'s arguments to an ``argparse`` parser."""
    parser.add_argument("database", help="database codes: a code file or run folder (as hashkit eval reads), "
                                         "a .npz from hashkit.save_codes, or a .npy array (n, nbits)")
    parser.add_argument("queries", help="query codes, same forms")
    g = parser.add_mutually_exclusive_group(required=True)
    g.add_argument("-k", type=int, help="number of nearest neighbours")
    g.add_argument("-r", "--radius", type=int, help="Hamming radius (inclusive)")
    parser.add_argument("--db-set", default=None, choices=CODE_FILE_KEYS,
                        help="which code set of DATABASE to search (default: its only db_* set)")
    parser.add_argument("--query-set", default=None, choices=CODE_FILE_KEYS,
                        help="which code set of QUERIES to use (default: its only query_* set)")
    parser.add_argument("--keys", default=None, metavar="ROLE=KEY,...",
                        help="key names of a research file outside the alias list (as hashkit eval)")
    parser.add_argument("--packed-bits", type=int, default=None, metavar="N",
                        help="codes are bits packed into integers (FAISS / compactbit uint8, np.packbits, int64 "
                             "words) holding N bits each")
    parser.add_argument("--bitorder", default="little", choices=BITORDERS,
                        help="bit order of packed codes: little (FAISS, compactbit; default) or big (np.packbits)")
    parser.add_argument("--out", help="write the result to this .npz (default: print the first queries)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--threads", type=int, default=None)
    from .distributed._cli import add_scheduler_arguments

    add_scheduler_arguments(parser)


def _pick(sets: dict, path: Path, name: str, side: str, chosen: str | None, option: str) -> Codes:
    if chosen is not None:
        if chosen not in sets:
            raise ValueError(f"{name}: {path} has no {chosen} codes; it has {', '.join(sets) or 'none'}")
        return sets[chosen]
    mine = [k for k in sets if k.startswith(side)]
    if len(mine) == 1:
        return sets[mine[0]]
    if not mine and len(sets) == 1:
        return next(iter(sets.values()))
    raise ValueError(f"{name}: {path} holds the code sets {', '.join(sets)}; choose one with {option} ROLE")


def read_codes_arg(path: str, name: str, *, side: str = "db", chosen: str | None = None,
                   option: str = "--db-set", keys=None, packed_bits: int | None = None,
                   bitorder: str = "little") -> Codes:
    """One code set from a CLI path argument; errors name the argument (``database``, ``queries``)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{name}: file not found: {p}")
    if p.is_file() and p.suffix.lower() == ".npy" and p.name not in DEEPHASH_FILES:
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{name}: {p} is not a readable .npy file ({exc})") from None
        if packed_bits is not None:
            try:
                return from_bytes(arr, packed_bits, bitorder)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{name}: {p}: {exc}") from None
        if np.issubdtype(arr.dtype, np.integer) and arr.size and (arr.min() < -1 or arr.max() > 1) \
                and arr.dtype != np.uint64:
            raise ValueError(f"{name}: {p} holds {arr.dtype} codes with values from {arr.min()} to {arr.max()}: "
                             "bits packed into integers; give the code length with --packed-bits N "
                             "(and --bitorder big for np.packbits)")
        return as_codes(arr, name)
    if p.is_file() and p.suffix.lower() == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                single = "words" in z.files and "format" in z.files
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{name}: {p} is not a readable .npz file ({exc})") from None
        if single:  # one set written by hashkit.save_codes
            return load_codes(p)
    try:
        cf = load_code_file(p, keys=parse_keys(keys), packed_bits=packed_bits, bitorder=bitorder,
                            require_labels=False)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    return _pick(cf.sets(), p, name, side, chosen, option)


def run_search(args) -> int:
    """Run ``hashkit search`` from parsed arguments; returns the exit status."""
    read = dict(keys=args.keys, packed_bits=args.packed_bits, bitorder=args.bitorder)
    db = read_codes_arg(args.database, "database", side="db", chosen=args.db_set, option="--db-set", **read)
    q = read_codes_arg(args.queries, "queries", side="query", chosen=args.query_set, option="--query-set", **read)
    if q.nbits != db.nbits:
        raise ValueError(f"queries and database: expected codes of the same length, got {q.nbits} and "
                         f"{db.nbits} bits")
    if args.k is not None and not 1 <= args.k <= db.n:
        raise ValueError(f"-k: expected an integer between 1 and the database size {db.n}, got {args.k}")
    if args.k is None and args.radius < 0:
        raise ValueError(f"--radius: expected a non-negative integer, got {args.radius}")
    if args.scheduler:
        from .distributed._cli import search_on_cluster

        result = search_on_cluster(args.scheduler, db, q, k=args.k, radius=args.radius)
    elif args.k is not None:
        dist, idx = topk(q, db, args.k, backend=args.backend, nthreads=args.threads)
        result = {"dist": dist, "idx": idx}
    else:
        result = radius_search(q, db, args.radius, backend=args.backend, nthreads=args.threads)._asdict()
    if args.out:
        with atomic_path(args.out, suffix=".npz") as tmp:
            np.savez(tmp, **result)
        print(f"wrote {args.out}")
        return 0
    for i in range(min(q.n, 5)):
        if args.k is not None:
            pairs = zip(result["idx"][i].tolist(), result["dist"][i].tolist())
        else:
            ii, dd = RadiusResult(**result).neighbours(i)
            pairs = zip(ii.tolist(), dd.tolist())
        print(f"query {i}: " + " ".join(f"{a}:{b}" for a, b in list(pairs)[:20]))
    return 0
