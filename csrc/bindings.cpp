// Python bindings of the C++ kernels: module hashkit._core (private; imported only by
// hashkit/_backend.py). The only file that includes pybind11.
//
// Every argument is re-checked here, cheaply, before the GIL is released: arrays must already
// be C-contiguous, aligned, native uint64 (int64 for cutoffs). Nothing is converted or copied
// silently; a wrong input raises TypeError/ValueError naming the argument, what was expected
// and what arrived, so no input reaching a kernel can make it read or write out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernels.h"
#include "mih.h"
#include "simd.h"

namespace py = pybind11;

namespace {

using U64 = py::array_t<uint64_t, py::array::c_style>;
using I64 = py::array_t<int64_t, py::array::c_style>;

std::string shape_str(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s << (d ? ", " : "") << a.shape(d);
    s << (a.ndim() == 1 ? ",)" : ")");
    return s.str();
}

// str(x) of any Python object. Taking a py::handle matters: py::str(const dtype&) is ambiguous
// (str(handle) vs str(const object&)) on every pybind11 before 3.1, which pyproject.toml admits.
std::string obj_str(py::handle h) { return py::str(h).cast<std::string>(); }

std::string dtype_str(const py::array& a) { return obj_str(a.dtype()); }

std::string type_name(py::handle h) { return py::str(py::type::handle_of(h).attr("__name__")); }

// A C-contiguous, aligned, native-endian array of T with `ndim` dimensions, no conversion.
template <class T>
py::array_t<T, py::array::c_style> take_array(py::handle h, const char* name, int ndim,
                                              const char* expect) {
    if (!py::isinstance<py::array>(h)) {
        throw py::type_error(std::string(name) + ": expected a NumPy array of " + expect +
                             ", got " + type_name(h));
    }
    auto a = py::reinterpret_borrow<py::array>(h);
    const auto want = py::dtype::of<T>();
    if (!py::detail::npy_api::get().PyArray_EquivTypes_(want.ptr(), a.dtype().ptr())) {
        throw py::type_error(std::string(name) + ": expected dtype " +
                             obj_str(want) + " (" + expect + "), got dtype " +
                             dtype_str(a) + " (no silent conversion: cast it explicitly)");
    }
    if (a.ndim() != ndim) {
        throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) +
                              "-D array (" + expect + "), got shape " + shape_str(a));
    }
    if (!(a.flags() & py::array::c_style)) {
        throw py::value_error(std::string(name) + ": expected a C-contiguous array, got a "
                              "non-contiguous view of shape " + shape_str(a) +
                              " (use numpy.ascontiguousarray)");
    }
    if (reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0) {
        throw py::value_error(std::string(name) + ": expected an aligned array, got a misaligned "
                              "buffer (copy it with numpy.array)");
    }
    return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(a);
}

// (n >= 1, w >= 1) uint64 codes or packed labels; `w_must` > 0 pins the width.
hk::Codes take_codes(py::handle h, const char* name, U64& keep, int64_t w_must = 0,
                     const char* w_from = nullptr, int64_t n_must = -1,
                     const char* n_from = nullptr) {
    keep = take_array<uint64_t>(h, name, 2, "packed 64-bit words, shape (n, W)");
    const int64_t n = keep.shape(0), w = keep.shape(1);
    if (n < 1 || w < 1) {
        throw py::value_error(std::string(name) + ": expected a non-empty array (n >= 1, W >= 1), "
                              "got shape " + shape_str(keep));
    }
    if (w_must > 0 && w != w_must) {
        throw py::value_error(std::string(name) + ": expected " + std::to_string(w_must) +
                              " words per row (the same W as " + w_from + "), got shape " +
                              shape_str(keep));
    }
    if (n_must >= 0 && n != n_must) {
        throw py::value_error(std::string(name) + ": expected " + std::to_string(n_must) +
                              " rows (one per row of " + n_from + "), got shape " +
                              shape_str(keep));
    }
    return hk::Codes{keep.data(), n, w};
}

// `overflow` is set to -1 / +1 (and 0 returned) when the integer does not fit in int64; `text`
// receives its decimal form then, for the message.
int64_t take_int(py::handle h, const char* name, int& overflow, std::string& text) {
    if (PyBool_Check(h.ptr()) || !PyIndex_Check(h.ptr())) {
        throw py::type_error(std::string(name) + ": expected an integer, got " + type_name(h));
    }
    py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(h.ptr()));
    if (!v) throw py::error_already_set();
    overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow) text = py::str(static_cast<py::handle>(v)).cast<std::string>();
    return overflow ? 0 : static_cast<int64_t>(x);
}

int64_t take_int_in(py::handle h, const char* name, int64_t lo, int64_t hi) {
    int overflow = 0;
    std::string text;
    const int64_t x = take_int(h, name, overflow, text);
    if (overflow || x < lo || x > hi) {
        throw py::value_error(std::string(name) + ": expected an integer in [" + std::to_string(lo) +
                              ", " + std::to_string(hi) + "], got " +
                              (overflow ? text : std::to_string(x)));
    }
    return x;
}

// A radius follows one rule on every backend (hashkit/_validate.py check_radius, same
// messages): any non-negative integer of any size; r >= nbits selects every item, so it is
// clamped to nbits. 2^63 and beyond are valid radii, not an overflow (issue 14).
int64_t take_radius(py::handle h, int64_t nbits) {
    if (PyBool_Check(h.ptr()) || !PyIndex_Check(h.ptr())) {
        throw py::type_error("r: expected a non-negative integer radius, got " + type_name(h));
    }
    int overflow = 0;
    std::string text;
    int64_t x = 0;
    try {
        x = take_int(h, "r", overflow, text);
    } catch (py::error_already_set&) {  // __index__ exists but refused (e.g. a 0-d float array)
        throw py::type_error("r: expected a non-negative integer radius, got " + type_name(h));
    }
    if (overflow < 0 || (overflow == 0 && x < 0)) {
        throw py::value_error("r: expected a non-negative integer radius, got " +
                              (overflow ? text : std::to_string(x)));
    }
    return (overflow > 0 || x > nbits) ? nbits : x;
}

int take_threads(py::handle h) {
    return hk::resolve_threads(take_int_in(h, "nthreads", 0, INT64_MAX));
}

int64_t take_nbits(py::handle h, const hk::Codes& q) {
    return take_int_in(h, "nbits", 1, 64 * q.w);
}

// Bits at positions >= nbits must be zero: a stray bit would give a distance above nbits.
// O(rows x words past nbits), usually nothing at all (nbits == 64 W).
void check_padding(const hk::Codes& c, int64_t nbits, const char* name, const char* what) {
    const int64_t first = nbits / 64;
    const uint64_t partial = nbits % 64 ? ~((uint64_t{1} << (nbits % 64)) - 1) : ~uint64_t{0};
    if (first >= c.w) return;
    for (int64_t i = 0; i < c.n; ++i) {
        const uint64_t* row = c.data + i * c.w;
        uint64_t bad = row[first] & partial;
        for (int64_t t = first + 1; t < c.w; ++t) bad |= row[t];
        if (bad) {
            throw py::value_error(std::string(name) + ": " + what + " " + std::to_string(nbits) +
                                  " must be zero (padding), row " + std::to_string(i) +
                                  " has non-zero padding bits");
        }
    }
}

// Hands an array's buffer to NumPy without copying.
template <class T>
py::array_t<T> to_numpy(std::unique_ptr<T[]>&& v, int64_t n) {
    T* data = v.release();
    py::capsule owner(data, [](void* p) { delete[] static_cast<T*>(p); });
    return py::array_t<T>({static_cast<py::ssize_t>(n)}, {sizeof(T)}, data, owner);
}

// Hands a std::vector's buffer to NumPy without copying.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
    auto* heap = new std::vector<T>(std::move(v));
    py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {sizeof(T)}, heap->data(),
                          owner);
}

py::array_t<int32_t> py_hamming(py::handle q_, py::handle db_, py::handle nthreads_) {
    U64 qa, dba;
    const hk::Codes q = take_codes(q_, "q", qa);
    const hk::Codes db = take_codes(db_, "db", dba, q.w, "q");
    const int nt = take_threads(nthreads_);
    py::array_t<int32_t> out({q.n, db.n});
    int32_t* o = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        hk::hamming(q, db, nt, o);
    }
    return out;
}

// One array of a caller's out=(dist, idx): exactly dtype T, shape (rows, cols), C-contiguous,
// aligned and writeable (it is written in place, never copied).
template <class T>
py::array_t<T> take_out(py::handle h, const char* name, const char* dtype, int64_t rows,
                        int64_t cols) {
    const std::string want = std::string(dtype) + " array of shape (" + std::to_string(rows) +
                             ", " + std::to_string(cols) + "), C-contiguous and writeable";
    if (!py::isinstance<py::array>(h)) {
        throw py::type_error(std::string(name) + ": expected a NumPy " + want + ", got " +
                             type_name(h));
    }
    auto a = py::reinterpret_borrow<py::array>(h);
    if (!a.dtype().is(py::dtype::of<T>())) {
        throw py::type_error(std::string(name) + ": expected a NumPy " + want + ", got dtype " +
                             py::str(a.dtype()).cast<std::string>());
    }
    const int flags = py::array::c_style;
    if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols || !(a.flags() & flags) ||
        !a.writeable() || !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
        std::string got = "shape (";
        for (py::ssize_t i = 0; i < a.ndim(); ++i) got += (i ? ", " : "") + std::to_string(a.shape(i));
        got += std::string(")") + ((a.flags() & flags) ? "" : ", not C-contiguous") +
               (a.writeable() ? "" : ", read-only");
        throw py::value_error(std::string(name) + ": expected a NumPy " + want + ", got " + got);
    }
    return py::reinterpret_borrow<py::array_t<T>>(a);
}

py::tuple py_topk(py::handle q_, py::handle db_, py::handle nbits_, py::handle k_,
                  py::handle nthreads_, py::handle out_) {
    U64 qa, dba;
    const hk::Codes q = take_codes(q_, "q", qa);
    const hk::Codes db = take_codes(db_, "db", dba, q.w, "q");
    const int64_t nbits = take_nbits(nbits_, q);
    const int64_t k = take_int_in(k_, "k", 1, db.n);
    const int nt = take_threads(nthreads_);
    check_padding(q, nbits, "q", "code bits beyond nbits =");
    check_padding(db, nbits, "db", "code bits beyond nbits =");
    py::array_t<int32_t> dist;
    py::array_t<int64_t> idx;
    if (out_.is_none()) {
        dist = py::array_t<int32_t>({q.n, k});
        idx = py::array_t<int64_t>({q.n, k});
    } else {
        if (!py::isinstance<py::tuple>(out_) || py::len(out_) != 2) {
            throw py::type_error("out: expected a tuple (dist, idx) of NumPy arrays, got " +
                                 type_name(out_));
        }
        auto t = py::reinterpret_borrow<py::tuple>(out_);
        dist = take_out<int32_t>(t[0], "out[0] (dist)", "int32", q.n, k);
        idx = take_out<int64_t>(t[1], "out[1] (idx)", "int64", q.n, k);
        if (py::reinterpret_borrow<py::object>(t[0]).is(t[1])) {
            throw py::value_error("out: dist and idx must be two different arrays");
        }
    }
    int32_t* d = dist.mutable_data();
    int64_t* ix = idx.mutable_data();
    {
        py::gil_scoped_release nogil;
        hk::topk(q, db, nbits, k, nt, d, ix);
    }
    return py::make_tuple(dist, idx);
}

py::tuple py_radius(py::handle q_, py::handle db_, py::handle nbits_, py::handle r_,
                    py::handle nthreads_) {
    U64 qa, dba;
    const hk::Codes q = take_codes(q_, "q", qa);
    const hk::Codes db = take_codes(db_, "db", dba, q.w, "q");
    const int64_t nbits = take_nbits(nbits_, q);
    const int64_t r = take_radius(r_, nbits);
    const int nt = take_threads(nthreads_);
    check_padding(q, nbits, "q", "code bits beyond nbits =");
    check_padding(db, nbits, "db", "code bits beyond nbits =");
    hk::RadiusResult res;
    {
        py::gil_scoped_release nogil;
        res = hk::radius(q, db, nbits, r, nt);
    }
    return py::make_tuple(to_numpy(std::move(res.lims)), to_numpy(std::move(res.idx), res.m),
                          to_numpy(std::move(res.dist), res.m));
}

struct LabelledArgs {
    U64 qa, dba, qla, dbla;
    hk::Codes q, db, ql, dbl;
    int64_t nbits;
};

void take_labelled(LabelledArgs& a, py::handle q_, py::handle db_, py::handle ql_,
                   py::handle dbl_, py::handle nbits_) {
    a.q = take_codes(q_, "q", a.qa);
    a.db = take_codes(db_, "db", a.dba, a.q.w, "q");
    a.ql = take_codes(ql_, "ql", a.qla, 0, nullptr, a.q.n, "q");
    a.dbl = take_codes(dbl_, "dbl", a.dbla, a.ql.w, "ql", a.db.n, "db");
    a.nbits = take_nbits(nbits_, a.q);
    check_padding(a.q, a.nbits, "q", "code bits beyond nbits =");
    check_padding(a.db, a.nbits, "db", "code bits beyond nbits =");
}

py::tuple py_hist_stats(py::handle q_, py::handle db_, py::handle ql_, py::handle dbl_,
                        py::handle nbits_, py::handle nthreads_) {
    LabelledArgs a;
    take_labelled(a, q_, db_, ql_, dbl_, nbits_);
    const int nt = take_threads(nthreads_);
    py::array_t<int64_t> ha({a.q.n, a.nbits + 1}), hr({a.q.n, a.nbits + 1});
    int64_t* pa = ha.mutable_data();
    int64_t* pr = hr.mutable_data();
    {
        py::gil_scoped_release nogil;
        hk::hist_stats(a.q, a.db, a.ql, a.dbl, a.nbits, nt, pa, pr);
    }
    return py::make_tuple(ha, hr);
}

py::dict py_rank_stats(py::handle q_, py::handle db_, py::handle ql_, py::handle dbl_,
                       py::handle nbits_, py::handle cutoffs_, py::handle first_m_,
                       py::handle graded_, py::handle nlabels_, py::handle nthreads_) {
    LabelledArgs a;
    take_labelled(a, q_, db_, ql_, dbl_, nbits_);
    const int64_t N = a.db.n, Q = a.q.n;
    if (N >= (int64_t{1} << 32)) {
        throw py::value_error("db: rank_stats supports fewer than 2^32 database items, got " +
                              std::to_string(N));
    }
    I64 cut = take_array<int64_t>(cutoffs_, "cutoffs", 1, "cut-off positions, shape (C,)");
    const int64_t C = cut.shape(0);
    const int64_t* c = cut.data();
    for (int64_t i = 0; i < C; ++i) {
        if (c[i] < 1 || c[i] > N || (i > 0 && c[i] <= c[i - 1])) {
            throw py::value_error("cutoffs: expected strictly increasing values in [1, " +
                                  std::to_string(N) + "], got " +
                                  py::str(cutoffs_).cast<std::string>());
        }
    }
    const int64_t first_m = std::min(take_int_in(first_m_, "first_m", 0, INT64_MAX), N);
    if (!PyBool_Check(graded_.ptr()) && !py::isinstance(graded_, py::module_::import("numpy").attr("bool_"))) {
        throw py::type_error("graded: expected a bool, got " + type_name(graded_));
    }
    const bool graded = graded_.cast<bool>();
    const int64_t nlabels = take_int_in(nlabels_, "nlabels", 0, 64 * a.ql.w);
    const int nt = take_threads(nthreads_);
    if (graded) {
        check_padding(a.ql, nlabels, "ql", "label bits beyond nlabels =");
        check_padding(a.dbl, nlabels, "dbl", "label bits beyond nlabels =");
    }
    const int64_t nb1 = a.nbits + 1;
    py::array_t<int64_t> hist_all({Q, nb1}), hist_rel({Q, nb1}), rel_at({Q, C});
    py::array_t<double> ap_sum({Q}), ap_sum_at({Q, C}), ap_first({Q});
    const int64_t rows = graded ? Q : 0;
    py::array_t<int64_t> gain_at({rows, C}), gain_hist({rows, nlabels + 1});
    py::array_t<double> dcg_at({rows, C});
    hk::RankStatsOut o{hist_all.mutable_data(), hist_rel.mutable_data(), ap_sum.mutable_data(),
                       rel_at.mutable_data(),   ap_sum_at.mutable_data(), ap_first.mutable_data(),
                       graded ? gain_at.mutable_data() : nullptr,
                       graded ? dcg_at.mutable_data() : nullptr,
                       graded ? gain_hist.mutable_data() : nullptr};
    {
        py::gil_scoped_release nogil;
        hk::rank_stats(a.q, a.db, a.ql, a.dbl, a.nbits, c, C, first_m, graded, nlabels, nt, o);
    }
    py::dict d;
    d["hist_all"] = hist_all;
    d["hist_rel"] = hist_rel;
    d["ap_sum"] = ap_sum;
    d["rel_at"] = rel_at;
    d["ap_sum_at"] = ap_sum_at;
    d["ap_first"] = ap_first;
    if (graded) {
        d["gain_at"] = gain_at;
        d["dcg_at"] = dcg_at;
        d["gain_hist"] = gain_hist;
    }
    return d;
}

// ---- multi-index hashing (csrc/mih.h) ---------------------------------------------------
// The tables may come from a memory-mapped file: their shapes are checked here, and the search
// checks every offset and id it reads (a bad one raises, never reads out of bounds).
struct MihArgs {
    U64 qa, dba;
    I64 desca;
    py::array_t<uint32_t, py::array::c_style> offa, idsa;
    hk::Codes q, db;
    int64_t nbits;
    hk::MihTables t;
};

void take_mih(MihArgs& a, py::handle q_, py::handle db_, py::handle nbits_, py::handle desc_,
              py::handle offsets_, py::handle ids_) {
    a.q = take_codes(q_, "q", a.qa);
    a.db = take_codes(db_, "db", a.dba, a.q.w, "q");
    a.nbits = take_nbits(nbits_, a.q);
    if (a.db.n >= (int64_t{1} << 32)) {
        throw py::value_error("db: MIH tables hold fewer than 2^32 items, got " + std::to_string(a.db.n));
    }
    a.desca = take_array<int64_t>(desc_, "desc", 2, "substring descriptors, shape (m, 4)");
    if (a.desca.shape(1) != 4) throw py::value_error("desc: expected shape (m, 4), got " + shape_str(a.desca));
    a.t.subs = hk::mih_subs(a.desca.data(), a.desca.shape(0), a.nbits, a.q.w);
    a.offa = take_array<uint32_t>(offsets_, "offsets", 1, "CSR offsets of every table");
    a.idsa = take_array<uint32_t>(ids_, "ids", 2, "item ids of every table, shape (m, n)");
    const int64_t need = hk::mih_offsets_size(a.t.subs), m = a.desca.shape(0);
    if (a.offa.shape(0) != need) {
        throw py::value_error("offsets: expected " + std::to_string(need) + " entries for these tables, got " +
                              shape_str(a.offa));
    }
    if (a.idsa.shape(0) != m || a.idsa.shape(1) != a.db.n) {
        throw py::value_error("ids: expected shape (" + std::to_string(m) + ", " + std::to_string(a.db.n) +
                              "), got " + shape_str(a.idsa));
    }
    a.t.offsets = a.offa.data();
    a.t.ids = a.idsa.data();
    check_padding(a.q, a.nbits, "q", "code bits beyond nbits =");
    check_padding(a.db, a.nbits, "db", "code bits beyond nbits =");
}

const char* kMihBad = "tables: the MIH tables do not match the codes (an offset or id out of range); rebuild them";

py::tuple py_mih_build(py::handle db_, py::handle nbits_, py::handle desc_, py::handle nthreads_) {
    U64 dba;
    const hk::Codes db = take_codes(db_, "db", dba);
    const int64_t nbits = take_nbits(nbits_, db);
    if (db.n >= (int64_t{1} << 32)) {
        throw py::value_error("db: MIH tables hold fewer than 2^32 items, got " + std::to_string(db.n));
    }
    I64 desca = take_array<int64_t>(desc_, "desc", 2, "substring descriptors, shape (m, 4)");
    if (desca.shape(1) != 4) throw py::value_error("desc: expected shape (m, 4), got " + shape_str(desca));
    const auto subs = hk::mih_subs(desca.data(), desca.shape(0), nbits, db.w);
    const int nt = take_threads(nthreads_);
    check_padding(db, nbits, "db", "code bits beyond nbits =");
    py::array_t<uint32_t> offsets(hk::mih_offsets_size(subs));
    py::array_t<uint32_t> ids({static_cast<int64_t>(subs.size()), db.n});
    uint32_t* po = offsets.mutable_data();
    uint32_t* pi = ids.mutable_data();
    {
        py::gil_scoped_release nogil;
        hk::mih_build(db, subs, nt, po, pi);
    }
    return py::make_tuple(offsets, ids);
}

py::tuple py_mih_topk(py::handle q_, py::handle db_, py::handle nbits_, py::handle desc_, py::handle offsets_,
                      py::handle ids_, py::handle k_, py::handle limit_, py::handle nthreads_) {
    MihArgs a;
    take_mih(a, q_, db_, nbits_, desc_, offsets_, ids_);
    const int64_t k = take_int_in(k_, "k", 1, a.db.n);
    const int64_t limit = take_int_in(limit_, "limit", INT64_MIN, INT64_MAX);
    const int nt = take_threads(nthreads_);
    py::array_t<int32_t> dist({a.q.n, k});
    py::array_t<int64_t> idx({a.q.n, k});
    py::array_t<int64_t> work(a.q.n);
    int32_t* d = dist.mutable_data();
    int64_t* ix = idx.mutable_data();
    int64_t* w = work.mutable_data();
    bool ok;
    {
        py::gil_scoped_release nogil;
        ok = hk::mih_topk(a.q, a.db, a.nbits, a.t, k, limit, nt, d, ix, w);
    }
    if (!ok) throw py::value_error(kMihBad);
    return py::make_tuple(dist, idx, work);
}

py::tuple py_mih_radius(py::handle q_, py::handle db_, py::handle nbits_, py::handle desc_,
                        py::handle offsets_, py::handle ids_, py::handle r_, py::handle limit_,
                        py::handle nthreads_) {
    MihArgs a;
    take_mih(a, q_, db_, nbits_, desc_, offsets_, ids_);
    const int64_t r = take_int_in(r_, "r", 0, INT64_MAX);
    const int64_t limit = take_int_in(limit_, "limit", INT64_MIN, INT64_MAX);
    const int nt = take_threads(nthreads_);
    py::array_t<int64_t> work(a.q.n);
    int64_t* w = work.mutable_data();
    hk::RadiusResult res;
    bool ok;
    {
        py::gil_scoped_release nogil;
        ok = hk::mih_radius(a.q, a.db, a.nbits, a.t, r, limit, nt, w, res);
    }
    if (!ok) throw py::value_error(kMihBad);
    return py::make_tuple(to_numpy(std::move(res.lims)), to_numpy(std::move(res.idx), res.m),
                          to_numpy(std::move(res.dist), res.m), work);
}
// ---- end of multi-index hashing ----------------------------------------------------------

py::dict py_build_info() {
    py::dict d;
    d["version"] = HASHKIT_VERSION;
    d["compiler"] = HASHKIT_COMPILER;
    d["flags"] = HASHKIT_CXX_FLAGS;
    d["build_type"] = HASHKIT_BUILD_TYPE;
    d["simd_path"] = hk::simd_path();
    d["simd_self_test"] = hk::simd_self_test();
    d["simd_paths_compiled"] = py::make_tuple("scalar", "popcnt", "avx2", "avx512bw", "avx512-vpopcntdq");
    d["hardware_threads"] = std::thread::hardware_concurrency();
    d["pybind11"] = std::to_string(PYBIND11_VERSION_MAJOR) + "." +
                    std::to_string(PYBIND11_VERSION_MINOR) + "." +
                    std::to_string(PYBIND11_VERSION_PATCH);
    return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "hashkit compiled Hamming kernels (private: use hashkit.search / hashkit.metrics)";
    m.attr("__version__") = HASHKIT_VERSION;
    m.def("hamming", &py_hamming, py::arg("q"), py::arg("db"), py::arg("nthreads") = 0,
          "All pairwise Hamming distances: int32 (Q, N).");
    m.def("topk", &py_topk, py::arg("q"), py::arg("db"), py::arg("nbits"), py::arg("k"),
          py::arg("nthreads") = 0, py::arg("out") = py::none(),
          "k nearest per query by (distance, index): (dist int32 (Q, k), idx int64 (Q, k)); "
          "out=(dist, idx) writes into (and returns) the caller's arrays.");
    m.def("radius", &py_radius, py::arg("q"), py::arg("db"), py::arg("nbits"), py::arg("r"),
          py::arg("nthreads") = 0,
          "Items with distance <= r as CSR (lims int64 (Q+1,), idx int64 (M,), dist int32 (M,)).");
    m.def("hist_stats", &py_hist_stats, py::arg("q"), py::arg("db"), py::arg("ql"),
          py::arg("dbl"), py::arg("nbits"), py::arg("nthreads") = 0,
          "Per-distance counts of all / relevant items: (hist_all, hist_rel) int64 (Q, nbits+1).");
    m.def("rank_stats", &py_rank_stats, py::arg("q"), py::arg("db"), py::arg("ql"),
          py::arg("dbl"), py::arg("nbits"), py::arg("cutoffs"), py::arg("first_m"),
          py::arg("graded"), py::arg("nlabels"), py::arg("nthreads") = 0,
          "Statistics of the stable (distance, index) ranking; see docs/INTERNALS.md.");
    m.def("mih_build", &py_mih_build, py::arg("db"), py::arg("nbits"), py::arg("desc"), py::arg("nthreads") = 0,
          "Multi-index hashing tables: (offsets uint32, ids uint32 (m, N)); see csrc/mih.h.");
    m.def("mih_topk", &py_mih_topk, py::arg("q"), py::arg("db"), py::arg("nbits"), py::arg("desc"),
          py::arg("offsets"), py::arg("ids"), py::arg("k"), py::arg("limit"), py::arg("nthreads") = 0,
          "Exact k-NN through MIH tables: (dist int32 (Q, k), idx int64 (Q, k), work int64 (Q,)).");
    m.def("mih_radius", &py_mih_radius, py::arg("q"), py::arg("db"), py::arg("nbits"), py::arg("desc"),
          py::arg("offsets"), py::arg("ids"), py::arg("r"), py::arg("limit"), py::arg("nthreads") = 0,
          "Exact radius search through MIH tables: (lims, idx, dist, work).");
    m.def("simd_path", &hk::simd_path, "The popcount/SIMD path chosen for this CPU (after its self-test).");
    m.def("simd_self_test", &hk::simd_self_test,
          "What the start-up self-test of the SIMD paths against the scalar path found.");
    m.def("build_info", &py_build_info, "Compiler, flags and version of this build.");
}
