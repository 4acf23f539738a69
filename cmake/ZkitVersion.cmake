# zkit/version.hpp: the project version and the git description of the tree that was built.
#
# Included from the top-level CMakeLists.txt it writes the header once at configure time and adds
# the target zkit_version_header, which reruns this file in script mode (cmake -P) at every build.
# The header is rewritten only when its text changes, so an unchanged tree recompiles nothing.
#
# The description is, first found wins:
#   1. -DZKIT_GIT_DESCRIBE=... given to cmake (for packagers who build outside a clone);
#   2. `git describe --tags --always --dirty` when the source dir is the top of a git work tree;
#   3. cmake/git-describe.txt, which `git archive` fills in (.gitattributes: export-subst) with
#      the commit and its description, so a tarball made by git archive knows it without a .git;
#   4. "unknown".

function(zkit_git_describe src out)
  if(ZKIT_GIT_DESCRIBE)
    set(${out} "${ZKIT_GIT_DESCRIBE}" PARENT_SCOPE)
    return()
  endif()
  find_program(ZKIT_GIT git)
  if(ZKIT_GIT AND EXISTS "${src}/.git")
    # The source dir must be the work tree's top: an unpacked tarball inside some other
    # repository must not take that repository's description.
    execute_process(COMMAND ${ZKIT_GIT} -C "${src}" rev-parse --show-toplevel
                    OUTPUT_VARIABLE top OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc
                    ERROR_QUIET)
    if(rc EQUAL 0 AND top)
      file(REAL_PATH "${top}" top)
      file(REAL_PATH "${src}" real_src)
    endif()
    if(rc EQUAL 0 AND top STREQUAL real_src)
      execute_process(COMMAND ${ZKIT_GIT} -C "${src}" describe --tags --always --dirty
                      OUTPUT_VARIABLE d OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc
                      ERROR_QUIET)
      if(rc EQUAL 0 AND d)
        set(${out} "${d}" PARENT_SCOPE)
        return()
      endif()
    endif()
  endif()
  if(EXISTS "${src}/cmake/git-describe.txt")
    # "<hash> <describe>", the describe part empty when no tag is reachable.
    file(STRINGS "${src}/cmake/git-describe.txt" d LIMIT_COUNT 1)
    string(STRIP "${d}" d)
    if(d AND NOT d MATCHES "\\$Format")
      string(REGEX REPLACE "^[^ ]+ +" "" d "${d}")
      set(${out} "${d}" PARENT_SCOPE)
      return()
    endif()
  endif()
  set(${out} "unknown" PARENT_SCOPE)
endfunction()

# Writes `header` from `template` with ZKIT_VERSION (x.y.z) and the git description.
function(zkit_write_version_header src template header)
  string(REPLACE "." ";" parts "${ZKIT_VERSION}")
  list(GET parts 0 ZKIT_VERSION_MAJOR)
  list(GET parts 1 ZKIT_VERSION_MINOR)
  list(GET parts 2 ZKIT_VERSION_PATCH)
  zkit_git_describe("${src}" ZKIT_GIT_DESCRIPTION)
  string(REPLACE "\\" "\\\\" ZKIT_GIT_DESCRIPTION "${ZKIT_GIT_DESCRIPTION}")
  string(REPLACE "\"" "\\\"" ZKIT_GIT_DESCRIPTION "${ZKIT_GIT_DESCRIPTION}")
  configure_file("${template}" "${header}" @ONLY)  # leaves the file alone when the text is the same
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)  # at build time: cmake -D... -P ZkitVersion.cmake
  zkit_write_version_header("${ZKIT_SOURCE_DIR}" "${ZKIT_VERSION_TEMPLATE}" "${ZKIT_VERSION_HEADER}")
  return()
endif()

set(ZKIT_GIT_DESCRIBE "" CACHE STRING "git description to bake into zkit/version.hpp (empty: ask git)")
set(ZKIT_VERSION ${PROJECT_VERSION})
set(ZKIT_GENERATED_INCLUDE_DIR ${PROJECT_BINARY_DIR}/generated/include)
set(ZKIT_VERSION_HEADER ${ZKIT_GENERATED_INCLUDE_DIR}/zkit/version.hpp)
zkit_write_version_header(${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_LIST_DIR}/version.hpp.in
                          ${ZKIT_VERSION_HEADER})
add_custom_target(zkit_version_header ALL
  COMMAND ${CMAKE_COMMAND} -DZKIT_SOURCE_DIR=${PROJECT_SOURCE_DIR} -DZKIT_VERSION=${PROJECT_VERSION}
          -DZKIT_VERSION_TEMPLATE=${CMAKE_CURRENT_LIST_DIR}/version.hpp.in
          -DZKIT_VERSION_HEADER=${ZKIT_VERSION_HEADER} "-DZKIT_GIT_DESCRIBE=${ZKIT_GIT_DESCRIBE}"
          -P ${CMAKE_CURRENT_LIST_FILE}
  BYPRODUCTS ${ZKIT_VERSION_HEADER}
  COMMENT "zkit/version.hpp: git description"
  VERBATIM)
