# The reliable pipeline example and its smoke test (the receiver crashes and restarts mid-stream).
add_executable(reliable_pipeline ${CMAKE_CURRENT_LIST_DIR}/reliable_pipeline.cpp)
target_link_libraries(reliable_pipeline PRIVATE zkit::patterns zkit_build_flags)
if(ZKIT_BUILD_TESTS)
  add_test(NAME example_reliable_pipeline COMMAND reliable_pipeline 20000)
  set_tests_properties(example_reliable_pipeline PROPERTIES TIMEOUT 60 LABELS "examples;reliable"
    PASS_REGULAR_EXPRESSION "sink: 20000 stored, 0 missing, 0 duplicated, all acknowledged: yes")
endif()
