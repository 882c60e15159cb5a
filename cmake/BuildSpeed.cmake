# Build-time settings (docs/BUILD.md has the figures behind each choice).
#   PINGMESH_PCH        precompiled headers shared by all targets (two: libraries, tests)
#   PINGMESH_LINKER     auto (mold, then lld, then gold), or one of them, or "default"
#   PINGMESH_CI         CI build: debug info reduced to line tables (-g1), which is what
#                       sanitizer and crash stack traces need, for a third less compile CPU
include_guard(GLOBAL)
include(CheckLinkerFlag)

# PCH measured no gain with GCC 12 at -O2 (docs/BUILD.md), hence off.
option(PINGMESH_PCH "Precompiled headers for the heavy third-party headers" OFF)
set(PINGMESH_LINKER auto CACHE STRING "Linker: auto, mold, lld, gold or default")
set_property(CACHE PINGMESH_LINKER PROPERTY STRINGS auto mold lld gold default)
option(PINGMESH_CI "Reduce debug info to line tables (CI: less compile and link time)" OFF)

# Linker. GNU ld spends seconds on each of the ~20 test executables; mold/lld take a fraction.
if(NOT PINGMESH_LINKER STREQUAL "default")
  if(PINGMESH_LINKER STREQUAL "auto")
    set(_pm_candidates mold lld gold)
  else()
    set(_pm_candidates ${PINGMESH_LINKER})
  endif()
  set(_pm_linker "")
  foreach(ld IN LISTS _pm_candidates)
    check_linker_flag(CXX -fuse-ld=${ld} PINGMESH_HAVE_LD_${ld})
    if(PINGMESH_HAVE_LD_${ld})
      set(_pm_linker ${ld})
      break()
    endif()
  endforeach()
  if(_pm_linker)
    add_link_options(-fuse-ld=${_pm_linker})
    message(STATUS "pingmesh: linking with ${_pm_linker}")
  elseif(NOT PINGMESH_LINKER STREQUAL "auto")
    message(FATAL_ERROR "PINGMESH_LINKER=${PINGMESH_LINKER} does not work with this compiler")
  endif()
endif()

if(PINGMESH_CI)
  # Comes after the build type's -g on the command line, so it wins.
  add_compile_options(-g1)
endif()

# Precompiled headers: two PCHs built once each and reused by every target (REUSE_FROM), so the
# third-party headers (nlohmann/json, fmt, spdlog, protobuf, GoogleTest) are parsed twice per build
# instead of once per translation unit. All targets share the global flags; a target-specific
# -D (PINGMESH_BINARY, PINGMESH_VERSION) does not touch these headers, so GCC accepts the PCH.
if(PINGMESH_PCH)
  # A PCH that GCC cannot use is then an error, not a silent slow build.
  add_compile_options(-Winvalid-pch)
  set(_pm_pch_lib
      <algorithm> <atomic> <chrono> <cstdint> <cstring> <filesystem> <fstream> <functional> <map>
      <memory> <mutex> <optional> <set> <sstream> <string> <string_view> <thread> <unordered_map>
      <vector> <nlohmann/json.hpp> <fmt/format.h> <spdlog/spdlog.h>)
  file(WRITE ${CMAKE_BINARY_DIR}/pch/pch.cpp "// Owner of the shared precompiled headers.\n")
  add_library(pingmesh_pch_lib OBJECT ${CMAKE_BINARY_DIR}/pch/pch.cpp)
  target_link_libraries(pingmesh_pch_lib PRIVATE nlohmann_json::nlohmann_json spdlog::spdlog
                                                 fmt::fmt)
  target_compile_definitions(pingmesh_pch_lib PRIVATE BOOST_ASIO_NO_DEPRECATED)
  target_precompile_headers(pingmesh_pch_lib PRIVATE ${_pm_pch_lib})

  add_library(pingmesh_pch_test OBJECT ${CMAKE_BINARY_DIR}/pch/pch.cpp)
  target_link_libraries(pingmesh_pch_test PRIVATE nlohmann_json::nlohmann_json spdlog::spdlog
                                                  fmt::fmt GTest::gtest GTest::gmock)
  target_compile_definitions(pingmesh_pch_test PRIVATE BOOST_ASIO_NO_DEPRECATED)
  target_precompile_headers(pingmesh_pch_test PRIVATE ${_pm_pch_lib} <gtest/gtest.h>
                            <gmock/gmock.h>)
endif()

# _pingmesh_links_common(<target> <out>): whether <target> links pingmesh_common, directly or
# through our own libraries (then it has the flags and definitions the PCH was built with).
function(_pingmesh_links_common target out)
  set(todo ${target})
  set(seen "")
  while(todo)
    list(POP_FRONT todo t)
    if(t IN_LIST seen OR NOT TARGET ${t})
      continue()
    endif()
    list(APPEND seen ${t})
    if(t STREQUAL "pingmesh_common")
      set(${out} TRUE PARENT_SCOPE)
      return()
    endif()
    get_target_property(imported ${t} IMPORTED)
    if(NOT imported)
      get_target_property(libs ${t} LINK_LIBRARIES)
      if(libs)
        list(APPEND todo ${libs})
      endif()
    endif()
  endwhile()
  set(${out} FALSE PARENT_SCOPE)
endfunction()

# pingmesh_apply_pch(<dir>): after all add_subdirectory() calls, gives every library and
# executable under <dir> that links pingmesh_common the shared PCH (the test one when it links
# GoogleTest). New targets get it without any per-directory setting; a target can opt out with
# set_target_properties(<t> PROPERTIES PINGMESH_NO_PCH ON).
function(pingmesh_apply_pch dir)
  if(NOT PINGMESH_PCH)
    return()
  endif()
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    get_target_property(optout ${t} PINGMESH_NO_PCH)
    if(optout OR NOT type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$"
       OR t MATCHES "^pingmesh_pch_")
      continue()
    endif()
    _pingmesh_links_common(${t} uses_common)
    if(NOT uses_common)
      continue()
    endif()
    get_target_property(libs ${t} LINK_LIBRARIES)
    if("GTest::gtest" IN_LIST libs OR "GTest::gmock" IN_LIST libs)
      target_precompile_headers(${t} REUSE_FROM pingmesh_pch_test)
    else()
      target_precompile_headers(${t} REUSE_FROM pingmesh_pch_lib)
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    pingmesh_apply_pch(${sub})
  endforeach()
endfunction()
