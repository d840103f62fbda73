"""What the monitor knows: a collection run, alert rules and state, reports and rightsizing."""
