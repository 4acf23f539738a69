# Build flags shared by every zkit target, kept in an INTERFACE target that is linked only at build
# time (never exported), and one-liners for libraries and tests.

add_library(zkit_build_flags INTERFACE)
target_compile_options(zkit_build_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor)
if(ZKIT_WERROR)
  target_compile_options(zkit_build_flags INTERFACE -Werror)
endif()
if(ZKIT_SANITIZE)
  target_compile_options(zkit_build_flags INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                    -fno-sanitize-recover=undefined)
  target_link_options(zkit_build_flags INTERFACE -fsanitize=address,undefined)
endif()
# ZKIT_FUZZ: every zkit target carries libFuzzer's coverage instrumentation and the sanitizers, so
# the fuzzers (tests/fuzz) link zkit::core as it is; only they link libFuzzer's main.
if(ZKIT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ZKIT_FUZZ needs clang++ (configure with CXX=clang++; scripts/fuzz.sh does)")
  endif()
  target_compile_options(zkit_build_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                                                    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(zkit_build_flags INTERFACE -fsanitize=address,undefined)
endif()

# RPATH: build-tree binaries get CMake's build RPATH (the build's library folders). Installed
# executables look in the library folder relative to themselves, installed libraries beside
# themselves, so an install in any prefix (or a .deb unpacked under dpkg --root) finds its own libs.
file(RELATIVE_PATH zkit_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
set(CMAKE_INSTALL_RPATH "$ORIGIN/${zkit_bin_to_lib}")
set(ZKIT_SYMBOL_MAP ${CMAKE_CURRENT_LIST_DIR}/zkit-symbols.map)

# zkit_library(NAME <target> ALIAS <zkit::x> SOURCES ... PUBLIC_LIBS ... PRIVATE_LIBS ...)
# Headers live in ${CMAKE_CURRENT_SOURCE_DIR}/include, sources in src/.
function(zkit_library)
  cmake_parse_arguments(Z "" "NAME;ALIAS" "SOURCES;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  if(ZKIT_SHARED_LIBS)
    add_library(${Z_NAME} SHARED ${Z_SOURCES})
  else()
    add_library(${Z_NAME} STATIC ${Z_SOURCES})
  endif()
  add_library(${Z_ALIAS} ALIAS ${Z_NAME})
  target_include_directories(${Z_NAME} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
  target_compile_features(${Z_NAME} PUBLIC cxx_std_20)
  target_link_libraries(${Z_NAME} PUBLIC ${Z_PUBLIC_LIBS} PRIVATE ${Z_PRIVATE_LIBS}
                        $<BUILD_INTERFACE:zkit_build_flags>)
  string(REPLACE "zkit::" "" export_name ${Z_ALIAS})
  set_target_properties(${Z_NAME} PROPERTIES EXPORT_NAME ${export_name} POSITION_INDEPENDENT_CODE ON
    VERSION ${PROJECT_VERSION} SOVERSION ${ZKIT_SOVERSION} INSTALL_RPATH "$ORIGIN")
  get_target_property(type ${Z_NAME} TYPE)
  if(type STREQUAL "SHARED_LIBRARY")
    # Export only namespace zkit (cmake/zkit-symbols.map). -z defs: a library links everything it
    # uses itself, so a missing PRIVATE_LIBS entry fails here rather than in some consumer.
    target_link_options(${Z_NAME} PRIVATE "LINKER:--version-script=${ZKIT_SYMBOL_MAP}")
    if(NOT ZKIT_SANITIZE)
      target_link_options(${Z_NAME} PRIVATE "LINKER:-z,defs")
    endif()
    set_property(TARGET ${Z_NAME} APPEND PROPERTY LINK_DEPENDS ${ZKIT_SYMBOL_MAP})
  endif()
  set_property(GLOBAL APPEND PROPERTY ZKIT_EXPORTED_TARGETS ${Z_NAME})
  set_property(GLOBAL APPEND PROPERTY ZKIT_PUBLIC_HEADER_DIRS ${CMAKE_CURRENT_SOURCE_DIR}/include)
endfunction()

# zkit_test(<name> SOURCES ... LIBS ... [TIMEOUT s] [LABELS ...])
# One Catch2 executable; each TEST_CASE becomes a ctest entry with a timeout.
function(zkit_test name)
  cmake_parse_arguments(Z "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT Z_TIMEOUT)
    set(Z_TIMEOUT 60)
  endif()
  add_executable(${name} ${Z_SOURCES})
  target_link_libraries(${name} PRIVATE ${Z_LIBS} Catch2::Catch2WithMain zkit_build_flags)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
  target_compile_definitions(${name} PRIVATE
    ZKIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}" ZKIT_BINARY_DIR="${PROJECT_BINARY_DIR}"
    ZKIT_PYTHON="${ZKIT_PYTHON}")
  catch_discover_tests(${name} TEST_PREFIX "${name}: "
    PROPERTIES TIMEOUT ${Z_TIMEOUT} LABELS "${Z_LABELS}")
endfunction()
