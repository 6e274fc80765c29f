"""Learning: online recommenders and their state. Pure: no Kafka, Redis or network imports."""
