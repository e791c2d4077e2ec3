// group.h - a rank's view of one process group and the typed collectives the trainer uses on
// it. A group of one rank moves nothing and calls no collective (so its counters stay zero):
// the collectives reduce to copies.
#ifndef LOOM_TRAINER_GROUP_H_
#define LOOM_TRAINER_GROUP_H_

#include <cstddef>

#include "loom/loom.hpp"

namespace loom::trainer {

struct Group {
  loom::Communicator* comm = nullptr;  // not owned; nullptr only for a one-rank group
  int size = 1;
  int rank = 0;

  static Group of(loom::Communicator& c) {
    Group g;
    g.comm = &c;
    g.size = c.valid() ? c.size() : 1;
    g.rank = c.valid() ? c.rank() : 0;
    return g;
  }
};

// In place over n elements.
template <typename T>
Status groupAllReduce(const Group& g, T* buf, size_t n, loomRedOp_t op = loomSum);
// full[size*n] <- every rank's shard[n], in rank order.
template <typename T>
Status groupAllGather(const Group& g, const T* shard, T* full, size_t n);
// shard[n] <- this rank's part of the sum of every rank's full[size*n].
template <typename T>
Status groupReduceScatter(const Group& g, const T* full, T* shard, size_t n);
// recv[size*n] <- n elements from every rank (part `rank` of each one's send).
template <typename T>
Status groupAllToAll(const Group& g, const T* send, T* recv, size_t n);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_GROUP_H_
