"""Raising the account partition count of a running deployment (issue 22).

A deployment runs one account layout at a time, a *generation*: generation 0 reads the keyed
input topics directly; generation g >= 1 re-keys them (a stateless router in every worker) into
its own internal topics of N_g partitions. ``spma scale`` drains generation g, re-keys its
portfolio table into g+1's changelog and switches the group over; the generations topic records
every step (control.py). README "Scaling" says why this design and what it costs.
"""
