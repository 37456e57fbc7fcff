"""The optimizer loop: its configuration, the typed records it writes, the validation
gate, the budget, the job it works on, the LangGraph graph that drives it, and the report."""
