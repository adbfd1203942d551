"""The auditor's workspace: timeline, object history, as-of replay and tamper evidence."""
