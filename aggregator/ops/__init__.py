"""Running the service unattended: the daemon's metrics, what it records after each job, JSON
logs with secrets redacted, and stop signals."""
