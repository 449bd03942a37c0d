"""Local emulator of the Microsoft APIs the portal uses: Entra ID, Partner Center and Graph.

A separate program with its own SQLite state; the portal never imports it.
"""
