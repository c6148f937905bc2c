"""softswitch/sip package."""
