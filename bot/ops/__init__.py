"""Running the assistant: settings, supervision, the cluster profile, the web server, the command
line, logs, training and the test harness that starts the real servers."""
