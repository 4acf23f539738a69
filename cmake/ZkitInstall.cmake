# install() rules, the exported CMake package and the pkg-config files.
#
# One component per zkit library (core, patterns, spool, devices, spool_node). Each has its own
# export file zkit-<c>-targets.cmake, and zkitConfig.cmake loads a component only with what its
# target needs at link time: `find_package(zkit COMPONENTS core)` then links zkit::core without
# looking for spdlog, Boost or msgpack. Without COMPONENTS every component is loaded; with shared
# libraries (the default) that still needs only cppzmq and Threads, because the other dependencies
# are private to the .so files. The dependencies are read from the targets themselves
# (INTERFACE_LINK_LIBRARIES), so a library that gains one needs no edit here unless the package is
# new to the table below.
include(CMakePackageConfigHelpers)

# Imported target -> find_dependency() arguments, and -> pkg-config module ("-pthread": a flag).
set(zkit_dep_cppzmq "cppzmq 4.8" "cppzmq")
set(zkit_dep_zstd::libzstd_shared "zstd" "libzstd")
set(zkit_dep_ZLIB::ZLIB "ZLIB" "zlib")
set(zkit_dep_nlohmann_json::nlohmann_json "nlohmann_json 3.10" "nlohmann_json")
set(zkit_dep_spdlog::spdlog "spdlog" "spdlog")
set(zkit_dep_Threads::Threads "Threads" "-pthread")
set(zkit_dep_Boost::program_options "Boost 1.74 COMPONENTS program_options" "")
set(zkit_dep_msgpackc-cxx "msgpack" "")

set(ZKIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/zkit)
set(ZKIT_PKGCONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
# The .pc files name their prefix relative to themselves, so they stay right wherever the tree is
# installed or unpacked (cmake --install --prefix, the .deb's /usr, dpkg --root).
file(RELATIVE_PATH ZKIT_PC_PREFIX_FROM_PCDIR ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
get_property(zkit_targets GLOBAL PROPERTY ZKIT_EXPORTED_TARGETS)  # in add_subdirectory order
set(zkit_components "")
set(zkit_component_table "")
set(zkit_pc_all "")
foreach(target IN LISTS zkit_targets)
  get_target_property(c ${target} EXPORT_NAME)
  list(APPEND zkit_components ${c})
  install(TARGETS ${target} EXPORT zkit-${c}-targets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT zkit-${c}-targets NAMESPACE zkit:: DESTINATION ${ZKIT_CMAKE_DIR})

  # What a consumer's link needs: INTERFACE_LINK_LIBRARIES (a static library's private
  # dependencies appear there as $<LINK_ONLY:...>). zkit:: siblings also come in when private: a
  # shared library's private shared dependencies are named in its IMPORTED_LINK_DEPENDENT_LIBRARIES.
  get_target_property(iface ${target} INTERFACE_LINK_LIBRARIES)
  get_target_property(all ${target} LINK_LIBRARIES)
  if(NOT iface)
    set(iface "")
  endif()
  set(packages "")
  set(requires "")
  set(libs "")
  set(components "")
  foreach(item IN LISTS iface all)
    set(public FALSE)
    if(item IN_LIST iface AND NOT item MATCHES "^\\$<LINK_ONLY:")
      set(public TRUE)
    endif()
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" item "${item}")
    if(item MATCHES "^\\$<" OR item STREQUAL "" OR item MATCHES "-NOTFOUND$")
      continue()  # $<BUILD_INTERFACE:...>: build flags, never exported
    endif()
    if(TARGET ${item})
      get_target_property(aliased ${item} ALIASED_TARGET)
      if(aliased)
        set(item ${aliased})
      endif()
    endif()
    if(item IN_LIST zkit_targets)
      get_target_property(dep_c ${item} EXPORT_NAME)
      list(APPEND components ${dep_c})
      string(REPLACE "_" "-" dep_pc "zkit-${dep_c}")
      if(public OR NOT ZKIT_SHARED_LIBS)
        list(APPEND requires ${dep_pc})
      endif()
      continue()
    endif()
    if(NOT item IN_LIST iface AND NOT "$<LINK_ONLY:${item}>" IN_LIST iface)
      continue()  # a shared library's private dependency: the .so carries it
    endif()
    if(NOT DEFINED zkit_dep_${item})
      message(FATAL_ERROR "cmake/ZkitInstall.cmake: ${target} exports a dependency on '${item}', "
              "which has no package in the table at the top of that file; add one line for it")
    endif()
    list(GET zkit_dep_${item} 0 find_args)
    list(GET zkit_dep_${item} 1 pc)
    list(APPEND packages "${find_args}")
    if(pc STREQUAL "-pthread")
      list(APPEND libs "-pthread")
    elseif(pc)
      # A static library's private dependencies go into Requires, not Requires.private: every
      # consumer links them, and `pkg-config --static` would also pull in libzmq.pc's own
      # Libs.private, which on Debian names static archives that are not installed.
      list(APPEND requires ${pc})
    endif()
  endforeach()
  foreach(v packages requires libs components)
    list(REMOVE_DUPLICATES ${v})
  endforeach()
  string(APPEND zkit_component_table
    "set(_zkit_${c}_packages \"${packages}\")\nset(_zkit_${c}_components \"${components}\")\n")

  # pkg-config: zkit-<c>.pc, and zkit.pc for all of them.
  string(REPLACE "_" "-" pc_name "zkit-${c}")
  list(APPEND zkit_pc_all ${pc_name})
  get_target_property(out ${target} OUTPUT_NAME)
  if(NOT out)
    set(out ${target})
  endif()
  list(JOIN requires " " ZKIT_PC_REQUIRES)
  list(JOIN libs " " ZKIT_PC_LIBS_EXTRA)
  set(ZKIT_PC_NAME ${pc_name})
  set(ZKIT_PC_DESCRIPTION "zkit::${c}")
  set(ZKIT_PC_LIBS "-L\${libdir} -l${out} ${ZKIT_PC_LIBS_EXTRA}")
  configure_file(${PROJECT_SOURCE_DIR}/cmake/zkit.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/${pc_name}.pc
                 @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${pc_name}.pc DESTINATION ${ZKIT_PKGCONFIG_DIR})
endforeach()
set(ZKIT_PC_NAME zkit)
set(ZKIT_PC_DESCRIPTION "every zkit library")
list(JOIN zkit_pc_all " " ZKIT_PC_REQUIRES)
set(ZKIT_PC_LIBS "")
configure_file(${PROJECT_SOURCE_DIR}/cmake/zkit.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/zkit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/zkit.pc DESTINATION ${ZKIT_PKGCONFIG_DIR})

# Headers: one include/ per library, and the generated zkit/version.hpp.
get_property(zkit_header_dirs GLOBAL PROPERTY ZKIT_PUBLIC_HEADER_DIRS)
foreach(dir IN LISTS zkit_header_dirs)
  install(DIRECTORY ${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()
install(FILES ${ZKIT_VERSION_HEADER} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/zkit)

set(ZKIT_COMPONENTS ${zkit_components})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/zkitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/zkitConfig.cmake INSTALL_DESTINATION ${ZKIT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/zkitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/zkitConfig.cmake ${PROJECT_BINARY_DIR}/zkitConfigVersion.cmake
        DESTINATION ${ZKIT_CMAKE_DIR})
