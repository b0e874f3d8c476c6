"""Hooks: clients of external systems, built from connections (`nbflow.hooks.base.BaseHook`)."""
