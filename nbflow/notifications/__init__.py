"""Notifiers: objects usable as callbacks (`on_failure_callback=[SmtpNotifier(...), fn]`) and task alert e-mails."""
from nbflow.notifications.basenotifier import BaseNotifier, notifiers
from nbflow.notifications.plugins import get_notifier

__all__ = ["BaseNotifier", "get_notifier", "notifiers"]
