"""Faust wiring: the app, topics, tables, codecs and agents that move events from Kafka into models."""
