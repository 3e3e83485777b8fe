// OpenBLAS's CBLAS interface plus the LAPACK routines dpt uses.
//
// Debian's libopenblas exports LAPACK with the Fortran calling convention (trailing underscore, every argument by
// pointer, LP64 32-bit integers). gfortran appends one hidden `size_t` length per CHARACTER argument, so each
// prototype below ends with one `size_t` per `const char *`. No LAPACKE package is needed.
#ifndef DPT_CBLAS_SHIM_H
#define DPT_CBLAS_SHIM_H
#include <stddef.h>
#include <cblas.h>

// Cholesky factorisation A = U^T U (or L L^T).
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
// Solve with the Cholesky factor from dpotrf.
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b,
             const int *ldb, int *info, size_t uplo_len);
// QR factorisation A = Q R (Householder; R in the upper triangle, reflectors below).
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work, const int *lwork,
             int *info);
// Triangular solve op(A) X = B.
void dtrtrs_(const char *uplo, const char *trans, const char *diag, const int *n, const int *nrhs, const double *a,
             const int *lda, double *b, const int *ldb, int *info, size_t uplo_len, size_t trans_len,
             size_t diag_len);
// Minimum-norm least squares through the SVD (divide and conquer), for rank-deficient problems.
void dgelsd_(const int *m, const int *n, const int *nrhs, double *a, const int *lda, double *b, const int *ldb,
             double *s, const double *rcond, int *rank, double *work, const int *lwork, int *iwork, int *info);
// Symmetric eigenvalues (and vectors).
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
            const int *lwork, int *info, size_t jobz_len, size_t uplo_len);
// Singular values (and vectors) by divide and conquer.
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s, double *u,
             const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork, int *iwork, int *info,
             size_t jobz_len);
// Inverse of an SPD matrix from its Cholesky factor (for coefficient standard errors).
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);

#endif
