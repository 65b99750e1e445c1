"""The SIMD path the kernels run has passed its start-up self-test against the scalar path.

A path that gives any result different from the scalar path's (bit for bit, floats included)
on the self-test's inputs is never used: the kernels fall back to the next lower path and
``hashkit info`` says why. HASHKIT_SIMD_SELFTEST_FAIL=<path> makes a path fail on purpose, so the
fallback is tested on a machine whose paths are all correct.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import simd_paths

core = pytest.importorskip("hashkit._core")


SCRIPT = r"""
import json, numpy as np, hashkit, hashkit._core as core
rng = np.random.default_rng(3)
q = rng.integers(0, 2, (9, 100)).astype(bool); db = rng.integers(0, 2, (3000, 100)).astype(bool)
d = (q[:, None, :] != db[None, :, :]).sum(-1)
order = np.lexsort((np.broadcast_to(np.arange(3000), d.shape), d), axis=1)[:, :25]
dist, idx = hashkit.topk(q, db, 25, backend="cpp")
ok = bool((idx == order).all() and (dist == np.take_along_axis(d, order, 1)).all())
print(json.dumps({"path": core.simd_path(), "note": core.simd_self_test(), "ok": ok,
                  "info": hashkit.info()["backends"]["cpp"]["build_info"]["simd_self_test"]}))
"""


def _run(**env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HASHKIT_SIMD")}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=e, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_running_path_passed_its_self_test():
    r = _run()
    assert r["ok"]
    if r["path"] == "scalar":
        assert "scalar" in r["note"]
    else:
        assert r["note"].endswith(f"{r['path']} passed (every kernel checked against scalar)")
    assert r["info"] == r["note"]


def test_a_failing_path_is_dropped_for_the_next_lower_one():
    best = _run()["path"]
    if best == "scalar":
        pytest.skip("this CPU runs the scalar path only")
    r = _run(HASHKIT_SIMD_SELFTEST_FAIL=best)
    assert r["path"] == simd_paths.lower(core, best)
    assert r["note"].startswith(f"{best} failed (forced by HASHKIT_SIMD_SELFTEST_FAIL); ")
    assert r["ok"], "the fallback path must still give the oracle's answer"


def test_forcing_a_lower_path_tests_that_path():
    r = _run(HASHKIT_SIMD="popcnt")
    assert r["path"] == "popcnt" and r["note"] == "popcnt passed (every kernel checked against scalar)"
    assert r["ok"]
