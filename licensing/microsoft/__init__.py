"""The only code that talks to Microsoft. Use :func:`default_client`; catch :mod:`.errors`."""
