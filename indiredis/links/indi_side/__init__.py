"""Links towards the instruments: an indiserver over TCP, or driver executables run as children."""
