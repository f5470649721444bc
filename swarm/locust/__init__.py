"""All that imports Locust or gevent: the user, its options and hooks, workers, the web UI's tab
and the run folder. Nothing outside this package imports them (``make test`` checks it)."""
