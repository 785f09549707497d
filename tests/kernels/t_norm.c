/* Tests of the norm family: simd vs _ref sweeps, finite-difference gradients, PyTorch parity. */
#include "harness.h"

const test_op tests_norm[] = {
    {0},
};
