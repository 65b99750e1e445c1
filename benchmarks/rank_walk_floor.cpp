// Where the floor of stable MAP lies on a CPU: the per-item work of rank_stats' walk in
// isolation, at NUS-WIDE size (N = 193,734 database items, one 64-bit query, 29% of the items
// relevant, as in `hashkit bench --compare faiss`'s MAP row). Not part of the build:
//
//   g++ -O3 -std=c++17 -mavx2 -mbmi -mbmi2 -mpopcnt benchmarks/rank_walk_floor.cpp -o /tmp/rank_walk_floor
//   /tmp/rank_walk_floor
//
// Variants (each the min of 80 runs, ns per database item), four segments in lock-step with
// their own counters and slot registers, as rank_local_seg in csrc/kernels.cpp:
//   walk     the walk as built: distances and increments read from buffers, packed
//            (relevant << 32 | position) counters, v = c[x] += a, one branch-free store of v
//            per item at the segment's next slot
//   no-kept  the same without the store of v (what keeping the relevant items costs)
//   hist     only c[x] += a, the value unused: a plain histogram, the least a counter walk
//            of this kind does per item
//   fused    popcount and relevance computed in the walk itself, no buffers
//   planes   a different algorithm, from the codes like fused: the database transposed into bit
//            planes (256 items per register), distances summed bit-sliced by a carry-save
//            adder tree, per-distance item masks per block, and for each relevant item its
//            counter value from two masked popcounts; the counters move once per (distance,
//            block), not per item. One segment; checked here against a plain one-segment walk.
// On the Zen 3 VM (AMD EPYC, family 25 model 1, AVX2; 2026-12-01; the quietest of eight runs,
// busy runs up to 40% slower): walk 0.69, no-kept 0.49, hist 0.43, fused 1.19 ns per item.
// In the library (perf, cpu-clock samples, MAP over 300 queries): the walk ~0.83 ns per item,
// the AVX2 distance and increment tiles (tile11) ~0.42 and the AP sums over the relevant items
// (ap_lanes_tab) ~0.22: 329-367 us per query in `hashkit bench --compare faiss`. The goal of
// 200 us is ~1.0 ns per item: less than the tiles, a walk at the histogram's speed and the AP
// sums together (~1.07). Fused into the library, the walk was slower than tiles + walk
// (interleaved runs: 418-530 against 386-416 us per query), so it was not kept.
// planes (2026-12-01, same VM, a busy hour: walk 0.88-1.03, hist 0.60-0.61, fused 1.72-1.73 in
// the same runs): 1.26-1.81 ns per item, from the codes on. Built into rank_stats as an avx2
// primitive (the kept values are the counter walk's for one segment, so the AP sums were
// shared), it ran 332 against 284 us per query for tiles + counter walk (best of 6 interleaved
// runs of 2,100 x 193,734; medians 384 and 368), with the same instruction count under callgrind
// (~135M for 16 queries either way): ~20 instructions per relevant item (29% of the items) and
// ~35 vector operations per (distance, block) cost what the counter updates save. Not kept.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

using u64 = uint64_t;
constexpr int kNb1 = 65;

template <class T>
static inline void in_register(T& x) {
    __asm__("" : "+r"(x));
}

enum Mode { kWalk, kNoKept, kHist };

template <Mode M>
__attribute__((noinline)) void walk(const uint16_t* __restrict d, const u64* __restrict inc,
                                    int64_t n, u64* __restrict ctr, u64* __restrict pk,
                                    int64_t* at) {
    const int64_t seg = n / 4;
    int64_t m0 = at[0], m1 = at[1], m2 = at[2], m3 = at[3];
    auto step = [&](uint16_t x, u64 a, u64* __restrict c, int64_t& m) {
        if (M == kHist) {
            c[x] += a;
            return;
        }
        const u64 v = c[x] += a;
        if (M == kWalk) pk[m] = v;
        m += static_cast<int64_t>(a >> 32);
        in_register(m);
    };
    for (int64_t j = 0; j < seg; ++j) {
        step(d[j], inc[j], ctr, m0);
        step(d[seg + j], inc[seg + j], ctr + kNb1, m1);
        step(d[2 * seg + j], inc[2 * seg + j], ctr + 2 * kNb1, m2);
        step(d[3 * seg + j], inc[3 * seg + j], ctr + 3 * kNb1, m3);
    }
    at[0] = m0, at[1] = m1, at[2] = m2, at[3] = m3;
}

__attribute__((noinline)) void fused(u64 q, u64 ql, const u64* __restrict db,
                                     const u64* __restrict lb, int64_t n, u64* __restrict ctr,
                                     u64* __restrict pk, int64_t* at) {
    const int64_t seg = n / 4;
    int64_t m0 = at[0], m1 = at[1], m2 = at[2], m3 = at[3];
    auto step = [&](u64 code, u64 lab, u64* __restrict c, int64_t& m) {
        const u64 x = __builtin_popcountll(q ^ code);
        const u64 r = lab & ql;
        const u64 rel = (r | (0 - r)) >> 63;
        const u64 v = c[x] += 1 + (rel << 32);
        pk[m] = v;
        m += static_cast<int64_t>(rel);
        in_register(m);
    };
    for (int64_t j = 0; j < seg; ++j) {
        step(db[j], lb[j], ctr, m0);
        step(db[seg + j], lb[seg + j], ctr + kNb1, m1);
        step(db[2 * seg + j], lb[2 * seg + j], ctr + 2 * kNb1, m2);
        step(db[3 * seg + j], lb[3 * seg + j], ctr + 3 * kNb1, m3);
    }
    at[0] = m0, at[1] = m1, at[2] = m2, at[3] = m3;
}

// --- planes -------------------------------------------------------------------------------
// Block b of a transposed array: 256 words, word 4 k + w holding bit k of items 256 b + 64 w + i
// at bit i.
static void transpose64(u64* a) {  // a[i] bit j -> a[j] bit i
    u64 m = 0x00000000FFFFFFFFULL;
    for (int j = 32; j != 0; j >>= 1, m ^= m << j)
        for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
            const u64 t = ((a[k] >> j) ^ a[k | j]) & m;
            a[k | j] ^= t;
            a[k] ^= t << j;
        }
}
static std::vector<u64> to_planes(const std::vector<u64>& src) {
    const int64_t n = static_cast<int64_t>(src.size()), nblk = (n + 255) / 256;
    std::vector<u64> out(nblk * 256);
    u64 a[64];
    for (int64_t b = 0; b < nblk; ++b)
        for (int64_t w = 0; w < 4; ++w) {
            for (int64_t i = 0; i < 64; ++i) a[i] = b * 256 + w * 64 + i < n ? src[b * 256 + w * 64 + i] : 0;
            transpose64(a);
            for (int k = 0; k < 64; ++k) out[b * 256 + 4 * k + w] = a[k];
        }
    return out;
}
static inline __m256i ld(const u64* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
static inline void csa(__m256i& hi, __m256i& lo, __m256i a, __m256i b, __m256i c) {
    const __m256i u = _mm256_xor_si256(a, b);
    hi = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
    lo = _mm256_xor_si256(u, c);
}
static inline __m256i pop_bytes(__m256i v) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1,
                                         2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v, m4)),
                           _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)));
}
struct Tables {
    alignas(32) u64 m[kNb1 * 4], mr[kNb1 * 4], c[kNb1 * 4];  // per (distance, word)
};
template <int W>
static inline void relevant_word(u64 r, const u64* dw, u64 q, const Tables& t, u64* pk, int64_t& m) {
    while (r) {
        const unsigned l = static_cast<unsigned>(_tzcnt_u64(r));
        const u64 upto = _blsmsk_u64(r);
        r = _blsr_u64(r);
        const unsigned o = static_cast<unsigned>(_mm_popcnt_u64(q ^ dw[l])) * 4 + W;
        pk[m++] = t.c[o] + (u64(_mm_popcnt_u64(t.mr[o] & upto)) << 32) + u64(_mm_popcnt_u64(t.m[o] & upto));
    }
}
__attribute__((noinline)) int64_t planes(u64 q, u64 ql, const u64* pl, const u64* ll, const u64* db,
                                         int64_t n, u64* ctr, u64* pk) {
    alignas(32) u64 qm[256];
    for (int k = 0; k < 64; ++k)
        for (int w = 0; w < 4; ++w) qm[4 * k + w] = ((q >> k) & 1) ? ~u64(0) : 0;
    __m256i cv[kNb1];
    for (int x = 0; x < kNb1; ++x) cv[x] = _mm256_set1_epi64x(static_cast<long long>(u64(x) << 56));
    Tables t;
    const __m256i ones = _mm256_set1_epi64x(-1), zero = _mm256_setzero_si256();
    int64_t m = 0;
    const int64_t nblk = (n + 255) / 256;
    for (int64_t b = 0; b < nblk; ++b) {
        const u64* c = pl + b * 256;
        __m256i p0 = zero, p1 = zero, p2 = zero, p3 = zero, s16[4];
        for (int g = 0; g < 4; ++g) {  // Harley-Seal over four groups of 16 planes
            __m256i d[16], ta, tb, fa, fb, ea, eb;
            for (int k = 0; k < 16; ++k) d[k] = _mm256_xor_si256(ld(c + 4 * (16 * g + k)), ld(qm + 4 * (16 * g + k)));
            csa(ta, p0, p0, d[0], d[1]); csa(tb, p0, p0, d[2], d[3]); csa(fa, p1, p1, ta, tb);
            csa(ta, p0, p0, d[4], d[5]); csa(tb, p0, p0, d[6], d[7]); csa(fb, p1, p1, ta, tb);
            csa(ea, p2, p2, fa, fb);
            csa(ta, p0, p0, d[8], d[9]); csa(tb, p0, p0, d[10], d[11]); csa(fa, p1, p1, ta, tb);
            csa(ta, p0, p0, d[12], d[13]); csa(tb, p0, p0, d[14], d[15]); csa(fb, p1, p1, ta, tb);
            csa(eb, p2, p2, fa, fb);
            csa(s16[g], p3, p3, ea, eb);
        }
        __m256i c32a, s16a;
        csa(c32a, s16a, s16[0], s16[1], s16[2]);
        const __m256i c32b = _mm256_and_si256(s16a, s16[3]);
        const __m256i P[7] = {p0, p1, p2, p3, _mm256_xor_si256(s16a, s16[3]), _mm256_xor_si256(c32a, c32b),
                              _mm256_and_si256(c32a, c32b)};
        __m256i V = ones;
        if (n - b * 256 < 256) {
            alignas(32) u64 vv[4];
            for (int w = 0; w < 4; ++w) {
                const int64_t k = n - b * 256 - 64 * w;
                vv[w] = k >= 64 ? ~u64(0) : k <= 0 ? 0 : (u64(1) << k) - 1;
            }
            V = ld(vv);
        }
        __m256i R = zero;
        for (u64 lq = ql; lq; lq &= lq - 1) R = _mm256_or_si256(R, ld(ll + b * 256 + 4 * _tzcnt_u64(lq)));
        R = _mm256_and_si256(R, V);
        int mx = 0, mn = 0;  // the block's largest and least distance, bit by bit
        __m256i cand = V;
        for (int k = 6; k >= 0; --k) {
            const __m256i u = _mm256_and_si256(cand, P[k]);
            if (!_mm256_testz_si256(u, u)) cand = u, mx |= 1 << k;
        }
        cand = V;
        for (int k = 6; k >= 0; --k) {
            const __m256i u = _mm256_andnot_si256(P[k], cand);
            if (!_mm256_testz_si256(u, u)) cand = u;
            else mn |= 1 << k;
        }
        __m256i lo[8], hi[9];  // item masks over distance bits 0..2 and 3..6
        for (int v = 0; v < 8; ++v) {
            __m256i a = V;
            for (int k = 0; k < 3; ++k) a = (v >> k) & 1 ? _mm256_and_si256(a, P[k]) : _mm256_andnot_si256(P[k], a);
            lo[v] = a;
        }
        for (int h = mn >> 3; h <= (mx >> 3); ++h) {
            __m256i a = ones;
            for (int k = 3; k < 7; ++k) a = (h >> (k - 3)) & 1 ? _mm256_and_si256(a, P[k]) : _mm256_andnot_si256(P[k], a);
            hi[h] = a;
        }
        for (int x = mn; x <= mx; ++x) {
            const __m256i M = _mm256_and_si256(hi[x >> 3], lo[x & 7]), MR = _mm256_and_si256(M, R);
            const __m256i v = _mm256_add_epi64(_mm256_slli_epi64(_mm256_sad_epu8(pop_bytes(MR), zero), 32),
                                               _mm256_sad_epu8(pop_bytes(M), zero));
            const __m256i s1 = _mm256_add_epi64(v, _mm256_blend_epi32(_mm256_permute4x64_epi64(v, 0x90), zero, 0x03));
            const __m256i s2 = _mm256_add_epi64(s1, _mm256_permute2x128_si256(s1, s1, 0x08));
            _mm256_store_si256(reinterpret_cast<__m256i*>(t.c + 4 * x), _mm256_add_epi64(_mm256_sub_epi64(s2, v), cv[x]));
            cv[x] = _mm256_add_epi64(cv[x], _mm256_permute4x64_epi64(s2, 0xff));
            _mm256_store_si256(reinterpret_cast<__m256i*>(t.m + 4 * x), M);
            _mm256_store_si256(reinterpret_cast<__m256i*>(t.mr + 4 * x), MR);
        }
        alignas(32) u64 rw[4];
        _mm256_store_si256(reinterpret_cast<__m256i*>(rw), R);
        relevant_word<0>(rw[0], db + b * 256, q, t, pk, m);
        relevant_word<1>(rw[1], db + b * 256 + 64, q, t, pk, m);
        relevant_word<2>(rw[2], db + b * 256 + 128, q, t, pk, m);
        relevant_word<3>(rw[3], db + b * 256 + 192, q, t, pk, m);
    }
    for (int x = 0; x < kNb1; ++x) ctr[x] = static_cast<u64>(_mm256_extract_epi64(cv[x], 0));
    return m;
}
// The oracle for planes: the plain one-segment walk.
static int64_t one_segment(u64 q, u64 ql, const u64* db, const u64* lb, int64_t n, u64* ctr, u64* pk) {
    for (int x = 0; x < kNb1; ++x) ctr[x] = u64(x) << 56;
    int64_t m = 0;
    for (int64_t i = 0; i < n; ++i) {
        const u64 rel = (lb[i] & ql) != 0;
        const u64 v = ctr[__builtin_popcountll(q ^ db[i])] += 1 + (rel << 32);
        if (rel) pk[m++] = v;
    }
    return m;
}

int main() {
    const int64_t n = 193734 / 8 * 8;
    std::mt19937_64 g(1);
    std::bernoulli_distribution bit(0.12);  // 24 labels at 12%: ~29% of items relevant
    auto labels = [&] {
        u64 l = 0;
        for (int k = 0; k < 24; ++k) l |= u64(bit(g)) << k;
        return l;
    };
    const u64 q = g();
    u64 ql = labels();
    if (!ql) ql = 7;
    std::vector<u64> db(n), lb(n), inc(n), ctr(4 * kNb1), pk(n + 64);
    std::vector<uint16_t> d(n);
    for (int64_t i = 0; i < n; ++i) {
        db[i] = g();
        lb[i] = labels();
        d[i] = static_cast<uint16_t>(__builtin_popcountll(q ^ db[i]));
        inc[i] = 1 + (u64((lb[i] & ql) != 0) << 32);
    }
    int64_t at[4];
    auto time = [&](const char* name, auto f) {
        double best = 1e9;
        for (int r = 0; r < 80; ++r) {
            std::fill(ctr.begin(), ctr.end(), 0);
            for (int s = 0; s < 4; ++s) at[s] = s * (n / 4);
            const auto t0 = std::chrono::steady_clock::now();
            f();
            const auto t1 = std::chrono::steady_clock::now();
            best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
        }
        std::printf("%-8s %7.1f us per query  %.3f ns per item\n", name, best * 1e6, best * 1e9 / n);
    };
    time("walk", [&] { walk<kWalk>(d.data(), inc.data(), n, ctr.data(), pk.data(), at); });
    time("no-kept", [&] { walk<kNoKept>(d.data(), inc.data(), n, ctr.data(), pk.data(), at); });
    time("hist", [&] { walk<kHist>(d.data(), inc.data(), n, ctr.data(), pk.data(), at); });
    time("fused", [&] { fused(q, ql, db.data(), lb.data(), n, ctr.data(), pk.data(), at); });
    const std::vector<u64> pl = to_planes(db), ll = to_planes(lb);
    std::vector<u64> ctr1(kNb1), pk1(n + 64), ctr2(kNb1);
    const int64_t m1 = one_segment(q, ql, db.data(), lb.data(), n, ctr1.data(), pk1.data());
    const int64_t m2 = planes(q, ql, pl.data(), ll.data(), db.data(), n, ctr2.data(), pk.data());
    if (m1 != m2 || ctr1 != ctr2 || !std::equal(pk1.begin(), pk1.begin() + m1, pk.begin())) {
        std::printf("planes: DIFFERS from the one-segment walk\n");
        return 1;
    }
    time("planes", [&] { planes(q, ql, pl.data(), ll.data(), db.data(), n, ctr.data(), pk.data()); });
    return 0;
}
