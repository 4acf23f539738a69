# The Python consumer (tests/queues/py_consumer.py, written from docs/protocol.md alone, Debian's
# python3-zmq and python3-msgpack) against `zkit spool --serve`, with one consumer SIGKILLed while
# it holds batches: every message acked, 0 lost, redeliveries with delivery_count > 1.
add_test(NAME py_consumer_interop
         COMMAND ${ZKIT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/py_consumer_test.py $<TARGET_FILE:zkit>
                 20000)
set_tests_properties(py_consumer_interop PROPERTIES LABELS "queues;interop" TIMEOUT 120)

# zkit::Consumer against an in-process SpoolNode (--serve).
zkit_test(consumer_spool_test SOURCES consumer_spool_test.cpp
  LIBS zkit::spool_node zkit::spool zkit::patterns LABELS queues TIMEOUT 90)
