# loom - the two commands (README): `make demo` and `make test`. Both set up what they need.
#
#   make deps    install the Debian 12 packages the build, tests and peers need (apt-get);
#                and python3-torch, libtorch-dev, pybind11-dev, python3-pytest (TORCH=0: not those)
#   make build   configure and build (build/)
#   make test    deps + build + the whole test suite (what .ci/run calls)
#   make demo    deps + build + loom-info + a 4-rank all_reduce benchmark
#   make format  clang-format every source file
#   make asan / make tsan   the test suite under sanitizers (build-asan/, build-tsan/)
#   make test-asan / make test-tsan   the reliability subset under sanitizers: fault tests
#                (they include the collective sweep), transport conformance, base, api, the GPU
#                path on the emulated device (gpu_fake_test: staged, LOOM_CUDA_DIRECT=1 and
#                LOOM_CUDA_IPC=1) and the
#                NCCL C test program (SAN_BINS, SAN_NCCL_MODES); not part of `make test` (its
#                15-minute budget), but .ci/run runs both after it (docs/RELIABILITY.md)
#   make ci      what .ci/run does: make test, then test-asan and test-tsan
#   make soak    4 processes, mixed collectives of random sizes, checked, for SOAK_SECONDS (120)
#   make fuzz    each libFuzzer target for FUZZ_SECONDS (60) from tests/fuzz/corpus (needs clang)

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

DEB_PACKAGES := build-essential cmake pkg-config g++ clang libclang-rt-dev clang-format \
  libgtest-dev libgmock-dev libbenchmark-dev libhwloc-dev hwloc libibverbs-dev rdma-core \
  libfmt-dev openmpi-bin libopenmpi-dev mpich libmpich-dev libgloo-dev iproute2 python3 procps
# The PyTorch backend and its tests (docs/PYTORCH.md), installed by default (issue 11); opt out
# with `make test TORCH=0`. Measured on the 2-core VM: apt-get install 2 min 36 s (181 packages,
# 650 MiB, once), extension build 55 s, ctest -L pytorch 67-78 s (-j2). Without them the pytorch
# tests report "skipped" with the reason.
TORCH ?= 1
TORCH_PACKAGES := python3-torch libtorch-dev pybind11-dev python3-pytest
ifeq ($(TORCH),1)
DEB_PACKAGES += $(TORCH_PACKAGES)
endif

SOAK_SECONDS ?= 120
FUZZ_SECONDS ?= 60
# The fault tests include the collective sweep through the fault wrapper on every transport.
SAN_TARGETS := fault_test transport_conformance_test base_test api_test nccl_test_c gpu_fake_test
SAN_BINS := tests/fault/fault_test tests/conformance/transport_conformance_test \
  tests/unit/base/base_test tests/unit/api/api_test tests/gpu/gpu_fake_test
# compat/nccl's C test program: ranks as threads (one per rank, or one thread driving all in
# groups), non-blocking communicators, one rank.
SAN_NCCL_MODES := basic threads nonblocking single
comma := ,
# $(1) build directory, $(2) LOOM_SANITIZE value, $(3) the sanitizer's runtime options.
define sanitizer_subset
	cmake -S . -B $(1) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOOM_SANITIZE=$(2) -DLOOM_BUILD_PERF=OFF -DLOOM_CUDA=OFF
	cmake --build $(1) -j $(JOBS) --target $(SAN_TARGETS)
	cd $(1) && for t in $(SAN_BINS); do echo "== $$t"; $(3) ./$$t --gtest_brief=1 || exit 1; done
	cd $(1) && echo "== gpu_fake_test, LOOM_CUDA_DIRECT=1" && \
	  LOOM_CUDA_DIRECT=1 $(3) ./tests/gpu/gpu_fake_test --gtest_brief=1
	cd $(1) && echo "== gpu_fake_test, LOOM_CUDA_IPC=1" && \
	  LOOM_CUDA_IPC=1 $(3) ./tests/gpu/gpu_fake_test --gtest_brief=1
	cd $(1) && for m in $(SAN_NCCL_MODES); do echo "== nccl_test_c $$m"; \
	  $(3) ./tests/compat/nccl_test_c $$m || exit 1; done
endef

.PHONY: deps build test demo format asan tsan test-asan test-tsan ci soak fuzz clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	  grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all packages present"; fi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

demo: build
	$(BUILD)/tools/loom-info
	$(BUILD)/tools/loomrun -np 4 $(BUILD)/perf/loom-perf all_reduce -b 8 -e 64M -f 4

format:
	git ls-files '*.h' '*.hpp' '*.cpp' '*.cc' '*.cu' | xargs clang-format -i

asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DLOOM_SANITIZE=address,undefined -DLOOM_BUILD_PERF=OFF -DLOOM_CUDA=OFF"

tsan:
	$(MAKE) test BUILD=build-tsan CMAKE_FLAGS="-DLOOM_SANITIZE=thread -DLOOM_BUILD_PERF=OFF -DLOOM_CUDA=OFF"

test-asan: deps
	$(call sanitizer_subset,build-asan,address$(comma)undefined,UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)

test-tsan: deps
	$(call sanitizer_subset,build-tsan,thread,TSAN_OPTIONS=halt_on_error=1)

ci: test
	$(MAKE) test-asan
	$(MAKE) test-tsan

soak: build
	$(BUILD)/tools/loomrun -np 4 --timeout $$(( $(SOAK_SECONDS) + 120 )) $(BUILD)/tests/soak/loom_soak --seconds $(SOAK_SECONDS)

fuzz: build
	@for f in $(BUILD)/tests/fuzz/fuzz_*; do [ -x "$$f" ] || continue; n=$${f##*/fuzz_}; \
	  echo "== $$n"; mkdir -p $(BUILD)/tests/fuzz/corpus_$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 $(BUILD)/tests/fuzz/corpus_$$n tests/fuzz/corpus/$$n || exit 1; done

clean:
	rm -rf build build-asan build-tsan
