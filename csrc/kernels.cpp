// Drivers for the Hamming kernels: threads over blocks of queries, the database walked in
// cache-sized tiles so that a block of queries reuses each tile, and the ISA-specific inner
// loops (simd.h) called once per (query, tile).
//
// Selection never sorts: distances are integers in [0, nbits], so top-k keeps a histogram of the
// candidates it admitted and a threshold, radius and full ranking are counting sorts, and the
// ranking statistics turn per-distance counts into stable positions.
#include "kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "parallel.h"
#include "simd.h"

namespace hk {
namespace {

// Queries per block: each database tile is reused by this many queries while it is in cache.
constexpr int64_t kQueryBlock = 16;

// Database rows per tile: about 32 KiB of codes (L1/L2 resident on current x86 cores).
int64_t tile_rows(int64_t w) {
    const int64_t t = (32 * 1024 / 8) / std::max<int64_t>(w, 1);
    return std::max<int64_t>(256, std::min<int64_t>(t, 8192));
}

template <class DistT>
DistFn<DistT> dist_fn(const Prims& p) {
    if constexpr (std::is_same<DistT, uint16_t>::value) return p.dist16;
    else return p.dist32;
}

template <class DistT>
FilterFn<DistT> filter_fn(const Prims& p) {
    if constexpr (std::is_same<DistT, uint16_t>::value) return p.filter16;
    else return p.filter32;
}

// Candidates admitted for one query by top-k selection, in database-index order.
// Rule: an item arriving (in index order) with distance d belongs to the top-k of the items seen
// so far iff fewer than k admitted items have distance <= d; `t` is the smallest distance with
// k admitted items at or below it, so the rule is "admit iff d < t". Items pushed out later
// stay in the list (their counts keep the rule exact) until a compaction drops them.
template <class DistT>
struct Selection {
    std::vector<int64_t> h;  // admitted count per distance, size nbits + 2
    std::vector<int64_t> idx;
    std::vector<DistT> d;
    int64_t t = 0;      // admit iff distance < t
    int64_t below = 0;  // admitted items with distance < t (always < k)

    void reset(int64_t nbits) {
        h.assign(static_cast<size_t>(nbits + 2), 0);
        idx.clear();
        d.clear();
        t = nbits + 1;
        below = 0;
    }

    // The m candidates of a tile: positions pos (in index order) from j0, distances dist;
    // those at or below `skip` are already in (a rescan after a failed guess, topk_select).
    void admit(const DistT* dist, const uint32_t* pos, int64_t m, int64_t j0, int64_t k,
               int64_t skip = -1) {
        for (int64_t c = 0; c < m; ++c) {
            const int64_t dd = dist[c];
            if (dd >= t || dd <= skip) continue;  // t fell while walking this tile
            ++h[dd];
            idx.push_back(j0 + pos[c]);
            d.push_back(static_cast<DistT>(dd));
            if (++below >= k) {
                do {
                    --t;
                    below -= h[t];
                } while (below >= k);
                if (t == 0) return;
            }
        }
    }

    // Keeps exactly the current top-k: all items closer than t, then the first (k - below)
    // items at distance t in index order.
    void compact(int64_t k) {
        int64_t take = k - below;
        size_t o = 0;
        for (size_t i = 0; i < idx.size(); ++i) {
            const int64_t dd = d[i];
            if (dd < t || (dd == t && take-- > 0)) {
                idx[o] = idx[i];
                d[o] = d[i];
                ++o;
            }
        }
        idx.resize(o);
        d.resize(o);
        std::fill(h.begin(), h.end(), 0);
        for (size_t i = 0; i < o; ++i) ++h[d[i]];
    }
};

// A guessed limit (the filter's fast limit G, FilterFn's pre-test cut on AVX2 two-word codes):
// while fewer than k items within G have been admitted (t > G), the filter runs with limit G
// instead of t - 1. Exact whenever the guess holds: once k items within G exist (t <= G), the
// top-k lie within G, and every item within G was admitted. Without the guess the limit stays
// above G until k near items have been seen, which for neighbours spread through the database
// (clustered codes at 128 bits) is half the scan at the full distance's cost.
// A query whose guess looks wrong (checked at tile ends from j >= N / kGuessCheck on: fewer
// than 3/4 of k extrapolated from the items within G so far) or is wrong at the end rescans
// [0, j) for the items above G, then goes on with t - 1. The candidate list then holds, at
// every distance, its items in index order (within G: [0, j) then [j, N); above G: the rescan
// of [0, j) then [j, N)), which admit / compact / the final counting sort rely on.
constexpr int64_t kGuessCheck = 16;

template <class DistT>
void topk_select(Codes q, Codes db, int64_t nbits, int64_t k, int nthreads, int32_t* out_d,
                 int64_t* out_i) {
    const Prims p = get_prims(active_isa(), q.w, 1);
    const FilterFn<DistT> filter = filter_fn<DistT>(p);
    const int64_t W = q.w, N = db.n, T = tile_rows(W);
    const int64_t nblocks = (q.n + kQueryBlock - 1) / kQueryBlock;
    const size_t cap = static_cast<size_t>(2 * k + 4096);
    // G < nbits: a guess G >= nbits would change nothing.
    const int64_t G = p.filter_fast_lim < nbits ? p.filter_fast_lim : -1;
    run_blocks(nblocks, nthreads, [&]() {
        return [&, buf = std::vector<DistT>(T), pos = std::vector<uint32_t>(T + 16),
                cd = std::vector<DistT>(T + 16), sel = std::vector<Selection<DistT>>(kQueryBlock),
                guess = std::vector<char>(kQueryBlock),
                off = std::vector<int64_t>(nbits + 2)](int64_t b) mutable {
            const int64_t q0 = b * kQueryBlock, q1 = std::min(q.n, q0 + kQueryBlock);
            for (int64_t i = q0; i < q1; ++i) {
                sel[i - q0].reset(nbits);
                guess[i - q0] = G >= 0;
            }
            auto scan = [&](int64_t i, Selection<DistT>& s, int64_t j0, int64_t n, int64_t lim,
                            int64_t skip) {
                const int64_t m = filter(q.data + i * W, db.data + j0 * W, n, W,
                                         static_cast<DistT>(lim), buf.data(), pos.data(),
                                         cd.data());
                s.admit(cd.data(), pos.data(), m, j0, k, skip);
                if (s.idx.size() > cap) s.compact(k);
            };
            // Gives up query i's guess after [0, j): the items above G there, then t - 1 on.
            auto give_up = [&](int64_t i, Selection<DistT>& s, int64_t j) {
                guess[i - q0] = 0;
                for (int64_t j0 = 0; j0 < j && s.t > 0; j0 += T)
                    scan(i, s, j0, std::min(T, j - j0), s.t - 1, G);
            };
            for (int64_t j0 = 0; j0 < N; j0 += T) {
                const int64_t n = std::min(T, N - j0);
                for (int64_t i = q0; i < q1; ++i) {
                    Selection<DistT>& s = sel[i - q0];
                    if (s.t == 0) continue;
                    const bool g = guess[i - q0] && s.t > G;
                    scan(i, s, j0, n, g ? G : s.t - 1, -1);
                    if (!g || s.t <= G) continue;
                    // Still guessing: below = the items within G so far (all admitted).
                    const int64_t j = j0 + n;
                    if (j < N && j * kGuessCheck >= N && 4 * s.below * N < 3 * k * j)
                        give_up(i, s, j);
                }
            }
            for (int64_t i = q0; i < q1; ++i) {
                Selection<DistT>& s = sel[i - q0];
                if (guess[i - q0] && s.t > G) give_up(i, s, N);
                s.compact(k);
                // Stable counting sort of the k survivors (already in index order) by distance.
                int64_t cum = 0;
                for (int64_t x = 0; x <= s.t; ++x) {
                    off[x] = cum;
                    cum += s.h[x];
                }
                int32_t* od = out_d + i * k;
                int64_t* oi = out_i + i * k;
                for (size_t c = 0; c < s.idx.size(); ++c) {
                    const int64_t o = off[s.d[c]]++;
                    od[o] = static_cast<int32_t>(s.d[c]);
                    oi[o] = s.idx[c];
                }
            }
        };
    });
}

// Histogram of distances (clamped to nbits) through kCopies interleaved partial counters, so
// that neighbours at the same distance do not serialise on one counter; folded into h.
template <class DistT>
void count_dist(const DistT* __restrict d, int64_t n, int64_t nbits, int64_t* __restrict part,
                int64_t* __restrict h) {
    const int64_t nb = nbits, nb1 = nbits + 1;
    std::fill(part, part + 4 * nb1, 0);
    int64_t* __restrict p0 = part;
    int64_t* __restrict p1 = part + nb1;
    int64_t* __restrict p2 = part + 2 * nb1;
    int64_t* __restrict p3 = part + 3 * nb1;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        ++p0[std::min<int64_t>(d[j], nb)];
        ++p1[std::min<int64_t>(d[j + 1], nb)];
        ++p2[std::min<int64_t>(d[j + 2], nb)];
        ++p3[std::min<int64_t>(d[j + 3], nb)];
    }
    for (; j < n; ++j) ++p0[std::min<int64_t>(d[j], nb)];
    for (int64_t x = 0; x < nb1; ++x) h[x] = p0[x] + p1[x] + p2[x] + p3[x];
}

// Places the items of one query at their final positions, in index order: all items closer
// than t, then the first `take` at distance t. Only indices are scattered; the distances are
// runs of equal values, written afterwards by the caller.
template <class DistT>
void place_indices(const DistT* __restrict d, int64_t n, int64_t nbits, int64_t t, int64_t take,
                   int64_t* __restrict off, int64_t* __restrict oi) {
    const int64_t nb = nbits;
    for (int64_t j = 0; j < n; ++j) {
        const int64_t dd = std::min<int64_t>(d[j], nb);
        if (dd < t) {
            oi[off[dd]++] = j;
        } else if (dd == t && take > 0) {
            --take;
            oi[off[dd]++] = j;
        }
    }
}

// Large k (up to a full ranking): distances of a query into an O(N) buffer plus their
// histogram, then one walk in index order placing every kept item at its final position.
template <class DistT>
void topk_full(Codes q, Codes db, int64_t nbits, int64_t k, int nthreads, int32_t* out_d,
               int64_t* out_i) {
    const Prims p = get_prims(active_isa(), q.w, 1);
    const DistFn<DistT> dist = dist_fn<DistT>(p);
    const int64_t W = q.w, N = db.n;
    run_blocks(q.n, nthreads, [&]() {
        return [&, buf = std::vector<DistT>(N), h = std::vector<int64_t>(nbits + 1),
                part = std::vector<int64_t>(4 * (nbits + 1)),
                off = std::vector<int64_t>(nbits + 1)](int64_t i) mutable {
            dist(q.data + i * W, db.data, N, W, buf.data());
            count_dist(buf.data(), N, nbits, part.data(), h.data());
            int64_t cum = 0, t = nbits;
            for (int64_t x = 0; x <= nbits; ++x) {
                off[x] = cum;
                cum += h[x];
                if (cum >= k) {
                    t = x;
                    break;
                }
            }
            const int64_t take = k - off[t];
            int32_t* od = out_d + i * k;
            place_indices(buf.data(), N, nbits, t, take, off.data(), out_i + i * k);
            // off[x] now ends distance x's run (t's run ends at k).
            int64_t from = 0;
            for (int64_t x = 0; x <= t; ++x) {
                const int64_t to = x == t ? k : off[x];
                std::fill(od + from, od + to, static_cast<int32_t>(x));
                from = to;
            }
        };
    });
}

// Radius search, results written once, straight into the CSR output, ordered by (distance,
// index). (1) One walk over the database per block of queries: a query's hits (index,
// distance) are appended to its own buffer in index order, 6 bytes a hit (10 when
// N >= 2^32), half of what the output takes. A query with more than N / 8 hits stops
// buffering and keeps only its count per distance ("dense"). (2) Once all counts are known
// (the CSR offsets), each buffered query is placed by a counting sort on distance (stable:
// index order within a distance), its buffer freed; (3) the dense queries are placed by a
// second walk that recomputes their distances, in blocks. Buffering is cheaper than the second
// walk for sparse hits (most radii), the walk for dense ones (docs/BENCHMARKS.md).
constexpr int64_t kDenseHits = 8;  // a query is dense past N / kDenseHits hits

template <class DistT, class IdxT>
RadiusResult radius_impl(Codes q, Codes db, int64_t nbits, int64_t r, int nthreads) {
    const Prims p = get_prims(active_isa(), q.w, 1);
    const FilterFn<DistT> filter = filter_fn<DistT>(p);
    const int64_t W = q.w, N = db.n, T = tile_rows(W);
    const int64_t rr = std::min(r, nbits), nr = rr + 1;
    const int64_t nblocks = (q.n + kQueryBlock - 1) / kQueryBlock;
    const int64_t cap = std::max<int64_t>(N / kDenseHits, 1024);
    // A query's hits so far; grown by doubling without zero-filling (every slot is written).
    struct Hits {
        std::unique_ptr<IdxT[]> idx;
        std::unique_ptr<DistT[]> d;
        int64_t n = 0, cap = 0;   // n: hits so far (buffered or, when dense, counted)
        std::vector<int64_t> cnt;  // dense: hits per distance
        bool dense = false;
        void reserve_more(int64_t m) {
            if (n + m <= cap) return;
            const int64_t c = std::max<int64_t>(n + m, std::max<int64_t>(2 * cap, 1024));
            std::unique_ptr<IdxT[]> ni(new IdxT[static_cast<size_t>(c)]);
            std::unique_ptr<DistT[]> nd(new DistT[static_cast<size_t>(c)]);
            std::copy(idx.get(), idx.get() + n, ni.get());
            std::copy(d.get(), d.get() + n, nd.get());
            idx = std::move(ni);
            d = std::move(nd);
            cap = c;
        }
        void make_dense(int64_t nr) {
            cnt.assign(static_cast<size_t>(nr), 0);
            for (int64_t c = 0; c < n; ++c) ++cnt[d[c]];
            idx.reset();
            d.reset();
            cap = 0;
            dense = true;
        }
    };
    std::vector<Hits> hits(static_cast<size_t>(q.n));
    RadiusResult res;
    res.lims.assign(static_cast<size_t>(q.n + 1), 0);
    int64_t* lims = res.lims.data();
    run_blocks(nblocks, nthreads, [&]() {
        return [&, buf = std::vector<DistT>(T), pos = std::vector<uint32_t>(T + 16),
                cd = std::vector<DistT>(T + 16)](int64_t b) mutable {
            const int64_t q0 = b * kQueryBlock, q1 = std::min(q.n, q0 + kQueryBlock);
            for (int64_t j0 = 0; j0 < N; j0 += T) {
                const int64_t n = std::min(T, N - j0);
                for (int64_t i = q0; i < q1; ++i) {
                    const int64_t m = filter(q.data + i * W, db.data + j0 * W, n, W,
                                             static_cast<DistT>(rr), buf.data(), pos.data(),
                                             cd.data());
                    if (m == 0) continue;
                    Hits& h = hits[i];
                    if (!h.dense && h.n + m > cap) h.make_dense(nr);
                    if (h.dense) {
                        for (int64_t c = 0; c < m; ++c) ++h.cnt[cd[c]];
                        h.n += m;
                        continue;
                    }
                    h.reserve_more(m);
                    IdxT* hi = h.idx.get() + h.n;
                    DistT* hd = h.d.get() + h.n;
                    for (int64_t c = 0; c < m; ++c) {
                        hi[c] = static_cast<IdxT>(j0 + pos[c]);
                        hd[c] = cd[c];
                    }
                    h.n += m;
                }
            }
            for (int64_t i = q0; i < q1; ++i) lims[i + 1] = hits[i].n;
        };
    });
    for (int64_t i = 0; i < q.n; ++i) lims[i + 1] += lims[i];
    res.m = lims[q.n];
    // Left uninitialised: the threads fault the pages in while they write them.
    res.idx.reset(new int64_t[static_cast<size_t>(std::max<int64_t>(res.m, 1))]);
    res.dist.reset(new int32_t[static_cast<size_t>(std::max<int64_t>(res.m, 1))]);
    int64_t* out_i = res.idx.get();
    int32_t* out_d = res.dist.get();
    // Start offsets per distance: dense queries from their counts, buffered ones from a count
    // over their buffer.
    auto starts = [&](int64_t i, const int64_t* cnt, int64_t* off) {
        int64_t cum = lims[i];
        for (int64_t x = 0; x < nr; ++x) {
            off[x] = cum;
            cum += cnt[x];
        }
    };
    std::vector<int64_t> dense;
    for (int64_t i = 0; i < q.n; ++i)
        if (hits[i].dense) dense.push_back(i);
    run_blocks(q.n, nthreads, [&]() {
        return [&, cnt = std::vector<int64_t>(nr), off = std::vector<int64_t>(nr)](int64_t i) mutable {
            if (hits[i].dense) return;
            Hits h;
            std::swap(h, hits[i]);  // freed when this query is placed
            std::fill(cnt.begin(), cnt.end(), 0);
            for (int64_t c = 0; c < h.n; ++c) ++cnt[h.d[c]];
            starts(i, cnt.data(), off.data());
            for (int64_t c = 0; c < h.n; ++c) {
                const DistT dd = h.d[c];
                const int64_t at = off[dd]++;
                out_i[at] = static_cast<int64_t>(h.idx[c]);
                out_d[at] = static_cast<int32_t>(dd);
            }
        };
    });
    const int64_t nd = static_cast<int64_t>(dense.size());
    run_blocks((nd + kQueryBlock - 1) / kQueryBlock, nthreads, [&]() {
        return [&, buf = std::vector<DistT>(T), pos = std::vector<uint32_t>(T + 16),
                cd = std::vector<DistT>(T + 16),
                off = std::vector<int64_t>(kQueryBlock * nr)](int64_t b) mutable {
            const int64_t k0 = b * kQueryBlock, k1 = std::min(nd, k0 + kQueryBlock);
            for (int64_t k = k0; k < k1; ++k)
                starts(dense[k], hits[dense[k]].cnt.data(), off.data() + (k - k0) * nr);
            for (int64_t j0 = 0; j0 < N; j0 += T) {
                const int64_t n = std::min(T, N - j0);
                for (int64_t k = k0; k < k1; ++k) {
                    const int64_t i = dense[k];
                    const int64_t m = filter(q.data + i * W, db.data + j0 * W, n, W,
                                             static_cast<DistT>(rr), buf.data(), pos.data(),
                                             cd.data());
                    int64_t* o = off.data() + (k - k0) * nr;
                    for (int64_t c = 0; c < m; ++c) {
                        const DistT dd = cd[c];
                        const int64_t at = o[dd]++;
                        out_i[at] = j0 + pos[c];
                        out_d[at] = static_cast<int32_t>(dd);
                    }
                }
            }
        };
    });
    return res;
}

// Histogram of (distance, relevant) pairs, one increment per item, into kCopies interleaved
// partial histograms h[c][2 d + rel] (c = j mod kCopies, each 2 (nbits + 1) long): neighbours
// at the same distance then hit different counters instead of one store-to-load chain.
constexpr int64_t kCopies = 4;

template <class DistT>
void count_pairs(const DistT* __restrict d, const uint8_t* __restrict rel, int64_t n, int64_t nbits,
                 int64_t* __restrict h) {
    const int64_t nb = nbits, len = 2 * (nbits + 1);
    int64_t* __restrict h0 = h;
    int64_t* __restrict h1 = h + len;
    int64_t* __restrict h2 = h + 2 * len;
    int64_t* __restrict h3 = h + 3 * len;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        ++h0[2 * std::min<int64_t>(d[j], nb) + rel[j]];
        ++h1[2 * std::min<int64_t>(d[j + 1], nb) + rel[j + 1]];
        ++h2[2 * std::min<int64_t>(d[j + 2], nb) + rel[j + 2]];
        ++h3[2 * std::min<int64_t>(d[j + 3], nb) + rel[j + 3]];
    }
    for (; j < n; ++j) ++h0[2 * std::min<int64_t>(d[j], nb) + rel[j]];
}

// Folds the partial histograms into hist_all / hist_rel rows.
void fold_pairs(const int64_t* h, int64_t nb1, int64_t* hist_all, int64_t* hist_rel) {
    for (int64_t x = 0; x < nb1; ++x) {
        int64_t a = 0, r = 0;
        for (int64_t c = 0; c < kCopies; ++c) {
            a += h[c * 2 * nb1 + 2 * x] + h[c * 2 * nb1 + 2 * x + 1];
            r += h[c * 2 * nb1 + 2 * x + 1];
        }
        hist_all[x] = a;
        hist_rel[x] = r;
    }
}

// rank_stats packs both running counters of a distance into one 64-bit word:
// (relevant rank << 32) | position. One add per item then yields the item's position and, when
// relevant, its relevant rank; a single store keeps the packed value of each relevant item
// (branch-free compaction). Needs N < 2^32.
constexpr uint64_t kLow32 = 0xffffffffULL;

// The eight AP lanes of rank_stats (see ApLanesFn) folded in a fixed tree, the order
// hashkit/_numba.py uses, for bitwise equality.
inline double lane_total(const double* l) {
    static_assert(kLanes == 8, "lane_total folds eight lanes");
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

// Shared by hist_stats and rank_stats: per (query, tile) distances and relevance (or gain).
template <class DistT>
struct TileEval {
    DistFn<DistT> dist;
    RelFn rel;
    GainFn gain;
    Codes q, db, ql, dbl;
    void operator()(int64_t i, int64_t j0, int64_t n, bool graded, DistT* dbuf, uint8_t* rbuf,
                    uint32_t* gbuf) const {
        dist(q.data + i * q.w, db.data + j0 * db.w, n, q.w, dbuf);
        if (graded) {
            gain(ql.data + i * ql.w, dbl.data + j0 * dbl.w, n, ql.w, gbuf);
            for (int64_t j = 0; j < n; ++j) rbuf[j] = gbuf[j] != 0;
        } else {
            rel(ql.data + i * ql.w, dbl.data + j0 * dbl.w, n, ql.w, rbuf);
        }
    }
};

template <class DistT>
void hist_impl(Codes q, Codes db, Codes ql, Codes dbl, int64_t nbits, int nthreads,
               int64_t* hist_all, int64_t* hist_rel) {
    const Prims p = get_prims(active_isa(), q.w, ql.w);
    const TileEval<DistT> ev{dist_fn<DistT>(p), p.rel, p.gain, q, db, ql, dbl};
    const int64_t N = db.n, T = tile_rows(q.w + ql.w);
    const int64_t nb1 = nbits + 1;
    const int64_t nblocks = (q.n + kQueryBlock - 1) / kQueryBlock;
    run_blocks(nblocks, nthreads, [&]() {
        return [&, dbuf = std::vector<DistT>(T), rbuf = std::vector<uint8_t>(T),
                h2 = std::vector<int64_t>(kQueryBlock * kCopies * 2 * nb1)](int64_t b) mutable {
            const int64_t q0 = b * kQueryBlock, q1 = std::min(q.n, q0 + kQueryBlock);
            std::fill(h2.begin(), h2.end(), 0);
            for (int64_t j0 = 0; j0 < N; j0 += T) {
                const int64_t n = std::min(T, N - j0);
                for (int64_t i = q0; i < q1; ++i) {
                    ev(i, j0, n, false, dbuf.data(), rbuf.data(), nullptr);
                    count_pairs(dbuf.data(), rbuf.data(), n, nbits,
                                h2.data() + (i - q0) * kCopies * 2 * nb1);
                }
            }
            for (int64_t i = q0; i < q1; ++i)
                fold_pairs(h2.data() + (i - q0) * kCopies * 2 * nb1, nb1, hist_all + i * nb1,
                           hist_rel + i * nb1);
        };
    });
}

// rank_stats in one walk over the database per query. The database is cut into kSeg contiguous
// segments, [seg_lo(s), seg_lo(s + 1)) with seg_lo(s) = floor(s N / kSeg), walked in lock-step
// (item t of every segment in one iteration), each with its own packed counters
// (relevant count << 32) | count per distance, starting at zero: kSeg independent
// store-to-load chains instead of one. A relevant item's counter value is its local
// (relevant rank, position) among the items of its segment at its distance; that value and the
// distance are kept, in segment s's slice [seg_lo(s), ...) of an O(N) buffer. After the walk
// the counters give the histograms and each (segment, distance) its start offsets (the
// distance's start plus the items of earlier segments at that distance), and the kept items,
// segment 0 first, each in index order (that is, in database-index order), get their final
// ranks from one add each: no second walk over the database.
constexpr int64_t kSeg = 4;
// Items per segment in one tile step; the compile-time stride keeps the segments' tile
// buffers addressable from one base register each.
constexpr int64_t kSegT = 512;

inline int64_t seg_lo(int64_t s, int64_t n) { return s * n / kSeg; }

// One tile step: item j of segment s at d[s * kSegT + j] (distances already clamped to nbits)
// with its counter increment inc[s * kSegT + j] = 1 + (relevant << 32); the counters of
// segment s at ctr + s * nb1, one per distance. A counter is (relevant count << 32) | count;
// with kPack it also carries its distance in the top byte, (x << 56) | ..., so a kept item
// needs one store fewer (distances < 2^8, segments < 2^24 items); otherwise the distance is
// kept beside it. Kept items of segment s are stored from pk[at[s]] / dk[at[s]] on (at[s]
// advanced). Every item takes a store at its segment's next slot (branch-free compaction);
// the slot never passes the segment's end.
constexpr int kPackDistShift = 56;
// With kPack (segments < 2^24 items, so counts fit 24 bits) a graded walk keeps the item's
// gain (<= 255) in bits 24..31 of its kept value instead of a third store per item.
constexpr int kGainShift = 24;
constexpr uint64_t kGainBits = uint64_t{0xff} << kGainShift;

// An empty asm that claims to change x: the compiler keeps x in a general register and cannot
// pack several such scalars into one vector register (GCC's SLP vectoriser did that to the
// walk's slot counters, putting a vector-to-scalar move in every store's address).
template <class T>
inline void keep_in_register(T& x) {
#if defined(__GNUC__)
    __asm__("" : "+r"(x));
#else
    (void)x;
#endif
}

template <class DistT, bool kGain, bool kPack>
void rank_local_seg(const DistT* __restrict d, const uint64_t* __restrict inc,
                    const uint32_t* __restrict gain, const int64_t* n, int64_t nb1,
                    uint64_t* __restrict ctr, uint64_t* __restrict pk, DistT* __restrict dk,
                    uint32_t* __restrict gk, int64_t* at) {
    int64_t nmin = n[0];
    for (int64_t s = 1; s < kSeg; ++s) nmin = std::min(nmin, n[s]);
    static_assert(kSeg == 4, "the walk is written out for four segments");
    const DistT* __restrict d0 = d;
    const DistT* __restrict d1 = d + kSegT;
    const DistT* __restrict d2 = d + 2 * kSegT;
    const DistT* __restrict d3 = d + 3 * kSegT;
    const uint64_t* __restrict i0 = inc;
    const uint64_t* __restrict i1 = inc + kSegT;
    const uint64_t* __restrict i2 = inc + 2 * kSegT;
    const uint64_t* __restrict i3 = inc + 3 * kSegT;
    uint64_t* __restrict c0 = ctr;
    uint64_t* __restrict c1 = ctr + nb1;
    uint64_t* __restrict c2 = ctr + 2 * nb1;
    uint64_t* __restrict c3 = ctr + 3 * nb1;
    int64_t m0 = at[0], m1 = at[1], m2 = at[2], m3 = at[3];
    // One item of every segment per iteration. Written out (not a loop over segments): GCC
    // packed the four slot counters of a loop into vector registers, which put a
    // vector-to-scalar move into every store's address.
    auto step = [&](const DistT x, const uint64_t a, uint64_t* __restrict c, int64_t& m, int64_t jj,
                    int64_t s) {
        const uint64_t v = c[x] += a;
        if constexpr (kGain && kPack) {
            pk[m] = v | (static_cast<uint64_t>(gain[s * kSegT + jj]) << kGainShift);
        } else {
            pk[m] = v;
        }
        if constexpr (!kPack) dk[m] = x;
        if constexpr (kGain && !kPack) gk[m] = gain[s * kSegT + jj];
        m += static_cast<int64_t>(a >> 32);
        keep_in_register(m);
    };
    for (int64_t j = 0; j < nmin; ++j) {
        step(d0[j], i0[j], c0, m0, j, 0);
        step(d1[j], i1[j], c1, m1, j, 1);
        step(d2[j], i2[j], c2, m2, j, 2);
        step(d3[j], i3[j], c3, m3, j, 3);
    }
    int64_t m[kSeg] = {m0, m1, m2, m3};
    for (int64_t s = 0; s < kSeg; ++s) {
        int64_t mm = m[s];
        uint64_t* cs = ctr + s * nb1;
        for (int64_t j = s * kSegT + nmin; j < s * kSegT + n[s]; ++j) {
            const uint64_t v = cs[d[j]] += inc[j];
            if constexpr (kGain && kPack) {
                pk[mm] = v | (static_cast<uint64_t>(gain[j]) << kGainShift);
            } else {
                pk[mm] = v;
            }
            if constexpr (!kPack) dk[mm] = d[j];
            if constexpr (kGain && !kPack) gk[mm] = gain[j];
            mm += static_cast<int64_t>(inc[j] >> 32);
        }
        at[s] = mm;
    }
}

// Queries per block in rank_stats: they share each database tile while it is in cache, and
// each keeps an O(N) buffer (8 bytes per item). Up to four (measured at NUS-WIDE size: 2-4%
// faster than two, 5% than one) while the block's buffers stay within kRankBlockBytes.
constexpr int64_t kRankBlockMax = 4;
constexpr int64_t kRankBlockBytes = int64_t{32} << 20;
inline int64_t rank_block(int64_t n) {
    const int64_t fit = kRankBlockBytes / (8 * std::max<int64_t>(n, 1));
    return std::max<int64_t>(1, std::min(kRankBlockMax, fit));
}
// Last cut-offs above this get per-position bucket (and log) tables in rank_stats.
constexpr int64_t kPosTableMin = 4096;
// Kept items turned into ranks per chunk (the term buffer).
constexpr int64_t kChunk = 1024;
// ap_lanes_tab's offsets for values that are already final: one (zero) entry per top byte.
constexpr uint64_t kZeroOffsets[256] = {};

template <class DistT, bool kPack>
void rank_impl(Codes q, Codes db, Codes ql, Codes dbl, int64_t nbits, const int64_t* cut,
               int64_t C, int64_t first_m, bool graded, int64_t nlabels, int nthreads,
               const RankStatsOut& out) {
    const Prims p = get_prims(active_isa(), q.w, ql.w);
    const TileEval<DistT> ev{dist_fn<DistT>(p), p.rel, p.gain, q, db, ql, dbl};
    PrepFn<DistT> prep;
    Tile11Fn<DistT> tile11;
    Tile11GFn<DistT> tile11g;
    if constexpr (std::is_same_v<DistT, uint16_t>) {
        prep = p.prep16;
        tile11 = p.tile11_16;
        tile11g = p.tile11g_16;
    } else {
        prep = p.prep32;
        tile11 = p.tile11_32;
        tile11g = p.tile11g_32;
    }
    const bool one_word = q.w == 1 && ql.w == 1;
    const int64_t N = db.n;
    const int64_t nb1 = nbits + 1, ng1 = nlabels + 1;
    const int64_t qblock = rank_block(db.n);
    const int64_t nblocks = (q.n + qblock - 1) / qblock;
    const int64_t last_cut = C > 0 ? cut[C - 1] : 0;
    const DistT nbT = static_cast<DistT>(nbits);
    int64_t lo[kSeg + 1];
    for (int64_t s = 0; s <= kSeg; ++s) lo[s] = seg_lo(s, N);
    int64_t seg_max = 0;
    for (int64_t s = 0; s < kSeg; ++s) seg_max = std::max(seg_max, lo[s + 1] - lo[s]);
    // A precision curve up to N puts nearly every relevant item in a cut-off bucket: then the
    // bucket of each position, and log2(pos + 1) for DCG (the same libm values, so the same
    // bits), come from tables built once per call instead of a search and a log per item.
    const bool tables = last_cut > kPosTableMin;
    std::vector<int32_t> bucket_tab(tables ? last_cut + 1 : 0);
    std::vector<double> log_tab(tables && graded ? last_cut + 1 : 0);
    if (tables) {
        int64_t c = 0;
        for (int64_t pos = 1; pos <= last_cut; ++pos) {
            while (cut[c] < pos) ++c;
            bucket_tab[pos] = static_cast<int32_t>(c);
            if (graded) log_tab[pos] = std::log2(static_cast<double>(pos) + 1.0);
        }
    }
    auto bucket_of = [&](int64_t pos) {
        if (tables) return static_cast<int64_t>(bucket_tab[pos]);
        return static_cast<int64_t>(std::lower_bound(cut, cut + C, pos) - cut);
    };
    auto log2p1 = [&](int64_t pos) {
        return tables ? log_tab[pos] : std::log2(static_cast<double>(pos) + 1.0);
    };
    run_blocks(nblocks, nthreads, [&]() {
        struct PerQuery {
            std::vector<uint64_t> ctr;  // (segment s, distance x) at s * nb1 + x
            std::vector<uint64_t> pk;   // kept: packed local (relevant rank, position)
            std::vector<DistT> dk;      // kept: distance
            std::vector<uint32_t> gk;   // kept: gain (graded)
            int64_t at[kSeg];           // segment s's kept items: [lo[s], at[s])
        };
        // Tile buffers: query r of the block, segment g at (r * kSeg + g) * kSegT.
        return [&, dbuf = std::vector<DistT>(qblock * kSeg * kSegT),
                rbuf = std::vector<uint8_t>(kSeg * kSegT),
                ibuf = std::vector<uint64_t>(qblock * kSeg * kSegT),
                gbuf = std::vector<uint32_t>(graded ? qblock * kSeg * kSegT : 0),
                pkb = std::vector<uint64_t>(kChunk),
                gstage = std::vector<uint32_t>(graded ? kChunk : 0),
                rel_b = std::vector<int64_t>(C + 1), gain_b = std::vector<int64_t>(C + 1),
                ap_b = std::vector<double>(C + 1), dcg_b = std::vector<double>(C + 1),
                base = std::vector<uint64_t>(kSeg * nb1),
                st = std::vector<PerQuery>(qblock)](int64_t b) mutable {
            const int64_t q0 = b * qblock, q1 = std::min(q.n, q0 + qblock);
            for (int64_t i = q0; i < q1; ++i) {
                PerQuery& s = st[i - q0];
                s.ctr.resize(kSeg * nb1);
                for (int64_t g = 0; g < kSeg; ++g)
                    for (int64_t x = 0; x < nb1; ++x)
                        s.ctr[g * nb1 + x] = kPack ? static_cast<uint64_t>(x) << kPackDistShift : 0;
                // Not initialised: only what the walk wrote is read.
                if (static_cast<int64_t>(s.pk.size()) < N) {
                    s.pk.resize(N);
                    if (!kPack) s.dk.resize(N);
                    if (graded && !kPack) s.gk.resize(N);
                }
                for (int64_t g = 0; g < kSeg; ++g) s.at[g] = lo[g];
                if (graded) std::fill(out.gain_hist + i * ng1, out.gain_hist + (i + 1) * ng1, 0);
            }
            // The walk: tile step k0 holds items [lo[s] + k0, lo[s] + k0 + n[s]) of every
            // segment s; local ranks of the relevant items, the counts (and the gain histogram
            // for the ideal DCG).
            int64_t n[kSeg];
            for (int64_t k0 = 0; k0 < seg_max; k0 += kSegT) {
                // Every query of the block on one segment's tile, then the next segment: the
                // tile is still in L1 for the block's later queries.
                for (int64_t g = 0; g < kSeg; ++g) {
                    n[g] = std::max<int64_t>(0, std::min(kSegT, lo[g + 1] - lo[g] - k0));
                    if (n[g] == 0) continue;
                    const int64_t j0 = lo[g] + k0;
                    for (int64_t i = q0; i < q1; ++i) {
                        const int64_t t = (i - q0) * kSeg * kSegT + g * kSegT;
                        DistT* dg = dbuf.data() + t;
                        if (one_word && graded) {
                            tile11g(q.data[i], db.data + j0, ql.data[i], dbl.data + j0, n[g], nbT,
                                    dg, ibuf.data() + t, gbuf.data() + t);
                            continue;
                        }
                        if (one_word) {
                            tile11(q.data[i], db.data + j0, ql.data[i], dbl.data + j0, n[g], nbT,
                                   dg, ibuf.data() + t);
                            continue;
                        }
                        ev(i, j0, n[g], graded, dg, rbuf.data() + g * kSegT,
                           graded ? gbuf.data() + t : nullptr);
                        prep(dg, rbuf.data() + g * kSegT, n[g], nbT, ibuf.data() + t);
                    }
                }
                for (int64_t i = q0; i < q1; ++i) {
                    const int64_t t = (i - q0) * kSeg * kSegT;
                    PerQuery& s = st[i - q0];
                    if (graded) {
                        rank_local_seg<DistT, true, kPack>(dbuf.data() + t, ibuf.data() + t,
                                                           gbuf.data() + t, n, nb1, s.ctr.data(),
                                                           s.pk.data(), s.dk.data(), s.gk.data(),
                                                           s.at);
                        // With kPack the gains of the relevant items come from their kept values
                        // after the walk (the others have gain 0).
                        if (!kPack) {
                            int64_t* gh = out.gain_hist + i * ng1;
                            for (int64_t g = 0; g < kSeg; ++g) {
                                const uint32_t* gg = gbuf.data() + t + g * kSegT;
                                for (int64_t j = 0; j < n[g]; ++j)
                                    ++gh[std::min<int64_t>(gg[j], nlabels)];
                            }
                        }
                    } else {
                        rank_local_seg<DistT, false, kPack>(dbuf.data() + t, ibuf.data() + t,
                                                            nullptr, n, nb1, s.ctr.data(),
                                                            s.pk.data(), s.dk.data(), nullptr,
                                                            s.at);
                    }
                }
            }
            for (int64_t i = q0; i < q1; ++i) {
                PerQuery& s = st[i - q0];
                // Histograms from the counters; start offsets per (segment, distance)
                // (positions are 1-based: the local counts already are). With kPack the
                // offset also cancels the distance byte of the kept value: a kept item's final
                // (relevant rank, position) is then one add, v + base[distance].
                int64_t* ha = out.hist_all + i * nb1;
                int64_t* hr = out.hist_rel + i * nb1;
                uint64_t cum = 0;
                for (int64_t x = 0; x < nb1; ++x) {
                    const uint64_t start = cum;
                    for (int64_t g = 0; g < kSeg; ++g) {
                        uint64_t v = s.ctr[g * nb1 + x];
                        const uint64_t tag = kPack ? static_cast<uint64_t>(x) << kPackDistShift : 0;
                        v -= tag;
                        base[g * nb1 + x] = cum - tag;  // wraps; the add in (a) wraps back
                        cum += v;
                    }
                    ha[x] = static_cast<int64_t>((cum - start) & kLow32);
                    hr[x] = static_cast<int64_t>((cum - start) >> 32);
                }
                std::fill(rel_b.begin(), rel_b.end(), 0);
                std::fill(gain_b.begin(), gain_b.end(), 0);
                std::fill(ap_b.begin(), ap_b.end(), 0.0);
                std::fill(dcg_b.begin(), dcg_b.end(), 0.0);
                // The kept items are visited in database-index order (segment 0 first), the
                // order the float sums are defined in (hashkit/_numba.py).
                double lanes[2 * kLanes] = {};
                // An item ranked within the last cut-off goes to its bucket (running sums in
                // database-index order); the term is the same division as in the lanes.
                auto bucket_item = [&](uint64_t u, uint32_t gg) {
                    const int64_t pos = static_cast<int64_t>(u & kLow32);
                    const int64_t bb = bucket_of(pos);
                    ++rel_b[bb];
                    ap_b[bb] += static_cast<double>(static_cast<uint32_t>(u >> 32)) /
                                static_cast<double>(static_cast<uint32_t>(u));
                    if (graded) {
                        gain_b[bb] += gg;
                        dcg_b[bb] += static_cast<double>(gg) / log2p1(pos);
                    }
                };
                if (kPack) {
                    // Rank and sum straight from the kept items, per segment, the offsets of
                    // the 32 distances holding the most relevant items in registers.
                    int64_t wlo = 0, best = -1, run = 0;
                    for (int64_t x = 0; x < nb1; ++x) {
                        run += hr[x] - (x >= 32 ? hr[x - 32] : 0);
                        if (run > best) {
                            best = run;
                            wlo = std::max<int64_t>(0, x - 31);
                        }
                    }
                    int64_t k = 0;
                    for (int64_t g = 0; g < kSeg; ++g) {
                        const int64_t m = s.at[g] - lo[g];
                        p.ap_lanes_tab(s.pk.data() + lo[g], m, k, base.data() + g * nb1, nb1,
                                       wlo, ~kGainBits, static_cast<uint64_t>(first_m), lanes);
                        k += m;
                    }
                    if (graded) {
                        // The gain histogram: every kept (relevant) item by its gain, the rest
                        // at gain 0.
                        int64_t* gh = out.gain_hist + i * ng1;
                        int64_t kept = 0;
                        for (int64_t g = 0; g < kSeg; ++g) {
                            const uint64_t* lp = s.pk.data();
                            for (int64_t c = lo[g]; c < s.at[g]; ++c) {
                                const int64_t gg =
                                    static_cast<int64_t>((lp[c] & kGainBits) >> kGainShift);
                                ++gh[std::min<int64_t>(gg, nlabels)];
                            }
                            kept += s.at[g] - lo[g];
                        }
                        gh[0] += N - kept;
                    }
                    if (C > 0) {
                        // Only distances that start within the last cut-off can reach a
                        // bucket: xcut is the last of them (ha: counts per distance).
                        int64_t xcut = -1, cum = 0;
                        for (int64_t x = 0; x < nb1 && cum < last_cut; ++x) {
                            xcut = x;
                            cum += ha[x];
                        }
                        for (int64_t g = 0; g < kSeg; ++g) {
                            const uint64_t* bs = base.data() + g * nb1;
                            const uint64_t* lp = s.pk.data();
                            for (int64_t c = lo[g]; c < s.at[g]; ++c) {
                                const int64_t x = static_cast<int64_t>(lp[c] >> kPackDistShift);
                                if (x > xcut) continue;
                                const uint64_t u = (lp[c] & ~kGainBits) + bs[x];
                                if (static_cast<int64_t>(u & kLow32) > last_cut) continue;
                                bucket_item(u, static_cast<uint32_t>((lp[c] & kGainBits) >>
                                                                     kGainShift));
                            }
                        }
                    }
                } else {
                    // Distances kept beside the counters: final ranks into the staging
                    // buffer, segment after segment, then (when it is full, a multiple of
                    // kLanes, so the lanes stay aligned, or at the end) the lane sums and
                    // the cut-off buckets.
                    int64_t fill = 0;
                    auto flush = [&]() {
                        if (fill == 0) return;
                        const uint64_t* pk = pkb.data();
                        // The staged values are final ranks: every offset is 0. The table
                        // has an entry for every top byte, since ap_lanes_tab indexes it with
                        // v >> 56, which is a relevant rank's bits 24..31 here (non-zero past
                        // 2^24 relevant items: a one-entry table was read out of bounds).
                        p.ap_lanes_tab(pk, fill, 0, kZeroOffsets, 256, 0, ~uint64_t{0},
                                       static_cast<uint64_t>(first_m), lanes);
                        for (int64_t c = 0; c < fill && C > 0; ++c)
                            if (static_cast<int64_t>(pk[c] & kLow32) <= last_cut)
                                bucket_item(pk[c], graded ? gstage[c] : 0);
                        fill = 0;
                    };
                    for (int64_t g = 0; g < kSeg; ++g) {
                        const uint64_t* bs = base.data() + g * nb1;
                        for (int64_t c0 = lo[g]; c0 < s.at[g];) {
                            const int64_t m = std::min(kChunk - fill, s.at[g] - c0);
                            const uint64_t* lp = s.pk.data() + c0;
                            const DistT* ld = s.dk.data() + c0;
                            uint64_t* pk = pkb.data() + fill;
                            for (int64_t c = 0; c < m; ++c) pk[c] = lp[c] + bs[ld[c]];
                            if (graded && C > 0)
                                std::copy(s.gk.data() + c0, s.gk.data() + c0 + m,
                                          gstage.data() + fill);
                            fill += m;
                            c0 += m;
                            if (fill == kChunk) flush();
                        }
                    }
                    flush();
                }
                out.ap_sum[i] = lane_total(lanes);
                out.ap_first[i] = lane_total(lanes + kLanes);
                int64_t srel = 0, sgain = 0;
                double sap = 0.0, sdcg = 0.0;
                for (int64_t c = 0; c < C; ++c) {
                    srel += rel_b[c];
                    sap += ap_b[c];
                    out.rel_at[i * C + c] = srel;
                    out.ap_sum_at[i * C + c] = sap;
                    if (graded) {
                        sgain += gain_b[c];
                        sdcg += dcg_b[c];
                        out.gain_at[i * C + c] = sgain;
                        out.dcg_at[i * C + c] = sdcg;
                    }
                }
            }
        };
    });
}

}  // namespace

int resolve_threads(int64_t nthreads) {
    if (nthreads > 0) return static_cast<int>(std::min<int64_t>(nthreads, 1024));
    const unsigned hc = std::thread::hardware_concurrency();
    return hc > 0 ? static_cast<int>(hc) : 1;
}

const char* simd_path() { return isa_name(active_isa()); }

void hamming(Codes q, Codes db, int nthreads, int32_t* out) {
    const Prims p = get_prims(active_isa(), q.w, 1);
    const int64_t W = q.w, N = db.n, T = tile_rows(W);
    const int64_t nblocks = (q.n + kQueryBlock - 1) / kQueryBlock;
    run_blocks(nblocks, nthreads, [&]() {
        return [&](int64_t b) {
            const int64_t q0 = b * kQueryBlock, q1 = std::min(q.n, q0 + kQueryBlock);
            for (int64_t j0 = 0; j0 < N; j0 += T) {
                const int64_t n = std::min(T, N - j0);
                for (int64_t i = q0; i < q1; ++i)
                    p.dist32(q.data + i * W, db.data + j0 * W, n, W, out + i * N + j0);
            }
        };
    });
}

void topk(Codes q, Codes db, int64_t nbits, int64_t k, int nthreads, int32_t* dist, int64_t* idx) {
    // Beyond ~N/8 the admitted candidates approach N: the O(N)-buffer counting pass is cheaper.
    const bool full = k * 8 >= db.n;
    if (nbits <= 65535) {
        if (full) topk_full<uint16_t>(q, db, nbits, k, nthreads, dist, idx);
        else topk_select<uint16_t>(q, db, nbits, k, nthreads, dist, idx);
    } else {
        if (full) topk_full<int32_t>(q, db, nbits, k, nthreads, dist, idx);
        else topk_select<int32_t>(q, db, nbits, k, nthreads, dist, idx);
    }
}

RadiusResult radius(Codes q, Codes db, int64_t nbits, int64_t r, int nthreads) {
    const bool small = db.n <= int64_t{0xffffffff};
    if (nbits <= 65535) {
        return small ? radius_impl<uint16_t, uint32_t>(q, db, nbits, r, nthreads)
                     : radius_impl<uint16_t, int64_t>(q, db, nbits, r, nthreads);
    }
    return small ? radius_impl<int32_t, uint32_t>(q, db, nbits, r, nthreads)
                 : radius_impl<int32_t, int64_t>(q, db, nbits, r, nthreads);
}

void hist_stats(Codes q, Codes db, Codes ql, Codes dbl, int64_t nbits, int nthreads,
                int64_t* hist_all, int64_t* hist_rel) {
    if (nbits <= 65535) hist_impl<uint16_t>(q, db, ql, dbl, nbits, nthreads, hist_all, hist_rel);
    else hist_impl<int32_t>(q, db, ql, dbl, nbits, nthreads, hist_all, hist_rel);
}

void rank_stats(Codes q, Codes db, Codes ql, Codes dbl, int64_t nbits, const int64_t* cutoffs,
                int64_t ncut, int64_t first_m, bool graded, int64_t nlabels, int nthreads,
                const RankStatsOut& out) {
    // The distance rides in the packed counter when it fits (see rank_local_seg).
    const bool pack = nbits < 256 && db.n / kSeg + 1 < (int64_t{1} << kGainShift) &&
                      (!graded || nlabels < 256);
    if (pack)
        rank_impl<uint16_t, true>(q, db, ql, dbl, nbits, cutoffs, ncut, first_m, graded, nlabels,
                                  nthreads, out);
    else if (nbits <= 65535)
        rank_impl<uint16_t, false>(q, db, ql, dbl, nbits, cutoffs, ncut, first_m, graded,
                                   nlabels, nthreads, out);
    else
        rank_impl<int32_t, false>(q, db, ql, dbl, nbits, cutoffs, ncut, first_m, graded, nlabels,
                                  nthreads, out);
}

}  // namespace hk
