"""What functions, `serve` and the CLI call: triggers, HTTP answers, the schedule."""
