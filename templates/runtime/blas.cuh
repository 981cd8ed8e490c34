// The projections: row-major bf16 matrix products through cuBLAS with fp32 accumulation.
//
// cuBLAS is column-major; a row-major X[r][c] is the column-major X^T, so the row-major product
// C = op(A) op(B) is issued as the column-major C^T = op(B)^T op(A)^T: the operands swap places and keep
// their transpose flags.
#pragma once
#include <cublas_v2.h>  // cublasGemmEx
#include <cuda_bf16.h>   // __nv_bfloat16
#include "check.cuh"     // CUBLAS_CHECK

namespace lasp {

inline cudaDataType_t cuda_type(const __nv_bfloat16*) { return CUDA_R_16BF; }
inline cudaDataType_t cuda_type(const float*) { return CUDA_R_32F; }

// C[M][N] = alpha * op(A) op(B) + beta * C, op(A) is [M][K] (A stored [K][M] when trans_a), op(B) is [K][N];
// C bf16 (activations) or fp32 (weight gradients: summed over ranks and steps in fp32).
template <typename Out>
inline void matmul(cublasHandle_t handle, bool trans_a, bool trans_b, int M, int N, int K, const __nv_bfloat16* A,
                   const __nv_bfloat16* B, Out* C, float beta = 0.0f, float alpha = 1.0f) {
  const int lda = trans_a ? M : K;
  const int ldb = trans_b ? K : N;
  CUBLAS_CHECK(cublasGemmEx(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                            &alpha, B, CUDA_R_16BF, ldb, A, CUDA_R_16BF, lda, &beta, C, cuda_type(C), N,
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace lasp
