// Test hooks: ways for tests (and only tests) to reach inside a communicator.
//
// A transport decorator wraps every transport an Engine creates, e.g. with the fault-injecting
// wrapper of transports/testing, so that collective tests run through injected faults. It is
// process-wide; set it before creating the communicators it should affect and clear it after.
#pragma once

#include <functional>
#include <memory>

#include "transports/transport.h"

namespace loom::runtime {

using TransportDecorator = std::function<std::unique_ptr<transport::Transport>(
    std::unique_ptr<transport::Transport> inner, const transport::TransportContext& context)>;

// nullptr clears it. Thread-safe.
void setTransportDecoratorForTesting(TransportDecorator decorator);
TransportDecorator transportDecoratorForTesting();

}  // namespace loom::runtime
