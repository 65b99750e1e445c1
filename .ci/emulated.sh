#!/usr/bin/env bash
# Run the test suite on a SIMD path this CPU lacks, by emulation: hashkit._core is built again
# (into build/ci-emulated) with every x86 intrinsic replaced by SIMDe's portable C
# (github.com/simd-everywhere/simde, header-only; not part of hashkit and not downloaded here:
# pass a checkout) and the CPU reported as having ISA (default avx512bw; also avx512 for the
# VPOPCNTDQ path), then pytest runs against that build. It checks the path's logic (every
# intrinsic's documented semantics, as SIMDe implements them), not the compiler's code for the
# real instructions: on a real CPU the start-up self-test still decides.
#
#   .ci/emulated.sh /path/to/simde                        # avx512bw, the kernel test files
#   .ci/emulated.sh /path/to/simde avx512 tests/test_bindings.py -x
#
# About 1 minute to build and 3 for the default files on 2 cores (the emulated kernels are
# slower than the real ones). Not part of .ci/run: CI has no SIMDe.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] && [ -f "$1/simde/x86/avx512.h" ] || {
    echo "usage: .ci/emulated.sh SIMDE_CHECKOUT [avx512bw|avx512|avx2|popcnt] [pytest args]" \
         "(SIMDE_CHECKOUT/simde/x86/avx512.h must exist)" >&2; exit 2; }
simde=$(cd "$1" && pwd)
isa=${2:-avx512bw}
case "$isa" in avx512bw|avx512|avx2|popcnt) ;; *) echo "ISA: expected avx512bw, avx512, avx2 or popcnt, got $isa" >&2; exit 2;; esac
shift $(( $# >= 2 ? 2 : 1 ))
py=${PYTHON:-python3}
dir=build/ci-emulated
mkdir -p "$dir/src"

# Intrinsics SIMDe lacks, lane by lane.
cat >"$dir/src/emu_shim.h" <<'EOF'
#pragma once
#ifndef _mm512_cvtepu64_pd
static inline simde__m512d hk_emu_cvtepu64_pd(simde__m512i a) {
    simde__m512i_private ap = simde__m512i_to_private(a);
    simde__m512d_private r;
    for (int i = 0; i < 8; ++i) r.f64[i] = static_cast<double>(static_cast<uint64_t>(ap.i64[i]));
    return simde__m512d_from_private(r);
}
#define _mm512_cvtepu64_pd(a) hk_emu_cvtepu64_pd(a)
#endif
EOF
# simd.cpp with SIMDe for <immintrin.h>, detect() reporting ISA, and no target pragmas (GCC would
# vectorise the emulated loops for AVX-512 inside them: illegal instructions on this CPU).
"$py" - "$isa" "$dir/src/simd.cpp" <<'EOF'
import re, sys
isa, out = sys.argv[1], sys.argv[2]
s = open("csrc/simd.cpp").read()
s = s.replace("#include <immintrin.h>", "#define SIMDE_ENABLE_NATIVE_ALIASES\n"
              "#include <simde/x86/avx512.h>\n#include \"emu_shim.h\"", 1)
a, b = s.index("Isa detect() {"), s.index("Isa detect_with_override()")
s = s[:a] + "Isa detect() { return Isa::%s; }\n\n" % isa + s[b:]
s = re.sub(r'#pragma GCC target\("[^"]*"\)', "", s)
assert "immintrin" not in s.split("simde/x86/avx512.h")[1] and "pragma GCC target" not in s
open(out, "w").write(s)
EOF
hk_version=$("$py" -c "import re; print(re.search(r'__version__\s*=\s*[\"\']([^\"\']+)', open('hashkit/_version.py').read()).group(1))")
so=$PWD/$dir/_core$("$py" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
# shellcheck disable=SC2046
${CXX:-c++} -O2 -shared -fPIC -std=c++17 -w -I"$simde" -I"$dir/src" -Icsrc $("$py" -m pybind11 --includes) \
    -DHASHKIT_VERSION="\"$hk_version\"" -DHASHKIT_COMPILER="\"emulated (SIMDe)\"" \
    -DHASHKIT_CXX_FLAGS="\"-O2 SIMDe\"" -DHASHKIT_BUILD_TYPE="\"emulated-$isa\"" \
    csrc/bindings.cpp csrc/kernels.cpp "$dir/src/simd.cpp" csrc/selftest.cpp csrc/mih.cpp \
    -pthread -o "$so"

. .ci/core_overlay.sh
write_core_overlay "$dir/overlay"
export HASHKIT_CORE_FILE=$so HASHKIT_REQUIRE_CPP=1
export PYTHONPATH=$PWD/$dir/overlay${PYTHONPATH:+:$PYTHONPATH}
want=$isa; [ "$isa" = avx512 ] && want=avx512-vpopcntdq
"$py" -c "
import os, hashkit._core as c
assert os.path.samefile(c.__file__, os.environ['HASHKIT_CORE_FILE']), c.__file__
print('emulated hashkit._core:', c.__file__, '|', c.simd_self_test())
assert c.simd_path() == '$want', 'the emulated path failed its self-test: ' + c.simd_self_test()
"
if [ $# -eq 0 ]; then
    set -- tests/test_simd_selftest.py tests/test_bindings.py tests/test_kernels.py tests/test_metrics.py \
        tests/test_search.py tests/test_index.py tests/test_eval.py tests/test_compat.py \
        tests/test_fuzz_api.py tests/test_faiss_compat.py tests/test_mih.py
fi
"$py" -m pytest -q -p no:cacheprovider "$@"
