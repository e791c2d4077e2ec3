# Layer enforcement (DESIGN.md section 2).
#
# Every layer's sources include headers by layer-qualified paths ("base/status.h",
# "transports/transport.h"). A layer is compiled against a generated include *view* that holds
# links to itself and to the layers it may use, and nothing else, so an upward or sideways
# include is a compile error, not a review comment.

set(LOOM_LAYER_DIR_base ${CMAKE_SOURCE_DIR}/src/base)
set(LOOM_LAYER_DIR_bootstrap ${CMAKE_SOURCE_DIR}/src/bootstrap)
set(LOOM_LAYER_DIR_topology ${CMAKE_SOURCE_DIR}/topology)
set(LOOM_LAYER_DIR_transports ${CMAKE_SOURCE_DIR}/transports)
set(LOOM_LAYER_DIR_algorithms ${CMAKE_SOURCE_DIR}/algorithms)
set(LOOM_LAYER_DIR_runtime ${CMAKE_SOURCE_DIR}/src/runtime)
set(LOOM_LAYER_DIR_api ${CMAKE_SOURCE_DIR}/src/api)
set(LOOM_ALL_LAYERS base bootstrap topology transports algorithms runtime api)

# loom_layer_view(TARGET LAYER...): give TARGET an include view with exactly these layers
# (ALL = every layer), plus the public include/ directory.
function(loom_layer_view target)
  set(layers ${ARGN})
  if(layers STREQUAL "ALL")
    set(layers ${LOOM_ALL_LAYERS})
  endif()
  set(view ${CMAKE_BINARY_DIR}/layer_views/${target})
  file(MAKE_DIRECTORY ${view})
  foreach(layer IN LISTS layers)
    if(NOT EXISTS ${view}/${layer})
      file(CREATE_LINK ${LOOM_LAYER_DIR_${layer}} ${view}/${layer} SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${target} PRIVATE ${view} ${CMAKE_SOURCE_DIR}/include
                                               ${CMAKE_BINARY_DIR}/generated)
endfunction()

# loom_layer(NAME SOURCES... USES layer...): an object library for one layer.
function(loom_layer name)
  cmake_parse_arguments(L "" "" "SOURCES;USES" ${ARGN})
  add_library(loom_${name} OBJECT ${L_SOURCES})
  loom_layer_view(loom_${name} ${name} ${L_USES})
  target_link_libraries(loom_${name} PRIVATE Threads::Threads)
  target_compile_definitions(loom_${name} PRIVATE LOOM_BUILDING_LIBRARY=1)
endfunction()
