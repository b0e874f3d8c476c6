"""Airflow-compatible path (Airflow 3): `nbflow.providers.smtp.notifications.smtp` (re-exports only)."""
from nbflow.notifications.smtp import SmtpNotifier as SmtpNotifier
from nbflow.notifications.smtp import send_smtp_notification as send_smtp_notification
