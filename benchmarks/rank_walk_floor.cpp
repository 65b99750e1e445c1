// Where the floor of stable MAP lies on a CPU: the per-item work of rank_stats' walk in
// isolation, at NUS-WIDE size (N = 193,734 database items, one 64-bit query, 29% of the items
// relevant, as in `hashkit bench --compare faiss`'s MAP row). Not part of the build:
//
//   g++ -O3 -std=c++17 -mpopcnt benchmarks/rank_walk_floor.cpp -o /tmp/rank_walk_floor
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
// On the Zen 3 VM (AMD EPYC, family 25 model 1, AVX2; 2026-12-01; the quietest of eight runs,
// busy runs up to 40% slower): walk 0.69, no-kept 0.49, hist 0.43, fused 1.19 ns per item.
// In the library (perf, cpu-clock samples, MAP over 300 queries): the walk ~0.83 ns per item,
// the AVX2 distance and increment tiles (tile11) ~0.42 and the AP sums over the relevant items
// (ap_lanes_tab) ~0.22: 329-367 us per query in `hashkit bench --compare faiss`. The goal of
// 200 us is ~1.0 ns per item: less than the tiles, a walk at the histogram's speed and the AP
// sums together (~1.07). Fused into the library, the walk was slower than tiles + walk
// (interleaved runs: 418-530 against 386-416 us per query), so it was not kept.
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
    return 0;
}
