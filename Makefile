# loom - the two commands (README): `make demo` and `make test`. Both set up what they need.
#
#   make deps    install the Debian 12 packages the build, tests and peers need (apt-get)
#   make build   configure and build (build/)
#   make test    deps + build + the whole test suite (what .ci/run calls)
#   make demo    deps + build + loom-info + a 4-rank all_reduce benchmark
#   make format  clang-format every source file
#   make asan / make tsan   the test suite under sanitizers (build-asan/, build-tsan/)

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

DEB_PACKAGES := build-essential cmake pkg-config g++ clang clang-format \
  libgtest-dev libgmock-dev libbenchmark-dev libhwloc-dev hwloc libibverbs-dev rdma-core \
  libfmt-dev openmpi-bin libopenmpi-dev mpich libmpich-dev libgloo-dev iproute2 python3 procps

.PHONY: deps build test demo format asan tsan clean

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
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DLOOM_SANITIZE=address,undefined -DLOOM_BUILD_PERF=OFF"

tsan:
	$(MAKE) test BUILD=build-tsan CMAKE_FLAGS="-DLOOM_SANITIZE=thread -DLOOM_BUILD_PERF=OFF"

clean:
	rm -rf build build-asan build-tsan
