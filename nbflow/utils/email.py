"""Airflow-compatible path: `nbflow.utils.email` (re-exports only; the code is in nbflow.notifications)."""
from nbflow.notifications.mail import send_email as send_email
from nbflow.notifications.smtp_client import addresses as get_email_address_list
