"""The market agent's state and its place in the partition's table, free of Kafka."""
