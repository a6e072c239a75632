// Blockwise 8x8 DCT high-pass for deepfake-guard (dfguard.kernels, backend "cupy").
//
// Per 8x8 block X:  out = keep * X + weight (.) (L * X * R)   with L, R, weight from kernels/operators.py:
//   spatial high-pass: L = R = A (projector onto the kept low frequencies), keep = 1, weight = -1
//   coefficients:      L = C, R = C^T (orthonormal DCT-II), keep = 0, weight = 0/1 mask of the kept coefficients
// computed on the block minus its rounded mean c, with the constant's share added back exactly:
//   out = keep * (X - c) + weight (.) (L * (X - c) * R) + c * offset,   offset = keep + weight (.) (L * 1 * R)
// so float32 stays within 1e-4 of the exact result on 8-bit images.
//
// One CUDA block of 64x8 threads per 64x64-pixel tile (8x8 DCT blocks). Thread (tx, ty) loads column tx of
// rows ty, ty+8, ..., ty+56 into shared memory (coalesced); block means are reduced in shared memory; each
// thread computes L*(X-c) down its column, then (L*(X-c))*R along its block row and writes the result
// (coalesced). Edges are replicated by clamping the load coordinates, so
// H and W need not be multiples of 8. blockIdx.z strides over the images of the batch.
// Input [N, H, W, C] (C = 1 grayscale, C = 3 RGB -> BT.601 luma), uint8 or float32; output [N, H, W] float32.
// bad[n] is set to 1 when image n holds a NaN or an infinity.

#define DCT_TILE 64
#define DCT_BLOCK 8

template <typename T> __device__ __forceinline__ bool not_finite(float v) { return false; }
template <> __device__ __forceinline__ bool not_finite<float>(float v) { return !isfinite(v); }

template <typename T, int C>
__device__ __forceinline__ float load_luma(const T* __restrict__ image, int row, int col, int width) {
    const T* p = image + ((long long)row * width + col) * C;
    if (C == 3) {
        return 0.299f * (float)p[0] + 0.587f * (float)p[1] + 0.114f * (float)p[2];
    }
    return (float)p[0];
}

template <typename T, int C>
__device__ void highpass_tiles(const T* __restrict__ x, float* __restrict__ out, const float* __restrict__ ops,
                               float keep, int n_images, int height, int width, unsigned char* __restrict__ bad) {
    __shared__ float xs[DCT_TILE][DCT_TILE];
    __shared__ float ts[DCT_TILE][DCT_TILE];
    __shared__ float column_sums[DCT_BLOCK][DCT_TILE];
    __shared__ float means[DCT_BLOCK][DCT_BLOCK];     // rounded mean of each 8x8 block of the tile
    __shared__ float m[4][DCT_BLOCK][DCT_BLOCK];      // left, right, weight, offset

    const int tx = threadIdx.x, ty = threadIdx.y;
    const int tid = ty * DCT_TILE + tx;
    if (tid < 4 * DCT_BLOCK * DCT_BLOCK) (&m[0][0][0])[tid] = ops[tid];

    const int x0 = blockIdx.x * DCT_TILE, y0 = blockIdx.y * DCT_TILE;
    const int col = min(x0 + tx, width - 1);
    const int b = tx / DCT_BLOCK, j = tx % DCT_BLOCK;
    const long long image_size = (long long)height * width;

    for (int n = blockIdx.z; n < n_images; n += gridDim.z) {
        __syncthreads();  // shared tiles are free again (and m is loaded on the first pass)
        const T* image = x + n * image_size * C;
        bool flagged = false;
#pragma unroll
        for (int r = 0; r < DCT_BLOCK; ++r) {
            const int yy = ty + DCT_BLOCK * r;
            const float v = load_luma<T, C>(image, min(y0 + yy, height - 1), col, width);
            flagged |= not_finite<T>(v);
            xs[yy][tx] = v;
        }
        if (flagged) bad[n] = 1;
        __syncthreads();
        float total = 0.f;  // column tx of block row ty
#pragma unroll
        for (int k = 0; k < DCT_BLOCK; ++k) total += xs[DCT_BLOCK * ty + k][tx];
        column_sums[ty][tx] = total;
        __syncthreads();
        if (tid < DCT_BLOCK * DCT_BLOCK) {
            float block_total = 0.f;
#pragma unroll
            for (int k = 0; k < DCT_BLOCK; ++k) block_total += column_sums[tid / DCT_BLOCK][DCT_BLOCK * (tid % DCT_BLOCK) + k];
            means[tid / DCT_BLOCK][tid % DCT_BLOCK] = floorf(block_total / (DCT_BLOCK * DCT_BLOCK) + 0.5f);
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < DCT_BLOCK; ++r) {  // L*(X - c) down each column of each block
            const float c = means[r][b];
            float acc = 0.f;
#pragma unroll
            for (int k = 0; k < DCT_BLOCK; ++k) acc += m[0][ty][k] * (xs[DCT_BLOCK * r + k][tx] - c);
            ts[DCT_BLOCK * r + ty][tx] = acc;
        }
        __syncthreads();
        float* out_image = out + n * image_size;
#pragma unroll
        for (int r = 0; r < DCT_BLOCK; ++r) {  // (L*(X - c))*R along each row of each block, then c's share
            const int yy = DCT_BLOCK * r + ty;
            const float c = means[r][b];
            float acc = 0.f;
#pragma unroll
            for (int k = 0; k < DCT_BLOCK; ++k) acc += ts[yy][DCT_BLOCK * b + k] * m[1][k][j];
            if (y0 + yy < height && x0 + tx < width) {
                out_image[(long long)(y0 + yy) * width + x0 + tx] =
                    keep * (xs[yy][tx] - c) + m[2][ty][j] * acc + c * m[3][ty][j];
            }
        }
    }
}

#define DCT_ENTRY(NAME, T, C)                                                                                  \
    extern "C" __global__ void __launch_bounds__(DCT_TILE * DCT_BLOCK)                                        \
    NAME(const T* x, float* out, const float* ops, float keep, int n_images, int height, int width,          \
         unsigned char* bad) {                                                                               \
        highpass_tiles<T, C>(x, out, ops, keep, n_images, height, width, bad);                               \
    }

DCT_ENTRY(dct8x8_highpass_u8_gray, unsigned char, 1)
DCT_ENTRY(dct8x8_highpass_u8_rgb, unsigned char, 3)
DCT_ENTRY(dct8x8_highpass_f32_gray, float, 1)
DCT_ENTRY(dct8x8_highpass_f32_rgb, float, 3)
