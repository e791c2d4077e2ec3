// The verifier: proves a schedule correct by executing it symbolically (DESIGN.md section 3).
//
// Every element carries a symbolic value instead of a number: which input element it derives
// from, the set of ranks whose contributions it combines, and whether it was finalized. Data
// movement keeps the set (the origin rank); a reduction unites disjoint sets. Every rank's
// channels run against one another with messages matched in order per (sender, receiver,
// channel), as schedule.h defines, and the verifier checks, with an error that names the rank,
// channel, step and element, expected vs seen:
//   - structure: peers in range and not self, equal counts within a step and across a matched
//     send/recv, every send received and every receive fed, reduction steps and finalize only in
//     reducing collectives, identical-or-disjoint operand regions;
//   - memory: every region inside its buffer for that rank (inputCount / outputCount /
//     scratchCount), no region on a buffer the API says the rank does not have, no write into
//     the input (in place, only through the aliased buffer), channels of one rank disjoint where
//     any of them writes, no read of an element nothing has written;
//   - reductions: operands of one combine derive from the same element, never count a rank
//     twice, are not yet finalized; finalize happens once, on a value holding every rank;
//   - progress: no deadlock when steps run as soon as the elements they touch allow (the
//     executor's rule) and sends are buffered; optionally also when each channel runs strictly in
//     order, and when the transport buffers nothing (a send with data completes only with its
//     receive; zero-count messages are always delivered eagerly, schedule.h).
//     A deadlock is reported as the cycle of waiting steps;
//   - result: every rank's output equals the collective's definition exactly (AllReduce: input
//     element i of every rank, finalized; ReduceScatter: rank r's out[i] = all ranks' in[r*count
//     + i]; AllToAll: rank r's out[s*count + i] = rank s's in[r*count + i]; ...); for Barrier,
//     every rank's completion happens after every rank's start (vector clocks along messages
//     and intra-channel dependencies);
//   - same bits: every rank's AllReduce out[i] was combined in the same order (the same
//     expression tree, operands in the same order), so that rounding, signed zeros under
//     Max/Min and NaN payloads cannot make ranks disagree.
// In place, the schedule is canonicalized first (canonicalizeInPlace) so the aliasing is
// explicit: an algorithm that overwrites data it still needs produces a wrong value and fails.
//
// Cost: time and memory linear in the elements the schedule touches plus its steps.
// Thread-safety: pure functions of their arguments; may run concurrently.
#pragma once

#include <optional>
#include <span>

#include "algorithms/schedule.h"
#include "base/status.h"

namespace loom::algo {

struct VerifyOptions {
  // Also require completion when every channel runs its steps strictly in order (with buffered
  // sends), so that a simple in-order executor is correct too.
  bool requireInOrderProgress = true;
  // Also require completion when no send completes before its receive does (a transport that
  // buffers nothing, or a message larger than its buffering), so that a schedule never relies on
  // the transport's buffer space.
  bool requireUnbufferedProgress = true;
};

// OK, or InvalidArgument describing the first problem found. s.ranks must hold one schedule per
// rank. Send and Recv differ per rank: use verifyPointToPoint for them.
Status verifySchedule(const Schedule& s, const VerifyOptions& options = {});

// One rank's part in a point-to-point exchange: its Send or Recv call and its schedule.
struct PeerCall {
  CollectiveArgs args;
  RankSchedule schedule;
};

// calls[r] is rank r's call, or nullopt for a rank that takes no part; every call's
// args.nranks must equal calls.size(). Each Send must be answered by its peer's Recv of the
// same count (InvalidArgument otherwise); the receiver's output must then equal the sender's
// input.
Status verifyPointToPoint(std::span<const std::optional<PeerCall>> calls,
                          const VerifyOptions& options = {});

}  // namespace loom::algo
