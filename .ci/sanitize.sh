#!/usr/bin/env bash
# Build hashkit._core a second time with AddressSanitizer + UndefinedBehaviorSanitizer
# (CMake option HASHKIT_SANITIZE=ON) into build/ci-sanitize, and run the kernel, binding,
# bad-input and API-fuzz tests against that build. Any sanitizer report fails the run.
#
#   .ci/sanitize.sh                       # the default test files
#   .ci/sanitize.sh tests/test_kernels.py -k topk      # other pytest arguments
#
# How the sanitized module is used without touching the developer's install: the overlay of
# .ci/core_overlay.sh in build/ci-sanitize/overlay answers `hashkit._core` with the sanitized
# file; everything else is the installed package. libasan is preloaded into the
# interpreter, as ASan requires for a module loaded into a program built without it; leak checks
# are off because CPython's own allocations at exit are not ours to fix.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
dir=build/ci-sanitize

pb_dir=$("$py" -m pybind11 --cmakedir 2>/dev/null || true)
if [ -z "$pb_dir" ]; then  # a build-isolated install leaves no pybind11 behind: a private copy
    [ -f "$dir/pkgs/pybind11/__init__.py" ] || "$py" -m pip install --quiet --no-deps --target "$dir/pkgs" "pybind11>=3.1"
    pb_dir=$PWD/$dir/pkgs/pybind11/share/cmake/pybind11
fi
hk_version=$("$py" -c "import re; print(re.search(r'__version__\s*=\s*[\"\']([^\"\']+)', open('hashkit/_version.py').read()).group(1))")
# CMake from PATH, else the PyPI one into this environment (a clean CI machine may have only the
# copy that pip's isolated build environment used and removed).
command -v cmake >/dev/null || "$py" -m pip install --quiet "cmake>=3.18" ninja
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
mkdir -p "$dir"
cmake -S . -B "$dir/cmake" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHASHKIT_CUDA=OFF \
    -DHASHKIT_SANITIZE=ON -DSKBUILD_PROJECT_VERSION="$hk_version" \
    -DPython_EXECUTABLE="$(command -v "$py")" -Dpybind11_DIR="$pb_dir" >"$dir/configure.log" \
    || { cat "$dir/configure.log"; exit 1; }
cmake --build "$dir/cmake" --target _core -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
so=$(find "$PWD/$dir/cmake" -maxdepth 1 -name '_core*' -name '*.so' | head -n1)
[ -n "$so" ] || { echo "no _core module in $dir/cmake"; exit 1; }

. .ci/core_overlay.sh
write_core_overlay "$dir/overlay"

libasan=$(readlink -f "$(${CXX:-c++} -print-file-name=libasan.so)")
[ -f "$libasan" ] || { echo "libasan.so not found (compiler: ${CXX:-c++})"; exit 1; }
# libstdc++ too: python is not linked with it, and ASan's __cxa_throw interceptor must find the
# real one at start-up, or the first C++ exception (every TypeError/ValueError of the binding)
# aborts with "CHECK failed: real___cxa_throw".
libstdcxx=$(readlink -f "$(${CXX:-c++} -print-file-name=libstdc++.so)")
export HASHKIT_CORE_FILE=$so HASHKIT_REQUIRE_CPP=1
export PYTHONPATH=$PWD/$dir/overlay${PYTHONPATH:+:$PYTHONPATH}
export LD_PRELOAD=$libasan:$libstdcxx${LD_PRELOAD:+:$LD_PRELOAD}
# halt_on_error / abort_on_error: the first report ends the process with a non-zero status, so
# pytest (or the test that ran a child process) fails with it. ODR checks off: extension modules
# other than ours (NumPy, llvmlite) are not built with ASan and trip it on their global symbols.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=0:detect_odr_violation=0:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

"$py" -c "
import os, hashkit._core as c
assert os.path.samefile(c.__file__, os.environ['HASHKIT_CORE_FILE']), c.__file__
print('sanitized hashkit._core:', c.__file__)
"
if [ $# -eq 0 ]; then
    set -- tests/test_kernels.py tests/test_bindings.py tests/test_bad_input.py tests/test_fuzz_api.py tests/test_mih.py
fi
# --capture=sys: a report is written to file descriptor 2 by the process that then dies at once;
# pytest's default fd capture would swallow it with the process.
"$py" -m pytest -q -p no:cacheprovider --capture=sys "$@"
