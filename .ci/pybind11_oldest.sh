#!/usr/bin/env bash
# Build hashkit._core once against the OLDEST pybind11 that pyproject.toml admits, and import-test
# it. The normal build takes the newest pybind11, so a floor that no longer compiles (issue 14:
# `py::str(const dtype&)` is ambiguous before 3.1) would otherwise go unnoticed.
#
#   .ci/pybind11_oldest.sh            # the floor read from pyproject.toml's build-system requires
#   .ci/pybind11_oldest.sh 2.13.6     # any other version (the matrix in the issue-14 report)
#
# Into its own folder (build/ci-pybind11-<version>: pybind11 via `pip install --target`, CMake's
# build tree), so neither the developer's editable build nor the installed pybind11 is touched.
# Configures with CMake directly (no scikit-build-core), CPU only (HASHKIT_CUDA=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}

version=${1:-$("$py" - <<'EOF'
import re, tomllib
req = tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]
floor = [m.group(1) for r in req if (m := re.fullmatch(r"pybind11\s*>=\s*([0-9][0-9.]*)", r.strip()))]
if len(floor) != 1:
    raise SystemExit(f"pyproject.toml: expected one 'pybind11>=X' in build-system requires, got {req}")
print(floor[0] if floor[0].count(".") >= 2 else floor[0] + ".0")
EOF
)}
dir=build/ci-pybind11-$version
echo "== hashkit._core against pybind11 $version in $dir"
if [ ! -f "$dir/pkgs/pybind11/__init__.py" ]; then
    "$py" -m pip install --quiet --no-deps --target "$dir/pkgs" "pybind11==$version"
fi
hk_version=$("$py" -c "import re; print(re.search(r'__version__\s*=\s*[\"\']([^\"\']+)', open('hashkit/_version.py').read()).group(1))")
# CMake from PATH, else the PyPI one into this environment (a clean CI machine may have only the
# copy that pip's isolated build environment used and removed).
command -v cmake >/dev/null || "$py" -m pip install --quiet "cmake>=3.18" ninja
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B "$dir/cmake" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DHASHKIT_CUDA=OFF \
    -DSKBUILD_PROJECT_VERSION="$hk_version" -DPython_EXECUTABLE="$(command -v "$py")" \
    -Dpybind11_DIR="$PWD/$dir/pkgs/pybind11/share/cmake/pybind11" >"$dir/configure.log" \
    || { cat "$dir/configure.log"; exit 1; }
cmake --build "$dir/cmake" --target _core -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
so=$(find "$dir/cmake" -maxdepth 1 -name '_core*' \( -name '*.so' -o -name '*.pyd' \) | head -n1)
[ -n "$so" ] || { echo "no _core module in $dir/cmake"; exit 1; }

# Import the fresh module under a name of its own (the installed hashkit._core stays loaded as
# the reference) and check that it was built with this pybind11 and computes what it computes.
"$py" - "$so" "$version" <<'EOF'
import importlib.util, sys
import numpy as np
from hashkit import _core as ref

spec = importlib.util.spec_from_file_location("hk_pybind11_floor._core", sys.argv[1])
core = importlib.util.module_from_spec(spec)
spec.loader.exec_module(core)
assert core.build_info()["pybind11"] == sys.argv[2], (core.build_info(), sys.argv[2])
rng = np.random.default_rng(0)
q = rng.integers(0, 2**63, (7, 2), dtype=np.uint64)
db = rng.integers(0, 2**63, (3000, 2), dtype=np.uint64)
ql = rng.integers(0, 8, (7, 1), dtype=np.uint64)
dbl = rng.integers(0, 8, (3000, 1), dtype=np.uint64)
cut = np.array([1, 10, 3000], np.int64)
for f, args in [("hamming", (q, db)), ("topk", (q, db, 128, 25)), ("radius", (q, db, 128, 60)),
                ("hist_stats", (q, db, ql, dbl, 128)), ("rank_stats", (q, db, ql, dbl, 128, cut, 5, True, 3))]:
    a, b = getattr(core, f)(*args), getattr(ref, f)(*args)
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,)) if isinstance(a, np.ndarray) else (
        tuple(a[k] for k in sorted(a)), tuple(b[k] for k in sorted(b)))
    assert all(np.array_equal(x, y) for x, y in zip(a, b)), f
for bad, exc, words in [(q.astype(np.float64), TypeError, "expected dtype uint64"),  # the dtype message
                        (q[:, :1], ValueError, "C-contiguous"), (2**70, ValueError, "r: ")]:
    try:
        core.radius(bad, db, 128, 3) if not isinstance(bad, int) else core.radius(q, db, 128, -bad)
    except exc as e:
        assert words in str(e), e
    else:
        raise AssertionError(f"no {exc.__name__} for {words}")
print(f"ok: hashkit._core builds, imports and agrees with the installed build on pybind11 {sys.argv[2]}")
EOF
