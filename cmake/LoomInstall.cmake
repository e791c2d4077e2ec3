# cmake --install: headers, the shared and static library, the tools (their own CMakeLists
# install them), a CMake package (find_package(loom) -> loom::loom, loom::loom_static) and a
# pkg-config file (pkg-config --cflags --libs loom).
include(CMakePackageConfigHelpers)

install(FILES include/loom/loom.h include/loom/loom.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/loom)
install(TARGETS loom loom_static EXPORT loomTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(LOOM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/loom)
install(EXPORT loomTargets NAMESPACE loom:: DESTINATION ${LOOM_CMAKE_DIR})
configure_package_config_file(cmake/loomConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/generated/loomConfig.cmake
                              INSTALL_DESTINATION ${LOOM_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/generated/loomConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/generated/loomConfig.cmake
              ${CMAKE_BINARY_DIR}/generated/loomConfigVersion.cmake
        DESTINATION ${LOOM_CMAKE_DIR})

configure_file(cmake/loom.pc.in ${CMAKE_BINARY_DIR}/generated/loom.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/generated/loom.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
