"""Tests of metabo.acquisition."""
