"""Concrete task kinds: `nbflow.operators.python`, `.bash`, `.empty`, `.latest_only`, ..."""
