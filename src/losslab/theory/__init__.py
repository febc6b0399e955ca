"""The probability view: likelihoods, identities, the multinomial theorem, sympy derivations, the ledger."""
