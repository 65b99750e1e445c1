"""Numba fallback of the multi-index hashing kernels (``mih_build``, ``mih_topk``, ``mih_radius``).

The same functions, arguments, tables and results as the C++ ones in ``csrc/mih.cpp`` (see
``csrc/mih.h`` for the table layout and the step order): both build identical tables (a stable
counting sort per table) and both return the exact answer, so results are identical item for
item; the per-query ``work`` counts (bucket probes plus entries read, or -1 for a linear-scan
fallback) are identical too, because both walk the same steps and check the same budget after
each bucket.

Compiled on first use (``parallel=True, cache=True, nogil=True``), like ``kernels._numba``.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np

from ._numba import KernelSet, _popcount  # noqa: F401  (_popcount: a helper of these kernels)

__all__ = ["mih_build", "mih_topk", "mih_radius"]

AVAILABLE = importlib.util.find_spec("numba") is not None

prange = range

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U32 = np.uint64(32)
_U64M = np.uint64(0xFFFFFFFFFFFFFFFF)
_LOW32 = np.uint64(0xFFFFFFFF)
_MIXA = np.uint64(0xBF58476D1CE4E5B9)
_MIXB = np.uint64(0x94D049BB133111EB)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_MAX_PROBES = float(1 << 24)  # a step with more probes is never enumerated: the scan answers


def _mix(z):
    z ^= z >> _S30
    z *= _MIXA
    z ^= z >> _S27
    z *= _MIXB
    z ^= z >> _S31
    return z


def _key(x, row, w0, sh, two, mask):
    v = x[row, w0] >> np.uint64(sh)
    if two:
        v |= x[row, w0 + 1] << np.uint64(64 - sh)
    return v & mask


def _bucket(key, tbits, hashed):
    if hashed:
        return _mix(key) >> np.uint64(64 - tbits)
    return key


def _binom(n, k):
    if k < 0 or k > n:
        return 0.0
    c = 1.0
    for i in range(k):
        c = c * (n - i) / (i + 1)
    return np.round(c)


def _dist(q, qi, db, i):
    d = np.int64(0)
    for t in range(q.shape[1]):
        d += _popcount(q[qi, t] ^ db[i, t])
    return d


def _build_kernel(db, w0, sh, two, mask, tbits, hashed, base, offsets, ids):
    m = w0.shape[0]
    n = db.shape[0]
    for j in prange(m):
        nb = np.int64(1) << tbits[j]
        b0 = base[j]
        for b in range(nb + 1):
            offsets[b0 + b] = 0
        for i in range(n):
            b = np.int64(_bucket(_key(db, i, w0[j], sh[j], two[j], mask[j]), tbits[j], hashed[j]))
            offsets[b0 + b + 1] += 1
        for b in range(1, nb + 1):
            offsets[b0 + b] += offsets[b0 + b - 1]
        for i in range(n):
            b = np.int64(_bucket(_key(db, i, w0[j], sh[j], two[j], mask[j]), tbits[j], hashed[j]))
            ids[j, offsets[b0 + b]] = i
            offsets[b0 + b] += 1
        for b in range(nb, 0, -1):
            offsets[b0 + b] = offsets[b0 + b - 1]
        offsets[b0] = 0


def _list_values(vals, qk, s, count):
    # The probe values of one step: qk with every s-bit flip mask (Gosper's enumeration). A
    # hashed table can map two of them to one bucket; each candidate is then taken only for the
    # probe that is its key, so nothing is counted twice (as csrc/mih.cpp).
    mask = _U0
    for _ in range(s):
        mask = (mask << _U1) | _U1
    for i in range(count):
        vals[i] = qk ^ mask
        if i + 1 < count:
            c = mask & (~mask + _U1)
            r = mask + c
            mask = (((r ^ mask) >> _U2) // c) | r


def _search_kernel(q, db, nbits, w0, sh, two, mask, lens, tbits, hashed, base, offsets, ids,
                   k, r, limit, nchunk, fill, lims, out_d, out_i, work, status):
    """Per query: k-NN (k > 0) or radius r (k == 0) through the tables.

    status[qi]: 0 answered through the tables, 1 over budget (the caller scans), 2 corrupt
    tables. For radius, ``fill`` False counts hits into lims[qi + 1]; True writes them at
    lims[qi] (sorted by (distance, id)).
    """
    nq = q.shape[0]
    n = db.shape[0]
    m = w0.shape[0]
    maxlen = 0
    for j in range(m):
        maxlen = max(maxlen, lens[j])
    rmax = m * (maxlen + 1)
    for c in prange(nchunk):
        qkeys = np.empty(m, np.uint64)
        found = np.empty(1024, np.uint64)
        buckets = np.empty(1024, np.uint64)
        hist = np.empty(nbits + 1, np.int64)
        for qi in range(c * nq // nchunk, (c + 1) * nq // nchunk):
            for j in range(m):
                qkeys[j] = _key(q, qi, w0[j], sh[j], two[j], mask[j])
            nf = 0
            hist[:] = 0
            tb = nbits if k > 0 else r
            full = False
            wk = np.int64(0)
            st = 0
            last = rmax - 1 if k > 0 else min(r, rmax - 1)
            if k == 0 and limit > 0:  # radius: decide before walking any step
                cost = 0.0
                for s in range(last + 1):
                    j = s % m
                    if s // m <= lens[j]:
                        cost += _binom(lens[j], s // m) * (1.0 + n / 2.0 ** tbits[j])
                    if cost > limit:
                        break
                if cost > limit:
                    st = 1
            step = 0
            while st == 0 and step <= last:
                j = step % m
                s = step // m
                if s <= lens[j]:
                    probes = _binom(lens[j], s)
                    cost = probes * (1.0 + n / 2.0 ** tbits[j])
                    if probes > _MAX_PROBES or (limit > 0 and wk + cost > limit):
                        st = 1
                        break
                    cnt = np.int64(probes)
                    if cnt > buckets.shape[0]:
                        buckets = np.empty(cnt, np.uint64)
                    _list_values(buckets, qkeys[j], s, cnt)
                    b0 = base[j]
                    # The last step of k-NN: an item first seen at step `step` lies at distance
                    # >= step, so with the k-th held at tb == step only smaller ids can still
                    # enter the top k; larger ones are not checked (as csrc/mih.cpp).
                    idcap = n
                    if k > 0 and full and tb == step:
                        held = np.empty(nf, np.uint64)
                        nh = 0
                        for i3 in range(nf):
                            if np.int64(found[i3] >> _U32) <= tb:
                                held[nh] = found[i3]
                                nh += 1
                        idcap = np.int64(np.sort(held[:nh])[k - 1] & _LOW32)
                    for bi in range(cnt):
                        v = buckets[bi]
                        b = np.int64(_bucket(v, tbits[j], hashed[j]))
                        o0 = np.int64(offsets[b0 + b])
                        o1 = np.int64(offsets[b0 + b + 1])
                        if o0 > o1 or o1 > n:
                            st = 2
                            break
                        wk += 1 + (o1 - o0)
                        if nf + (o1 - o0) > found.shape[0]:
                            grown = np.empty(max(2 * found.shape[0], nf + (o1 - o0)), np.uint64)
                            grown[:nf] = found[:nf]
                            found = grown
                        added = nf
                        for o in range(o0, o1):
                            x = np.int64(ids[j, o])
                            if x >= n:
                                st = 2
                                break
                            if x >= idcap:
                                continue
                            d = _dist(q, qi, db, x)
                            if d > tb:
                                continue
                            if hashed[j] and _key(db, x, w0[j], sh[j], two[j], mask[j]) != v:
                                continue
                            first = True
                            for i2 in range(m):
                                if i2 == j:
                                    continue
                                di = _popcount(_key(db, x, w0[i2], sh[i2], two[i2], mask[i2]) ^ qkeys[i2])
                                if (di <= s) if i2 < j else (di < s):
                                    first = False
                                    break
                            if first:
                                found[nf] = (np.uint64(d) << _U32) | np.uint64(x)
                                nf += 1
                        if st != 0:
                            break
                        if k > 0 and nf > added:
                            for i3 in range(added, nf):
                                hist[np.int64(found[i3] >> _U32)] += 1
                            cum = 0
                            for dd in range(tb + 1):
                                cum += hist[dd]
                                if cum >= k:
                                    tb = dd
                                    full = True
                                    break
                        if limit > 0 and wk > limit:
                            st = 1
                            break
                    if st != 0:
                        break
                if k > 0:
                    if full and tb <= step:
                        break
                    if nf > 4 * k + 4096:
                        keep = 0
                        for i3 in range(nf):
                            if np.int64(found[i3] >> _U32) <= tb:
                                found[keep] = found[i3]
                                keep += 1
                        nf = keep
                step += 1
            if st == 0 and k > 0:
                keep = 0
                for i3 in range(nf):
                    if np.int64(found[i3] >> _U32) <= tb:
                        found[keep] = found[i3]
                        keep += 1
                if not full or keep < k:
                    st = 2
                else:
                    top = np.sort(found[:keep])
                    for t in range(k):
                        out_d[qi, t] = np.int32(top[t] >> _U32)
                        out_i[qi, t] = np.int64(top[t] & _LOW32)
            elif st == 0:
                top = np.sort(found[:nf])
                if fill:
                    o = lims[qi]
                    for t in range(nf):  # radius outputs are passed as (1, M)
                        out_d[0, o + t] = np.int32(top[t] >> _U32)
                        out_i[0, o + t] = np.int64(top[t] & _LOW32)
                else:
                    lims[qi + 1] = nf
            status[qi] = st
            work[qi] = wk if st == 0 else -1


def _scan_topk_kernel(q, db, nbits, k, rows, out_d, out_i):
    # The linear scan for the queries in `rows` (budget fallbacks): counting selection.
    n = db.shape[0]
    for t in prange(rows.shape[0]):
        qi = rows[t]
        dist = np.empty(n, np.int64)
        hist = np.zeros(nbits + 2, np.int64)
        for i in range(n):
            d = _dist(q, qi, db, i)
            dist[i] = d
            hist[d] += 1
        cum = 0
        tb = nbits
        for d in range(nbits + 1):
            cum += hist[d]
            if cum >= k:
                tb = d
                break
        start = np.zeros(nbits + 2, np.int64)
        acc = 0
        for d in range(tb + 1):
            start[d] = acc
            acc += hist[d]
        for i in range(n):
            d = dist[i]
            if d <= tb:
                p = start[d]
                if p < k:
                    out_d[qi, p] = d
                    out_i[qi, p] = i
                start[d] = p + 1


def _scan_radius_kernel(q, db, nbits, r, rows, fill, lims, out_d, out_i):
    n = db.shape[0]
    for t in prange(rows.shape[0]):
        qi = rows[t]
        hist = np.zeros(nbits + 2, np.int64)
        for i in range(n):
            d = _dist(q, qi, db, i)
            if d <= r:
                hist[d] += 1
        if not fill:
            lims[qi + 1] = hist.sum()
            continue
        start = np.zeros(nbits + 2, np.int64)
        acc = lims[qi]
        for d in range(nbits + 1):
            start[d] = acc
            acc += hist[d]
        for i in range(n):
            d = _dist(q, qi, db, i)
            if d <= r:
                p = start[d]
                out_d[0, p] = d
                out_i[0, p] = i
                start[d] = p + 1


_HELPERS = ("_popcount", "_mix", "_key", "_bucket", "_binom", "_dist", "_list_values")
_KERNELS = ("_build_kernel", "_search_kernel", "_scan_topk_kernel", "_scan_radius_kernel")
_kernels = KernelSet(globals(), _HELPERS, _KERNELS)


def _jit() -> SimpleNamespace:
    return _kernels.get()


# -- argument checks (the binding's, in Python) -------------------------------------------------
def _words(a, name, width=None):
    if not isinstance(a, np.ndarray) or a.dtype != np.uint64:
        raise TypeError(f"{name}: expected a uint64 NumPy array, got "
                        f"{a.dtype if isinstance(a, np.ndarray) else type(a).__name__}")
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1 or (width is not None and a.shape[1] != width):
        raise ValueError(f"{name}: expected shape (n >= 1, {width or 'W >= 1'}), got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    return a


def _int(x, name, lo, hi=None):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(x).__name__}")
    x = int(x)
    if x < lo or (hi is not None and x > hi):
        raise ValueError(f"{name}: expected an integer in [{lo}, {'inf' if hi is None else hi}], got {x}")
    return x


def _padding(a, nbits, name):
    rem = nbits % 64
    w = a.shape[1]
    bad = np.any(a[:, (nbits + 63) // 64:] != 0) if (nbits + 63) // 64 < w else False
    if rem and np.any(a[:, nbits // 64] >> np.uint64(rem)):
        bad = True
    if bad:
        raise ValueError(f"{name}: code bits beyond nbits = {nbits} must be zero (padding)")


def _subs(desc, nbits, w):
    """The descriptor's columns as arrays, checked like csrc/mih.cpp's mih_subs."""
    if not isinstance(desc, np.ndarray) or desc.dtype != np.int64 or desc.ndim != 2 or desc.shape[1] != 4:
        raise TypeError("desc: expected an int64 NumPy array of shape (m, 4)")
    m = desc.shape[0]
    if m < 1 or m > nbits:
        raise ValueError(f"desc: expected between 1 and nbits = {nbits} substrings, got {m}")
    first, lens, tbits, hashed = (desc[:, i].astype(np.int64) for i in range(4))
    nxt = 0
    for j in range(m):
        at = f"desc: substring {j} "
        if first[j] != nxt:
            raise ValueError(at + f"must start at bit {nxt} (substrings tile the code in order), got {first[j]}")
        if not 1 <= lens[j] <= 64 or first[j] + lens[j] > nbits:
            raise ValueError(at + f"has length {lens[j]}, expected 1..64 bits inside the code")
        if hashed[j] not in (0, 1):
            raise ValueError(at + "hashed flag must be 0 or 1")
        ok = (1 <= tbits[j] <= min(30, lens[j])) if hashed[j] else (tbits[j] == lens[j] <= 30)
        if not ok:
            raise ValueError(at + f"has {tbits[j]} table bits; expected the length (direct, <= 30) or "
                                  "1..min(30, length) (hashed)")
        nxt = first[j] + lens[j]
    if nxt != nbits:
        raise ValueError(f"desc: the substrings cover {nxt} bits, expected all nbits = {nbits}")
    w0 = first // 64
    sh = first % 64
    two = (sh + lens) > 64
    if np.any(w0 + two >= w):
        raise ValueError("desc: a substring lies beyond the code words")
    mask = np.array([_U64M if ln == 64 else np.uint64((1 << int(ln)) - 1) for ln in lens], np.uint64)
    size = (np.int64(1) << tbits) + 1
    base = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    return SimpleNamespace(m=m, w0=w0, sh=sh, two=two, mask=mask, lens=lens, tbits=tbits,
                           hashed=hashed.astype(np.bool_), base=base, noffsets=int(size.sum()))


def _tables(db, nbits, desc, offsets, ids):
    s = _subs(desc, nbits, db.shape[1])
    if db.shape[0] >= 1 << 32:
        raise ValueError(f"db: MIH tables hold fewer than 2^32 items, got {db.shape[0]}")
    if not isinstance(offsets, np.ndarray) or offsets.dtype != np.uint32 or offsets.ndim != 1:
        raise TypeError("offsets: expected a 1-D uint32 NumPy array")
    if offsets.shape[0] != s.noffsets:
        raise ValueError(f"offsets: expected {s.noffsets} entries for these tables, got {offsets.shape}")
    if not isinstance(ids, np.ndarray) or ids.dtype != np.uint32 or ids.ndim != 2:
        raise TypeError("ids: expected a 2-D uint32 NumPy array")
    if ids.shape != (s.m, db.shape[0]):
        raise ValueError(f"ids: expected shape ({s.m}, {db.shape[0]}), got {ids.shape}")
    return s


class _threads:
    def __init__(self, nthreads, rows):
        self.nthreads, self.rows = nthreads, rows

    def __enter__(self):
        numba = _jit().numba
        self.prev = numba.get_num_threads()
        most = numba.config.NUMBA_NUM_THREADS
        n = most if self.nthreads == 0 else min(self.nthreads, most)
        n = max(1, min(n, self.rows))
        numba.set_num_threads(n)
        return n

    def __exit__(self, *exc):
        _jit().numba.set_num_threads(self.prev)


_BAD = "tables: the MIH tables do not match the codes (an offset or id out of range); rebuild them"


def mih_build(db, nbits, desc, nthreads=0):
    """Multi-index hashing tables: ``(offsets uint32, ids uint32 (m, N))`` (layout: csrc/mih.h)."""
    _words(db, "db")
    nbits = _int(nbits, "nbits", 1, 64 * db.shape[1])
    nthreads = _int(nthreads, "nthreads", 0)
    s = _subs(desc, nbits, db.shape[1])
    if db.shape[0] >= 1 << 32:
        raise ValueError(f"db: MIH tables hold fewer than 2^32 items, got {db.shape[0]}")
    _padding(db, nbits, "db")
    offsets = np.zeros(s.noffsets, np.uint32)
    ids = np.zeros((s.m, db.shape[0]), np.uint32)
    with _threads(nthreads, s.m):
        _jit()._build_kernel(db, s.w0, s.sh, s.two, s.mask, s.tbits, s.hashed, s.base, offsets, ids)
    return offsets, ids


def _nchunk(nq, nt):
    return max(1, min(nq, 4 * nt))


def mih_topk(q, db, nbits, desc, offsets, ids, k, limit, nthreads=0):
    """Exact k-NN through MIH tables: ``(dist int32 (Q, k), idx int64 (Q, k), work int64 (Q,))``."""
    _words(q, "q")
    _words(db, "db", q.shape[1])
    nbits = _int(nbits, "nbits", 1, 64 * q.shape[1])
    s = _tables(db, nbits, desc, offsets, ids)
    k = _int(k, "k", 1, db.shape[0])
    limit = _int(limit, "limit", -(2**63))
    nthreads = _int(nthreads, "nthreads", 0)
    _padding(q, nbits, "q")
    _padding(db, nbits, "db")
    nq = q.shape[0]
    out_d = np.zeros((nq, k), np.int32)
    out_i = np.zeros((nq, k), np.int64)
    work = np.zeros(nq, np.int64)
    status = np.zeros(nq, np.int8)
    jit = _jit()
    with _threads(nthreads, nq) as nt:
        jit._search_kernel(q, db, nbits, s.w0, s.sh, s.two, s.mask, s.lens, s.tbits, s.hashed, s.base,
                           offsets, ids, k, 0, limit, _nchunk(nq, nt), False, np.zeros(1, np.int64),
                           out_d, out_i, work, status)
        rows = np.flatnonzero(status != 0).astype(np.int64)
        if rows.size:
            jit._scan_topk_kernel(q, db, nbits, k, rows, out_d, out_i)
    if np.any(status == 2):
        raise ValueError(_BAD)
    return out_d, out_i, work


def mih_radius(q, db, nbits, desc, offsets, ids, r, limit, nthreads=0):
    """Exact radius search through MIH tables: ``(lims, idx, dist, work)``."""
    _words(q, "q")
    _words(db, "db", q.shape[1])
    nbits = _int(nbits, "nbits", 1, 64 * q.shape[1])
    s = _tables(db, nbits, desc, offsets, ids)
    r = min(_int(r, "r", 0), nbits)
    limit = _int(limit, "limit", -(2**63))
    nthreads = _int(nthreads, "nthreads", 0)
    _padding(q, nbits, "q")
    _padding(db, nbits, "db")
    nq = q.shape[0]
    lims = np.zeros(nq + 1, np.int64)
    work = np.zeros(nq, np.int64)
    status = np.zeros(nq, np.int8)
    jit = _jit()
    args = (s.w0, s.sh, s.two, s.mask, s.lens, s.tbits, s.hashed, s.base, offsets, ids)
    none_d, none_i = np.zeros((1, 1), np.int32), np.zeros((1, 1), np.int64)
    with _threads(nthreads, nq) as nt:
        jit._search_kernel(q, db, nbits, *args, 0, r, limit, _nchunk(nq, nt), False, lims, none_d, none_i,
                           work, status)
        if np.any(status == 2):
            raise ValueError(_BAD)
        rows = np.flatnonzero(status != 0).astype(np.int64)
        if rows.size:
            jit._scan_radius_kernel(q, db, nbits, r, rows, False, lims, none_d, none_i)
        np.cumsum(lims, out=lims)
        out_d = np.zeros((1, int(lims[-1])), np.int32)
        out_i = np.zeros((1, int(lims[-1])), np.int64)
        status2 = np.zeros(nq, np.int8)
        work2 = np.zeros(nq, np.int64)
        jit._search_kernel(q, db, nbits, *args, 0, r, limit, _nchunk(nq, nt), True, lims, out_d, out_i,
                           work2, status2)
        if rows.size:
            jit._scan_radius_kernel(q, db, nbits, r, rows, True, lims, out_d, out_i)
    return lims, out_i[0], out_d[0], work
