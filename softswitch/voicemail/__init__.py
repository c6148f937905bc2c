"""Voicemail: mailboxes, leaving and listening to messages, and what tells users of them."""
