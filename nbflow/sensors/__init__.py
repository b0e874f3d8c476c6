"""Sensors: tasks that wait for a condition (a file, a time, another DAG's task) by poking it (layer 5)."""
