"""The pure decision engine: policies, personal-data detection and risk scoring.

No I/O, no clock, no settings and no mutable globals: a decision is a function of the request and the policies,
and of a stored event's features alone (``decide_from_features``), which is what makes backtesting exact.
"""

from ingress.engine.budgets import BudgetDemand, budget_demands
from ingress.engine.decision import Decision, decide, decide_from_features
from ingress.engine.operations import analyze_request, summarize_operations
from ingress.engine.personal_data import detect_personal_data
from ingress.engine.policy import PolicySnapshot

__all__ = [
    "BudgetDemand",
    "Decision",
    "PolicySnapshot",
    "analyze_request",
    "budget_demands",
    "decide",
    "decide_from_features",
    "detect_personal_data",
    "summarize_operations",
]
