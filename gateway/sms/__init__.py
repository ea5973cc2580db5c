"""What an SMS is, with no I/O: phone numbers, GSM-7/UCS-2 parts, parts read from a SIM."""
