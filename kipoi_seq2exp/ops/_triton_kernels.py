"""Triton kernels of the selective scan; :mod:`.triton_scan` imports this module at first use only.

Every kernel works on tiles of (BLOCK_D channels, NSTATE states, BLOCK_T positions), time on the
last axis, and scans a tile with ``tl.associative_scan`` over pairs (decay a, input x): (a1, x1)
followed by (a2, x2) is (a1 a2, a2 x1 + x2), so h_t = a_t h_{t-1} + x_t inside the tile in
parallel. A program owns one chunk of CHUNK positions (a whole number of tiles) and carries the
state from tile to tile. Position p counts in scan order; with REVERSE it reads and writes memory
at L - 1 - p, so a right-to-left scan needs no flipped copies.

Whether the kernels are compiled or run by Triton's interpreter (numpy, any device) is fixed when
this module is imported, by $TRITON_INTERPRET=1 at that moment (:data:`INTERPRETED`).
"""
from __future__ import annotations

import os

import triton
import triton.language as tl

try:
    INTERPRETED = bool(triton.knobs.runtime.interpret)
except AttributeError:  # Triton before knobs (< 3.4) read the variable directly
    INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"


@triton.jit
def _first_order(a1, x1, a2, x2):
    return a1 * a2, a2 * x1 + x2


@triton.jit
def _softplus(x):
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); log1p by Goldberg's trick, exact to a few
    # ulps where log(1 + t) would round t away (t < 1e-4)
    t = tl.exp(-tl.abs(x))
    u = 1.0 + t
    return tl.maximum(x, 0.0) + tl.where(u == 1.0, t, tl.log(u) * (t / (u - 1.0)))


@triton.jit
def _positions(start, L, BLOCK_T: tl.constexpr, REVERSE: tl.constexpr):
    """In-range mask and memory index of the BLOCK_T scan positions from ``start``."""
    p = start + tl.arange(0, BLOCK_T)
    if REVERSE:
        index = L - 1 - p
    else:
        index = p
    return p < L, index


@triton.jit
def _rows(ptr, row_offset, index, stride_l, mask):
    """(rows, BLOCK_T) float32 tile; row r, position t read at ptr + row_offset[r] + index[t] * stride_l."""
    return tl.load(ptr + row_offset[:, None] + index[None, :] * stride_l, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _step(delta_ptr, bias, row_offset, index, stride_l, mask,
          DELTA_SOFTPLUS: tl.constexpr, HAS_BIAS: tl.constexpr):
    """The step the recurrence uses, softplus(delta + bias) or delta + bias, 0 outside the sequence
    (no decay, no input: the state passes unchanged), and the pre-softplus value for the gradient."""
    raw = _rows(delta_ptr, row_offset, index, stride_l, mask)
    if HAS_BIAS:
        raw = raw + bias[:, None]
    if DELTA_SOFTPLUS:
        step = _softplus(raw)
    else:
        step = raw
    return tl.where(mask, step, 0.0), raw


@triton.jit
def _last(x, BLOCK_T: tl.constexpr):
    """x[..., BLOCK_T - 1] of a (BLOCK_D, NSTATE, BLOCK_T) tile."""
    t = tl.arange(0, BLOCK_T)[None, None, :]
    return tl.sum(tl.where(t == BLOCK_T - 1, x, 0.0), axis=2)


@triton.jit
def _first(x, BLOCK_T: tl.constexpr):
    """x[..., 0] of a (BLOCK_D, NSTATE, BLOCK_T) tile."""
    t = tl.arange(0, BLOCK_T)[None, None, :]
    return tl.sum(tl.where(t == 0, x, 0.0), axis=2)


@triton.jit
def _forward_tile(u, step, A, Bt):
    """Decay exp(step A) and input step B u of one tile, both (BLOCK_D, NSTATE, BLOCK_T)."""
    a = tl.exp(step[:, None, :] * A[:, :, None])
    x = (step * u)[:, None, :] * Bt[None, :, :]
    return a, x


@triton.jit
def _program_setup(A_ptr, bias_ptr, D, N, stride_A_d, stride_A_n, stride_bias,
                   HAS_BIAS: tl.constexpr, BLOCK_D: tl.constexpr, NSTATE: tl.constexpr):
    """This program's channels d, states n, their masks, A (BLOCK_D, NSTATE) and delta_bias (BLOCK_D,)."""
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    n = tl.arange(0, NSTATE)
    mask_d = d < D
    mask_n = n < N
    A = tl.load(A_ptr + d[:, None] * stride_A_d + n[None, :] * stride_A_n,
                mask=mask_d[:, None] & mask_n[None, :], other=0.0).to(tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d * stride_bias, mask=mask_d, other=0.0).to(tl.float32)
    else:
        bias = tl.zeros((BLOCK_D,), tl.float32)
    return d.to(tl.int64), n, mask_d, mask_n, A, bias


@triton.jit
def chunk_end_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, bias_ptr, end_ptr, step_sum_ptr,
                     L, D, N, n_chunks,
                     s_u_b, s_u_d, s_u_l, s_dt_b, s_dt_d, s_dt_l, s_A_d, s_A_n, s_B_b, s_B_n, s_B_l, s_bias,
                     DELTA_SOFTPLUS: tl.constexpr, HAS_BIAS: tl.constexpr, REVERSE: tl.constexpr,
                     BLOCK_D: tl.constexpr, NSTATE: tl.constexpr, BLOCK_T: tl.constexpr, CHUNK: tl.constexpr):
    """Pass 1, grid (chunks, channel blocks, batch): each chunk scanned from a zero state; writes its
    end state (batch, D, chunks, N) and its summed step (batch, D, chunks): the chunk's decay is
    exp(A * sum)."""
    chunk = tl.program_id(0)
    b = tl.program_id(2).to(tl.int64)
    d, n, mask_d, mask_n, A, bias = _program_setup(A_ptr, bias_ptr, D, N, s_A_d, s_A_n, s_bias,
                                                   HAS_BIAS, BLOCK_D, NSTATE)
    u_rows = b * s_u_b + d * s_u_d
    dt_rows = b * s_dt_b + d * s_dt_d
    B_rows = b * s_B_b + n * s_B_n
    h = tl.zeros((BLOCK_D, NSTATE), tl.float32)
    step_sum = tl.zeros((BLOCK_D,), tl.float32)
    n_tiles = tl.cdiv(tl.minimum(CHUNK, L - chunk * CHUNK), BLOCK_T)
    for tile in range(n_tiles):
        mask_p, index = _positions(chunk * CHUNK + tile * BLOCK_T, L, BLOCK_T, REVERSE)
        mask = mask_d[:, None] & mask_p[None, :]
        step, _ = _step(delta_ptr, bias, dt_rows, index, s_dt_l, mask, DELTA_SOFTPLUS, HAS_BIAS)
        u = _rows(u_ptr, u_rows, index, s_u_l, mask)
        Bt = _rows(B_ptr, B_rows, index, s_B_l, mask_n[:, None] & mask_p[None, :])
        a, x = _forward_tile(u, step, A, Bt)
        a_cum, x_cum = tl.associative_scan((a, x), 2, _first_order)
        h = _last(a_cum, BLOCK_T) * h + _last(x_cum, BLOCK_T)
        step_sum += tl.sum(step, axis=1)
    row = (b * D + d) * n_chunks + chunk
    tl.store(end_ptr + row[:, None] * N + n[None, :], h, mask=mask_d[:, None] & mask_n[None, :])
    tl.store(step_sum_ptr + row, step_sum, mask=mask_d)


@triton.jit
def chunk_combine_kernel(end_ptr, step_sum_ptr, A_ptr, start_ptr, D, N, n_chunks, s_A_d, s_A_n,
                         BACKWARD: tl.constexpr, BLOCK_D: tl.constexpr, NSTATE: tl.constexpr):
    """Pass 2, grid (channel blocks, batch): the chunks' true start states, one chunk after the other
    (last chunk first with BACKWARD): start_c = carry; carry = exp(A * sum_c) carry + end_c."""
    b = tl.program_id(1).to(tl.int64)
    d = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    n = tl.arange(0, NSTATE)
    mask_d = d < D
    mask = mask_d[:, None] & (n < N)[None, :]
    A = tl.load(A_ptr + d[:, None] * s_A_d + n[None, :] * s_A_n, mask=mask, other=0.0).to(tl.float32)
    rows = (b * D + d.to(tl.int64)) * n_chunks
    carry = tl.zeros((BLOCK_D, NSTATE), tl.float32)
    for i in range(n_chunks):
        if BACKWARD:
            chunk = n_chunks - 1 - i
        else:
            chunk = i
        offset = (rows + chunk)[:, None] * N + n[None, :]
        tl.store(start_ptr + offset, carry, mask=mask)
        end = tl.load(end_ptr + offset, mask=mask, other=0.0)
        step_sum = tl.load(step_sum_ptr + rows + chunk, mask=mask_d, other=0.0)
        carry = tl.exp(A * step_sum[:, None]) * carry + end


@triton.jit
def forward_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, start_ptr, out_ptr, states_ptr,
                   L, D, N, n_chunks,
                   s_u_b, s_u_d, s_u_l, s_dt_b, s_dt_d, s_dt_l, s_A_d, s_A_n, s_B_b, s_B_n, s_B_l,
                   s_C_b, s_C_n, s_C_l, s_D, s_z_b, s_z_d, s_z_l, s_bias, s_o_b, s_o_d, s_o_l,
                   DELTA_SOFTPLUS: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_D: tl.constexpr,
                   HAS_Z: tl.constexpr, STORE_STATES: tl.constexpr, REVERSE: tl.constexpr,
                   BLOCK_D: tl.constexpr, NSTATE: tl.constexpr, BLOCK_T: tl.constexpr, CHUNK: tl.constexpr):
    """Pass 3, grid as pass 1: each chunk rescanned from its true start state; writes
    y = (C h + D u) silu(z) and, with STORE_STATES, every tile's start state for the backward pass
    (batch, D, tiles, N)."""
    chunk = tl.program_id(0)
    b = tl.program_id(2).to(tl.int64)
    d, n, mask_d, mask_n, A, bias = _program_setup(A_ptr, bias_ptr, D, N, s_A_d, s_A_n, s_bias,
                                                   HAS_BIAS, BLOCK_D, NSTATE)
    mask_dn = mask_d[:, None] & mask_n[None, :]
    if HAS_D:
        skip = tl.load(D_ptr + d * s_D, mask=mask_d, other=0.0).to(tl.float32)
    u_rows = b * s_u_b + d * s_u_d
    dt_rows = b * s_dt_b + d * s_dt_d
    z_rows = b * s_z_b + d * s_z_d
    o_rows = b * s_o_b + d * s_o_d
    B_rows = b * s_B_b + n * s_B_n
    C_rows = b * s_C_b + n * s_C_n
    h = tl.load(start_ptr + ((b * D + d) * n_chunks + chunk)[:, None] * N + n[None, :], mask=mask_dn, other=0.0)
    tiles_per_chunk: tl.constexpr = CHUNK // BLOCK_T
    n_tiles = tl.cdiv(tl.minimum(CHUNK, L - chunk * CHUNK), BLOCK_T)
    for tile in range(n_tiles):
        mask_p, index = _positions(chunk * CHUNK + tile * BLOCK_T, L, BLOCK_T, REVERSE)
        mask = mask_d[:, None] & mask_p[None, :]
        mask_nt = mask_n[:, None] & mask_p[None, :]
        if STORE_STATES:
            state_row = (b * D + d) * (n_chunks * tiles_per_chunk) + chunk * tiles_per_chunk + tile
            tl.store(states_ptr + state_row[:, None] * N + n[None, :], h, mask=mask_dn)
        step, _ = _step(delta_ptr, bias, dt_rows, index, s_dt_l, mask, DELTA_SOFTPLUS, HAS_BIAS)
        u = _rows(u_ptr, u_rows, index, s_u_l, mask)
        Bt = _rows(B_ptr, B_rows, index, s_B_l, mask_nt)
        Ct = _rows(C_ptr, C_rows, index, s_C_l, mask_nt)
        a, x = _forward_tile(u, step, A, Bt)
        a_cum, x_cum = tl.associative_scan((a, x), 2, _first_order)
        hs = a_cum * h[:, :, None] + x_cum
        y = tl.sum(hs * Ct[None, :, :], axis=1)
        if HAS_D:
            y += skip[:, None] * u
        if HAS_Z:
            z = _rows(z_ptr, z_rows, index, s_z_l, mask)
            y = y * z * tl.sigmoid(z)
        tl.store(out_ptr + o_rows[:, None] + index[None, :] * s_o_l, y, mask=mask)
        h = _last(hs, BLOCK_T)


@triton.jit
def chunk_adjoint_kernel(dout_ptr, delta_ptr, A_ptr, C_ptr, z_ptr, bias_ptr, end_ptr, step_sum_ptr,
                         L, D, N, n_chunks,
                         s_g_b, s_g_d, s_g_l, s_dt_b, s_dt_d, s_dt_l, s_A_d, s_A_n, s_C_b, s_C_n, s_C_l,
                         s_z_b, s_z_d, s_z_l, s_bias,
                         DELTA_SOFTPLUS: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_Z: tl.constexpr,
                         REVERSE: tl.constexpr,
                         BLOCK_D: tl.constexpr, NSTATE: tl.constexpr, BLOCK_T: tl.constexpr, CHUNK: tl.constexpr):
    """Backward pass 1, grid as forward pass 1: the adjoint state dh_t = C_t g_t + a_{t+1} dh_{t+1}
    (g = dL/dy before the gate) scanned right to left through each chunk from a zero carry; writes
    dh at the chunk's first position (batch, D, chunks, N) and the summed steps of positions 1..CHUNK
    after its first (the decays it applied)."""
    chunk = tl.program_id(0)
    b = tl.program_id(2).to(tl.int64)
    d, n, mask_d, mask_n, A, bias = _program_setup(A_ptr, bias_ptr, D, N, s_A_d, s_A_n, s_bias,
                                                   HAS_BIAS, BLOCK_D, NSTATE)
    g_rows = b * s_g_b + d * s_g_d
    dt_rows = b * s_dt_b + d * s_dt_d
    z_rows = b * s_z_b + d * s_z_d
    C_rows = b * s_C_b + n * s_C_n
    dh = tl.zeros((BLOCK_D, NSTATE), tl.float32)
    step_sum = tl.zeros((BLOCK_D,), tl.float32)
    n_tiles = tl.cdiv(tl.minimum(CHUNK, L - chunk * CHUNK), BLOCK_T)
    for i in range(n_tiles):
        start = chunk * CHUNK + (n_tiles - 1 - i) * BLOCK_T
        mask_p, index = _positions(start, L, BLOCK_T, REVERSE)
        mask_next, index_next = _positions(start + 1, L, BLOCK_T, REVERSE)
        mask = mask_d[:, None] & mask_p[None, :]
        g = _rows(dout_ptr, g_rows, index, s_g_l, mask)
        if HAS_Z:
            z = _rows(z_ptr, z_rows, index, s_z_l, mask)
            g = g * z * tl.sigmoid(z)
        Ct = _rows(C_ptr, C_rows, index, s_C_l, mask_n[:, None] & mask_p[None, :])
        step_next, _ = _step(delta_ptr, bias, dt_rows, index_next, s_dt_l, mask_d[:, None] & mask_next[None, :],
                             DELTA_SOFTPLUS, HAS_BIAS)
        alpha = tl.exp(step_next[:, None, :] * A[:, :, None])
        beta = Ct[None, :, :] * g[:, None, :]
        a_cum, x_cum = tl.associative_scan((alpha, beta), 2, _first_order, reverse=True)
        dh = _first(a_cum, BLOCK_T) * dh + _first(x_cum, BLOCK_T)
        step_sum += tl.sum(step_next, axis=1)
    row = (b * D + d) * n_chunks + chunk
    tl.store(end_ptr + row[:, None] * N + n[None, :], dh, mask=mask_d[:, None] & mask_n[None, :])
    tl.store(step_sum_ptr + row, step_sum, mask=mask_d)


@triton.jit
def backward_kernel(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, dout_ptr,
                    states_ptr, adjoint_ptr,
                    du_ptr, ddelta_ptr, dz_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr, dbias_ptr,
                    L, D, N, n_chunks,
                    s_u_b, s_u_d, s_u_l, s_dt_b, s_dt_d, s_dt_l, s_A_d, s_A_n, s_B_b, s_B_n, s_B_l,
                    s_C_b, s_C_n, s_C_l, s_D, s_z_b, s_z_d, s_z_l, s_bias, s_g_b, s_g_d, s_g_l,
                    DELTA_SOFTPLUS: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_D: tl.constexpr,
                    HAS_Z: tl.constexpr, REVERSE: tl.constexpr,
                    BLOCK_D: tl.constexpr, NSTATE: tl.constexpr, BLOCK_T: tl.constexpr, CHUNK: tl.constexpr):
    """Backward pass 3, grid as forward pass 1: each chunk's tiles last to first; the forward states
    are rescanned from the stored tile start states, the adjoint from the chunk's true carry from
    the right. du, ddelta, dz are written (contiguous (batch, D, L)); dB and dC (float32 (batch, N, L))
    are summed over channel blocks with atomic adds; dA, dD, d(delta_bias) per (batch, chunk) partial
    sums, (batch, chunks, D, N) and (batch, chunks, D), which the caller adds up."""
    chunk = tl.program_id(0)
    b = tl.program_id(2).to(tl.int64)
    d, n, mask_d, mask_n, A, bias = _program_setup(A_ptr, bias_ptr, D, N, s_A_d, s_A_n, s_bias,
                                                   HAS_BIAS, BLOCK_D, NSTATE)
    mask_dn = mask_d[:, None] & mask_n[None, :]
    if HAS_D:
        skip = tl.load(D_ptr + d * s_D, mask=mask_d, other=0.0).to(tl.float32)
    u_rows = b * s_u_b + d * s_u_d
    dt_rows = b * s_dt_b + d * s_dt_d
    z_rows = b * s_z_b + d * s_z_d
    g_rows = b * s_g_b + d * s_g_d
    B_rows = b * s_B_b + n * s_B_n
    C_rows = b * s_C_b + n * s_C_n
    grad_rows = (b * D + d) * L  # du, ddelta, dz: contiguous (batch, D, L)
    dBC_rows = (b * N + n) * L  # dB, dC: contiguous (batch, N, L)
    tiles_per_chunk: tl.constexpr = CHUNK // BLOCK_T
    dh = tl.load(adjoint_ptr + ((b * D + d) * n_chunks + chunk)[:, None] * N + n[None, :], mask=mask_dn, other=0.0)
    dA = tl.zeros((BLOCK_D, NSTATE), tl.float32)
    dD = tl.zeros((BLOCK_D,), tl.float32)
    dbias = tl.zeros((BLOCK_D,), tl.float32)
    n_tiles = tl.cdiv(tl.minimum(CHUNK, L - chunk * CHUNK), BLOCK_T)
    for i in range(n_tiles):
        tile = n_tiles - 1 - i
        start = chunk * CHUNK + tile * BLOCK_T
        mask_p, index = _positions(start, L, BLOCK_T, REVERSE)
        mask_next, index_next = _positions(start + 1, L, BLOCK_T, REVERSE)
        mask = mask_d[:, None] & mask_p[None, :]
        mask_nt = mask_n[:, None] & mask_p[None, :]
        # forward states h_t of the tile
        state_row = (b * D + d) * (n_chunks * tiles_per_chunk) + chunk * tiles_per_chunk + tile
        h0 = tl.load(states_ptr + state_row[:, None] * N + n[None, :], mask=mask_dn, other=0.0)
        step, raw = _step(delta_ptr, bias, dt_rows, index, s_dt_l, mask, DELTA_SOFTPLUS, HAS_BIAS)
        u = _rows(u_ptr, u_rows, index, s_u_l, mask)
        Bt = _rows(B_ptr, B_rows, index, s_B_l, mask_nt)
        Ct = _rows(C_ptr, C_rows, index, s_C_l, mask_nt)
        a, x = _forward_tile(u, step, A, Bt)
        a_cum, x_cum = tl.associative_scan((a, x), 2, _first_order)
        h = a_cum * h0[:, :, None] + x_cum
        # g = dL/dy before the gate; the gate's own gradient needs y before the gate
        g = _rows(dout_ptr, g_rows, index, s_g_l, mask)
        if HAS_Z:
            z = _rows(z_ptr, z_rows, index, s_z_l, mask)
            sig = tl.sigmoid(z)
            y = tl.sum(h * Ct[None, :, :], axis=1)
            if HAS_D:
                y += skip[:, None] * u
            tl.store(dz_ptr + grad_rows[:, None] + index[None, :], g * y * sig * (1.0 + z * (1.0 - sig)), mask=mask)
            g = g * z * sig
        # adjoint states dh_t, right to left, from the carry of the tile after this one
        step_next, _ = _step(delta_ptr, bias, dt_rows, index_next, s_dt_l, mask_d[:, None] & mask_next[None, :],
                             DELTA_SOFTPLUS, HAS_BIAS)
        alpha = tl.exp(step_next[:, None, :] * A[:, :, None])
        beta = Ct[None, :, :] * g[:, None, :]
        r_cum, s_cum = tl.associative_scan((alpha, beta), 2, _first_order, reverse=True)
        dhs = r_cum * dh[:, :, None] + s_cum
        dh = _first(dhs, BLOCK_T)
        # h_t = a_t h_{t-1} + step_t B_t u_t; a_t h_{t-1} = h_t - x_t avoids storing h_{t-1}
        decayed = h - x
        dh_B = tl.sum(dhs * Bt[None, :, :], axis=1)  # (BLOCK_D, BLOCK_T)
        du = step * dh_B
        if HAS_D:
            du += g * skip[:, None]
            dD += tl.sum(g * u, axis=1)
        dstep = tl.sum(dhs * decayed * A[:, :, None], axis=1) + u * dh_B
        dA += tl.sum(dhs * decayed * step[:, None, :], axis=2)
        if DELTA_SOFTPLUS:
            dstep = dstep * tl.sigmoid(raw)
        dstep = tl.where(mask, dstep, 0.0)
        dbias += tl.sum(dstep, axis=1)
        tl.store(du_ptr + grad_rows[:, None] + index[None, :], du, mask=mask)
        tl.store(ddelta_ptr + grad_rows[:, None] + index[None, :], dstep, mask=mask)
        bc_offset = dBC_rows[:, None] + index[None, :]
        tl.atomic_add(dB_ptr + bc_offset, tl.sum(dhs * (step * u)[:, None, :], axis=0), mask=mask_nt)
        tl.atomic_add(dC_ptr + bc_offset, tl.sum(h * g[:, None, :], axis=0), mask=mask_nt)
    row = (b * n_chunks + chunk) * D + d
    tl.store(dA_ptr + row[:, None] * N + n[None, :], dA, mask=mask_dn)
    tl.store(dD_ptr + row, dD, mask=mask_d)
    tl.store(dbias_ptr + row, dbias, mask=mask_d)
