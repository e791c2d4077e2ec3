// Exactly representable test values for every datatype, so that collective results can be
// compared bit for bit whatever order the reduction ran in (DESIGN.md section 8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "loom/loom.h"

namespace loom::test {

size_t typeSize(loomDataType_t t);
const char* typeName(loomDataType_t t);
const char* opName(int op);

// Stores v (an integer the type represents exactly) into element i of buf.
void storeValue(loomDataType_t t, void* buf, size_t i, double v);
double loadValue(loomDataType_t t, const void* buf, size_t i);
// Largest integer m such that every integer in [0, m] is exact in t (capped at 1e6).
int exactRange(loomDataType_t t);

// Inputs: rank r's element i for a reduction with op (0..4 built-in, 5 = PreMulSum), chosen so
// every partial result of up to 8 ranks is exact in every type.
double reductionInput(int op, int rank, size_t i);
// The exact result for element i of `nranks` ranks' inputs, rounded as loom's kernels do for
// Avg (sum then one division in the type's compute precision), with PreMulSum's scalar 2.
void expectedReduction(loomDataType_t t, int op, int nranks, size_t i, void* out);
// A data-movement payload: distinct-ish, exact values for (rank, index).
double payload(loomDataType_t t, int rank, size_t i);

}  // namespace loom::test
