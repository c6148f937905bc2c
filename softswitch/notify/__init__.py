"""Notifications: SIP event subscriptions (busy lamps, message waiting) and voicemail mail."""
