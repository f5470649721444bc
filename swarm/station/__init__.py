"""The charging station, version neutral: the physical charger and its life, no OCPP payload."""
