"""Bounces: the VERP envelope sender, bounce messages read and classified, and the suppressed addresses."""
