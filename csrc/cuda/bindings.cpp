// pybind11 bindings for hashkit._cuda. Arrays travel as raw device pointers (Python ints) plus
// shapes, so this module depends on neither CuPy nor PyTorch; hashkit/_cuda_backend.py
// allocates every output with the caller's framework and passes its pointer and stream here.
// Nothing touches the CUDA driver at import time: the module imports on machines without a GPU.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kernels.cuh"

namespace py = pybind11;
namespace hc = hashkit_cuda;
using std::int64_t;
using std::uintptr_t;

namespace {

// Makes `device` current for the duration of a call and restores the caller's device after.
class DeviceGuard {
  public:
    explicit DeviceGuard(int device) {
        if (device < 0) throw std::invalid_argument("device: expected a device index >= 0, got " + std::to_string(device));
        HK_CUDA(cudaGetDevice(&prev_));
        if (prev_ != device) HK_CUDA(cudaSetDevice(device));
        else prev_ = -1;
    }
    ~DeviceGuard() {
        if (prev_ >= 0) cudaSetDevice(prev_);
    }

  private:
    int prev_ = -1;
};

std::size_t words(int64_t rows, int64_t w) {
    if (rows < 0 || w < 0) throw std::invalid_argument("negative shape");
    return std::size_t(rows) * std::size_t(w) * 8;
}

hc::Problem problem(uintptr_t q, uintptr_t db, int64_t nq, int64_t n, int w, int nbits, uintptr_t stream,
                    std::size_t scratch_bytes) {
    hc::Problem p{};
    p.q = reinterpret_cast<const std::uint64_t*>(q);
    p.db = reinterpret_cast<const std::uint64_t*>(db);
    p.nq = nq;
    p.n = n;
    p.w = w;
    p.nbits = nbits;
    p.stream = reinterpret_cast<cudaStream_t>(stream);
    p.scratch_bytes = scratch_bytes;
    return p;
}

void check_shape(int64_t nq, int64_t n, int w) {
    if (nq < 1) throw std::invalid_argument("q: expected at least one row, got " + std::to_string(nq));
    if (n < 1) throw std::invalid_argument("db: expected at least one row, got " + std::to_string(n));
    if (w < 1) throw std::invalid_argument("q: expected at least one 64-bit word per row, got " + std::to_string(w));
}

void check_codes(const hc::Problem& p, int device) {
    hc::check_device_buffer(reinterpret_cast<uintptr_t>(p.q), words(p.nq, p.w), device, "q");
    hc::check_device_buffer(reinterpret_cast<uintptr_t>(p.db), words(p.n, p.w), device, "db");
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "hashkit CUDA kernels (raw device pointers in, caller-allocated device buffers out)";

    m.def(
        "device_count",
        []() -> py::object {
            std::string err;
            int n = hc::device_count(&err);
            if (n < 0) return py::str(err);
            return py::int_(n);
        },
        "Number of CUDA devices, or a string saying why the CUDA runtime cannot be used.");

    m.def(
        "device_properties",
        [](int device) {
            cudaDeviceProp prop{};
            int runtime = 0, driver = 0;
            {
                py::gil_scoped_release nogil;
                HK_CUDA(cudaGetDeviceProperties(&prop, device));
                HK_CUDA(cudaRuntimeGetVersion(&runtime));
                HK_CUDA(cudaDriverGetVersion(&driver));
            }
            py::dict d;
            d["name"] = std::string(prop.name);
            d["compute_capability"] = std::to_string(prop.major) + "." + std::to_string(prop.minor);
            d["multiprocessors"] = prop.multiProcessorCount;
            d["total_memory"] = static_cast<std::size_t>(prop.totalGlobalMem);
            d["shared_memory_per_block_optin"] = static_cast<std::size_t>(prop.sharedMemPerBlockOptin);
            d["runtime_version"] = runtime;
            d["driver_version"] = driver;
            return d;
        },
        py::arg("device") = 0, "Name, compute capability, SM count, memory and CUDA versions of `device`.");

    m.attr("CUDART_VERSION") = CUDART_VERSION;

    m.def(
        "measure_ceilings",
        [](int device, std::size_t copy_bytes, int repeats) {
            hc::Ceilings c{};
            {
                py::gil_scoped_release nogil;
                DeviceGuard g(device);
                c = hc::measure_ceilings(copy_bytes, repeats);
            }
            py::dict d;
            d["copy_GBps"] = c.copy_gbps;
            d["popc64_pairs_per_s"] = c.popc64_pairs_per_s;
            d["copy_ms"] = c.copy_ms;
            d["popc_ms"] = c.popc_ms;
            return d;
        },
        py::arg("device") = 0, py::arg("copy_bytes") = std::size_t(1) << 30, py::arg("repeats") = 10,
        "Benchmark ceilings: device-to-device copy bandwidth (GB/s, read+write) and a popcount-bound "
        "microkernel (64-bit XOR+popcount pairs/s). Best of `repeats` after a warm-up.");


    m.def(
        "limits",
        [](int nlabels, int device) {
            hc::Limits lim{};
            {
                py::gil_scoped_release nogil;
                DeviceGuard g(device);
                lim = hc::limits(nlabels);
            }
            py::dict d;
            d["max_nbits_hist"] = lim.max_nbits_hist;
            d["max_nbits_rank"] = lim.max_nbits_rank;
            return d;
        },
        py::arg("nlabels") = 64, py::arg("device") = 0,
        "Largest code length (bits) the shared-memory histogram / rank kernels accept on `device`.");

    m.def(
        "hamming",
        [](uintptr_t q, uintptr_t db, int64_t nq, int64_t n, int w, int nbits, uintptr_t out, uintptr_t stream,
           int device) {
            check_shape(nq, n, w);
            py::gil_scoped_release nogil;
            DeviceGuard g(device);
            hc::Problem p = problem(q, db, nq, n, w, nbits, stream, 0);
            check_codes(p, device);
            hc::check_device_buffer(out, std::size_t(nq) * std::size_t(n) * 4, device, "out");
            hc::hamming(p, reinterpret_cast<std::int32_t*>(out));
        },
        py::arg("q"), py::arg("db"), py::arg("nq"), py::arg("n"), py::arg("w"), py::arg("nbits"), py::arg("out"),
        py::arg("stream"), py::arg("device"));

    m.def(
        "topk",
        [](uintptr_t q, uintptr_t db, int64_t nq, int64_t n, int w, int nbits, int64_t k, uintptr_t dist,
           uintptr_t idx, uintptr_t stream, int device, std::size_t scratch_bytes) {
            check_shape(nq, n, w);
            if (k < 1 || k > n)
                throw std::invalid_argument("k: expected 1 <= k <= " + std::to_string(n) + ", got " + std::to_string(k));
            py::gil_scoped_release nogil;
            DeviceGuard g(device);
            hc::Problem p = problem(q, db, nq, n, w, nbits, stream, scratch_bytes);
            check_codes(p, device);
            hc::check_device_buffer(dist, std::size_t(nq) * std::size_t(k) * 4, device, "dist");
            hc::check_device_buffer(idx, std::size_t(nq) * std::size_t(k) * 8, device, "idx");
            hc::topk(p, k, reinterpret_cast<std::int32_t*>(dist), reinterpret_cast<std::int64_t*>(idx));
        },
        py::arg("q"), py::arg("db"), py::arg("nq"), py::arg("n"), py::arg("w"), py::arg("nbits"), py::arg("k"),
        py::arg("dist"), py::arg("idx"), py::arg("stream"), py::arg("device"), py::arg("scratch_bytes") = 1u << 30);

    m.def(
        "radius_count",
        [](uintptr_t q, uintptr_t db, int64_t nq, int64_t n, int w, int nbits, int64_t r, uintptr_t lims,
           uintptr_t stream, int device, std::size_t scratch_bytes) {
            check_shape(nq, n, w);
            py::gil_scoped_release nogil;
            DeviceGuard g(device);
            hc::Problem p = problem(q, db, nq, n, w, nbits, stream, scratch_bytes);
            check_codes(p, device);
            hc::check_device_buffer(lims, (std::size_t(nq) + 1) * 8, device, "lims");
            return hc::radius_count(p, r, reinterpret_cast<std::int64_t*>(lims));
        },
        py::arg("q"), py::arg("db"), py::arg("nq"), py::arg("n"), py::arg("w"), py::arg("nbits"), py::arg("r"),
        py::arg("lims"), py::arg("stream"), py::arg("device"), py::arg("scratch_bytes") = 1u << 30,
        "Fills lims (nq+1,) int64 on the device and returns the total number of results (synchronises).");

    m.def(
        "radius_fill",
        [](uintptr_t q, uintptr_t db, int64_t nq, int64_t n, int w, int nbits, int64_t r, uintptr_t lims,
           int64_t total, uintptr_t idx, uintptr_t dist, uintptr_t stream, int device, std::size_t scratch_bytes) {
            check_shape(nq, n, w);
            py::gil_scoped_release nogil;
            DeviceGuard g(device);
            hc::Problem p = problem(q, db, nq, n, w, nbits, stream, scratch_bytes);
            check_codes(p, device);
            hc::check_device_buffer(lims, (std::size_t(nq) + 1) * 8, device, "lims");
            hc::check_device_buffer(idx, std::size_t(total) * 8, device, "idx");
            hc::check_device_buffer(dist, std::size_t(total) * 4, device, "dist");
            hc::radius_fill(p, r, reinterpret_cast<const std::int64_t*>(lims), reinterpret_cast<std::int64_t*>(idx),
                            reinterpret_cast<std::int32_t*>(dist));
        },
        py::arg("q"), py::arg("db"), py::arg("nq"), py::arg("n"), py::arg("w"), py::arg("nbits"), py::arg("r"),
        py::arg("lims"), py::arg("total"), py::arg("idx"), py::arg("dist"), py::arg("stream"), py::arg("device"),
        py::arg("scratch_bytes") = 1u << 30);

    m.def(
        "hist_stats",
        [](uintptr_t q, uintptr_t db, uintptr_t ql, uintptr_t dbl, int64_t nq, int64_t n, int w, int lw, int nbits,
           uintptr_t hist_all, uintptr_t hist_rel, uintptr_t stream, int device, std::size_t scratch_bytes) {
            check_shape(nq, n, w);
            if (lw < 1) throw std::invalid_argument("ql: expected at least one label word, got " + std::to_string(lw));
            py::gil_scoped_release nogil;
            DeviceGuard g(device);
            hc::Problem p = problem(q, db, nq, n, w, nbits, stream, scratch_bytes);
            p.ql = reinterpret_cast<const std::uint64_t*>(ql);
            p.dbl = reinterpret_cast<const std::uint64_t*>(dbl);
            p.lw = lw;
            check_codes(p, device);
            hc::check_device_buffer(ql, words(nq, lw), device, "ql");
            hc::check_device_buffer(dbl, words(n, lw), device, "dbl");
            const std::size_t hb = std::size_t(nq) * (std::size_t(nbits) + 1) * 8;
            hc::check_device_buffer(hist_all, hb, device, "hist_all");
            hc::check_device_buffer(hist_rel, hb, device, "hist_rel");
            hc::hist_stats(p, reinterpret_cast<std::int64_t*>(hist_all), reinterpret_cast<std::int64_t*>(hist_rel));
        },
        py::arg("q"), py::arg("db"), py::arg("ql"), py::arg("dbl"), py::arg("nq"), py::arg("n"), py::arg("w"),
        py::arg("lw"), py::arg("nbits"), py::arg("hist_all"), py::arg("hist_rel"), py::arg("stream"),
        py::arg("device"), py::arg("scratch_bytes") = 1u << 30);

    m.def(
        "rank_stats",
        [](uintptr_t q, uintptr_t db, uintptr_t ql, uintptr_t dbl, int64_t nq, int64_t n, int w, int lw, int nbits,
           std::vector<int64_t> cutoffs, int64_t first_m, bool graded, int nlabels,
           std::map<std::string, uintptr_t> out, uintptr_t stream, int device, std::size_t scratch_bytes) {
            check_shape(nq, n, w);
            if (lw < 1) throw std::invalid_argument("ql: expected at least one label word, got " + std::to_string(lw));
            auto get = [&](const char* key, bool needed) -> uintptr_t {
                auto it = out.find(key);
                if (it == out.end()) {
                    if (needed) throw std::invalid_argument(std::string("out: missing buffer '") + key + "'");
                    return 0;
                }
                return it->second;
            };
            const std::size_t C = cutoffs.size();
            hc::RankOutputs o{};
            o.hist_all = reinterpret_cast<std::int64_t*>(get("hist_all", true));
            o.hist_rel = reinterpret_cast<std::int64_t*>(get("hist_rel", true));
            o.ap_sum = reinterpret_cast<double*>(get("ap_sum", true));
            o.rel_at = reinterpret_cast<std::int64_t*>(get("rel_at", C > 0));
            o.ap_sum_at = reinterpret_cast<double*>(get("ap_sum_at", C > 0));
            o.ap_first = reinterpret_cast<double*>(get("ap_first", true));
            if (graded) {
                o.gain_at = reinterpret_cast<std::int64_t*>(get("gain_at", C > 0));
                o.dcg_at = reinterpret_cast<double*>(get("dcg_at", C > 0));
                o.gain_hist = reinterpret_cast<std::int64_t*>(get("gain_hist", true));
            }
            py::gil_scoped_release nogil;
            DeviceGuard g(device);
            hc::Problem p = problem(q, db, nq, n, w, nbits, stream, scratch_bytes);
            p.ql = reinterpret_cast<const std::uint64_t*>(ql);
            p.dbl = reinterpret_cast<const std::uint64_t*>(dbl);
            p.lw = lw;
            check_codes(p, device);
            hc::check_device_buffer(ql, words(nq, lw), device, "ql");
            hc::check_device_buffer(dbl, words(n, lw), device, "dbl");
            const std::size_t Q = std::size_t(nq);
            const std::size_t hb = Q * (std::size_t(nbits) + 1) * 8;
            auto chk = [&](const void* ptr, std::size_t bytes, const char* name) {
                hc::check_device_buffer(reinterpret_cast<uintptr_t>(ptr), bytes, device, name);
            };
            chk(o.hist_all, hb, "hist_all");
            chk(o.hist_rel, hb, "hist_rel");
            chk(o.ap_sum, Q * 8, "ap_sum");
            chk(o.ap_first, Q * 8, "ap_first");
            chk(o.rel_at, Q * C * 8, "rel_at");
            chk(o.ap_sum_at, Q * C * 8, "ap_sum_at");
            if (graded) {
                chk(o.gain_at, Q * C * 8, "gain_at");
                chk(o.dcg_at, Q * C * 8, "dcg_at");
                chk(o.gain_hist, Q * (std::size_t(std::max(nlabels, 0)) + 1) * 8, "gain_hist");
            }
            hc::rank_stats(p, cutoffs, first_m, graded, nlabels, o);
        },
        py::arg("q"), py::arg("db"), py::arg("ql"), py::arg("dbl"), py::arg("nq"), py::arg("n"), py::arg("w"),
        py::arg("lw"), py::arg("nbits"), py::arg("cutoffs"), py::arg("first_m"), py::arg("graded"),
        py::arg("nlabels"), py::arg("out"), py::arg("stream"), py::arg("device"),
        py::arg("scratch_bytes") = 1u << 30,
        "out: dict name -> device pointer for hist_all, hist_rel, ap_sum, rel_at, ap_sum_at, ap_first "
        "(+ gain_at, dcg_at, gain_hist when graded), each preallocated with the contract's shape/dtype.");
}
