// Multi-index hashing: table build, k-NN by growing radius and radius search (see mih.h).
//
// Per query and step the probed buckets are listed first (Gosper's enumeration of the flip
// masks), then walked in passes that prefetch ahead (the buckets' offsets, their ids, the
// candidates' codes), so that many random reads overlap. The check (distance, first-step rule) is
// compiled once plainly and once for POPCNT, chosen at run time like the scan kernels.
#include "mih.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "parallel.h"
#include "simd.h"

#if defined(__GNUC__) || defined(__clang__)
#define HK_PREFETCH(p) __builtin_prefetch(p)
#else
#define HK_PREFETCH(p) ((void)0)
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define HK_MIH_X86 1
#else
#define HK_MIH_X86 0
#endif

namespace hk {

struct MihVerify {
    const uint64_t* q;
    const uint64_t* qkeys;
    const MihSub* subs;
    const uint64_t* db;
    const uint64_t* cand_v;  // hashed table: each candidate's probe value, else nullptr
    int64_t w, m, j, s;
};
// Candidates whose codes are prefetched ahead of the check (a check is a few ns, a miss ~100).
constexpr int64_t kCodeAhead = 64;
using MihVerifyFn = int64_t (*)(const MihVerify&, const uint32_t*, int64_t, int64_t, int64_t,
                                uint64_t*);

namespace mih_scalar {
#include "mih_impl.h"
}  // namespace mih_scalar

#if HK_MIH_X86 && (defined(__GNUC__) || defined(__clang__))
#define HK_MIH_POPCNT 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("popcnt")
#endif
namespace mih_popcnt {
#include "mih_impl.h"
}  // namespace mih_popcnt
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
#define HK_MIH_POPCNT 0
#endif

namespace {

MihVerifyFn pick_verify() {
#if HK_MIH_POPCNT
    if (active_isa() != Isa::scalar) return mih_popcnt::verify;
#endif
    return mih_scalar::verify;
}

double binom(int n, int64_t k) {
    if (k < 0 || k > n) return 0.0;
    double c = 1.0;
    for (int64_t i = 0; i < k; ++i) c = c * double(n - i) / double(i + 1);
    return std::round(c);
}

constexpr int64_t kBatch = 4096;
// How far ahead each pass prefetches (iterations): enough to cover a DRAM miss.
constexpr int64_t kAhead = 48;
constexpr double kMaxProbes = double(1 << 24);  // a step with more probes is never enumerated: the scan answers

enum class Step { ok, over, corrupt };

// One thread's search state: scratch buffers reused across its queries.
struct Searcher {
    const MihTables& t;
    Codes db;
    int64_t nbits, limit, m, maxlen;
    MihVerifyFn vf;
    std::vector<uint64_t> qkeys, buckets, vals, cand_v, found, kth, hits;
    std::vector<uint32_t> cand;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    std::vector<int64_t> hist;

    Searcher(const MihTables& t_, Codes db_, int64_t nbits_, int64_t limit_)
        : t(t_), db(db_), nbits(nbits_), limit(limit_), m(static_cast<int64_t>(t_.subs.size())),
          maxlen(0), vf(pick_verify()) {
        for (const auto& s : t.subs) maxlen = std::max<int64_t>(maxlen, s.len);
        qkeys.resize(static_cast<size_t>(m));
    }

    // Estimated cost of a step: its probes plus the items expected in their buckets.
    double step_cost(int64_t r, double* probes) const {
        const MihSub& sub = t.subs[static_cast<size_t>(r % m)];
        const double p = binom(sub.len, r / m);
        if (probes) *probes = p;
        return p * (1.0 + double(db.n) / std::ldexp(1.0, sub.tbits));
    }

    // The probe values of one step (Gosper's enumeration of the s-bit flip masks) and their
    // buckets. A hashed table can map two probe values to one bucket: its candidates are then
    // checked against their own probe value (an item is taken only where its key is the probe),
    // so nothing is counted twice and no per-step sort is needed.
    void list_buckets(const MihSub& sub, uint64_t qk, int64_t s, int64_t count) {
        buckets.resize(static_cast<size_t>(count));
        if (sub.hashed) vals.resize(static_cast<size_t>(count));
        uint64_t mask = s == 0 ? 0 : (s >= 64 ? ~uint64_t{0} : ((uint64_t{1} << s) - 1));
        for (int64_t i = 0; i < count; ++i) {
            const uint64_t v = qk ^ mask;
            buckets[static_cast<size_t>(i)] = mih_bucket(v, sub);
            if (sub.hashed) vals[static_cast<size_t>(i)] = v;
            if (i + 1 < count) {  // Gosper: the next mask with the same number of bits
                const uint64_t c = mask & (~mask + 1);
                const uint64_t r = mask + c;
                mask = (((r ^ mask) >> 2) >> __builtin_ctzll(c)) | r;
            }
        }
    }

    // Walks step r (table r % m at substring distance r / m) for query q. Candidates within
    // bound() are appended to `found`, after which on_batch(first new index) runs.
    //
    // Three passes, each a plain loop that prefetches what a later iteration reads, so that
    // dozens of the random reads (bucket offsets, then the buckets' ids, then the candidates'
    // codes) are in flight at once: (1) the buckets' [start, end) ranges, (2) the ids they
    // hold, (3) the check, a chunk at a time (the k-NN bound is refreshed between chunks).
    //
    // `idcap`: entries with id >= idcap are not candidates (their codes are not read). k-NN
    // passes it for the last step, where no entry can beat the k-th item held except by a
    // smaller id (see knn); n elsewhere. Work still counts every entry the buckets hold.
    template <class Bound, class OnBatch>
    Step step(const uint64_t* q, int64_t r, int64_t& work, Bound bound, OnBatch on_batch,
              uint64_t idcap) {
        const int64_t j = r % m, s = r / m;
        const MihSub& sub = t.subs[static_cast<size_t>(j)];
        if (s > sub.len) return Step::ok;
        double probes = 0.0;
        const double cost = step_cost(r, &probes);
        if (probes > kMaxProbes || (limit > 0 && double(work) + cost > double(limit))) return Step::over;
        list_buckets(sub, qkeys[static_cast<size_t>(j)], s, static_cast<int64_t>(probes));
        const uint32_t* off = t.offsets + sub.base;
        const uint32_t* ids = t.ids + j * db.n;
        const int64_t nb = static_cast<int64_t>(buckets.size());
        const uint64_t n = static_cast<uint64_t>(db.n);
        ranges.resize(static_cast<size_t>(nb));
        int64_t total = 0;
        for (int64_t i = 0; i < nb; ++i) {
            if (i + kAhead < nb) {  // off[b + 1] lies in the next line for one bucket in 16
                const uint64_t b = buckets[static_cast<size_t>(i + kAhead)];
                HK_PREFETCH(off + b);
                HK_PREFETCH(off + b + 1);
            }
            const uint64_t b = buckets[static_cast<size_t>(i)];
            const uint32_t o0 = off[b], o1 = off[b + 1];
            if (o0 > o1 || o1 > n) return Step::corrupt;
            ranges[static_cast<size_t>(i)] = {o0, o1};
            total += o1 - o0;
        }
        work += nb + total;
        if (limit > 0 && work > limit) return Step::over;
        cand.resize(static_cast<size_t>(total));
        if (sub.hashed) cand_v.resize(static_cast<size_t>(total));
        uint32_t* c = cand.data();
        uint64_t* cv = sub.hashed ? cand_v.data() : nullptr;
        for (int64_t i = 0; i < nb; ++i) {
            if (i + kAhead < nb) {  // first and last id: a bucket of a few ids often straddles two lines
                const auto ra = ranges[static_cast<size_t>(i + kAhead)];
                HK_PREFETCH(ids + ra.first);
                if (ra.second > ra.first) HK_PREFETCH(ids + ra.second - 1);
            }
            const auto rg = ranges[static_cast<size_t>(i)];
            for (uint32_t o = rg.first; o < rg.second; ++o) {
                const uint32_t id = ids[o];
                if (id >= n) return Step::corrupt;
                if (id >= idcap) continue;
                *c++ = id;
                if (cv) *cv++ = vals[static_cast<size_t>(i)];
            }
        }
        total = c - cand.data();
        MihVerify args{q, qkeys.data(), t.subs.data(), db.data, nullptr, db.w, m, j, s};
        for (int64_t c0 = 0; c0 < total; c0 += kBatch) {
            const int64_t nc = std::min(kBatch, total - c0);
            const size_t old = found.size();
            hits.resize(static_cast<size_t>(kBatch));  // not found.resize(old + nc): that zero-fills every chunk
            args.cand_v = sub.hashed ? cand_v.data() + c0 : nullptr;
            const int64_t got = vf(args, cand.data() + c0, nc, total - c0, bound(), hits.data());
            found.insert(found.end(), hits.begin(), hits.begin() + got);
            on_batch(old);
        }
        return Step::ok;
    }

    void set_keys(const uint64_t* q) {
        for (int64_t j = 0; j < m; ++j) qkeys[static_cast<size_t>(j)] = mih_key(q, t.subs[static_cast<size_t>(j)]);
    }

    // The id of the k-th smallest (distance, id) held, all at distance <= tb (k are held).
    uint64_t kth_id(int64_t k, int64_t tb) {
        kth.clear();
        for (uint64_t v : found)
            if (int64_t(v >> 32) <= tb) kth.push_back(v);
        std::nth_element(kth.begin(), kth.begin() + (k - 1), kth.end());
        return kth[static_cast<size_t>(k - 1)] & 0xffffffffu;
    }

    // k nearest of q into od/oi; returns ok, over (caller scans) or corrupt.
    Step knn(const uint64_t* q, int64_t k, int32_t* od, int64_t* oi, int64_t& work) {
        set_keys(q);
        found.clear();
        hist.assign(static_cast<size_t>(nbits + 1), 0);
        int64_t tb = nbits;   // take candidates with distance <= tb
        bool full = false;    // k taken at distance <= tb
        auto on_batch = [&](size_t from) {
            for (size_t i = from; i < found.size(); ++i) ++hist[static_cast<size_t>(found[i] >> 32)];
            int64_t cum = 0;
            for (int64_t d = 0; d <= tb; ++d) {
                cum += hist[static_cast<size_t>(d)];
                if (cum >= k) {
                    tb = d;
                    full = true;
                    break;
                }
            }
        };
        const int64_t rmax = m * (maxlen + 1);
        for (int64_t r = 0; r < rmax; ++r) {
            // An item first seen at step r is at distance >= r (every earlier substring differs
            // in more bits than its step allows). With k items held and the k-th at distance
            // tb == r, an entry of this step enters the top k only at distance r with an id below
            // the k-th item's: larger ids are dropped before their codes are read (about half of
            // the last step's entries on random codes, whose ids are random).
            uint64_t idcap = static_cast<uint64_t>(db.n);
            if (full && tb == r) idcap = kth_id(k, tb);
            const Step st = step(q, r, work, [&]() { return tb; }, on_batch, idcap);
            if (st != Step::ok) return st;
            if (full && tb <= r) break;  // every item at distance <= r is held
            if (found.size() > static_cast<size_t>(4 * k + 4096)) {  // drop items beyond tb
                found.erase(std::remove_if(found.begin(), found.end(),
                                           [&](uint64_t v) { return int64_t(v >> 32) > tb; }),
                            found.end());
            }
        }
        if (!full) return Step::corrupt;  // all steps walked yet fewer than k items: bad tables
        found.erase(std::remove_if(found.begin(), found.end(),
                                   [&](uint64_t v) { return int64_t(v >> 32) > tb; }),
                    found.end());
        if (static_cast<int64_t>(found.size()) < k) return Step::corrupt;
        std::nth_element(found.begin(), found.begin() + (k - 1), found.end());
        std::sort(found.begin(), found.begin() + k);
        for (int64_t i = 0; i < k; ++i) {
            od[i] = static_cast<int32_t>(found[static_cast<size_t>(i)] >> 32);
            oi[i] = static_cast<int64_t>(found[static_cast<size_t>(i)] & 0xffffffffu);
        }
        return Step::ok;
    }

    // Items within r of q, sorted by (distance, id), into `out` as (distance << 32 | id).
    Step radius(const uint64_t* q, int64_t r, int64_t& work, std::vector<uint64_t>& out) {
        const int64_t last = std::min<int64_t>(r, m * (maxlen + 1) - 1);
        if (limit > 0) {  // cheaper to decide before walking any step
            double cost = 0.0;
            for (int64_t s = 0; s <= last && cost <= double(limit); ++s) {
                if (s / m <= t.subs[static_cast<size_t>(s % m)].len) cost += step_cost(s, nullptr);
            }
            if (cost > double(limit)) return Step::over;
        }
        set_keys(q);
        found.clear();
        for (int64_t s = 0; s <= last; ++s) {
            const Step st = step(q, s, work, [&]() { return r; }, [](size_t) {}, static_cast<uint64_t>(db.n));
            if (st != Step::ok) return st;
        }
        std::sort(found.begin(), found.end());
        out.assign(found.begin(), found.end());
        return Step::ok;
    }
};

}  // namespace

std::vector<MihSub> mih_subs(const int64_t* desc, int64_t m, int64_t nbits, int64_t w) {
    if (m < 1 || m > nbits) {
        throw std::invalid_argument("desc: expected between 1 and nbits = " + std::to_string(nbits) +
                                    " substrings, got " + std::to_string(m));
    }
    std::vector<MihSub> subs(static_cast<size_t>(m));
    int64_t next = 0, base = 0;
    for (int64_t j = 0; j < m; ++j) {
        const int64_t first = desc[4 * j], len = desc[4 * j + 1], tb = desc[4 * j + 2],
                      hashed = desc[4 * j + 3];
        const std::string at = "desc: substring " + std::to_string(j) + " ";
        if (first != next) {
            throw std::invalid_argument(at + "must start at bit " + std::to_string(next) +
                                        " (substrings tile the code in order), got " +
                                        std::to_string(first));
        }
        if (len < 1 || len > 64 || first + len > nbits) {
            throw std::invalid_argument(at + "has length " + std::to_string(len) +
                                        ", expected 1..64 bits inside the code");
        }
        if (hashed != 0 && hashed != 1) throw std::invalid_argument(at + "hashed flag must be 0 or 1");
        if (hashed ? (tb < 1 || tb > 30 || tb > len) : tb != len || tb > 30) {
            throw std::invalid_argument(at + "has " + std::to_string(tb) +
                                        " table bits; expected the length (direct, <= 30) or "
                                        "1..min(30, length) (hashed)");
        }
        MihSub& s = subs[static_cast<size_t>(j)];
        s.first = first;
        s.len = static_cast<int>(len);
        s.tbits = static_cast<int>(tb);
        s.hashed = hashed != 0;
        s.base = base;
        s.w0 = first / 64;
        s.sh = static_cast<int>(first % 64);
        s.two = s.sh + len > 64;
        s.mask = len == 64 ? ~uint64_t{0} : ((uint64_t{1} << len) - 1);
        if (s.w0 + (s.two ? 1 : 0) >= w) throw std::invalid_argument(at + "lies beyond the code words");
        base += (int64_t{1} << tb) + 1;
        next = first + len;
    }
    if (next != nbits) {
        throw std::invalid_argument("desc: the substrings cover " + std::to_string(next) +
                                    " bits, expected all nbits = " + std::to_string(nbits));
    }
    return subs;
}

int64_t mih_offsets_size(const std::vector<MihSub>& subs) {
    int64_t n = 0;
    for (const auto& s : subs) n += (int64_t{1} << s.tbits) + 1;
    return n;
}

void mih_build(Codes db, const std::vector<MihSub>& subs, int nthreads, uint32_t* offsets,
               uint32_t* ids) {
    const int64_t m = static_cast<int64_t>(subs.size()), n = db.n, w = db.w;
    run_blocks(m, nthreads, [&]() {
        return [&](int64_t j) {
            const MihSub& s = subs[static_cast<size_t>(j)];
            uint32_t* off = offsets + s.base;
            uint32_t* out = ids + j * n;
            const int64_t nb = int64_t{1} << s.tbits;
            std::fill(off, off + nb + 1, 0u);
            for (int64_t i = 0; i < n; ++i) ++off[mih_bucket(mih_key(db.data + i * w, s), s) + 1];
            for (int64_t b = 1; b <= nb; ++b) off[b] += off[b - 1];  // off[b] = start of bucket b
            for (int64_t i = 0; i < n; ++i) {  // in index order: ids ascend within a bucket
                const uint64_t b = mih_bucket(mih_key(db.data + i * w, s), s);
                out[off[b]++] = static_cast<uint32_t>(i);
            }
            for (int64_t b = nb; b > 0; --b) off[b] = off[b - 1];  // back to bucket starts
            off[0] = 0;
        };
    });
}

namespace {

// The queries (rows where work == -1) that the tables did not answer, as one batch: the linear
// scan then reuses each database tile across them, as it does for any batch of queries.
std::vector<uint64_t> fallback_rows(Codes q, const int64_t* work, std::vector<int64_t>& rows) {
    rows.clear();
    for (int64_t i = 0; i < q.n; ++i)
        if (work[i] < 0) rows.push_back(i);
    std::vector<uint64_t> buf(rows.size() * static_cast<size_t>(q.w));
    for (size_t r = 0; r < rows.size(); ++r)
        std::copy(q.data + rows[r] * q.w, q.data + (rows[r] + 1) * q.w, buf.begin() + r * q.w);
    return buf;
}

}  // namespace

bool mih_topk(Codes q, Codes db, int64_t nbits, const MihTables& t, int64_t k, int64_t limit,
              int nthreads, int32_t* dist, int64_t* idx, int64_t* work) {
    std::atomic<bool> bad{false};
    run_blocks(q.n, nthreads, [&]() {
        auto sp = std::make_shared<Searcher>(t, db, nbits, limit);
        return [&, sp](int64_t i) {
            int64_t wk = 0;
            const Step st = sp->knn(q.data + i * q.w, k, dist + i * k, idx + i * k, wk);
            if (st == Step::corrupt) bad = true;
            work[i] = st == Step::ok ? wk : -1;
        };
    });
    std::vector<int64_t> rows;
    const std::vector<uint64_t> buf = fallback_rows(q, work, rows);
    if (!rows.empty()) {  // answered by the linear scan, as one batch
        const int64_t nr = static_cast<int64_t>(rows.size());
        std::vector<int32_t> d(static_cast<size_t>(nr * k));
        std::vector<int64_t> ix(static_cast<size_t>(nr * k));
        hk::topk(Codes{buf.data(), nr, q.w}, db, nbits, k, nthreads, d.data(), ix.data());
        for (int64_t r = 0; r < nr; ++r) {
            std::copy(d.begin() + r * k, d.begin() + (r + 1) * k, dist + rows[static_cast<size_t>(r)] * k);
            std::copy(ix.begin() + r * k, ix.begin() + (r + 1) * k, idx + rows[static_cast<size_t>(r)] * k);
        }
    }
    return !bad;
}

bool mih_radius(Codes q, Codes db, int64_t nbits, const MihTables& t, int64_t r, int64_t limit,
                int nthreads, int64_t* work, RadiusResult& out) {
    std::atomic<bool> bad{false};
    std::vector<std::vector<uint64_t>> res(static_cast<size_t>(q.n));
    const int64_t rr = std::min(r, nbits);
    run_blocks(q.n, nthreads, [&]() {
        auto sp = std::make_shared<Searcher>(t, db, nbits, limit);
        return [&, sp](int64_t i) {
            int64_t wk = 0;
            const Step st = sp->radius(q.data + i * q.w, rr, wk, res[static_cast<size_t>(i)]);
            if (st == Step::corrupt) bad = true;
            work[i] = st == Step::ok ? wk : -1;
        };
    });
    std::vector<int64_t> rows;
    const std::vector<uint64_t> buf = fallback_rows(q, work, rows);
    if (!rows.empty()) {
        RadiusResult scan = hk::radius(Codes{buf.data(), static_cast<int64_t>(rows.size()), q.w}, db, nbits,
                                       rr, nthreads);
        for (size_t i = 0; i < rows.size(); ++i) {
            auto& dst = res[static_cast<size_t>(rows[i])];
            const int64_t a = scan.lims[i], b = scan.lims[i + 1];
            dst.resize(static_cast<size_t>(b - a));
            for (int64_t c = a; c < b; ++c) {
                dst[static_cast<size_t>(c - a)] =
                    (static_cast<uint64_t>(scan.dist[c]) << 32) | static_cast<uint64_t>(scan.idx[c]);
            }
        }
    }
    out.lims.assign(static_cast<size_t>(q.n + 1), 0);
    for (int64_t i = 0; i < q.n; ++i) {
        out.lims[static_cast<size_t>(i + 1)] = out.lims[static_cast<size_t>(i)] +
                                               static_cast<int64_t>(res[static_cast<size_t>(i)].size());
    }
    out.m = out.lims[static_cast<size_t>(q.n)];
    out.idx.reset(new int64_t[static_cast<size_t>(std::max<int64_t>(out.m, 1))]);
    out.dist.reset(new int32_t[static_cast<size_t>(std::max<int64_t>(out.m, 1))]);
    for (int64_t i = 0; i < q.n; ++i) {
        int64_t o = out.lims[static_cast<size_t>(i)];
        for (uint64_t v : res[static_cast<size_t>(i)]) {
            out.dist[o] = static_cast<int32_t>(v >> 32);
            out.idx[o] = static_cast<int64_t>(v & 0xffffffffu);
            ++o;
        }
        std::vector<uint64_t>().swap(res[static_cast<size_t>(i)]);
    }
    return !bad;
}

}  // namespace hk
