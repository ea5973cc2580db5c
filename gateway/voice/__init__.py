"""Asterisk: the FastAGI server, the stdio AGI script and the AMI client for click-to-call."""
