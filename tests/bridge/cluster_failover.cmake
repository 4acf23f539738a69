# Past one machine: a 3-node RabbitMQ cluster on this machine, a quorum queue, zkit -> bridge ->
# cluster -> bridge -> zkit, and the node that leads the queue (and serves both bridges) SIGKILLed
# mid-stream: 0 lost, and every duplicate one docs/bridge.md allows (cluster_failover_test.py).
# One cluster per mode, 20,000 messages each. The long run: ZKIT_BRIDGE_CLUSTER_COUNT=1000000
# tests/bridge/cluster_failover_test.py --zkit build/devices/zkit (both modes on one cluster).
set(cluster_failover ${ZKIT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cluster_failover_test.py
    --zkit $<TARGET_FILE:zkit> --count 20000)
set(name "cluster_failover_test: batch mode, queue leader SIGKILLed, 0 lost, no duplicate")
add_test(NAME "${name}" COMMAND ${cluster_failover} --modes batch)
set_tests_properties("${name}" PROPERTIES TIMEOUT 300 LABELS "bridge;rabbitmq;cluster")
set(name "cluster_failover_test: message mode, queue leader SIGKILLed, 0 lost, each duplicate a copy the queue held")
add_test(NAME "${name}" COMMAND ${cluster_failover} --modes message)
set_tests_properties("${name}" PROPERTIES TIMEOUT 300 LABELS "bridge;rabbitmq;cluster")
