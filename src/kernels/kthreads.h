/* OpenMP where the build has it (-fopenmp: the kernel library, model.so); without it (the
 * embedded build of a model: one thread, no libgomp) the pragmas are ignored and a region's one
 * thread is thread 0 of 1, so the static partitions give that thread all the work. */
#ifndef CKE_KTHREADS_H
#define CKE_KTHREADS_H
#ifdef _OPENMP
#include <omp.h>
#else
#define omp_get_thread_num() 0
#define omp_get_num_threads() 1
#endif
#endif
