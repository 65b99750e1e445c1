// Run-time selected inner loops ("primitives") for the Hamming kernels.
//
// Each primitive exists once per instruction-set path (scalar, popcnt, avx2, avx512bw, avx512), compiled
// with per-function target attributes in simd.cpp, and is chosen once per call by cpuid. The
// drivers in kernels.cpp are plain C++ (baseline ISA) that call these on cache-sized tiles, so
// the indirect-call cost is paid per tile of thousands of items, never per item.
#pragma once

#include <cstdint>

namespace hk {

// Ordered: a path's number is above every path it needs less than (the self-test falls back
// one step at a time). avx512bw: AVX-512 F/BW/DQ/VL without VPOPCNTDQ; avx512: with it.
enum class Isa { scalar = 0, popcnt = 1, avx2 = 2, avx512bw = 3, avx512 = 4 };

// out[j] = popcount(q ^ db[j]) over w words, for j in [0, n).
template <class OutT>
using DistFn = void (*)(const uint64_t* q, const uint64_t* db, int64_t n, int64_t w, OutT* out);
// Writes every j in [0, n) with d[j] <= lim to pos (in increasing order); returns how many.
// pos must hold n + 16 elements (vector paths store whole registers past the last hit).
template <class DistT>
using CollectFn = int64_t (*)(const DistT* d, int64_t n, DistT lim, uint32_t* pos);
// Distance and selection in one: every j in [0, n) with popcount(q ^ db[j]) <= lim (over w
// words), in increasing order, as pos[c] = j and dist[c] = its distance; returns how many.
// buf: scratch for n distances (paths that compute the distances first and select after);
// pos and dist must hold n + 16 elements. Top-k and radius search spend nearly all their time
// here: where the path has no vector popcount (AVX2), computing each distance only to store it
// and read it back cost more than the comparison itself.
template <class DistT>
using FilterFn = int64_t (*)(const uint64_t* q, const uint64_t* db, int64_t n, int64_t w, DistT lim,
                             DistT* buf, uint32_t* pos, DistT* dist);
// out[j] = 1 if (ql & dbl[j]) != 0 in some of the lw words, else 0.
using RelFn = void (*)(const uint64_t* ql, const uint64_t* dbl, int64_t n, int64_t lw, uint8_t* out);
// out[j] = popcount(ql & dbl[j]) over lw words.
using GainFn = void (*)(const uint64_t* ql, const uint64_t* dbl, int64_t n, int64_t lw, uint32_t* out);

// The AP sums of rank_stats in eight lanes. Kept item c has the value u = (v[c] & keep) + tab[v[c] >> 56]
// ((relevant rank << 32) | position once its per-(segment, distance) offset is added; tab
// holds ntab entries), its term is t = double(u >> 32) / double(u & 0xffffffff) (a correctly
// rounded IEEE division), and with l = (k0 + c) % 8, lanes[l] += t and, when (u >> 32) <=
// first_m, lanes[8 + l] += t, for c in [0, m) in order: one call per segment, the lanes
// continuing across calls. Each lane is its own running sum; every path gives the same bits.
// wlo: where the 32 most used table entries start (a hint for the vector path; any value works).
// tab must have an entry for every v >> 56 that occurs: values that are already final take a
// 256-entry zero table (their top byte is part of the relevant rank past 2^24 relevant items).
constexpr int kLanes = 8;
// keep clears bits of v that carry something else (a graded walk's gains).
using ApLanesTabFn = void (*)(const uint64_t* v, int64_t m, int64_t k0, const uint64_t* tab,
                              int64_t ntab, int64_t wlo, uint64_t keep, uint64_t first_m,
                              double* lanes);
// rank_stats' per-tile preparation: d[j] = min(d[j], lim) and inc[j] = 1 + (rel[j] << 32)
// (its counter increment: one item, and one relevant item when rel[j] is 1).
template <class DistT>
using PrepFn = void (*)(DistT* d, const uint8_t* rel, int64_t n, DistT lim, uint64_t* inc);
// Both steps in one for one-word codes and labels (w = lw = 1, the common case): the clamped
// distances of db[0, n) to q and their increments for ql / dbl, without the byte buffer.
template <class DistT>
using Tile11Fn = void (*)(uint64_t q, const uint64_t* db, uint64_t ql, const uint64_t* dbl,
                          int64_t n, DistT lim, DistT* d, uint64_t* inc);
// The same with graded relevance: gain[j] = popcount(ql & dbl[j]) as well, relevant = gain > 0.
template <class DistT>
using Tile11GFn = void (*)(uint64_t q, const uint64_t* db, uint64_t ql, const uint64_t* dbl,
                           int64_t n, DistT lim, DistT* d, uint64_t* inc, uint32_t* gain);

struct Prims {
    Isa isa;
    DistFn<uint16_t> dist16;  // specialised on w when w is 1, 2 or 4
    DistFn<int32_t> dist32;
    CollectFn<uint16_t> collect16;
    CollectFn<int32_t> collect32;
    FilterFn<uint16_t> filter16;  // specialised on w like dist16
    FilterFn<int32_t> filter32;
    // The largest limit at which filter16 is markedly cheaper than above it (AVX2 two-word
    // codes: its one-word pre-test), or -1: top-k then starts from this limit as a guess.
    int64_t filter_fast_lim;
    RelFn rel;
    GainFn gain;
    ApLanesTabFn ap_lanes_tab;
    PrepFn<uint16_t> prep16;
    PrepFn<int32_t> prep32;
    Tile11Fn<uint16_t> tile11_16;
    Tile11Fn<int32_t> tile11_32;
    Tile11GFn<uint16_t> tile11g_16;
    Tile11GFn<int32_t> tile11g_32;
};

// The best path this CPU supports (HASHKIT_SIMD=scalar|popcnt|avx2|avx512bw|avx512 may lower it, for
// testing the fallbacks on a fast machine; it never raises it above what cpuid reports).
Isa best_isa();
// The path the kernels run: best_isa() once it has passed the start-up self-test against the
// scalar path (selftest.cpp), else the best lower path that does. A path that was never
// executed where it was written can thus never give a user a wrong answer, only a slower one.
Isa active_isa();
// What the self-test found, for hashkit info: e.g. "avx2 passed (checked against scalar)".
const char* simd_self_test();
const char* isa_name(Isa isa);
Prims get_prims(Isa isa, int64_t w, int64_t lw);

}  // namespace hk
