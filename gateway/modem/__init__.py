"""GSM modems through python-gammu: one thread per modem, its watchdog, the translation
of Gammu's dicts into plain data, and the simulator's writer for Gammu's dummy driver."""
