// Compiles the primitives of simd_impl.h once per instruction-set path and picks one at run
// time. Standard headers are included before any target pragma, so no inline library code is
// ever compiled for a newer ISA than the CPU has (the linker could otherwise keep that copy).
#include "simd.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define HK_X86 1
#include <immintrin.h>
#else
#define HK_X86 0
#endif

namespace hk {

// Portable path: no target attributes; __builtin_popcountll falls back to a library routine
// on CPUs without POPCNT.
namespace isa_scalar {
#define HK_IMPL_AVX2 0
#define HK_IMPL_AVX512 0
#define HK_IMPL_VPOPCNT 0
#include "simd_impl.h"
#undef HK_IMPL_AVX2
#undef HK_IMPL_AVX512
#undef HK_IMPL_VPOPCNT
}  // namespace isa_scalar

#if HK_X86 && (defined(__GNUC__) || defined(__clang__))
#define HK_HAVE_X86_PATHS 1

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("popcnt")
#endif
namespace isa_popcnt {
#define HK_IMPL_AVX2 0
#define HK_IMPL_AVX512 0
#define HK_IMPL_VPOPCNT 0
#include "simd_impl.h"
#undef HK_IMPL_AVX2
#undef HK_IMPL_AVX512
#undef HK_IMPL_VPOPCNT
}  // namespace isa_popcnt
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("popcnt,avx2,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("popcnt,avx2,bmi,bmi2")
#endif
namespace isa_avx2 {
#define HK_IMPL_AVX2 1
#define HK_IMPL_AVX512 0
#define HK_IMPL_VPOPCNT 0
#include "simd_impl.h"
#undef HK_IMPL_AVX2
#undef HK_IMPL_AVX512
#undef HK_IMPL_VPOPCNT
}  // namespace isa_avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

// GCC 12 warns "'__Y' may be used uninitialized" inside its own avx512fintrin.h, where
// _mm512_undefined_epi32() initialises a register from itself on purpose (a value the
// instruction ignores), once per inlined AVX-512 shift or broadcast: a false positive, silenced
// for the two AVX-512 paths only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// AVX-512 without VPOPCNTDQ (Skylake-SP, Cascade Lake, Cooper Lake): the same AVX-512 loops,
// every vector popcount by nibble lookups (popcnt_epi64 in simd_impl.h).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("popcnt,avx2,bmi,bmi2,avx512f,avx512bw,avx512dq,avx512vl"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("popcnt,avx2,bmi,bmi2,avx512f,avx512bw,avx512dq,avx512vl")
#endif
namespace isa_avx512bw {
#define HK_IMPL_AVX2 0
#define HK_IMPL_AVX512 1
#define HK_IMPL_VPOPCNT 0
#include "simd_impl.h"
#undef HK_IMPL_AVX2
#undef HK_IMPL_AVX512
#undef HK_IMPL_VPOPCNT
}  // namespace isa_avx512bw
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(                                                                 \
    __attribute__((target("popcnt,avx2,bmi,bmi2,avx512f,avx512bw,avx512dq,avx512vl,avx512vpopcntdq"))), \
    apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("popcnt,avx2,bmi,bmi2,avx512f,avx512bw,avx512dq,avx512vl,avx512vpopcntdq")
#endif
namespace isa_avx512 {
#define HK_IMPL_AVX2 0
#define HK_IMPL_AVX512 1
#define HK_IMPL_VPOPCNT 1
#include "simd_impl.h"
#undef HK_IMPL_AVX2
#undef HK_IMPL_AVX512
#undef HK_IMPL_VPOPCNT
}  // namespace isa_avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#else
#define HK_HAVE_X86_PATHS 0
#endif

namespace {

Isa detect() {
#if HK_HAVE_X86_PATHS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq") &&
        __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("bmi2"))
        return Isa::avx512;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("bmi2"))
        return Isa::avx512bw;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") &&
        __builtin_cpu_supports("bmi2"))
        return Isa::avx2;
    if (__builtin_cpu_supports("popcnt")) return Isa::popcnt;
#endif
    return Isa::scalar;
}

Isa detect_with_override() {
    Isa best = detect();
    const char* env = std::getenv("HASHKIT_SIMD");
    if (!env || !*env) return best;
    Isa want = best;
    if (std::strcmp(env, "scalar") == 0) want = Isa::scalar;
    else if (std::strcmp(env, "popcnt") == 0) want = Isa::popcnt;
    else if (std::strcmp(env, "avx2") == 0) want = Isa::avx2;
    else if (std::strcmp(env, "avx512bw") == 0) want = Isa::avx512bw;
    else if (std::strcmp(env, "avx512") == 0 || std::strcmp(env, "avx512-vpopcntdq") == 0)
        want = Isa::avx512;
    return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

}  // namespace

Isa best_isa() {
    static const Isa isa = detect_with_override();
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512: return "avx512-vpopcntdq";
        case Isa::avx512bw: return "avx512bw";
        case Isa::avx2: return "avx2";
        case Isa::popcnt: return "popcnt";
        default: return "scalar";
    }
}

Prims get_prims(Isa isa, int64_t w, int64_t lw) {
#if HK_HAVE_X86_PATHS
    switch (isa) {
        case Isa::avx512: return isa_avx512::fill(isa, w, lw);
        case Isa::avx512bw: return isa_avx512bw::fill(isa, w, lw);
        case Isa::avx2: return isa_avx2::fill(isa, w, lw);
        case Isa::popcnt: return isa_popcnt::fill(isa, w, lw);
        default: break;
    }
#endif
    return isa_scalar::fill(Isa::scalar, w, lw);
}

}  // namespace hk
