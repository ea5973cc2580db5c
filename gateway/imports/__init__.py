"""Data brought in from elsewhere: bank statements (bank.py) and other systems' records."""
