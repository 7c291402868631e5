// Selective scan (Mamba's S6 recurrence) on the CPU: forward and backward, float32.
//
// This one file is compiled (at first use, by kipoi_seq2exp/ops/build.py) three ways, with SEQ2EXP_ISA_AVX512, SEQ2EXP_ISA_AVX2 or
// SEQ2EXP_ISA_GENERIC defined and the matching compiler flags; scan_compiled.py loads the build
// the CPU can run. Only the small vector layer below differs between builds: the scan is written
// once against it. Recurrence per channel d and state n (mamba-ssm `selective_scan_fn`):
//
//     dt_t = softplus(delta_t + bias)        (or delta_t + bias)
//     h_t  = exp(dt_t A_n) h_{t-1} + dt_t u_t B_{t,n}
//     y_t  = (sum_n C_{t,n} h_t + D u_t) * silu(z_t)
//
// Layouts (float32, C-contiguous): u, delta, z, out and their gradients (batch, dim, length);
// A (dim, nstate); Bt, Ct and their gradients (batch, length, nstate): B and C transposed so the
// states of one time step are contiguous, nstate being d_state zero-padded to whole vectors.
//
// The states of one channel live in registers (one 512-bit register holds 16 states). Time runs
// in blocks of `block` steps: the forward pass stores the state at each block start (checkpoint);
// the backward pass walks the blocks in reverse, recomputes one block's states from its checkpoint
// and runs the adjoint recurrence backwards through it. Channels run in parallel (OpenMP). The
// gradients of B and C sum over channels: each thread accumulates its channels' share over a span
// of blocks (the current block's rows stay in cache), then the shares are summed in thread order,
// so results are bitwise reproducible for a given thread count, with two barriers per span.
//
// Never build with -ffast-math: it would flip flush-to-zero for the whole process and fold away
// the guarded arithmetic below.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <initializer_list>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(SEQ2EXP_ISA_AVX512)
#if !(defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__FMA__))
#error "the avx512 build needs -mavx512f -mavx512bw -mavx512vl -mfma"
#endif
#include <immintrin.h>
#elif defined(SEQ2EXP_ISA_AVX2)
#if !(defined(__AVX2__) && defined(__FMA__))
#error "the avx2 build needs -mavx2 -mfma"
#endif
#include <immintrin.h>
#elif !defined(SEQ2EXP_ISA_GENERIC)
#error "define one of SEQ2EXP_ISA_AVX512, SEQ2EXP_ISA_AVX2, SEQ2EXP_ISA_GENERIC"
#endif

#define INLINE inline __attribute__((always_inline))
#define API extern "C" __attribute__((visibility("default")))

namespace {

// ---------------------------------------------------------------------------------------------
// Vector layer: V holds W floats; vexp2_split / vexp2_scale are the ISA-specific halves of 2^x
// (range reduction, scaling by 2^n). combine<K> is level K of a reduction tree turning W
// vectors (one per time step) into one vector of their W horizontal sums, in an order that
// vtile_in_order / vtile_reversed put back to time order (lane i: step i, or step W - 1 - i).
// ---------------------------------------------------------------------------------------------

#if defined(SEQ2EXP_ISA_AVX512)

constexpr const char* ISA = "avx512";
constexpr int W = 16;
constexpr int LOG2_W = 4;
struct V { __m512 v; };

INLINE V vset(float x) { return {_mm512_set1_ps(x)}; }
INLINE V vzero() { return {_mm512_setzero_ps()}; }
INLINE V vload(const float* p) { return {_mm512_loadu_ps(p)}; }
INLINE void vstore(float* p, V a) { _mm512_storeu_ps(p, a.v); }
INLINE V operator+(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
INLINE V operator-(V a, V b) { return {_mm512_sub_ps(a.v, b.v)}; }
INLINE V operator*(V a, V b) { return {_mm512_mul_ps(a.v, b.v)}; }
INLINE V operator/(V a, V b) { return {_mm512_div_ps(a.v, b.v)}; }
INLINE V vfma(V a, V b, V c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
// max/min return the second operand when either is NaN (x86 semantics, kept by the generic build).
INLINE V vmax(V a, V b) { return {_mm512_max_ps(a.v, b.v)}; }
INLINE V vmin(V a, V b) { return {_mm512_min_ps(a.v, b.v)}; }
INLINE V vabs(V a) { return {_mm512_abs_ps(a.v)}; }
// vexp2 in two halves: x = n + f with n = round(x) (kept in n), and p * 2^n. scalef handles
// overflow and underflow itself; only -infinity needs a bound (it would give NaN).
INLINE V vexp2_split(V x, V& n) {
    x = vmax(vset(-151.0f), x);  // NaN passes through (second operand)
    n = {_mm512_roundscale_ps(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
    return x - n;
}
INLINE V vexp2_scale(V p, V n) { return {_mm512_scalef_ps(p.v, n.v)}; }
INLINE float vhsum(V a) {  // rare (block tails); _mm512_reduce_add_ps trips a gcc 12 warning
    alignas(64) float lanes[W];
    _mm512_store_ps(lanes, a.v);
    float s = 0.0f;
    for (int i = 0; i < W; ++i) s += lanes[i];
    return s;
}

// Level K pairs lanes j and j ^ s (s = 16 >> K): lanes with bit s clear keep x's partial sums,
// the others y's. Blends and in-lane shuffles instead of two-source permutes keep the tree off
// the FMA pipes the recurrence needs (Zen 4). The sums end in bit-reversed step order.
template <int K>
INLINE V combine(V x, V y) {
    constexpr int s = W >> K;
    constexpr __mmask16 mask = s == 8 ? 0xFF00 : s == 4 ? 0xF0F0 : s == 2 ? 0xCCCC : 0xAAAA;
    const __m512 keep = _mm512_mask_blend_ps(mask, x.v, y.v);  // lane j: bit s set ? y : x
    const __m512 give = _mm512_mask_blend_ps(mask, y.v, x.v);
    __m512 swapped;  // give with lanes j and j ^ s exchanged
    if constexpr (s == 8) {
        swapped = _mm512_shuffle_f32x4(give, give, 0x4E);
    } else if constexpr (s == 4) {
        swapped = _mm512_shuffle_f32x4(give, give, 0xB1);
    } else if constexpr (s == 2) {
        swapped = _mm512_permute_ps(give, 0x4E);
    } else {
        swapped = _mm512_permute_ps(give, 0xB1);
    }
    return {_mm512_add_ps(keep, swapped)};
}
INLINE V vtile_in_order(V a) {  // lane i <- lane bit_reverse(i)
    return {_mm512_permutexvar_ps(_mm512_setr_epi32(0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15), a.v)};
}
INLINE V vtile_reversed(V a) {  // lane i <- lane bit_reverse(15 - i)
    return {_mm512_permutexvar_ps(_mm512_setr_epi32(15, 7, 11, 3, 13, 5, 9, 1, 14, 6, 10, 2, 12, 4, 8, 0), a.v)};
}

#elif defined(SEQ2EXP_ISA_AVX2)

constexpr const char* ISA = "avx2";
constexpr int W = 8;
constexpr int LOG2_W = 3;
struct V { __m256 v; };

INLINE V vset(float x) { return {_mm256_set1_ps(x)}; }
INLINE V vzero() { return {_mm256_setzero_ps()}; }
INLINE V vload(const float* p) { return {_mm256_loadu_ps(p)}; }
INLINE void vstore(float* p, V a) { _mm256_storeu_ps(p, a.v); }
INLINE V operator+(V a, V b) { return {_mm256_add_ps(a.v, b.v)}; }
INLINE V operator-(V a, V b) { return {_mm256_sub_ps(a.v, b.v)}; }
INLINE V operator*(V a, V b) { return {_mm256_mul_ps(a.v, b.v)}; }
INLINE V operator/(V a, V b) { return {_mm256_div_ps(a.v, b.v)}; }
INLINE V vfma(V a, V b, V c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
INLINE V vmax(V a, V b) { return {_mm256_max_ps(a.v, b.v)}; }
INLINE V vmin(V a, V b) { return {_mm256_min_ps(a.v, b.v)}; }
INLINE V vabs(V a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
// vexp2 in two halves: x = n + f with n = round(x), and p * 2^n. Adding 1.5 * 2^23 rounds x to
// the integer n and leaves n in the low mantissa bits of t, which the scale step adds to p's
// exponent field; [-125, 127] keeps that field valid (2^-125 = 2.4e-38 stands in for anything
// smaller; NaN passes through the bounds as second operands).
constexpr float ROUND_TO_INT = 12582912.0f;  // 1.5 * 2^23
INLINE V vexp2_split(V x, V& t) {
    x = vmin(vset(127.0f), vmax(vset(-125.0f), x));
    t = x + vset(ROUND_TO_INT);
    return x - (t - vset(ROUND_TO_INT));
}
INLINE V vexp2_scale(V p, V t) {
    const __m256i n = _mm256_slli_epi32(_mm256_castps_si256(t.v), 23);
    return {_mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p.v), n))};
}
INLINE float vhsum(V a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
// Levels 1, 2: horizontal adds; level 3: the two 128-bit halves. Sums end in step order.
template <int K>
INLINE V combine(V x, V y) {
    if constexpr (K < 3) {
        return {_mm256_hadd_ps(x.v, y.v)};
    } else {
        return {_mm256_add_ps(_mm256_permute2f128_ps(x.v, y.v, 0x20), _mm256_permute2f128_ps(x.v, y.v, 0x31))};
    }
}
INLINE V vtile_in_order(V a) { return a; }
INLINE V vtile_reversed(V a) { return {_mm256_permutevar8x32_ps(a.v, _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0))}; }

#else  // SEQ2EXP_ISA_GENERIC: GCC/Clang vector extensions on 16-byte vectors (SSE2, NEON, ...).

constexpr const char* ISA = "generic";
constexpr int W = 8;
constexpr int LOG2_W = 3;
typedef float F4 __attribute__((vector_size(16)));
typedef int32_t I4 __attribute__((vector_size(16)));
// Two native 16-byte halves: wider vector types would be split by the compiler, which then
// turns comparisons into scalar code.
struct V { F4 h[2]; };

template <class F>
INLINE V halves(F f) { return {{f(0), f(1)}}; }
INLINE V vset(float x) { return halves([&](int) { return F4{} + x; }); }
INLINE V vzero() { return vset(0.0f); }
INLINE V vload(const float* p) {
    V r;
    memcpy(r.h, p, sizeof r.h);
    return r;
}
INLINE void vstore(float* p, V a) { memcpy(p, a.h, sizeof a.h); }
INLINE V operator+(V a, V b) { return halves([&](int i) { return a.h[i] + b.h[i]; }); }
INLINE V operator-(V a, V b) { return halves([&](int i) { return a.h[i] - b.h[i]; }); }
INLINE V operator*(V a, V b) { return halves([&](int i) { return a.h[i] * b.h[i]; }); }
INLINE V operator/(V a, V b) { return halves([&](int i) { return a.h[i] / b.h[i]; }); }
INLINE V vfma(V a, V b, V c) { return halves([&](int i) { return a.h[i] * b.h[i] + c.h[i]; }); }
INLINE F4 select(I4 mask, F4 a, F4 b) { return (F4)((mask & (I4)a) | (~mask & (I4)b)); }
INLINE V vmax(V a, V b) { return halves([&](int i) { return select(a.h[i] > b.h[i], a.h[i], b.h[i]); }); }
INLINE V vmin(V a, V b) { return halves([&](int i) { return select(a.h[i] < b.h[i], a.h[i], b.h[i]); }); }
INLINE V vabs(V a) { return halves([&](int i) { return (F4)((I4)a.h[i] & 0x7fffffff); }); }
// vexp2 in two halves: x = n + f with n = round(x), and p * 2^n. Adding 1.5 * 2^23 rounds x to
// the integer n and leaves n in the low mantissa bits of t, which the scale step adds to p's
// exponent field; [-125, 127] keeps that field valid (2^-125 = 2.4e-38 stands in for anything
// smaller; NaN passes through the bounds as second operands).
constexpr float ROUND_TO_INT = 12582912.0f;  // 1.5 * 2^23
INLINE V vexp2_split(V x, V& t) {
    x = vmin(vset(127.0f), vmax(vset(-125.0f), x));
    t = x + vset(ROUND_TO_INT);
    return x - (t - vset(ROUND_TO_INT));
}
INLINE V vexp2_scale(V p, V t) { return halves([&](int i) { return (F4)((I4)p.h[i] + ((I4)t.h[i] << 23)); }); }
INLINE float lane(const V& a, int i) { return a.h[i / 4][i % 4]; }
INLINE float vhsum(V a) {
    float s = 0.0f;
    for (int i = 0; i < W; ++i) s += lane(a, i);
    return s;
}
// Level K adds lanes j and j + s of x into the first half, of y into the second (s = W >> K):
// sums end in step order.
constexpr int pick(int j, int s) {
    return j < W / 2 ? (j / s) * 2 * s + j % s : W + ((j - W / 2) / s) * 2 * s + (j - W / 2) % s;
}
template <int K>
INLINE V combine(V x, V y) {
    constexpr int s = W >> K;
    V r;
    for (int j = 0; j < W; ++j) {
        const int lo = pick(j, s), hi = lo + s;
        r.h[j / 4][j % 4] = (lo < W ? lane(x, lo) : lane(y, lo - W)) + (hi < W ? lane(x, hi) : lane(y, hi - W));
    }
    return r;
}
INLINE V vtile_in_order(V a) { return a; }
INLINE V vtile_reversed(V a) {
    V r;
    for (int i = 0; i < W; ++i) r.h[i / 4][i % 4] = lane(a, W - 1 - i);
    return r;
}

#endif

constexpr int MAX_STATES = 64;
constexpr int OK = 0, ERR_MEMORY = 1, ERR_ARGUMENT = 2;
constexpr float LOG2E = 1.4426950408889634f;

// ---------------------------------------------------------------------------------------------
// Elementary functions on vectors, accurate to a few float ulps over the whole float range.
// ---------------------------------------------------------------------------------------------

// 2^x = 2^n 2^f with n = round(x), |f| <= 1/2: 2^f by a degree-6 minimax polynomial (relative
// error 2e-9 before rounding, exactly 1 at f = 0 so that a zero step keeps the state).
INLINE V vexp2(V x) {
    V n;
    const V f = vexp2_split(x, n);
    V p = vset(1.5345812e-4f);
    p = vfma(p, f, vset(1.3399931e-3f));
    p = vfma(p, f, vset(9.618489e-3f));
    p = vfma(p, f, vset(5.5503286e-2f));
    p = vfma(p, f, vset(2.4022646e-1f));
    p = vfma(p, f, vset(6.931472e-1f));
    p = vfma(p, f, vset(1.0f));
    return vexp2_scale(p, n);
}

INLINE V vexp(V x) { return vexp2(x * vset(LOG2E)); }

// log(1 + e) for 0 <= e <= 1 as 2 atanh(s), s = e / (2 + e) <= 1/3, by its odd series: keeps full
// relative accuracy for tiny e, where forming 1 + e first would lose every digit of softplus(-30).
INLINE V vlog1p_unit(V e) {
    const V s = e / (vset(2.0f) + e);
    const V s2 = s * s;
    V q = vset(2.0f / 13.0f);
    q = vfma(q, s2, vset(2.0f / 11.0f));
    q = vfma(q, s2, vset(2.0f / 9.0f));
    q = vfma(q, s2, vset(2.0f / 7.0f));
    q = vfma(q, s2, vset(2.0f / 5.0f));
    q = vfma(q, s2, vset(2.0f / 3.0f));
    q = vfma(q, s2, vset(2.0f));
    return s * q;
}

// softplus(v) = max(v, 0) + log(1 + exp(-|v|)): no overflow, exact tail for v >> 0.
INLINE V vsoftplus(V v) { return vmax(vzero(), v) + vlog1p_unit(vexp(vzero() - vabs(v))); }

INLINE V vsigmoid(V v) { return vset(1.0f) / (vset(1.0f) + vexp(vzero() - v)); }

// ---------------------------------------------------------------------------------------------
// Problem description and per-thread scratch.
// ---------------------------------------------------------------------------------------------

struct Inputs {
    const float *u, *delta, *A, *Bt, *Ct, *D, *z, *delta_bias;
    bool softplus;
    int64_t batch, dim, nstate, length, block;

    int64_t n_blocks() const { return (length + block - 1) / block; }
    int64_t row(int64_t b, int64_t d) const { return (b * dim + d) * length; }  // offset of a channel
    int block_steps(int64_t blk) const { return (int)(length - blk * block < block ? length - blk * block : block); }
};

struct Gradients {
    const float* dout;
    float *du, *ddelta, *dBt, *dCt, *dz;
    double *dA, *dD, *ddelta_bias;  // per (batch, channel) sums, (batch, dim, nstate) / (batch, dim)
    float* carry;                   // adjoint state entering each channel's current block
};

INLINE int round_up(int n) { return (n + W - 1) / W * W; }

// Block-length vectors of one thread, plus for the backward pass the states and decays of the
// block being recomputed, and the thread's shares of dB and dC over a span of blocks.
struct Scratch {
    float *u, *delta, *z, *g, *dt, *dtu, *dsig, *y, *gy, *sum_lam_B, *sum_A_w, *out1, *out2, *out3;
    float *states = nullptr, *decays = nullptr;    // (block + 1, nstate), (block, nstate)
    float *span_dB = nullptr, *span_dC = nullptr;  // (span, nstate)
    float *dB_tile = nullptr, *dC_tile = nullptr;  // the current block's rows of span_dB, span_dC
    static constexpr int N_VECTORS = 14;
};

// One zeroed allocation (padding lanes start finite) for every thread's scratch; span = 0 for
// the forward pass, which needs no states and no gradient shares.
struct Workspace {
    float* base = nullptr;
    int64_t block, nstate, span, per_thread;

    Workspace(int nthreads, int64_t block_, int64_t nstate_, int64_t span_)
        : block(block_), nstate(nstate_), span(span_) {
        const int64_t backward = span ? (2 * block + 1) * nstate + 2 * span * nstate : 0;
        per_thread = (Scratch::N_VECTORS * block + backward + 15) / 16 * 16;
        base = (float*)calloc((size_t)(per_thread * nthreads), sizeof(float));
    }
    ~Workspace() { free(base); }

    Scratch thread(int tid) const {
        Scratch s;
        float* p = base + tid * per_thread;
        float** vectors[Scratch::N_VECTORS] = {&s.u, &s.delta, &s.z, &s.g, &s.dt, &s.dtu, &s.dsig, &s.y, &s.gy,
                                               &s.sum_lam_B, &s.sum_A_w, &s.out1, &s.out2, &s.out3};
        for (int i = 0; i < Scratch::N_VECTORS; ++i, p += block) *vectors[i] = p;
        if (span) {
            s.states = p;
            s.decays = s.states + (block + 1) * nstate;
            s.span_dB = s.decays + block * nstate;
            s.span_dC = s.span_dB + span * nstate;
        }
        return s;
    }
};

INLINE void copy_padded(float* dst, const float* src, int n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
    for (int i = n; i < round_up(n); ++i) dst[i] = 0.0f;
}

INLINE void zero_tail(float* x, int n) {
    for (int i = n; i < round_up(n); ++i) x[i] = 0.0f;
}

// Ask for n floats at p (one prefetch per 64-byte line) to be brought towards the cache.
INLINE void prefetch(const float* p, int n, bool for_write) {
    for (int i = 0; i < n; i += 16) {
        if (for_write) {
            __builtin_prefetch(p + i, 1, 2);
        } else {
            __builtin_prefetch(p + i, 0, 2);
        }
    }
}

int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int team_size() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// Copy one block of a channel's u, delta, z into scratch and form dt, dt * u (and d dt / d delta).
INLINE void load_block(const Inputs& in, int64_t b, int64_t d, int64_t t0, int n, Scratch& s, bool backward) {
    const int64_t at = in.row(b, d) + t0;
    copy_padded(s.u, in.u + at, n);
    copy_padded(s.delta, in.delta + at, n);
    if (in.z) copy_padded(s.z, in.z + at, n);
    const V bias = vset(in.delta_bias ? in.delta_bias[d] : 0.0f);
    for (int i = 0; i < round_up(n); i += W) {
        const V v = vload(s.delta + i) + bias;
        const V dt = in.softplus ? vsoftplus(v) : v;
        vstore(s.dt + i, dt);
        vstore(s.dtu + i, dt * vload(s.u + i));
        if (backward) vstore(s.dsig + i, in.softplus ? vsigmoid(v) : vset(1.0f));
    }
}

// ---------------------------------------------------------------------------------------------
// The scan over one block of one channel.
// ---------------------------------------------------------------------------------------------

template <int NV>
struct Channel {
    V A[NV];   // A_n
    V A2[NV];  // A_n * log2(e): exp(dt A) = 2^(dt A2)
    V h[NV];   // state h_t

    Channel(const float* A_row) {
        for (int k = 0; k < NV; ++k) {
            A[k] = vload(A_row + k * W);
            A2[k] = A[k] * vset(LOG2E);
            h[k] = vzero();
        }
    }
    void load_state(const float* p) {
        for (int k = 0; k < NV; ++k) h[k] = vload(p + k * W);
    }
    void store_state(float* p) const {
        for (int k = 0; k < NV; ++k) vstore(p + k * W, h[k]);
    }
};

struct V2 { V a, b; };
template <int K>
INLINE V2 combine(V2 x, V2 y) { return {combine<K>(x.a, y.a), combine<K>(x.b, y.b)}; }

// Run 2^K steps and reduce their per-step vectors to one vector of horizontal sums (lane i: step i).
template <int K, class Step>
INLINE auto tile_reduce(Step& step) {
    if constexpr (K == 0) {
        return step();
    } else {
        const auto first = tile_reduce<K - 1>(step);
        const auto second = tile_reduce<K - 1>(step);
        return combine<K>(first, second);
    }
}

// Advance the state through n steps, writing y_t = sum_n C_t h_t; with STORE (backward pass),
// also h_t into states[t + 1] and exp(dt_t A) into decays[t] (states[0]: the block's start state).
template <int NV, bool STORE>
INLINE void scan_block(Channel<NV>& c, const Scratch& s, const float* Bt, const float* Ct, int n) {
    constexpr int NS = NV * W;
    int t = 0;
    auto step = [&]() __attribute__((always_inline)) {
        const V dt = vset(s.dt[t]), dtu = vset(s.dtu[t]);
        V y = vzero();
#pragma GCC unroll 8
        for (int k = 0; k < NV; ++k) {
            const int at = t * NS + k * W;
            const V a = vexp2(dt * c.A2[k]);
            c.h[k] = vfma(a, c.h[k], dtu * vload(Bt + at));
            if constexpr (STORE) {
                vstore(s.states + at + NS, c.h[k]);
                vstore(s.decays + at, a);
            }
            y = vfma(c.h[k], vload(Ct + at), y);
        }
        ++t;
        return y;
    };
    while (t + W <= n) {
        const int first = t;
        vstore(s.y + first, vtile_in_order(tile_reduce<LOG2_W>(step)));
    }
    while (t < n) {
        const int now = t;
        s.y[now] = vhsum(step());
    }
    zero_tail(s.y, n);
}

// Adjoint recurrence backwards through one block: lam_t = dL/dh_t = gy_t C_t + exp(dt_{t+1} A) lam_{t+1}.
// Accumulates this channel's share of dB, dC (thread tiles) and dA; writes per step the two sums
// over states that du and d dt need: sum_n lam B and sum_n A lam exp(dt A) h_{t-1}.
template <int NV>
INLINE void adjoint_block(const Channel<NV>& c, V* lam_next, V* dA, const Scratch& s, const float* Bt,
                          const float* Ct, int n) {
    constexpr int NS = NV * W;
    int t = n;
    auto step = [&]() __attribute__((always_inline)) {
        --t;
        const V gy = vset(s.gy[t]), dt = vset(s.dt[t]), dtu = vset(s.dtu[t]);
        V2 sums = {vzero(), vzero()};
#pragma GCC unroll 8
        for (int k = 0; k < NV; ++k) {
            const int at = t * NS + k * W;
            const V lam = vfma(gy, vload(Ct + at), lam_next[k]);
            const V a = vload(s.decays + at);
            const V w = lam * a * vload(s.states + at);  // states[t] is h_{t-1}
            vstore(s.dB_tile + at, vfma(lam, dtu, vload(s.dB_tile + at)));
            vstore(s.dC_tile + at, vfma(gy, vload(s.states + at + NS), vload(s.dC_tile + at)));
            dA[k] = vfma(w, dt, dA[k]);
            sums.a = vfma(lam, vload(Bt + at), sums.a);
            sums.b = vfma(c.A[k], w, sums.b);
            lam_next[k] = a * lam;
        }
        return sums;
    };
    const int full = n / W * W;
    while (t > full) {
        const int now = t - 1;
        const V2 sums = step();
        s.sum_lam_B[now] = vhsum(sums.a);
        s.sum_A_w[now] = vhsum(sums.b);
    }
    while (t > 0) {
        const int first = t - W;
        const V2 sums = tile_reduce<LOG2_W>(step);  // steps run from time first + W - 1 down
        vstore(s.sum_lam_B + first, vtile_reversed(sums.a));
        vstore(s.sum_A_w + first, vtile_reversed(sums.b));
    }
    zero_tail(s.sum_lam_B, n);
    zero_tail(s.sum_A_w, n);
}

// ---------------------------------------------------------------------------------------------
// Forward pass.
// ---------------------------------------------------------------------------------------------

// One block of one channel, from and back to its state in h (the block's start state).
template <int NV>
void forward_block(const Inputs& in, int64_t b, int64_t d, int64_t blk, float* h, float* out, float* ckpt,
                   Scratch& s) {
    constexpr int NS = NV * W;
    const int64_t t0 = blk * in.block;
    const int n = in.block_steps(blk);
    Channel<NV> c(in.A + d * NS);
    c.load_state(h);
    if (ckpt) c.store_state(ckpt + ((b * in.dim + d) * in.n_blocks() + blk) * NS);
    load_block(in, b, d, t0, n, s, false);
    scan_block<NV, false>(c, s, in.Bt + (b * in.length + t0) * NS, in.Ct + (b * in.length + t0) * NS, n);
    c.store_state(h);
    const V Dd = vset(in.D ? in.D[d] : 0.0f);
    for (int i = 0; i < round_up(n); i += W) {
        V y = vfma(Dd, vload(s.u + i), vload(s.y + i));
        if (in.z) {
            const V z = vload(s.z + i);
            y = y * z * vsigmoid(z);
        }
        vstore(s.out1 + i, y);
    }
    memcpy(out + in.row(b, d) + t0, s.out1, (size_t)n * sizeof(float));
}

// Thread tid's share [first, end) of n items, the same for every call with the same team size.
INLINE void share(int64_t n, int tid, int nth, int64_t& first, int64_t& end) {
    first = n * tid / nth;
    end = n * (tid + 1) / nth;
}

template <int NV>
int forward(const Inputs& in, float* out, float* ckpt, int nthreads) {
    constexpr int NS = NV * W;
    const int64_t channels = in.batch * in.dim;
    Workspace ws(nthreads, in.block, NS, 0);
    float* states = (float*)calloc((size_t)(channels * NS), sizeof(float));
    if (!ws.base || !states) {
        free(states);
        return ERR_MEMORY;
    }
#pragma omp parallel num_threads(nthreads)
    {
        const int tid = thread_id();
        Scratch s = ws.thread(tid);
        int64_t first, end;
        share(channels, tid, team_size(), first, end);
        // Time blocks outermost: one block of B and C stays in cache for all the thread's channels,
        // instead of every channel streaming the whole of B and C from memory.
        for (int64_t blk = 0; blk < in.n_blocks(); ++blk) {
            for (int64_t bd = first; bd < end; ++bd) {
                // The next block's rows arrive from memory while this one is scanned.
                const bool last_channel = bd + 1 == end;
                const int64_t next_blk = last_channel ? blk + 1 : blk, next_bd = last_channel ? first : bd + 1;
                if (next_blk < in.n_blocks()) {
                    const int64_t at = next_bd * in.length + next_blk * in.block;
                    const int next_n = in.block_steps(next_blk);
                    for (const float* row : {in.u, in.delta, in.z}) {
                        if (row) prefetch(row + at, next_n, false);
                    }
                    prefetch(out + at, next_n, true);
                }
                forward_block<NV>(in, bd / in.dim, bd % in.dim, blk, states + bd * NS, out, ckpt, s);
            }
        }
    }
    free(states);
    return OK;
}

// ---------------------------------------------------------------------------------------------
// Backward pass.
// ---------------------------------------------------------------------------------------------

template <int NV>
void backward_channel_block(const Inputs& in, const float* ckpt, const Gradients& gr, int64_t b, int64_t d,
                            int64_t blk, Scratch& s) {
    constexpr int NS = NV * W;
    const int64_t t0 = blk * in.block;
    const int n = in.block_steps(blk);
    const int64_t bd = b * in.dim + d;
    const float* Bt = in.Bt + (b * in.length + t0) * NS;
    const float* Ct = in.Ct + (b * in.length + t0) * NS;
    const V Dd = vset(in.D ? in.D[d] : 0.0f);

    // Recompute the block from its checkpoint, keeping every state.
    load_block(in, b, d, t0, n, s, true);
    copy_padded(s.g, gr.dout + in.row(b, d) + t0, n);
    Channel<NV> c(in.A + d * NS);
    c.load_state(ckpt + (bd * in.n_blocks() + blk) * NS);
    c.store_state(s.states);
    scan_block<NV, true>(c, s, Bt, Ct, n);

    // Through the gate: gy = dL/dy_scan, dz (d/dz [y z sigmoid(z)] = y sigmoid(z) (1 + z (1 -
    // sigmoid(z)))), and dD's share.
    V dD = vzero();
    for (int i = 0; i < round_up(n); i += W) {
        const V g = vload(s.g + i), u = vload(s.u + i);
        V gy = g;
        if (in.z) {
            const V z = vload(s.z + i), sig = vsigmoid(z);
            const V y = vfma(Dd, u, vload(s.y + i));
            gy = g * z * sig;
            vstore(s.out3 + i, g * y * sig * vfma(z, vset(1.0f) - sig, vset(1.0f)));
        }
        vstore(s.gy + i, gy);
        dD = vfma(gy, u, dD);
    }

    // Backwards through the recurrence.
    V lam_next[NV], dA[NV];
    for (int k = 0; k < NV; ++k) {
        lam_next[k] = vload(gr.carry + bd * NS + k * W);
        dA[k] = vzero();
    }
    adjoint_block<NV>(c, lam_next, dA, s, Bt, Ct, n);
    for (int k = 0; k < NV; ++k) vstore(gr.carry + bd * NS + k * W, lam_next[k]);

    // du, d delta (through softplus), and d delta_bias's share.
    V dbias = vzero();
    for (int i = 0; i < round_up(n); i += W) {
        const V lam_B = vload(s.sum_lam_B + i);
        const V du = vfma(vload(s.gy + i), Dd, vload(s.dt + i) * lam_B);
        const V ddt = vfma(vload(s.u + i), lam_B, vload(s.sum_A_w + i));
        const V ddelta = ddt * vload(s.dsig + i);
        vstore(s.out1 + i, du);
        vstore(s.out2 + i, ddelta);
        dbias = dbias + ddelta;
    }
    memcpy(gr.du + in.row(b, d) + t0, s.out1, (size_t)n * sizeof(float));
    memcpy(gr.ddelta + in.row(b, d) + t0, s.out2, (size_t)n * sizeof(float));
    if (in.z) memcpy(gr.dz + in.row(b, d) + t0, s.out3, (size_t)n * sizeof(float));

    // Block sums go to double accumulators: 400 blocks of float sums would lose digits.
    alignas(64) float lanes[W];
    for (int k = 0; k < NV; ++k) {
        vstore(lanes, dA[k]);
        for (int i = 0; i < W; ++i) gr.dA[bd * NS + k * W + i] += lanes[i];
    }
    gr.dD[bd] += vhsum(dD);
    gr.ddelta_bias[bd] += vhsum(dbias);
}

// One time step's dB and dC: the threads' shares summed in thread order (reproducible).
template <int NV>
INLINE void reduce_shares(const Workspace& ws, int nth, const Gradients& gr, int64_t row, int64_t t) {
    constexpr int NS = NV * W;
    for (int k = 0; k < NV; ++k) {
        V dB = vzero(), dC = vzero();
        for (int tid = 0; tid < nth; ++tid) {
            const Scratch s = ws.thread(tid);
            dB = dB + vload(s.span_dB + t * NS + k * W);
            dC = dC + vload(s.span_dC + t * NS + k * W);
        }
        vstore(gr.dBt + row * NS + k * W, dB);
        vstore(gr.dCt + row * NS + k * W, dC);
    }
}

// Blocks over which each thread accumulates its share of dB and dC before the shares are summed
// (threads synchronise twice per span): the shares of all threads together take at most 32 MB.
int64_t span_blocks(const Inputs& in, int nthreads) {
    constexpr int64_t ALL_SHARES_FLOATS = int64_t(1) << 23;
    const int64_t by_memory = ALL_SHARES_FLOATS / (2 * nthreads) / (in.nstate * in.block);
    const int64_t blocks = by_memory < in.n_blocks() ? by_memory : in.n_blocks();
    return blocks > 1 ? blocks : 1;
}

template <int NV>
int backward(const Inputs& in, const float* ckpt, Gradients gr, float* dA, float* dD, float* ddelta_bias,
             int nthreads) {
    constexpr int NS = NV * W;
    const int64_t channels = in.batch * in.dim;
    const int64_t span = span_blocks(in, nthreads);
    Workspace ws(nthreads, in.block, NS, span * in.block);
    float* carry = (float*)calloc((size_t)(channels * NS), sizeof(float));
    double* sums = (double*)calloc((size_t)(channels * (NS + 2)), sizeof(double));
    if (!ws.base || !carry || !sums) {
        free(carry);
        free(sums);
        return ERR_MEMORY;
    }
    gr.carry = carry;
    gr.dA = sums;
    gr.dD = sums + channels * NS;
    gr.ddelta_bias = sums + channels * (NS + 1);
#pragma omp parallel num_threads(nthreads)
    {
        const int tid = thread_id(), nth = team_size();
        Scratch s = ws.thread(tid);
        // A fixed share of channels per thread: dB and dC then sum in the same order every run.
        int64_t d_first, d_end;
        share(in.dim, tid, nth, d_first, d_end);
        for (int64_t b = 0; b < in.batch; ++b) {
            for (int64_t last = in.n_blocks() - 1; last >= 0; last -= span) {
                const int64_t first = last - span + 1 > 0 ? last - span + 1 : 0;
                for (int64_t blk = last; blk >= first; --blk) {
                    const int n = in.block_steps(blk);
                    s.dB_tile = s.span_dB + (blk - first) * in.block * NS;
                    s.dC_tile = s.span_dC + (blk - first) * in.block * NS;
                    memset(s.dB_tile, 0, (size_t)n * NS * sizeof(float));
                    memset(s.dC_tile, 0, (size_t)n * NS * sizeof(float));
                    for (int64_t d = d_first; d < d_end; ++d) {
                        // The next block's rows arrive from memory while this one is processed.
                        const bool last_channel = d + 1 == d_end;
                        const int64_t next_blk = last_channel ? blk - 1 : blk, next_d = last_channel ? d_first : d + 1;
                        if (next_blk >= 0) {
                            const int64_t at = in.row(b, next_d) + next_blk * in.block;
                            const int next_n = in.block_steps(next_blk);
                            for (const float* row : {in.u, in.delta, in.z, gr.dout}) {
                                if (row) prefetch(row + at, next_n, false);
                            }
                            for (const float* row : {gr.du, gr.ddelta, gr.dz}) {
                                if (row) prefetch(row + at, next_n, true);
                            }
                        }
                        backward_channel_block<NV>(in, ckpt, gr, b, d, blk, s);
                    }
                }
#pragma omp barrier
                const int64_t t0 = first * in.block, steps = (last - first) * in.block + in.block_steps(last);
#pragma omp for schedule(static)
                for (int64_t t = 0; t < steps; ++t) reduce_shares<NV>(ws, nth, gr, b * in.length + t0 + t, t);
            }
        }
    }
    for (int64_t i = 0; i < channels * NS; ++i) dA[i] = (float)gr.dA[i];
    for (int64_t i = 0; i < channels; ++i) {
        dD[i] = (float)gr.dD[i];
        ddelta_bias[i] = (float)gr.ddelta_bias[i];
    }
    free(carry);
    free(sums);
    return OK;
}

// Call fn with the number of vectors per state set as a compile-time constant.
template <int NV>
struct VectorsPerChannel { static constexpr int value = NV; };

template <class Fn>
int with_vectors_per_channel(int64_t nstate, Fn fn) {
    if (nstate == W) return fn(VectorsPerChannel<1>{});
    if (nstate == 2 * W) return fn(VectorsPerChannel<2>{});
    if (nstate == 4 * W) return fn(VectorsPerChannel<4>{});
    if constexpr (8 * W <= MAX_STATES) {
        if (nstate == 8 * W) return fn(VectorsPerChannel<8>{});
    }
    return ERR_ARGUMENT;
}

bool valid(const Inputs& in, int nthreads) {
    return in.batch >= 0 && in.dim >= 0 && in.length >= 0 && in.block > 0 && in.block % W == 0 &&
           nthreads > 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// C API (ctypes). Pointers may be NULL where noted; every return is OK (0), ERR_MEMORY (1) or
// ERR_ARGUMENT (2: block not a multiple of the vector width, or nstate not W * 1, 2, 4 (or 8)).
// ---------------------------------------------------------------------------------------------

API int seq2exp_scan_abi_version(void) { return 1; }
API const char* seq2exp_scan_isa(void) { return ISA; }
API int seq2exp_scan_lanes(void) { return W; }
API int seq2exp_scan_max_states(void) { return MAX_STATES; }

// out (batch, dim, length); ckpt (batch, dim, n_blocks, nstate) or NULL when no backward follows.
// D, z, delta_bias may be NULL.
API int seq2exp_scan_forward(const float* u, const float* delta, const float* A, const float* Bt,
                             const float* Ct, const float* D, const float* z, const float* delta_bias,
                             int delta_softplus, int64_t batch, int64_t dim, int64_t nstate, int64_t length,
                             int64_t block, float* out, float* ckpt, int nthreads) {
    const Inputs in{u, delta, A, Bt, Ct, D, z, delta_bias, delta_softplus != 0, batch, dim, nstate, length, block};
    if (!valid(in, nthreads)) return ERR_ARGUMENT;
    return with_vectors_per_channel(nstate, [&](auto nv) {
        return forward<decltype(nv)::value>(in, out, ckpt, nthreads);
    });
}

// Gradients of sum(dout * out) for the inputs of the forward call that wrote ckpt. dA_part
// (batch, dim, nstate), dD_part and ddelta_bias_part (batch, dim) are per-batch sums (the caller
// sums over batch); dz may be NULL exactly when z is.
API int seq2exp_scan_backward(const float* u, const float* delta, const float* A, const float* Bt,
                              const float* Ct, const float* D, const float* z, const float* delta_bias,
                              int delta_softplus, int64_t batch, int64_t dim, int64_t nstate, int64_t length,
                              int64_t block, const float* ckpt, const float* dout, float* du, float* ddelta,
                              float* dA_part, float* dBt, float* dCt, float* dD_part, float* dz,
                              float* ddelta_bias_part, int nthreads) {
    const Inputs in{u, delta, A, Bt, Ct, D, z, delta_bias, delta_softplus != 0, batch, dim, nstate, length, block};
    if (!valid(in, nthreads) || (z == nullptr) != (dz == nullptr)) return ERR_ARGUMENT;
    const Gradients gr{dout, du, ddelta, dBt, dCt, dz, nullptr, nullptr, nullptr, nullptr};
    return with_vectors_per_channel(nstate, [&](auto nv) {
        return backward<decltype(nv)::value>(in, ckpt, gr, dA_part, dD_part, ddelta_bias_part, nthreads);
    });
}
