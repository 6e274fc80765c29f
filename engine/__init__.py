"""Decisions and delivery: Redis publishing, Kafka producing, the CLI and the local stack."""
