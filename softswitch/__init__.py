"""softswitch: SIP signalling, the registrar and (later) the B2BUA of the softswitch."""

__version__ = "0.1.0"
