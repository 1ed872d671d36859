# Finds LibTorch and the libraries inside it that posenc uses besides tensors and autograd.
#
# Where: the LibTorch of the project's virtual environment (.venv, made by scripts/install-deps.sh
# with torch==2.13.0 from pip; another interpreter with -DPOSENC_PYTHON=...), unless the caller
# names one with -DCMAKE_PREFIX_PATH=/path/to/libtorch or -DTorch_DIR=.../share/cmake/Torch.
#
# Which: LibTorch >= POSENC_MIN_LIBTORCH_VERSION. 2.13 is the oldest posenc is built and tested
# against (CI builds on it); it is also the first whose c10d Gloo API, C++20 headers and bundled
# libraries (below) posenc's code was written for. An older one is refused here, by name.
#
# What posenc takes from it rather than from a second copy (one of each per process):
#   - OpenMP: LibTorch's own runtime (lib/libgomp*.so*). at::parallel_for is a header template
#     around `#pragma omp parallel`, so posenc compiles with -fopenmp and links that runtime.
#   - SLEEF: LibTorch's headers carry sleef.h and libtorch_cpu exports the vector functions its
#     own vectorised headers call; posenc's SIMD kernels call the same ones.
#   - BLAS: the sgemm_ libtorch_cpu exports (MKL in the x86-64 wheels and downloads).
# Gloo's headers are not in the wheel: Debian's libgloo-dev supplies them for c10d's
# ProcessGroupGloo.hpp; the code they describe is the Gloo inside libtorch_cpu.

set(POSENC_MIN_LIBTORCH_VERSION 2.13)
set(POSENC_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python whose torch package supplies LibTorch when no CMAKE_PREFIX_PATH or Torch_DIR names one")

if(NOT Torch_DIR AND EXISTS "${POSENC_PYTHON}")
  execute_process(
    COMMAND "${POSENC_PYTHON}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE POSENC_TORCH_PREFIX OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_VARIABLE POSENC_TORCH_ERROR RESULT_VARIABLE POSENC_TORCH_RESULT)
  if(NOT POSENC_TORCH_RESULT EQUAL 0)
    message(FATAL_ERROR
      "posenc: ${POSENC_PYTHON} cannot import torch:\n${POSENC_TORCH_ERROR}\n"
      "Run scripts/install-deps.sh to (re)make .venv, or pass -DCMAKE_PREFIX_PATH=/path/to/libtorch.")
  endif()
  # after the caller's own prefixes, so that -DCMAKE_PREFIX_PATH=/path/to/libtorch wins
  list(APPEND CMAKE_PREFIX_PATH "${POSENC_TORCH_PREFIX}")
elseif(NOT Torch_DIR AND NOT CMAKE_PREFIX_PATH)
  message(FATAL_ERROR
    "posenc: no LibTorch given and no virtual environment at ${POSENC_PYTHON}.\n"
    "Run scripts/install-deps.sh (it makes .venv with torch==2.13.0), or pass "
    "-DCMAKE_PREFIX_PATH=/path/to/libtorch (a LibTorch >= ${POSENC_MIN_LIBTORCH_VERSION}).")
endif()

find_package(Torch QUIET)
if(NOT Torch_FOUND)
  message(FATAL_ERROR
    "posenc: LibTorch not found (CMAKE_PREFIX_PATH='${CMAKE_PREFIX_PATH}', Torch_DIR='${Torch_DIR}').\n"
    "Run scripts/install-deps.sh, or pass -DCMAKE_PREFIX_PATH=/path/to/libtorch "
    "(a LibTorch >= ${POSENC_MIN_LIBTORCH_VERSION}).")
endif()
if(Torch_VERSION VERSION_LESS POSENC_MIN_LIBTORCH_VERSION)
  message(FATAL_ERROR
    "posenc: found LibTorch ${Torch_VERSION} at ${Torch_DIR}, but posenc needs LibTorch >= "
    "${POSENC_MIN_LIBTORCH_VERSION}.\nRun scripts/install-deps.sh (torch==2.13.0 in .venv), or "
    "pass -DCMAKE_PREFIX_PATH=/path/to/a/newer/libtorch.")
endif()
# TorchConfig.cmake searches its own lib folder only after the system's: with Debian's
# libtorch-dev installed, it can pair 2.x headers with /usr/lib's 1.13 libraries.
# (torch_cpu is an imported target with a path inside the install; these two are searched for)
foreach(library IN ITEMS TORCH_LIBRARY c10_LIBRARY)
  if(${library} AND NOT ${library} MATCHES "^${TORCH_INSTALL_PREFIX}/")
    message(FATAL_ERROR
      "posenc: LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX} was paired with ${${library}}, "
      "a library of another LibTorch (Debian's libtorch-dev?). Remove that package "
      "(apt-get remove libtorch-dev), or delete build/CMakeCache.txt if it is already gone.")
  endif()
endforeach()
message(STATUS "posenc: LibTorch ${Torch_VERSION} (${TORCH_INSTALL_PREFIX})")

# LibTorch's OpenMP runtime: posenc_use_openmp(target) compiles the target's own at::parallel_for
# calls with OpenMP and links them to that runtime, never to the compiler's.
file(GLOB POSENC_TORCH_OPENMP_LIBRARY "${TORCH_INSTALL_PREFIX}/lib/libgomp*.so*")
list(LENGTH POSENC_TORCH_OPENMP_LIBRARY POSENC_TORCH_OPENMP_COUNT)
if(NOT POSENC_TORCH_OPENMP_COUNT EQUAL 1)
  message(FATAL_ERROR
    "posenc: expected one GNU OpenMP runtime in ${TORCH_INSTALL_PREFIX}/lib, found "
    "'${POSENC_TORCH_OPENMP_LIBRARY}'. posenc supports the LibTorch builds that carry libgomp "
    "(the pip wheels and the libtorch downloads for x86-64 Linux).")
endif()
function(posenc_use_openmp target)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -fopenmp)
  endif()
  # clang emits calls to LLVM's libomp for OpenMP regions, and a second runtime beside LibTorch's
  # is what this avoids: a clang build (the sanitizer build) compiles posenc's at::parallel_for
  # calls without OpenMP, so they run on the calling thread. LibTorch's own ops stay parallel.
  target_link_libraries(${target} PRIVATE ${POSENC_TORCH_OPENMP_LIBRARY})
endfunction()

# Gloo's headers (c10d's ProcessGroupGloo.hpp includes them) from Debian's libgloo-dev.
find_path(GLOO_INCLUDE_DIR gloo/context.h)
if(NOT GLOO_INCLUDE_DIR)
  message(FATAL_ERROR "posenc: Gloo's headers not found; install libgloo-dev (scripts/install-deps.sh)")
endif()
