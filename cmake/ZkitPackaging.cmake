# What an operator installs beside the command and the libraries (systemd unit templates, example
# configuration, the docs), and `cpack -G DEB`: one package "zkit" with all of it.

# The units name the installed command by its absolute path. That path is only known at install
# time (cpack installs into /usr, `cmake --install --prefix P` into P), so they are written then.
set(ZKIT_UNIT_DIR lib/systemd/system)  # under the prefix: /usr/lib/systemd/system in the .deb
install(CODE "
  set(zkit_units_out \"${PROJECT_BINARY_DIR}/packaging/systemd\")
  set(ZKIT_BIN \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/zkit\")
  set(ZKIT_DOC_DIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\")
  foreach(unit zkit-spool@.service zkit-proxy@.service)
    configure_file(\"${PROJECT_SOURCE_DIR}/packaging/systemd/\${unit}.in\"
                   \"\${zkit_units_out}/\${unit}\" @ONLY)
    file(INSTALL \"\${zkit_units_out}/\${unit}\"
         DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${ZKIT_UNIT_DIR}\")
  endforeach()
")
install(FILES packaging/examples/spool.conf packaging/examples/proxy.conf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES README.md docs/operations.md docs/devices.md docs/spool-node.md docs/spool.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_PACKAGE_NAME zkit)
set(CPACK_PACKAGE_VENDOR zkit)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION "The zkit command (proxy, spool, spool-inspect, send, recv, stats, \
keygen, demo), its shared libraries, headers, CMake package and pkg-config files, and systemd unit \
templates zkit-spool@.service and zkit-proxy@.service.")
set(ZKIT_PACKAGE_CONTACT "zkit maintainers <root@localhost>" CACHE STRING
    "Maintainer field of the .deb")
set(CPACK_PACKAGE_CONTACT "${ZKIT_PACKAGE_CONTACT}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)             # zkit_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Depends from the ELF files: dpkg-shlibdeps maps each NEEDED library to its Debian package and
# version (libzmq5, libspdlog1.10, libboost-program-options1.74.0, ...). The zkit libraries are in
# the package itself, found through their $ORIGIN RUNPATH; a shlibs file is generated for them.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# Headers include <zmq.hpp>: development use needs cppzmq-dev, the command does not.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cppzmq-dev, libzmq3-dev")
# Maintainer scripts: ldconfig (and systemctl daemon-reload), also right under dpkg --root.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
                                       ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)  # the .deb carries no debug info (77 MB installed with it, RelWithDebInfo)
set(CPACK_GENERATOR DEB)
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "__pycache__")
include(CPack)
