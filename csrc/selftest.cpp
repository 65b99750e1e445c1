// The start-up self-test of the SIMD paths (see active_isa in simd.h).
//
// On the first kernel call, the best path the CPU reports runs every kernel on a small,
// deterministic, tie-heavy input and its outputs are compared, bit for bit (floats included),
// with the scalar path's. A path that differs is dropped for the next lower one, and the
// reason is kept for `hashkit info`. The inputs cover one- to five-word codes (the packed and
// unpacked rank_stats layouts, several database tiles), one- and two-word labels, cut-offs,
// first_m, graded relevance, the selection and full-ranking top-k (with every outcome of its
// guessed limit) and narrow and wide radii.
// It costs a few milliseconds once per process.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace hk {
namespace {

thread_local int t_forced = -1;  // set only while the self-test runs a path (one thread)
std::string g_note;

struct Forced {
    explicit Forced(Isa isa) { t_forced = static_cast<int>(isa); }
    ~Forced() { t_forced = -1; }
};

uint64_t next(uint64_t& s) {  // xorshift64*: deterministic, no <random> state to seed
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
}

struct Case {
    int64_t w, lw, nq, n, nbits, nlabels;
    std::vector<uint64_t> q, db, ql, dbl;
};

Case make_case(int64_t w, int64_t lw, uint64_t seed) {
    Case c{w, lw, 5, 700, 64 * w - (w > 1 ? 3 : 0), 64 * lw - 7, {}, {}, {}, {}};
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    const uint64_t last = c.nbits % 64 ? (uint64_t{1} << (c.nbits % 64)) - 1 : ~uint64_t{0};
    const uint64_t llast = c.nlabels % 64 ? (uint64_t{1} << (c.nlabels % 64)) - 1 : ~uint64_t{0};
    c.q.resize(c.nq * w);
    for (auto& x : c.q) x = next(s);
    c.db.resize(c.n * w);
    for (int64_t j = 0; j < c.n; ++j) {
        // Most items are a query with a few bits flipped (small distances, many ties); the
        // rest are random (the far end of the histograms).
        const int64_t base = static_cast<int64_t>(next(s) % c.nq);
        const bool near = next(s) % 4 != 0;
        for (int64_t t = 0; t < w; ++t) {
            uint64_t x = near ? c.q[base * w + t] : next(s);
            if (near) {
                const int flips = static_cast<int>(next(s) % 3);
                for (int f = 0; f < flips; ++f) x ^= uint64_t{1} << (next(s) % 64);
            }
            c.db[j * w + t] = x;
        }
    }
    for (int64_t i = 0; i < c.nq; ++i) c.q[i * w + w - 1] &= last;
    for (int64_t j = 0; j < c.n; ++j) c.db[j * w + w - 1] &= last;
    c.ql.resize(c.nq * lw);
    c.dbl.resize(c.n * lw);
    for (auto& x : c.ql) x = next(s) & next(s) & next(s);   // sparse multi-hot labels
    for (auto& x : c.dbl) x = next(s) & next(s) & next(s);
    for (int64_t i = 0; i < c.nq; ++i) c.ql[i * lw + lw - 1] &= llast;
    for (int64_t j = 0; j < c.n; ++j) c.dbl[j * lw + lw - 1] &= llast;
    return c;
}

// Every output of every kernel on one case, as bytes, for a bitwise comparison.
std::vector<unsigned char> run_all(const Case& c) {
    std::vector<unsigned char> out;
    auto put = [&out](const void* p, size_t bytes) {
        const auto* b = static_cast<const unsigned char*>(p);
        out.insert(out.end(), b, b + bytes);
    };
    const Codes q{c.q.data(), c.nq, c.w}, db{c.db.data(), c.n, c.w};
    const Codes ql{c.ql.data(), c.nq, c.lw}, dbl{c.dbl.data(), c.n, c.lw};
    std::vector<int32_t> ham(c.nq * c.n);
    hamming(q, db, 1, ham.data());
    put(ham.data(), ham.size() * 4);
    for (int64_t k : {int64_t{1}, int64_t{10}, int64_t{97}, c.n}) {
        std::vector<int32_t> d(c.nq * k);
        std::vector<int64_t> ix(c.nq * k);
        topk(q, db, c.nbits, k, 1, d.data(), ix.data());
        put(d.data(), d.size() * 4);
        put(ix.data(), ix.size() * 8);
    }
    for (int64_t r : {int64_t{0}, int64_t{2}, int64_t{5}, c.nbits / 2, c.nbits}) {
        RadiusResult res = radius(q, db, c.nbits, r, 1);
        put(res.lims.data(), res.lims.size() * 8);
        put(res.idx.get(), static_cast<size_t>(res.m) * 8);
        put(res.dist.get(), static_cast<size_t>(res.m) * 4);
    }
    const int64_t nb1 = c.nbits + 1;
    std::vector<int64_t> ha(c.nq * nb1), hr(c.nq * nb1);
    hist_stats(q, db, ql, dbl, c.nbits, 1, ha.data(), hr.data());
    put(ha.data(), ha.size() * 8);
    put(hr.data(), hr.size() * 8);
    const std::vector<int64_t> cut{1, 7, 50, 300, c.n};
    const int64_t C = static_cast<int64_t>(cut.size());
    for (int graded = 0; graded < 2; ++graded) {
        std::vector<int64_t> a(c.nq * nb1), b(c.nq * nb1), rel_at(c.nq * C), gain_at(c.nq * C),
            gain_hist(c.nq * (c.nlabels + 1));
        std::vector<double> ap(c.nq), ap_at(c.nq * C), first(c.nq), dcg(c.nq * C);
        RankStatsOut o{a.data(), b.data(), ap.data(), rel_at.data(), ap_at.data(), first.data(),
                       graded ? gain_at.data() : nullptr, graded ? dcg.data() : nullptr,
                       graded ? gain_hist.data() : nullptr};
        rank_stats(q, db, ql, dbl, c.nbits, cut.data(), C, 20, graded != 0, c.nlabels, 1, o);
        for (const auto* v : {&a, &b, &rel_at}) put(v->data(), v->size() * 8);
        for (const auto* v : {&ap, &ap_at, &first}) put(v->data(), v->size() * 8);
        if (graded) {
            put(gain_at.data(), gain_at.size() * 8);
            put(dcg.data(), dcg.size() * 8);
            put(gain_hist.data(), gain_hist.size() * 8);
        }
    }
    return out;
}

// Two-word codes over several selection tiles (2048 codes each) with near items (within 20
// bits, the AVX2 filter's guessed limit) arranged so that every outcome of top-k's guess
// (kernels.cpp, topk_select) occurs: plenty spread (it holds), none (given up at the first
// check), many in the last tile only, slightly too few spread (found wrong at the end), a few in
// the first tile only (given up at a later check). The rest are random (about 64 bits away).
Case make_guess_case(uint64_t seed) {
    Case c{2, 1, 5, 3 * 2048 + 5, 128, 1, {}, {}, {}, {}};
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    c.q.resize(c.nq * 2);
    for (auto& x : c.q) x = next(s);
    c.db.resize(c.n * 2);
    for (auto& x : c.db) x = next(s);
    auto put_near = [&](int64_t i, int64_t j) {
        for (int t = 0; t < 2; ++t) {
            uint64_t x = c.q[i * 2 + t];
            const int flips = static_cast<int>(next(s) % 11);  // 0..20 over both words
            for (int f = 0; f < flips; ++f) x ^= uint64_t{1} << (next(s) % 64);
            c.db[j * 2 + t] = x;
        }
    };
    const int64_t n = c.n;
    for (int64_t e = 0; e < 160; ++e) put_near(0, static_cast<int64_t>(next(s) % n));
    for (int64_t e = 0; e < 80; ++e) put_near(2, n - 2048 + static_cast<int64_t>(next(s) % 2048));
    for (int64_t e = 0; e < 36; ++e) put_near(3, static_cast<int64_t>(next(s) % n));
    for (int64_t e = 0; e < 12; ++e) put_near(4, static_cast<int64_t>(next(s) % 2048));
    return c;
}

std::vector<unsigned char> run_topk(const Case& c) {
    std::vector<unsigned char> out;
    const Codes q{c.q.data(), c.nq, c.w}, db{c.db.data(), c.n, c.w};
    for (int64_t k : {int64_t{1}, int64_t{20}, int64_t{40}, int64_t{80}, int64_t{200}}) {
        std::vector<int32_t> d(c.nq * k);
        std::vector<int64_t> ix(c.nq * k);
        topk(q, db, c.nbits, k, 1, d.data(), ix.data());
        const auto* b = reinterpret_cast<const unsigned char*>(d.data());
        out.insert(out.end(), b, b + d.size() * 4);
        b = reinterpret_cast<const unsigned char*>(ix.data());
        out.insert(out.end(), b, b + ix.size() * 8);
    }
    return out;
}

bool forced_to_fail(Isa isa) {
    // A test hook: HASHKIT_SIMD_SELFTEST_FAIL=avx2 (say) makes that path fail, so the tests can
    // check the fallback on a machine whose paths are all correct.
    const char* env = std::getenv("HASHKIT_SIMD_SELFTEST_FAIL");
    return env && std::strcmp(env, isa_name(isa)) == 0;
}

bool passes(Isa isa, std::string& why) {
    if (forced_to_fail(isa)) {
        why = "failed (forced by HASHKIT_SIMD_SELFTEST_FAIL)";
        return false;
    }
    static const int64_t shapes[][2] = {{1, 1}, {2, 1}, {2, 2}, {3, 1}, {5, 2}};
    uint64_t seed = 1;
    for (const auto& sh : shapes) {
        const Case c = make_case(sh[0], sh[1], seed++);
        try {
            std::vector<unsigned char> got, want;
            {
                Forced f(isa);
                got = run_all(c);
            }
            {
                Forced f(Isa::scalar);
                want = run_all(c);
            }
            if (got != want) {
                why = "failed: its results differ from the scalar path's for " +
                      std::to_string(c.w) + "-word codes and " + std::to_string(c.lw) + "-word labels";
                return false;
            }
        } catch (const std::exception& e) {
            why = std::string("failed: ") + e.what();
            return false;
        }
    }
    try {
        const Case c = make_guess_case(seed);
        std::vector<unsigned char> got, want;
        {
            Forced f(isa);
            got = run_topk(c);
        }
        {
            Forced f(Isa::scalar);
            want = run_topk(c);
        }
        if (got != want) {
            why = "failed: its top-k differs from the scalar path's for two-word codes over "
                  "several tiles";
            return false;
        }
    } catch (const std::exception& e) {
        why = std::string("failed: ") + e.what();
        return false;
    }
    why = "passed (every kernel checked against scalar)";
    return true;
}

Isa checked_isa() {
    Isa isa = best_isa();
    while (isa != Isa::scalar) {
        std::string why;
        if (passes(isa, why)) {
            g_note += std::string(isa_name(isa)) + " " + why;
            return isa;
        }
        g_note += std::string(isa_name(isa)) + " " + why + "; ";
        isa = static_cast<Isa>(static_cast<int>(isa) - 1);
    }
    g_note += "scalar (the reference path)";
    return Isa::scalar;
}

}  // namespace

Isa active_isa() {
    if (t_forced >= 0) return static_cast<Isa>(t_forced);
    static const Isa isa = checked_isa();
    return isa;
}

const char* simd_self_test() {
    active_isa();
    return g_note.c_str();
}

}  // namespace hk
