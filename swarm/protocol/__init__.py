"""OCPP-J for every version: framing, the RPC session timed at the frame, payload schemas, what a
round trip reports, and the security profiles of the connection."""
