# install() + the exported packages: install into a scratch prefix, then check the installed
# command and build and run consumers through find_package(zkit) and through pkg-config.
# -D: ZKIT_BUILD, CONSUMER_SRC, WORK, ZKIT_VERSION, ZKIT_SHARED (ON/OFF), CXX (the compiler).
file(REMOVE_RECURSE ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()
function(expect what text regex)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${what}: expected to match '${regex}', got:\n${text}")
  endif()
endfunction()
set(prefix ${WORK}/prefix)
run(${CMAKE_COMMAND} --install ${ZKIT_BUILD} --prefix ${prefix})

# The installed command finds its own libraries through RUNPATH $ORIGIN/../lib, not the build
# tree's, and prints the version with the git description.
run(readelf -d ${prefix}/bin/zkit)
expect("zkit's RUNPATH" "${out}" "RUNPATH\\)[^\n]*\\[\\$ORIGIN/")
if(out MATCHES "${ZKIT_BUILD}")
  message(FATAL_ERROR "the installed zkit still names the build tree:\n${out}")
endif()
run(ldd ${prefix}/bin/zkit)
if(ZKIT_SHARED)
  expect("ldd zkit" "${out}" "libzkit_core\\.so[.0-9]* => ${prefix}/")
endif()
run(${prefix}/bin/zkit --version)
expect("zkit --version" "${out}" "^zkit ${ZKIT_VERSION} \\([^)\n]+\\)\n$")
string(REGEX REPLACE "^zkit [^ ]+ \\(([^)]+)\\)\n$" "\\1" describe "${out}")
message(STATUS "installed zkit --version: ${out}")

# find_package(zkit) for zkit::core must not look for msgpack, Boost or spdlog: make them
# unfindable. With shared libraries core's private zstd and nlohmann_json are not needed either.
set(unfindable msgpack Boost spdlog)
if(ZKIT_SHARED)
  list(APPEND unfindable zstd nlohmann_json ZLIB)
endif()
set(no_find "")
foreach(p IN LISTS unfindable)
  list(APPEND no_find -DCMAKE_DISABLE_FIND_PACKAGE_${p}=ON)
endforeach()
# Static libraries carry their private dependencies to the consumer's link: there only the core
# component alone is checked without them.
foreach(variant all-components core-component)
  set(args ${no_find})
  if(variant STREQUAL core-component)
    list(APPEND args -DZKIT_COMPONENTS=core)
  elseif(NOT ZKIT_SHARED)
    set(args "")
  endif()
  run(${CMAKE_COMMAND} -S ${CONSUMER_SRC} -B ${WORK}/${variant} -DCMAKE_PREFIX_PATH=${prefix}
      -DCMAKE_CXX_COMPILER=${CXX} ${args})
  run(${CMAKE_COMMAND} --build ${WORK}/${variant})
  run(${WORK}/${variant}/consumer)
  expect("consumer (${variant})" "${out}" "^version ${ZKIT_VERSION} \\(${describe}\\)")
  message(STATUS "consumer of zkit::core (${variant}; unfindable: ${args}): ${out}")
endforeach()

# Every library, down to zkit::spool_node, linked from outside (with shared libraries, still
# without spdlog, Boost or msgpack findable: they are private to the .so files).
if(ZKIT_SHARED)
  set(args ${no_find})
else()
  set(args "")
endif()
run(${CMAKE_COMMAND} -S ${CONSUMER_SRC} -B ${WORK}/all -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_CXX_COMPILER=${CXX} -DCONSUMER_ALL=ON ${args})
run(${CMAKE_COMMAND} --build ${WORK}/all)
file(MAKE_DIRECTORY ${WORK}/spool)
run(${WORK}/all/consumer_all ${WORK}/spool)
message(STATUS "consumer of zkit::spool_node: ${out}")

# pkg-config: zkit-core.pc alone builds the same consumer; zkit.pc names every library.
set(ENV{PKG_CONFIG_PATH} "")
file(GLOB pcdir LIST_DIRECTORIES true ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
set(ENV{PKG_CONFIG_LIBDIR} "${pcdir}:/usr/lib/x86_64-linux-gnu/pkgconfig:/usr/lib/pkgconfig:/usr/share/pkgconfig")
run(pkg-config --modversion zkit)
expect("pkg-config --modversion zkit" "${out}" "^${ZKIT_VERSION}\n$")
run(pkg-config --cflags --libs zkit)
expect("pkg-config zkit" "${out}" "-lzkit_spool_node")
run(pkg-config --cflags --libs zkit-core)
string(STRIP "${out}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(pkg-config --variable=libdir zkit-core)
string(STRIP "${out}" libdir)
run(${CXX} -std=c++20 ${CONSUMER_SRC}/main.cpp -o ${WORK}/pc-consumer ${flags} -Wl,-rpath,${libdir})
run(${WORK}/pc-consumer)
expect("pkg-config consumer" "${out}" "^version ${ZKIT_VERSION} \\(${describe}\\)")
message(STATUS "consumer built with pkg-config zkit-core: ${out}")
