#include "runtime/op.h"

namespace loom::runtime {

using algo::Collective;

bool bufferBytes(const OpDesc& op, int rank, int nranks, size_t* send, size_t* recv) {
  size_t block;
  if (__builtin_mul_overflow(static_cast<size_t>(op.count), dataTypeSize(op.dtype), &block))
    return false;
  size_t all;
  if (__builtin_mul_overflow(block, static_cast<size_t>(nranks), &all)) return false;
  const bool root = rank == op.root;
  *send = *recv = 0;
  switch (op.collective) {
    case Collective::kAllReduce:
      *send = *recv = block;
      break;
    case Collective::kBroadcast:
      *send = root ? block : 0;
      *recv = block;
      break;
    case Collective::kReduce:
      *send = block;
      *recv = root ? block : 0;
      break;
    case Collective::kAllGather:
      *send = block;
      *recv = all;
      break;
    case Collective::kReduceScatter:
      *send = all;
      *recv = block;
      break;
    case Collective::kAllToAll:
      *send = *recv = all;
      break;
    case Collective::kGather:
      *send = block;
      *recv = root ? all : 0;
      break;
    case Collective::kScatter:
      *send = root ? all : 0;
      *recv = block;
      break;
    case Collective::kSend:
      *send = block;
      break;
    case Collective::kRecv:
      *recv = block;
      break;
    case Collective::kBarrier:
      break;
  }
  return all / static_cast<size_t>(nranks) == block;
}

}  // namespace loom::runtime
