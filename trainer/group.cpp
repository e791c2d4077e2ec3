#include "group.h"

#include <cstring>

namespace loom::trainer {

template <typename T>
Status groupAllReduce(const Group& g, T* buf, size_t n, loomRedOp_t op) {
  if (g.size <= 1 || n == 0) return Status();
  return g.comm->allReduce(buf, buf, n, loom::dataTypeOf<T>(), op);
}

template <typename T>
Status groupAllGather(const Group& g, const T* shard, T* full, size_t n) {
  if (g.size <= 1) {
    if (full != shard) std::memmove(full, shard, n * sizeof(T));
    return Status();
  }
  return g.comm->allGather(shard, full, n, loom::dataTypeOf<T>());
}

template <typename T>
Status groupReduceScatter(const Group& g, const T* full, T* shard, size_t n) {
  if (g.size <= 1) {
    if (full != shard) std::memmove(shard, full, n * sizeof(T));
    return Status();
  }
  return g.comm->reduceScatter(full, shard, n, loom::dataTypeOf<T>(), loomSum);
}

template <typename T>
Status groupAllToAll(const Group& g, const T* send, T* recv, size_t n) {
  if (g.size <= 1) {
    if (recv != send) std::memmove(recv, send, n * sizeof(T));
    return Status();
  }
  return g.comm->allToAll(send, recv, n, loom::dataTypeOf<T>());
}

#define LOOM_TRAINER_GROUP(T)                                                \
  template Status groupAllReduce<T>(const Group&, T*, size_t, loomRedOp_t);  \
  template Status groupAllGather<T>(const Group&, const T*, T*, size_t);     \
  template Status groupReduceScatter<T>(const Group&, const T*, T*, size_t); \
  template Status groupAllToAll<T>(const Group&, const T*, T*, size_t);
LOOM_TRAINER_GROUP(float)
LOOM_TRAINER_GROUP(double)
#undef LOOM_TRAINER_GROUP

}  // namespace loom::trainer
