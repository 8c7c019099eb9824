"""Trusted code the labs give to the learner's component: the other side of each lab (participants,
services) that the grader controls and injects faults into."""
