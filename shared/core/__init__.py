"""Settings, logging, time and units, deadlines and locks: what every layer may use."""
