"""OCPP 1.6J: the station mapped to 1.6 messages, its configuration keys, its command handlers."""
