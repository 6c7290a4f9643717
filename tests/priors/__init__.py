"""Tests of metabo.priors."""
