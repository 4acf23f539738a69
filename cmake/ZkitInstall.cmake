# install() and an exported CMake package: find_package(zkit) then link zkit::core.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(zkit_targets GLOBAL PROPERTY ZKIT_EXPORTED_TARGETS)
install(TARGETS ${zkit_targets} EXPORT zkitTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(dir lib patterns storage devices devices/node)
  if(EXISTS ${PROJECT_SOURCE_DIR}/${dir}/include)
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endforeach()
install(EXPORT zkitTargets NAMESPACE zkit:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/zkit)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/zkitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/zkitConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/zkit)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/zkitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/zkitConfig.cmake ${PROJECT_BINARY_DIR}/zkitConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/zkit)
