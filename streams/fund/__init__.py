"""The insurance fund's single owner and its outbox, free of Kafka."""
