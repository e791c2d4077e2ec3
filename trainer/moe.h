// moe.h - the mixture-of-experts FFN: a router (d x E, no bias), top-k gating, capacity
// ceil(cf * k * T / E) per expert with the earliest tokens kept (token order, then choice
// order), experts d -> 64 -> d with GeLU, and the Switch auxiliary loss 0.01 E sum f_i P_i.
//
// Routing groups: one micro-batch on one rank (T = its tokens) is one routing group, so a
// layout equals the one-rank base run with the same micro-batch size. With expert parallelism
// the E experts live E/EP per rank of the EP group; per micro-batch the capacity-padded
// dispatch buffer [E, C, d] goes to the expert owners with one AllToAll and comes back with a
// second (and twice more in backward: 4 AllToAll per MoE layer per micro-batch).
// f_i = (tokens choosing i) / (k T); P_i = mean router probability of i; the group's aux loss
// counts with weight T / (B S), so the whole batch's aux loss is layout independent.
#ifndef LOOM_TRAINER_MOE_H_
#define LOOM_TRAINER_MOE_H_

#include <vector>

#include "group.h"
#include "half.h"
#include "memory.h"

namespace loom::trainer {

struct Routing {
  int tokens = 0, experts = 0, topk = 1, capacity = 0;
  std::vector<int> expert;  // [tokens * topk] chosen expert, best first
  std::vector<int> slot;    // [tokens * topk] slot in that expert's buffer, -1 = dropped
  std::vector<int> chosen;  // [experts] tokens that chose each expert (before capacity)
};

// Picks the top-k experts of each row of probs [tokens, experts] (ties: lower index) and
// assigns capacity slots in token order.
Routing routeTokens(const float* probs, int tokens, int experts, int topk, double capacityFactor);
Routing routeTokens(const double* probs, int tokens, int experts, int topk, double capacityFactor);

struct MoeContext {
  Group ep;  // the EP group (size 1: every expert local)
  Precision prec = Precision::kFp32;
  int topk = 1;
  double capacityFactor = 1.25;
  double auxWeight = 0;  // 0.01 * E / (B * S): the aux loss per sum_i f_i sum_t p_ti
  MemoryAccount* memory = nullptr;
};

// x rows [tokens, d] -> send [E, C, d] (kept tokens in their slots, zeros elsewhere) ->
// AllToAll -> recv [EP, E/EP, C, d] (every source's slots for this rank's experts).
template <typename T>
Status moeDispatch(const MoeContext& ctx, const Routing& r, const T* x, int d, T* send, T* recv);
// The reverse exchange: expert outputs [EP, E/EP, C, d] -> back [E, C, d] at the source.
template <typename T>
Status moeReturn(const MoeContext& ctx, const Routing& r, const T* out, int d, T* back);
// y[t] = sum over kept choices j of gate(t, j) * back[expert, slot]; dropped tokens get 0.
template <typename T>
void moeCombine(const Routing& r, const T* probs, const T* back, int d, T* y);

template <typename T>
struct MoeWeights {
  const T *router = nullptr, *w1 = nullptr, *b1 = nullptr, *w2 = nullptr, *b2 = nullptr;
};
template <typename T>
struct MoeGrads {
  T *router = nullptr, *w1 = nullptr, *b1 = nullptr, *w2 = nullptr, *b2 = nullptr;
};

// What backward needs, charged to the activation account.
template <typename T>
struct MoeStash {
  Routing routing;
  Tracked<T> probs, expertIn, hidden, act, back;
};

// y [tokens, d] from x [tokens, d]; *auxLoss += this group's aux loss contribution.
template <typename T>
Status moeForward(const MoeContext& ctx, const MoeWeights<T>& w, const T* x, int tokens, int d,
                  T* y, MoeStash<T>* st, double* auxLoss);
// dx [tokens, d] written from dy; gradients accumulate. lossScale scales the aux gradient.
template <typename T>
Status moeBackward(const MoeContext& ctx, const MoeWeights<T>& w, const MoeGrads<T>& g, const T* x,
                   const T* dy, int d, T lossScale, MoeStash<T>* st, T* dx);

}  // namespace loom::trainer

#endif  // LOOM_TRAINER_MOE_H_
