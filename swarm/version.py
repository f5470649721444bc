"""The package's version, in a module that imports nothing: the station reports it as its
firmware version, and importing the package root would reach the Locust user."""

__version__ = "0.1.0"
