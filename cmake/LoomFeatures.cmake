# Optional dependencies. Each is detected, recorded in generated/loom_features.h (printed by
# loom-info) and never required for the host runtime to build.
include(CheckLanguage)
find_package(PkgConfig)

set(LOOM_SYSTEM_LIBS Threads::Threads ${CMAKE_DL_LIBS} rt)

# CUDA: the GPU path is built only when nvcc is present (LOOM_CUDA=AUTO) or demanded (ON).
set(LOOM_HAVE_CUDA 0)
if(NOT LOOM_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(LOOM_HAVE_CUDA 1)
    # Ampere (sm_80) and Hopper (sm_90) machine code, plus sm_90 PTX for newer GPUs.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "80-real;90")
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA20 flag for nvcc
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    # The runtime is linked statically: it loads libcuda.so.1 on first use, so the library
    # runs (host collectives) where no driver is installed (src/base/cuda.h).
    list(APPEND LOOM_SYSTEM_LIBS CUDA::cudart_static)
    string(APPEND LOOM_PC_LIBS_PRIVATE " -L${CUDAToolkit_LIBRARY_DIR} -lcudart_static")
  elseif(LOOM_CUDA STREQUAL "ON")
    message(FATAL_ERROR "LOOM_CUDA=ON but no CUDA compiler was found")
  endif()
endif()

set(LOOM_HAVE_HWLOC 0)
set(LOOM_HAVE_IBVERBS 0)
if(PkgConfig_FOUND)
  pkg_check_modules(HWLOC IMPORTED_TARGET hwloc)
  if(HWLOC_FOUND)
    set(LOOM_HAVE_HWLOC 1)
    # Topology discovery (topology/hwloc_cpu.cpp); absolute paths, so the exported static
    # target needs no imported target of ours.
    list(APPEND LOOM_SYSTEM_LIBS ${HWLOC_LINK_LIBRARIES})
    string(APPEND LOOM_PC_LIBS_PRIVATE " -lhwloc")
  endif()
  # The ibverbs transport (transports/ibverbs) is built when libibverbs is found and
  # LOOM_TRANSPORT_IBVERBS is on; without it the library uses sockets between hosts.
  option(LOOM_TRANSPORT_IBVERBS "Build the ibverbs (RDMA) transport when libibverbs is found" ON)
  if(LOOM_TRANSPORT_IBVERBS)
    pkg_check_modules(IBVERBS IMPORTED_TARGET libibverbs)
  endif()
  if(LOOM_TRANSPORT_IBVERBS AND IBVERBS_FOUND)
    set(LOOM_HAVE_IBVERBS 1)
    list(APPEND LOOM_SYSTEM_LIBS ${IBVERBS_LINK_LIBRARIES})
    string(APPEND LOOM_PC_LIBS_PRIVATE " -libverbs")
  endif()
endif()

execute_process(COMMAND git -C ${CMAKE_SOURCE_DIR} rev-parse --short HEAD
                OUTPUT_VARIABLE LOOM_GIT_REV OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT LOOM_GIT_REV)
  set(LOOM_GIT_REV "unknown")
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/loom_features.h.in
               ${CMAKE_BINARY_DIR}/generated/loom_features.h @ONLY)
message(STATUS "loom features: cuda=${LOOM_HAVE_CUDA} hwloc=${LOOM_HAVE_HWLOC} "
               "ibverbs=${LOOM_HAVE_IBVERBS}")
