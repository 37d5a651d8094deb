"""Which notices are due: the policy, candidate selection, notice context, plan output."""
