// Where the floor of stable MAP lies on a CPU: the per-item work of rank_stats' walk in
// isolation, at NUS-WIDE size (N = 193,734 database items, one 64-bit query, labels with 29%
// relevant items, as in `hashkit bench --compare faiss`'s MAP row). Not part of the build:
//
//   g++ -O3 -std=c++17 -mpopcnt benchmarks/rank_walk_floor.cpp -o /tmp/rank_walk_floor
//   /tmp/rank_walk_floor
//
// Variants (each the min of 60 runs, ns per database item):
//   hist     popcount and a four-way histogram of the distances only: no ranks at all, the
//            least any exact stable ranking must do per item (one counter update)
//   walk4    rank_stats' walk as built (csrc/kernels.cpp, rank_local_seg): distances and
//            counter increments read from buffers, four segments in lock-step, packed
//            (relevant << 32 | position) counters, one branch-free store per item
//   walk2/8  the same with two or eight segments
//   fused4   popcount, relevance and the walk in one loop, no buffers
// On the Zen 3 VM (AMD EPYC, AVX2, 2026-12-01; five runs, the spread is the VM's load): hist
// 0.42-0.57, walk4 0.98-1.36, walk2 0.98-1.35, walk8 1.23-1.31, fused4 1.35-2.13 ns per item;
// within each run walk4 was never beaten by more than 12%. The full MAP takes ~1.7-2.0 ns per item there
// (329-367 us per query): the walk (~1 ns), the AVX2 distance and increment tiles (~0.5 ns)
// and the AP sums over the relevant items (~0.3 ns). Fused into the library, fused4 was no
// faster than tile + walk (interleaved runs: 418-530 against 386-416 us per query).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

using u64 = uint64_t;
constexpr int kNb1 = 65;

static inline void keep(int64_t& x) { __asm__("" : "+r"(x)); }

template <int S>
void walk(const uint16_t* d, const u64* inc, int64_t n, u64* ctr, u64* pk, int64_t* at) {
    const int64_t seg = n / S;
    int64_t m[S];
    for (int s = 0; s < S; ++s) m[s] = at[s];
    for (int64_t j = 0; j < seg; ++j) {
#pragma GCC unroll 8
        for (int s = 0; s < S; ++s) {
            const uint16_t x = d[s * seg + j];
            const u64 a = inc[s * seg + j];
            const u64 v = ctr[s * kNb1 + x] += a;
            pk[m[s]] = v;
            m[s] += a >> 32;
            keep(m[s]);
        }
    }
    for (int s = 0; s < S; ++s) at[s] = m[s];
}

template <int S>
void fused(u64 q, u64 ql, const u64* db, const u64* lb, int64_t n, u64* ctr, u64* pk, int64_t* at) {
    const int64_t seg = n / S;
    int64_t m[S];
    for (int s = 0; s < S; ++s) m[s] = at[s];
    for (int64_t j = 0; j < seg; ++j) {
#pragma GCC unroll 8
        for (int s = 0; s < S; ++s) {
            const u64 x = __builtin_popcountll(q ^ db[s * seg + j]);
            const u64 r = lb[s * seg + j] & ql;
            const u64 rel = (r | (0 - r)) >> 63;
            const u64 v = ctr[s * kNb1 + x] += 1 + (rel << 32);
            pk[m[s]] = v;
            m[s] += rel;
            keep(m[s]);
        }
    }
    for (int s = 0; s < S; ++s) at[s] = m[s];
}

void hist(u64 q, const u64* db, int64_t n, uint32_t* h) {
    for (int64_t j = 0; j + 4 <= n; j += 4) {
        h[__builtin_popcountll(q ^ db[j])]++;
        h[kNb1 + __builtin_popcountll(q ^ db[j + 1])]++;
        h[2 * kNb1 + __builtin_popcountll(q ^ db[j + 2])]++;
        h[3 * kNb1 + __builtin_popcountll(q ^ db[j + 3])]++;
    }
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
    std::vector<u64> db(n), lb(n), inc(n), ctr(8 * kNb1), pk(n + 64);
    std::vector<uint16_t> d(n);
    std::vector<uint32_t> h(4 * kNb1);
    for (int64_t i = 0; i < n; ++i) {
        db[i] = g();
        lb[i] = labels();
        d[i] = static_cast<uint16_t>(__builtin_popcountll(q ^ db[i]));
        inc[i] = 1 + (u64((lb[i] & ql) != 0) << 32);
    }
    int64_t at[8];
    auto time = [&](const char* name, int segs, auto f) {
        double best = 1e9;
        for (int r = 0; r < 60; ++r) {
            std::fill(ctr.begin(), ctr.end(), 0);
            std::fill(h.begin(), h.end(), 0);
            for (int s = 0; s < segs; ++s) at[s] = s * (n / segs);
            const auto t0 = std::chrono::steady_clock::now();
            f();
            const auto t1 = std::chrono::steady_clock::now();
            best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
        }
        std::printf("%-7s %7.1f us per query  %.3f ns per item\n", name, best * 1e6, best * 1e9 / n);
    };
    time("hist", 0, [&] { hist(q, db.data(), n, h.data()); });
    time("walk4", 4, [&] { walk<4>(d.data(), inc.data(), n, ctr.data(), pk.data(), at); });
    time("walk2", 2, [&] { walk<2>(d.data(), inc.data(), n, ctr.data(), pk.data(), at); });
    time("walk8", 8, [&] { walk<8>(d.data(), inc.data(), n, ctr.data(), pk.data(), at); });
    time("fused4", 4, [&] { fused<4>(q, ql, db.data(), lb.data(), n, ctr.data(), pk.data(), at); });
    return 0;
}
