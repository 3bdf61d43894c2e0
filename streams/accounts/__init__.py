"""The account partitions' logic, free of Kafka: portfolio records, the processor, outboxes."""
