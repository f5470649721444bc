"""OCPP 2.0.1J: the station (:mod:`swarm.station`) in 2.0.1 words, and the CSMS's 2.0.1 answers."""
