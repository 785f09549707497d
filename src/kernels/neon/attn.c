/* Causal GQA attention forward/backward, neon instance of the shared template attn_simd.h
 * (blocked online softmax; design, threading and determinism notes there). */
#include "../kdecl.h"
#include "ndecl.h"
#include "attn_vec.h"
#include "../attn_simd.h"
