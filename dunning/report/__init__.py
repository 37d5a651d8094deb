"""Recovery figures: emails sent, clicks and settlements from the ledger and the balance history; JSON and HTML."""
