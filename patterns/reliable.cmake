# The reliable link's endpoints (ReliableSender/ReliableReceiver), part of zkit::patterns.
target_sources(zkit_patterns PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src/reliable.cpp)
