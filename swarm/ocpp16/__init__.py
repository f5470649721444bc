"""OCPP 1.6J: the station in 1.6 words (its dialect, key store, transactions and command
handlers), and the embedded CSMS's answers to 1.6 charge points (:mod:`swarm.ocpp16.csms`)."""
